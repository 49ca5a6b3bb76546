"""Benchmarks behind `curate bench`: each times real runs and reports throughput and memory."""
