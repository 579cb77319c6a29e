"""Figures of the study: Grad-CAM grids, feature neurons, superposition against separability.

Every function takes tables or arrays and returns a matplotlib Figure; `save_figure` writes
it as PNG (and PDF) without dates or version strings, so a rerun gives identical bytes
(STYLE.md). Figures are built on `matplotlib.figure.Figure` directly, not through pyplot, so
no figure is left registered with pyplot and no GUI backend is needed.

One module per family of figures; `style` holds what they share (sizes, colours, labels,
saving). What each figure shows is defined in METHOD.md: feature neurons and their entropy
(section 3), the superposition score S (section 4), the separability D and M (section 5),
their correlation (section 6) and Grad-CAM on text-image similarity (section 7).
"""

from vlmbinding.report.figures.comparison import model_comparison
from vlmbinding.report.figures.correlation import binding_scatter, superposition_scatter
from vlmbinding.report.figures.gradcam import gradcam_grid
from vlmbinding.report.figures.interventions import intervention_effects, intervention_example
from vlmbinding.report.figures.neurons import (
    entropy_histogram,
    feature_neuron_gallery,
    patch_activation_maps,
)
from vlmbinding.report.figures.null import superposition_null
from vlmbinding.report.figures.replicates import replicate_forest
from vlmbinding.report.figures.sanity import sanity_panels
from vlmbinding.report.figures.specification import specification_curve
from vlmbinding.report.figures.style import (
    SWAPPED_COLOR,
    TRUE_COLOR,
    _upsample_nearest,
    save_figure,
)
from vlmbinding.report.figures.toy import zero_shot_bars

__all__ = [
    "SWAPPED_COLOR",
    "TRUE_COLOR",
    "_upsample_nearest",
    "binding_scatter",
    "entropy_histogram",
    "feature_neuron_gallery",
    "gradcam_grid",
    "intervention_effects",
    "intervention_example",
    "model_comparison",
    "patch_activation_maps",
    "replicate_forest",
    "sanity_panels",
    "save_figure",
    "specification_curve",
    "superposition_null",
    "superposition_scatter",
    "zero_shot_bars",
]
