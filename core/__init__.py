"""Shared machinery every app may use; it imports no app of ours (checked by import-linter)."""
