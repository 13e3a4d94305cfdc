"""Latency harness: edgepose bench and the pytest-benchmark suite."""
