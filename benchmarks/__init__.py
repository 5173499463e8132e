"""Benchmarks: tinynn against Keras and PyTorch, and the kernels against their NumPy twins.

Run ``python benchmarks/run.py`` (``--help`` for the options); see ``run.py``.
"""
