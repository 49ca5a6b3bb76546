"""Versioned Arrow schemas of samples and sidecars, as JSON (name.vN.json)."""
