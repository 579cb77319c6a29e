"""Recording MLP outputs into the activation store, and per-patch maps."""
