"""Benchmark of jointcredit against a plain durable-rules baseline (see bench/run.py)."""
