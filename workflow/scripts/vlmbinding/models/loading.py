"""Loading CLIP models: open_clip tags, local checkpoint files, hf-hub ids, toy checkpoints.

Two traps are handled here rather than left to the user:
- OpenAI weights were trained with QuickGELU, but open_clip's plain architecture names
  (ViT-L-14) use GELU and only *warn* when given OpenAI weights. We force QuickGELU
  whenever the weights say so, and a test checks it.
- Without network, open_clip tries to download an uncached tag and can hang; we check
  the cache first and fail at once with a message that says how to fix it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from vlmbinding.models.architectures import architecture_config, hub_model_config, vision_geometry
from vlmbinding.models.checkpoints import (
    CheckpointError,
    checkpoint_format,
    checkpoint_problem,
    explain_load_error,
)
from vlmbinding.models.pretrained import offline_message as _offline_message
from vlmbinding.models.pretrained import offline_unless_reachable, tag_is_cached
from vlmbinding.models.weights import HF_HUB_PREFIX, RANDOM, weights_kind  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

# resources/models of this repository: the toy architectures (as ARCH_DIR in common.smk)
DEFAULT_ARCH_DIR = Path(__file__).resolve().parents[4] / "resources" / "models"


class WeightsUnavailable(RuntimeError):
    """Weights that cannot be had here (not cached and no network, unknown tag, ...)."""


@dataclass
class LoadedModel:
    """An open_clip CLIP model with what is needed to feed it."""

    model: torch.nn.Module
    preprocess: object  # PIL image -> tensor (the model's own transform)
    tokenizer: object  # list[str] -> token tensor
    arch: str
    weights: str
    model_cfg: dict = field(default_factory=dict)

    @property
    def geometry(self) -> dict:
        return vision_geometry(self.model_cfg)

    @property
    def quick_gelu(self) -> bool:
        return bool(self.model_cfg.get("quick_gelu", False))


def pick_device(device: str = "auto") -> torch.device:
    """'auto' takes CUDA when available; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for, but torch sees no CUDA device")
    return torch.device(device)


def tag_config(arch: str, tag: str) -> dict:
    """open_clip's pretrained config for `arch`/`tag`, or a WeightsUnavailable naming the tags."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise WeightsUnavailable(
            f"weights {tag!r} are not an open_clip tag for {arch} (tags: {tags}), nor a file"
        )
    return cfg


def tokenizer_for(model_cfg: dict):
    """open_clip's tokenizer at the config's context length."""
    import open_clip

    text_cfg = model_cfg.get("text_cfg", {})
    context_length = text_cfg.get("context_length", 77)
    if text_cfg.get("hf_tokenizer_name"):  # SigLIP's, from the hub (or its local cache)
        return open_clip.HFTokenizer(
            text_cfg["hf_tokenizer_name"],
            context_length=context_length,
            **(text_cfg.get("tokenizer_kwargs") or {}),
        )

    def tokenize(texts):
        return open_clip.tokenize(list(texts), context_length=context_length)

    return tokenize


def transform_for(model: torch.nn.Module):
    """The evaluation transform of a model built from a config (OpenAI mean and std)."""
    import open_clip

    v = model.visual
    size = v.image_size if isinstance(v.image_size, int) else tuple(v.image_size)
    mean = getattr(v, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(v, "image_std", None) or open_clip.OPENAI_DATASET_STD
    return open_clip.image_transform(size, is_train=False, mean=mean, std=std)


@contextlib.contextmanager
def timm_overrides(kwargs: dict | None):
    """Inside the block, open_clip builds its timm trunks with `kwargs` added (the
    workflow's `vision_cfg.timm_model_kwargs`, e.g. a small depth and width for tests)."""
    if not kwargs:
        yield
        return
    import types

    import open_clip.timm_model as tm

    real = tm.timm

    def create_model(name, **kw):
        return real.create_model(name, **{**kw, **kwargs})

    tm.timm = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if k[0] != "_"})
    tm.timm.create_model = create_model
    try:
        yield
    finally:
        tm.timm = real


def build_clip(cfg: dict) -> torch.nn.Module:
    """open_clip's CLIP (or CustomTextCLIP, as `custom_text` says) of a model config, whose
    `vision_cfg.timm_model_kwargs` (this workflow's key) reach timm's constructor."""
    import open_clip

    cfg = copy.deepcopy(cfg)
    custom = cfg.pop("custom_text", False)
    kwargs = cfg["vision_cfg"].pop("timm_model_kwargs", None)
    with timm_overrides(kwargs):
        model = (open_clip.CustomTextCLIP if custom else open_clip.CLIP)(**cfg)
    return model


