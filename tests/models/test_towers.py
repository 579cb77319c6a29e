"""Vision towers beyond open_clip's own ViT: timm trunks (SigLIP, EVA02, PE-Core, registers).

Geometry from the configs without torch; the recorded MLP outputs against independent hooks
on timm's own modules; the token contract (prefix tokens) in the store; refusals by name.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import TIMM_CFGS, tiny_model, tiny_timm_model
from PIL import Image

from vlmbinding.analysis.neurons import reduce_tokens
from vlmbinding.data.toyshapes import generate_dataset
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import recording as act
from vlmbinding.models.architectures import (
    UnknownArchitecture,
    architecture_config,
    vision_geometry,
)

# open_clip 3.3.0's configs: (layers, width, grid, prefix tokens, CLS, pool)
REAL = {
    "ViT-B-16-SigLIP": (12, 768, 14, 0, False, "map"),
    "ViT-SO400M-14-SigLIP": (27, 1152, 16, 0, False, "map"),
    "ViT-SO400M-14-SigLIP-384": (27, 1152, 27, 0, False, "map"),
    "ViT-B-16-SigLIP2": (12, 768, 14, 0, False, "map"),
    "EVA02-B-16": (12, 768, 14, 1, True, "token"),
    "EVA02-L-14": (24, 1024, 16, 1, True, "token"),
    "PE-Core-B-16": (12, 768, 14, 1, True, "map"),
    "ViT-L-14": (24, 1024, 16, 1, True, "tok"),
}


@pytest.mark.parametrize("arch", sorted(REAL))
def test_geometry_of_the_real_towers_from_their_configs(arch):
    g = vision_geometry(architecture_config(arch))
    layers, width, grid, prefix, cls, pool = REAL[arch]
    assert (g["layers"], g["width"], g["grid"], g["n_prefix_tokens"]) == (
        layers,
        width,
        grid,
        prefix,
    )
    assert g["cls_token"] is cls and g["pool"] == pool
    assert g["tokens"] == grid * grid + prefix


def test_geometry_imports_neither_torch_nor_timm():
    code = (
        "import sys\n"
        "from vlmbinding.models.architectures import architecture_config, vision_geometry\n"
        "vision_geometry(architecture_config('ViT-SO400M-14-SigLIP-384'))\n"
        "vision_geometry(architecture_config('EVA02-L-14'))\n"
        "assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'imported'\n"
    )
    scripts = str(__import__("pathlib").Path(act.__file__).resolve().parents[2])
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": scripts})


@pytest.mark.parametrize(
    "arch, words",
    [("RN50", ["ResNet", "supported"]), ("convnext_base_w", ["VisionTransformer", "supported"])],
)
def test_unhookable_towers_are_refused_by_name(arch, words):
    with pytest.raises(UnknownArchitecture) as err:
        vision_geometry(architecture_config(arch))
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("kind", sorted(TIMM_CFGS))
def test_built_tower_matches_its_parsed_geometry(kind):
    from vlmbinding.models.towers import check_geometry, prefix_tokens

    loaded = tiny_timm_model(kind)
    check_geometry(loaded.model, loaded.geometry, kind)
    assert prefix_tokens(loaded.model) == loaded.geometry["n_prefix_tokens"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = tmp_path_factory.mktemp("imgs")
    table, _ = generate_dataset(out / "images", Vocabulary(), [1, 2], 3, seed=0)
    return table["path"].tolist(), table["image_id"].tolist()


def independent_forward(model, paths, preprocess):
    """Hooks on each timm block's own `mlp`, scaled by its own layer scale by hand."""
    outs = []

    def scale(block):
        if hasattr(block, "ls2"):  # timm Block: LayerScale (gamma) or Identity
            return getattr(block.ls2, "gamma", None)
        return block.gamma_2  # EvaBlock

    blocks = list(model.visual.trunk.blocks)
    handles = [
        b.mlp.register_forward_hook(
            lambda m, i, o, s=scale(b): outs.append((o if s is None else o * s).detach())
        )
        for b in blocks
    ]
    mlp = []
    with torch.no_grad():
        for p in paths:
            outs.clear()
            model.encode_image(preprocess(Image.open(p).convert("RGB"))[None])
            mlp.append(torch.cat(outs, -1)[0].numpy())
    for h in handles:
        h.remove()
    return np.stack(mlp)


# kind -> (tokens, prefix, cls, registers) at a 64-pixel input with 16-pixel patches
TOKENS = {
    "siglip": (16, 0, False, 0),
    "eva02": (17, 1, True, 0),
    "pe-core": (17, 1, True, 0),
    "registers": (21, 5, True, 4),
}


@pytest.mark.parametrize("kind", sorted(TIMM_CFGS))
def test_store_equals_independent_hooks_and_records_the_token_contract(tmp_path, images, kind):
    paths, ids = images
    loaded = tiny_timm_model(kind)
    assert any(  # the layer scale is really there where the config asks for it
        getattr(b, "gamma_2", None) is not None or hasattr(getattr(b, "ls2", None), "gamma")
        for b in loaded.model.visual.trunk.blocks
    ) == (kind in ("eva02", "registers"))
    out = tmp_path / "a.zarr"
    act.extract_activations(loaded, paths, ids, out, batch_size=4, model_name=kind)
    root = act.open_store(out)
    ref = independent_forward(loaded.model, paths, loaded.preprocess)
    tokens, prefix, cls, registers = TOKENS[kind]
    mlp = root["mlp_out"][:]
    assert mlp.shape == (len(ids), tokens, 2 * 64)
    np.testing.assert_allclose(mlp.astype(np.float32), ref, rtol=2e-3, atol=2e-3)
    attrs = root.attrs
    assert attrs["tokens"] == tokens == 16 + attrs["n_prefix_tokens"]
    assert (attrs["n_prefix_tokens"], attrs["cls_token"], attrs["n_registers"]) == (
        prefix,
        cls,
        registers,
    )
    assert f"token {prefix} + row * grid + col" in attrs["token_order"]
    # the reduced store's patch reductions drop exactly the prefix tokens
    red = tmp_path / "r.zarr"
    act.extract_activations(loaded, paths, ids, red, batch_size=4, store="reduced")
    reduced = act.open_store(red)
    want = reduce_tokens(mlp, "mean", "patches", prefix)
    np.testing.assert_allclose(reduced["mlp_mean_patches"][:], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        reduced["mlp_max_patches"][:], mlp[:, prefix:].max(axis=1).astype(np.float32)
    )


def test_open_clip_vit_store_keeps_one_prefix_token(tmp_path, images):
    paths, ids = images
    act.extract_activations(tiny_model(), paths, ids, tmp_path / "v.zarr")
    attrs = act.open_store(tmp_path / "v.zarr").attrs
    assert (attrs["n_prefix_tokens"], attrs["cls_token"], attrs["tower"]) == (
        1,
        True,
        "open_clip-vit",
    )
    assert attrs["token_order"].startswith("CLS, then patches")


def test_reduce_tokens_patches_drops_the_prefix():
    x = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    np.testing.assert_array_equal(reduce_tokens(x, "max", "patches", 0), x.max(axis=1))
    np.testing.assert_array_equal(reduce_tokens(x, "mean", "patches", 2), x[:, 2:].mean(axis=1))
    np.testing.assert_array_equal(reduce_tokens(x, "mean", "patches"), x[:, 1:].mean(axis=1))
