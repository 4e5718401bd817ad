"""Benchmarks of the platform against what its users would otherwise run (``make bench``)."""
