"""Pieces of the load benchmark (``benchmarks/milter_load.py``): corpus, servers, front-ends."""
