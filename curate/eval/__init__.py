"""Evaluation: zero-shot classification and retrieval tasks, their metrics, and suites of them."""
