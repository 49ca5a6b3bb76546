"""Models: open_clip loading (pretrained tags or local files), tiny configs for CPU runs."""
