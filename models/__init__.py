"""PyTorch definitions of the lightweight pose models edgepose benchmarks, and their registry."""
