"""The data: the toy-shapes vocabulary and generator, external datasets, the model's crop."""
