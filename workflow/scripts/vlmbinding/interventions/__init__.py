"""Interventions: which neurons to ablate, the ablation hooks, the stage loop."""
