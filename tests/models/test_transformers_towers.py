"""transformers vision towers (`arch: transformers`): tiny random models saved offline with
save_pretrained; geometry without torch, stored activations against hooks on the library's
own `mlp`, and refusals by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vlmbinding.data.toyshapes import generate_dataset
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import recording as act
from vlmbinding.models.architectures import vision_geometry
from vlmbinding.models.hf_config import UnsupportedTransformersModel, transformers_model_config

transformers = pytest.importorskip("transformers")

SMALL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 64,
    "patch_size": 16,
}
TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "vocab_size": 100,
    "max_position_embeddings": 16,
}


def save(model, folder, processor=None):
    model.save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
    return str(folder)


def clip_vision(folder):
    torch.manual_seed(0)
    model = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**SMALL))
    processor = transformers.CLIPImageProcessor(
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
    )
    return save(model, folder, processor)


def siglip_dual(folder):
    torch.manual_seed(0)
    config = transformers.SiglipConfig(text_config=TEXT, vision_config=SMALL)
    return save(transformers.SiglipModel(config), folder)


def clip_dual(folder):
    torch.manual_seed(0)
    config = transformers.CLIPConfig(text_config=TEXT, vision_config=SMALL, projection_dim=24)
    return save(transformers.CLIPModel(config), folder)


MAKERS = {"clip-vision": clip_vision, "siglip": siglip_dual, "clip": clip_dual}
# kind -> (tokens, prefix, cls, embedding size, has a text tower)
EXPECTED = {
    "clip-vision": (17, 1, True, 32, False),
    "siglip": (16, 0, False, 32, True),
    "clip": (17, 1, True, 24, True),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = tmp_path_factory.mktemp("imgs")
    table, _ = generate_dataset(out / "images", Vocabulary(), [1, 2], 2, seed=0)
    return table["path"].tolist(), table["image_id"].tolist()


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_geometry_and_stored_activations_equal_hooks_on_the_mlp(tmp_path, images, kind):
    from vlmbinding.models.loading import load_entry

    folder = MAKERS[kind](tmp_path / kind)
    tokens, prefix, cls, embed, has_text = EXPECTED[kind]
    g = vision_geometry(transformers_model_config(folder))
    assert (g["tokens"], g["n_prefix_tokens"], g["cls_token"], g["layers"], g["width"]) == (
        tokens,
        prefix,
        cls,
        2,
        32,
    )
    assert g["has_text"] is has_text and g["embed_dim"] == embed
    loaded = load_entry({"name": kind, "arch": "transformers", "weights": folder}, None, "cpu")
    paths, ids = images
    act.extract_activations(loaded, paths, ids, tmp_path / "a.zarr", model_name=kind)
    root = act.open_store(tmp_path / "a.zarr")
    assert root.attrs["n_prefix_tokens"] == prefix and root.attrs["tower"] == "transformers"
    assert root["embeddings"].shape == (len(ids), embed)
    # independent: a fresh model from the folder, hooks on each encoder layer's own mlp
    ref_model = transformers.AutoModel.from_pretrained(folder).eval()
    tower = getattr(ref_model, "vision_model", ref_model)
    outs = []
    handles = [
        layer.mlp.register_forward_hook(lambda m, i, o: outs.append(o.detach()))
        for layer in tower.encoder.layers
    ]
    ref = []
    with torch.no_grad():
        for p in paths:
            outs.clear()
            tower(pixel_values=loaded.preprocess(Image.open(p))[None])
            ref.append(torch.cat(outs, -1)[0].numpy())
    for h in handles:
        h.remove()
    np.testing.assert_allclose(root["mlp_out"][:].astype(np.float32), np.stack(ref), atol=2e-3)


def test_a_vision_only_tower_has_no_text_similarity(tmp_path):
    from vlmbinding.models.loading import load_entry

    folder = clip_vision(tmp_path / "v")
    loaded = load_entry({"name": "llava-eyes", "arch": "transformers", "weights": folder}, None)
    assert loaded.tokenizer is None
    with pytest.raises(TypeError, match="no text tower"):
        loaded.model.encode_text(torch.zeros(1, 4, dtype=torch.long))


def write_config(folder, config):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def test_packed_patch_towers_and_folders_without_a_vision_tower_are_refused(tmp_path):
    qwen = write_config(tmp_path / "qwen", {"model_type": "qwen2_vl", "vision_config": {}})
    with pytest.raises(UnsupportedTransformersModel, match="qwen-vl.*packs or merges"):
        transformers_model_config(qwen, "qwen-vl")
    text = write_config(tmp_path / "gpt", {"model_type": "gpt2"})
    with pytest.raises(UnsupportedTransformersModel, match="my-lm.*has no vision tower"):
        transformers_model_config(text, "my-lm")
    with pytest.raises(UnsupportedTransformersModel, match="no config.json"):
        transformers_model_config(str(tmp_path / "nothing"), "x")


def test_a_llava_config_finds_its_clip_tower_without_torch(tmp_path):
    llava = write_config(
        tmp_path / "llava",
        {
            "model_type": "llava",
            "vision_config": {"model_type": "clip_vision_model", **SMALL},
            "text_config": {"model_type": "llama"},
        },
    )
    g = vision_geometry(transformers_model_config(llava))
    assert (g["tokens"], g["cls_token"], g["has_text"]) == (17, True, False)


def test_text_embeddings_of_a_vision_only_tower_say_why_not(tmp_path):
    from vlmbinding.analysis.gradcam import text_embeddings
    from vlmbinding.models.loading import load_entry

    folder = clip_vision(tmp_path / "v")
    loaded = load_entry({"name": "llava-eyes", "arch": "transformers", "weights": folder}, None)
    with pytest.raises(TypeError, match="no text tower of its own.*not applicable"):
        text_embeddings(loaded.model, loaded.tokenizer, ["a red circle"])