def from_config(cfg: dict, arch: str = "custom", weights: str = "random") -> LoadedModel:
    """A freshly initialised CLIP of an open_clip model config (toy training, tests, benchmarks)."""
    model = build_clip(cfg).eval()
    return LoadedModel(model, transform_for(model), tokenizer_for(cfg), arch, weights, cfg)


def save_checkpoint(model: torch.nn.Module, model_cfg: dict, path: str | Path, **extra) -> None:
    """A self-describing checkpoint: open_clip-style state_dict plus the model config."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"state_dict": model.state_dict(), "model_cfg": model_cfg, **extra}, tmp)
    os.replace(tmp, path)


def load_model(
    arch: str,
    weights: str,
    device: str | torch.device = "cpu",
    arch_dir: str | Path | None = None,
    model_cfg_overrides: dict | None = None,
    trust_checkpoint: bool = False,
) -> LoadedModel:
    """Load `arch` with `weights` (tag | file | hf-hub:<id>), in eval mode on `device`.

    A checkpoint file that carries its own `model_cfg` (as `save_checkpoint` writes, e.g.
    a trained toy model) needs no architecture lookup. Files load with
    `torch.load(weights_only=True)`; `trust_checkpoint` allows the unsafe path that runs
    pickled code (TorchScript archives, pickled objects). The activation function always
    follows the weights: QuickGELU for OpenAI-trained ones.
    """
    import open_clip

    kind = weights_kind(weights)
    if kind == "toy":
        raise ValueError("toy weights come from the train_toy_model rule's checkpoint file")
    if kind == "random":
        raise ValueError("random weights are built by random_model from a twin entry")
    if kind == "file":
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailable(checkpoint_problem(path))
        problem = checkpoint_problem(path, trust_checkpoint)
        if problem:
            raise CheckpointError(problem)
        try:
            model, cfg = _model_from_file(
                path, arch, arch_dir, model_cfg_overrides, trust_checkpoint
            )
        except Exception as e:  # torch, pickle and open_clip raise many kinds: explain them
            raise CheckpointError(explain_load_error(e, path, arch)) from e
        tokenizer = tokenizer_for(cfg)
        preprocess = transform_for(model)
    elif kind == "hf-hub":
        hub_id = weights[len(HF_HUB_PREFIX) :]
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(hub_id, "open_clip_config.json")
        online = offline_unless_reachable()
        if not isinstance(cached, str) and not online:
            raise WeightsUnavailable(_offline_message(f"model {weights}", arch))
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(weights)
        except Exception as e:  # offline with the weights uncached: at once, not retried
            if online:
                raise
            raise WeightsUnavailable(_offline_message(f"model {weights}", arch)) from e
        cfg = hub_model_config(weights)
        tokenizer = open_clip.get_tokenizer(weights)
    else:
        tcfg = tag_config(arch, weights)
        if not offline_unless_reachable() and not tag_is_cached(tcfg):
            raise WeightsUnavailable(_offline_message(f"open_clip weights {arch}/{weights}", arch))
        quick = bool(tcfg.get("quick_gelu", False))
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=weights, force_quick_gelu=quick
        )
        cfg = architecture_config(arch, arch_dir)
        cfg["quick_gelu"] = quick or bool(cfg.get("quick_gelu"))
        tokenizer = open_clip.get_tokenizer(arch)
    model = model.to(pick_device(device) if isinstance(device, str) else device).eval()
    return LoadedModel(model, preprocess, tokenizer, arch, weights, cfg)


def _model_from_file(path: Path, arch, arch_dir, overrides, trust: bool):
    """(model, config) of a checkpoint file; weights_only unless `trust`."""
    import open_clip

    if checkpoint_format(path) == "safetensors":
        state = None  # open_clip reads safetensors itself, never through pickle
    else:
        state = torch.load(path, map_location="cpu", weights_only=not trust)
    if isinstance(state, dict) and "model_cfg" in state:
        cfg = state["model_cfg"]
        model = build_clip(cfg)
        model.load_state_dict(state["state_dict"])
        return model, cfg
    del state
    cfg = architecture_config(arch, arch_dir, overrides)
    # A file of OpenAI's own release (a TorchScript archive) or a state dict whose config
    # asks for QuickGELU: open_clip builds the matching activation.
    model = open_clip.create_model(
        arch,
        pretrained=str(path),
        force_quick_gelu=bool(cfg.get("quick_gelu")),
        weights_only=not trust,
    )
    return model, cfg


def load_entry(entry: dict, checkpoint: str | None, device: str = "auto") -> LoadedModel:
    """Load a config `models:` entry; toy models from the `checkpoint` their training wrote,
    random-weights twins (`weights: random`) built afresh by `random_model`.

    Errors name the models entry.
    """
    if entry["arch"] == "transformers":
        return transformers_entry(entry, device)
    if entry["weights"] == RANDOM:
        return random_model(entry, device)
    weights = checkpoint if entry["weights"] == "toy" else entry["weights"]
    trust = bool(entry.get("trust_checkpoint", False))
    try:
        return load_model(entry["arch"], weights, device, trust_checkpoint=trust)
    except (WeightsUnavailable, CheckpointError) as e:
        raise type(e)(f"models entry {entry['name']!r}: {e}") from None


def transformers_entry(entry: dict, device: str | torch.device = "cpu") -> LoadedModel:
    """A models entry with `arch: transformers` (`vlmbinding.models.hf_towers`); its random
    twin is the same architecture, initialised by transformers with the twin's seed."""
    from vlmbinding.models.hf_towers import load_transformers

    random = entry["weights"] == RANDOM
    weights = entry.get("twin_of", entry["weights"]) if random else entry["weights"]
    tower, preprocess, tokenizer, cfg = load_transformers(
        weights, entry.get("base") or entry.get("name", ""), random, int(entry.get("seed", 0))
    )
    target = pick_device(device) if isinstance(device, str) else device
    return LoadedModel(tower.to(target).eval(), preprocess, tokenizer, "transformers", weights, cfg)


