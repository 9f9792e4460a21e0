"""Imports and exports: import jobs, file reading, cell parsing, the row report, the importer
registry the apps fill, and the export streaming helpers. It imports no domain app: each app
registers its importers and export kinds in its AppConfig.ready()."""
