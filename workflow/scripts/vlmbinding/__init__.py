"""Diagnosing attribute-binding failures of CLIP through neuron superposition.

The library behind the workflow: every stage's logic as small functions that can be used
without Snakemake (dataset, models, activations, neurons, separability, statistics,
Grad-CAM, figures). See README.md and docs/METHOD.md for the definitions.
"""

__version__ = "0.1.0"
