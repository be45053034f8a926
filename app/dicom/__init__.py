"""Pure functions over pydicom datasets and bytes: no database, no files, no HTTP."""
