"""Benchmark of by-framework against a raw redis-py loop: run ``bench/run.py``."""
