"""The offline toy CLIP: its clean training scenes and its training loop."""
