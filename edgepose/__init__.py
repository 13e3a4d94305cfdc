"""edgepose runtime."""
