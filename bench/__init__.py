"""Benchmarks: speed and memory targets live here, never as timed assertions in tests."""
