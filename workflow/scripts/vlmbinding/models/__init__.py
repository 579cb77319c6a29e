"""The models: weights kinds, pretrained tags, architectures, checkpoints, loading, and the
offline toy CLIP."""
