"""Models arrive with the campaigns issue."""
