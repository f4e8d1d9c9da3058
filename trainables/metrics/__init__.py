"""Plain-PyTorch metrics."""
