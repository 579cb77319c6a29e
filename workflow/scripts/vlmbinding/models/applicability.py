"""Which stages a vision tower can run: Grad-CAM and the binding test need a text tower.

Both stages score an image against a caption through the model's own text-image similarity.
A tower without a text tower of its own (a transformers CLIPVisionModel or SiglipVisionModel,
or the tower inside a LLaVA or PaliGemma checkpoint) runs every image-side stage; for it
these two stages are *not applicable*: the workflow leaves their jobs out, says so once per
models entry at start-up, and the report's tables page and the sanity table carry a row
that says "not applicable: needs a text tower". Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping

NEEDS_TEXT = "not applicable: needs a text tower"
TEXT_STAGES = ("Grad-CAM", "the binding test")


def has_text_tower(geometry: Mapping) -> bool:
    """Whether a tower (its `vision_geometry`) has a text tower: every open_clip model does;
    a transformers model says so in `has_text`."""
    return bool(geometry.get("has_text", True))


def text_less(geometries: Mapping[str, Mapping]) -> frozenset[str]:
    """The models (name -> `vision_geometry`) without a text tower."""
    return frozenset(name for name, g in geometries.items() if not has_text_tower(g))


def startup_notes(geometries: Mapping[str, Mapping], models: Mapping[str, Mapping]) -> list[str]:
    """One line per config entry whose tower has no text tower (its twins and replicates
    counted with it), for the start-up log."""
    bases: dict[str, list[str]] = {}
    for name in sorted(text_less(geometries), key=list(models).index):
        bases.setdefault(models[name].get("base", name), []).append(name)
    return [
        f"models entry {base!r}: its vision tower has no text tower of its own, so "
        f"{' and '.join(TEXT_STAGES)} are not applicable (they need text-image similarity) "
        f"for {', '.join(repr(n) for n in names)}: their jobs are left out, every image-side "
        f"stage runs, and the tables page and the sanity table say '{NEEDS_TEXT}'"
        for base, names in bases.items()
    ]


def not_applicable_row() -> dict:
    """The value a stage that needs a text tower reports for a tower without one."""
    return {"status": NEEDS_TEXT, "why": "this vision tower has no text tower of its own"}
