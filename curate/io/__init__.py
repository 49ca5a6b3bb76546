"""Reading and writing samples: tars, tables, folders, image metadata, subset files."""
