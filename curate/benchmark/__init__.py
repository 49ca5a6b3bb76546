"""Benchmarks of curation strategies: one pool, several strategies, equal training, one suite."""
