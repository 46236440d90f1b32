"""Benchmarks and the load generator (benchmarks/loadgen.py), importable by the reliability tests."""
