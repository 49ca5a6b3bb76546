"""Duplicate finding on the driver: exact groups by hash, near-duplicate pairs by FAISS, SemDeDup
clusters, and the greedy rule that keeps one member of each group by a stated priority."""
