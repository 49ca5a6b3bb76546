"""Duplicate finding in a global stage's reduce: exact groups by hash, near-duplicate pairs by FAISS, SemDeDup
clusters, and the greedy rule that keeps one member of each group by a stated priority."""
