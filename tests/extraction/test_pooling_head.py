"""activations.pooling_head: the attention-pooling head's MLP recorded into its own store array,
equal (float16 tolerance) to an independent hook on the library's own head module, in both
store modes; towers without such a head refused by name, at start-up (torch-free) and at
extraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import HF_SMALL, TIMM_CFGS, tiny_model, tiny_timm_model
from PIL import Image

from vlmbinding.data.toyshapes import generate_dataset
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import recording as act
from vlmbinding.extraction.pooling_head import (
    ARRAY,
    NoPoolingHead,
    has_pooling_head,
    read_pooling_head,
)
from vlmbinding.extraction.store import StoreError


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = tmp_path_factory.mktemp("imgs")
    table, _ = generate_dataset(out / "images", Vocabulary(), [1, 2], 3, seed=0)
    return table["path"].tolist(), table["image_id"].tolist()


def hooked_head(head_mlp, run, paths, preprocess) -> np.ndarray:
    """[image, width]: the head MLP's own output (its one latent token), image by image."""
    outs = []
    handle = head_mlp.register_forward_hook(lambda m, i, o: outs.append(o[:, 0].detach()))
    with torch.no_grad():
        for p in paths:
            run(preprocess(Image.open(p).convert("RGB"))[None])
    handle.remove()
    return torch.cat(outs).numpy()


def check_both_modes(tmp_path, loaded, paths, ids, ref, name):
    """The tokens and the reduced store hold the same head values, equal to `ref`."""
    for mode in ("tokens", "reduced"):
        out = tmp_path / f"{mode}.zarr"
        act.extract_activations(
            loaded, paths, ids, out, batch_size=4, store=mode, pooling_head=True, model_name=name
        )
        root = act.open_store(out)
        head = read_pooling_head(root)
        assert head.shape == ref.shape and head.dtype == np.float16
        np.testing.assert_allclose(head.astype(np.float32), ref, rtol=2e-3, atol=2e-3)
        assert root.attrs["pooling_head"] is True and "head's MLP" in root.attrs[ARRAY]
        assert root.attrs["pooling_head_width"] == ref.shape[1]
        assert root[ARRAY].metadata.dimension_names == ("image", "head_unit")


@pytest.mark.parametrize("kind", ["siglip", "pe-core"])
def test_timm_attention_pool_mlp_equals_a_hook_on_timms_own_head(tmp_path, images, kind):
    paths, ids = images
    loaded = tiny_timm_model(kind)
    assert has_pooling_head(loaded.geometry)
    head_mlp = loaded.model.visual.trunk.attn_pool.mlp  # timm's AttentionPoolLatent
    ref = hooked_head(head_mlp, loaded.model.encode_image, paths, loaded.preprocess)
    assert ref.shape == (len(ids), 64) and np.abs(ref).max() > 0
    check_both_modes(tmp_path, loaded, paths, ids, ref, kind)


def test_transformers_siglip_head_mlp_equals_a_hook_on_its_own_head(tmp_path, images):
    transformers = pytest.importorskip("transformers")
    from vlmbinding.models.architectures import vision_geometry
    from vlmbinding.models.hf_config import transformers_model_config
    from vlmbinding.models.loading import load_entry

    torch.manual_seed(0)
    folder = tmp_path / "siglip-vision"
    vision = transformers.SiglipVisionConfig(**HF_SMALL)
    transformers.SiglipVisionModel(vision).save_pretrained(folder)
    assert has_pooling_head(vision_geometry(transformers_model_config(str(folder))))
    entry = {"name": "siglip-eyes", "arch": "transformers", "weights": str(folder)}
    loaded = load_entry(entry, None, "cpu")
    paths, ids = images
    # independent: a fresh model from the folder, the hook on its own head.mlp
    ref_model = transformers.SiglipVisionModel.from_pretrained(folder).eval()
    ref = hooked_head(
        getattr(ref_model, "vision_model", ref_model).head.mlp,
        lambda x: ref_model(pixel_values=x),
        paths,
        loaded.preprocess,
    )
    assert ref.shape == (len(ids), 32)
    check_both_modes(tmp_path, loaded, paths, ids, ref, "siglip-eyes")
    # a SigLIP tower without its head (as in PaliGemma) has none to record
    no_head = tmp_path / "no-head"
    transformers.SiglipVisionModel(
        transformers.SiglipVisionConfig(**HF_SMALL, vision_use_head=False)
    ).save_pretrained(no_head)
    assert not has_pooling_head(vision_geometry(transformers_model_config(str(no_head))))


@pytest.mark.parametrize("kind", ["eva02", "registers", "open_clip"])
def test_a_tower_without_a_pooling_head_is_refused_by_name(tmp_path, images, kind):
    paths, ids = images
    loaded = tiny_model() if kind == "open_clip" else tiny_timm_model(kind)
    assert not has_pooling_head(loaded.geometry)
    out = tmp_path / "a.zarr"
    with pytest.raises(NoPoolingHead, match=f"model my-{kind}: .*no attention-pooling head"):
        act.extract_activations(
            loaded, paths[:2], ids[:2], out, pooling_head=True, model_name=f"my-{kind}"
        )
    assert not out.exists() and not (tmp_path / "a.zarr.partial").exists()


def test_a_store_without_the_option_has_no_head_array(tmp_path, images):
    paths, ids = images
    act.extract_activations(tiny_timm_model("siglip"), paths[:2], ids[:2], tmp_path / "a.zarr")
    root = act.open_store(tmp_path / "a.zarr")
    assert ARRAY not in root and root.attrs["pooling_head"] is False
    with pytest.raises(StoreError, match="activations.pooling_head: false"):
        read_pooling_head(root)


def test_start_up_refuses_the_option_for_a_tower_without_a_head_naming_the_entry():
    from vlmbinding.models.architectures import vision_geometry
    from vlmbinding.workflow.checks import check_pooling_head
    from vlmbinding.workflow.config import ConfigError
    from vlmbinding.workflow.params import activation_params

    geometries = {k: vision_geometry(TIMM_CFGS[k]) for k in ("siglip", "pe-core", "eva02")}
    models = {k: {"name": k} for k in geometries}
    models["eva02/controls/random"] = {"name": "eva02/controls/random", "base": "eva02"}
    geometries["eva02/controls/random"] = geometries.pop("eva02")
    on, off = {"activations": {"pooling_head": True}}, {"activations": {"pooling_head": False}}
    check_pooling_head(off, geometries, models)  # off: nothing to check
    heads = {k: geometries[k] for k in ("siglip", "pe-core")}
    check_pooling_head(on, heads, models)
    with pytest.raises(ConfigError, match="models entry 'eva02': activations.pooling_head: tr"):
        check_pooling_head(on, geometries, models)
    # off, the key stays out of the rule's params (stores written before it are not rerun)
    assert "pooling_head" not in activation_params(off)
    assert activation_params(on)["pooling_head"] is True