def random_model(
    entry: dict, device: str | torch.device = "cpu", arch_dir: str | Path | None = None
) -> LoadedModel:
    """The random-weights twin of a models entry: its architecture, initialised, untrained.

    `entry` is a twin entry (`vlmbinding.workflow.entries.add_random_twins`): `arch`, optional
    `model_cfg`, `twin_of` (the trained model's weights value) and `seed`. The model is
    built by the same code that builds it before loading weights (open_clip's `CLIP`
    constructor and its `init_parameters`; for a toy model the code `train_toy_model`
    starts from), after `torch.manual_seed(seed)`, so the same seed gives the same twin.
    What the trained weights fix beyond the architecture follows them: the activation
    (QuickGELU for OpenAI weights) and the preprocessing (the tag's or hub's mean, std,
    interpolation and resize mode). Nothing is downloaded; an hf-hub model needs its small
    config in the local cache. Checkpoint files are not opened: their architecture is
    `arch` (with `model_cfg`), as for the trained model's config.
    """
    from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict

    parent = entry.get("twin_of", "toy")
    kind = weights_kind(parent)
    arch_dir = arch_dir if arch_dir is not None else DEFAULT_ARCH_DIR
    preprocess_cfg = None
    if kind == "hf-hub":
        cfg = hub_model_config(parent)
        preprocess_cfg = hub_preprocess_config(parent)
    else:
        cfg = architecture_config(entry["arch"], arch_dir, entry.get("model_cfg") or None)
        if kind == "tag":
            tcfg = tag_config(entry["arch"], parent)
            cfg["quick_gelu"] = bool(cfg.get("quick_gelu")) or bool(tcfg.get("quick_gelu"))
            preprocess_cfg = tcfg
    cfg = copy.deepcopy(cfg)
    if "hf_model_name" in cfg.get("text_cfg", {}):
        raise WeightsUnavailable(
            f"models entry {entry.get('name')!r}: a random twin of an architecture with a "
            "Hugging Face text tower would need that tower's config from the hub; set "
            "`random_twin: false` in the entry (or controls.random_weights: false)"
        )
    torch.manual_seed(int(entry.get("seed", 0)))
    loaded = from_config(cfg, entry["arch"], RANDOM)
    if preprocess_cfg is not None:
        pp = merge_preprocess_dict(asdict(PreprocessCfg()), preprocess_cfg)
        pp["size"] = loaded.model.visual.image_size
        loaded.preprocess = image_transform_v2(PreprocessCfg(**pp), is_train=False)
    target = pick_device(device) if isinstance(device, str) else device
    loaded.model = loaded.model.to(target).eval()
    return loaded


def hub_preprocess_config(weights: str) -> dict:
    """The preprocessing config of an `hf-hub:` model (from its cached open_clip config)."""
    from huggingface_hub import hf_hub_download

    hub_id = weights.removeprefix(HF_HUB_PREFIX)
    path = hf_hub_download(hub_id, "open_clip_config.json", etag_timeout=5)
    with open(path) as f:
        return json.load(f).get("preprocess_cfg", {})


def uses_quick_gelu(model: torch.nn.Module) -> bool:
    """Whether the vision tower's MLPs use QuickGELU (x * sigmoid(1.702 x))."""
    from open_clip.transformer import QuickGELU

    return any(isinstance(m, QuickGELU) for m in model.visual.modules())
