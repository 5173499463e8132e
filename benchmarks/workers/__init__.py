"""One module per framework, each run in its own process by ``benchmarks/run.py``."""
