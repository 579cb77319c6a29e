"""Start-up checks that need more than the schema: each names the key and the fix.

Called from common.smk before any job runs; torch-free so `snakemake -n` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence

from vlmbinding.workflow.config import ConfigError


def generated_image_ids(n_images: int) -> list[str]:
    """The ids the dataset generator gives (dataset.sample_scenes numbers images in order)."""
    return [f"img_{i:05d}" for i in range(n_images)]


def check_gradcam_images(ids: Sequence[str], known: Sequence[str]) -> None:
    """gradcam.images must name images of the dataset."""
    unknown = sorted(set(ids) - set(known))
    if unknown:
        example = ", ".join(list(known)[:3])
        raise ConfigError(
            f"gradcam.images: unknown image id(s) {unknown[:10]}; the dataset's ids look like "
            f"{example}, ... (leave the list empty for a seeded sample of gradcam.n_images)"
        )


def check_figure_neuron(choice: str | None, layers: Sequence[int], width: int, model: str):
    """figures.neuron 'layer:unit' must be an analysed layer and a unit of its MLP."""
    if not choice:
        return
    layer, unit = (int(v) for v in choice.split(":"))
    if layer not in layers:
        raise ConfigError(
            f"figures.neuron: layer {layer} is not among the analysed layers {list(layers)} "
            f"of models entry {model!r}; pick one of them or add it to analysis.layers"
        )
    if not 0 <= unit < width:
        raise ConfigError(
            f"figures.neuron: unit {unit} is out of range for models entry {model!r}, whose "
            f"MLP has {width} units (0-{width - 1})"
        )


def weights_problem(entry: dict, kind: str, geometry: dict | None = None) -> str | None:
    """Why a models entry's weights cannot be loaded here, found without torch, or None.

    `kind` is the entry's weights kind (tag | file | hf-hub | ...). Files: missing,
    not a checkpoint, or a TorchScript archive without `trust_checkpoint`; tags: unknown
    for the architecture, or not cached with no network. With the entry's `geometry`, a
    state dict whose vision tower has another width, patch size or depth is named too (its
    shapes read without torch). hf-hub ids are checked when their config is read for the
    geometry (archs.hub_model_config, fast offline).
    """
    from vlmbinding.models.checkpoints import (
        architecture_mismatch,
        checkpoint_problem,
        state_dict_shapes,
    )
    from vlmbinding.models.pretrained import tag_problem

    if kind == "file":
        problem = checkpoint_problem(entry["weights"], bool(entry.get("trust_checkpoint")))
        if problem or geometry is None:
            return problem
        shapes = state_dict_shapes(entry["weights"])
        mismatch = shapes and architecture_mismatch(shapes, geometry, entry["arch"])
        return f"checkpoint file {entry['weights']} {mismatch}" if mismatch else None
    if kind == "tag":
        return tag_problem(entry["arch"], entry["weights"])
    return None


def tokenizer_problem(model_cfg: dict) -> str | None:
    """Why the text tower's tokenizer cannot be had here, or None: SigLIP's and SigLIP2's
    live on the hub (`text_cfg.hf_tokenizer_name`) and need its local cache offline."""
    name = model_cfg.get("text_cfg", {}).get("hf_tokenizer_name")
    if not name:
        return None
    from huggingface_hub import try_to_load_from_cache

    from vlmbinding.models.pretrained import hub_reachable

    files = ("tokenizer.json", "tokenizer_config.json", "spiece.model")
    if any(isinstance(try_to_load_from_cache(name, f), str) for f in files):
        return None
    if hub_reachable():
        return None
    return (
        f"its text tower's tokenizer {name} is not in the local hub cache and the model hub "
        "cannot be reached. Run once on a machine with network (the tokenizer is cached "
        "under ~/.cache/huggingface or $HF_HOME; copy that folder here)"
    )


def check_generated_canvas(vocab, width: int, height: int, crop: bool) -> None:
    """Every shape at every position of a generated image must lie inside what the model
    sees: a non-square canvas loses its sides (or top and bottom) to the centre crop."""
    from vlmbinding.data.crop import boxes_outside, seen_region
    from vlmbinding.data.toyshapes import Canvas
    from vlmbinding.data.vocab import POSITION_CENTRES

    canvas = Canvas(width, height)
    region = seen_region(width, height, crop)
    cut = sorted(
        {
            position
            for position in vocab.positions
            for shape in vocab.shapes
            if boxes_outside(canvas.box(shape, POSITION_CENTRES[position]), region)[0]
        }
    )
    if cut:
        raise ConfigError(
            f"dataset.width, dataset.height: on a {width}x{height} canvas, objects at "
            f"position(s) {cut} lie outside the centre square the model sees (its "
            "preprocessing crops it); make the images square, or set "
            "`activations.preprocess: reference`"
        )
