"""Contrastive training of open_clip models on WebDataset shards, with exact resume. Imports
curate; no stage imports it."""
