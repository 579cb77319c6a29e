"""The analysis: neurons (affinity, entropy, S), separability, correlations, resampling,
the null model, the specification curve, Grad-CAM, the binding test, the cross-model view."""
