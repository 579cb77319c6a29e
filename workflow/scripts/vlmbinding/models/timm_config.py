"""Geometry of open_clip's timm vision trunks (SigLIP, SigLIP2, EVA02, PE-Core), torch-free.

open_clip builds these towers as `timm.create_model(vision_cfg.timm_model_name)`; their
depth, width, patch size and prefix tokens live in timm's model functions
(`def vit_base_patch16_siglip_224(...): model_args = dict(patch_size=16, ...)`), which are
read here from timm's source with `ast`, without importing timm (which imports torch).

Two families are supported, by the block the workflow hooks:
  timm-vit  timm's VisionTransformer (`Block`): MLP output times `ls2` (LayerScale or Identity)
  timm-eva  timm's Eva (`EvaBlock`): MLP output times `gamma_2` when the block has it

`vision_cfg.timm_model_kwargs` (a key of this workflow, not of open_clip) overrides timm's
arguments, e.g. `{depth: 2, embed_dim: 64, num_heads: 2}` for a small tower in tests.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

# timm source file -> (family, its defaults of the arguments read here)
FAMILIES = {
    "vision_transformer.py": (
        "timm-vit",
        {"class_token": True, "reg_tokens": 0, "no_embed_class": False, "img_size": 224},
    ),
    "eva.py": ("timm-eva", {"class_token": True, "num_reg_tokens": 0, "img_size": 224}),
}
KEYS = (
    "patch_size",
    "embed_dim",
    "depth",
    "class_token",
    "reg_tokens",
    "num_reg_tokens",
    "no_embed_class",
    "img_size",
    "global_pool",
)


class UnsupportedTimmModel(ValueError):
    pass


def timm_dir() -> Path | None:
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _literal(node: ast.AST):
    """A constant or a constant arithmetic expression (4 * 2 / 3); else None."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.BinOp):
        left, right = _literal(node.left), _literal(node.right)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            ops = {ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
            op = ops.get(type(node.op))
            return op(left, right) if op else None
    return None


@functools.cache
def _model_args(path: Path) -> dict[str, dict]:
    """{model function name: {argument: value}} of a timm model file's `model_args = dict()`."""
    tree = ast.parse(path.read_text())
    out = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "model_args" for t in node.targets)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "dict"
            ):
                args = {}
                for kw in node.value.keywords:
                    if kw.arg in KEYS:
                        value = _literal(kw.value)
                        if value is None and isinstance(kw.value, ast.Call):  # kwargs.pop(k, d)
                            value = _literal(kw.value.args[-1]) if kw.value.args else None
                        args[kw.arg] = value
                out[fn.name] = args
                break
    return out


def timm_model_args(name: str) -> tuple[str, dict]:
    """(family, the arguments of timm model `name` with the family's defaults filled in)."""
    root = timm_dir()
    if root is None:
        raise UnsupportedTimmModel(
            f"timm model {name!r} needs timm, which is not installed (pip install timm)"
        )
    for filename, (family, defaults) in FAMILIES.items():
        table = _model_args(root / filename)
        if name in table:
            return family, {**defaults, **{k: v for k, v in table[name].items() if v is not None}}
    raise UnsupportedTimmModel(
        f"timm model {name!r} is not a VisionTransformer or Eva model of timm: the workflow "
        "hooks the MLP of those two block types only (SigLIP, SigLIP2, EVA02, PE-Core and "
        "the other ViTs of timm's vision_transformer.py and eva.py)"
    )


def timm_geometry(vision_cfg: dict, embed_dim: int) -> dict:
    """Depth, width, input size, patch grid and prefix tokens of an open_clip timm tower."""
    name = vision_cfg["timm_model_name"]
    family, args = timm_model_args(name)
    overrides = vision_cfg.get("timm_model_kwargs") or {}
    args.update(overrides)
    # open_clip's image_size is what its preprocessing gives; timm takes its own from the
    # model's pretrained config (the loader checks that the two agree)
    size = overrides.get("img_size") or vision_cfg.get("image_size") or args["img_size"]
    size = size if isinstance(size, int) else size[0]
    patch = args["patch_size"]
    patch = patch if isinstance(patch, int) else patch[0]
    cls = bool(args.get("class_token", True))
    registers = int(args.get("reg_tokens", 0) or args.get("num_reg_tokens", 0) or 0)
    grid = size // patch
    prefix = int(cls) + registers
    return {
        "family": family,
        "timm_model": name,
        "layers": int(args["depth"]),
        "width": int(args["embed_dim"]),
        "image_size": int(size),
        "patch_size": int(patch),
        "grid": int(grid),
        "n_prefix_tokens": prefix,
        "cls_token": cls,
        "n_registers": registers,
        "tokens": int(grid * grid + prefix),
        "embed_dim": int(embed_dim),
        "pool": vision_cfg.get("timm_pool", "avg"),
    }
