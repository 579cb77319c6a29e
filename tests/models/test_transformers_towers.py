"""transformers vision towers (`arch: transformers`): tiny random models saved offline with
save_pretrained; geometry without torch, stored activations against hooks on the library's
own `mlp`, and refusals by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import save_llava
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


# the language side of a VLM: one layer, hidden 32, a small vocabulary
LM = {**TEXT, "num_key_value_heads": 1, "vocab_size": 128, "max_position_embeddings": 64}


def paligemma(folder):
    """PaliGemmaForConditionalGeneration: a SigLIP tower without its head, a tiny Gemma."""
    torch.manual_seed(0)
    config = transformers.PaliGemmaConfig(
        vision_config=transformers.SiglipVisionConfig(**SMALL, vision_use_head=False).to_dict(),
        text_config=transformers.GemmaConfig(**LM, head_dim=16).to_dict(),
        image_token_id=5,
    )
    processor = transformers.SiglipImageProcessor(size={"height": 64, "width": 64})
    return save(transformers.PaliGemmaForConditionalGeneration(config), folder, processor)


def internvl(folder):
    """InternVLForConditionalGeneration: an InternViT tower (class token, layer scale
    `lambda_2`, set to random values so that leaving it out would show) and a tiny Qwen2; no
    image processor saved (the loader's ImageNet fallback)."""
    torch.manual_seed(0)
    config = transformers.InternVLConfig(
        vision_config=transformers.InternVLVisionConfig(**SMALL).to_dict(),
        text_config=transformers.Qwen2Config(**LM).to_dict(),
        image_token_id=5,
    )
    model = transformers.InternVLForConditionalGeneration(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("lambda_2"):
                param.uniform_(0.5, 2.0)
    return save(model, folder)


MAKERS = {
    "clip-vision": clip_vision,
    "siglip": siglip_dual,
    "clip": clip_dual,
    "llava": save_llava,  # LlavaForConditionalGeneration: CLIP tower, tiny Llama
    "paligemma": paligemma,
    "internvl": internvl,
}
# kind -> (tokens, prefix, cls, embedding size, has a text tower)
EXPECTED = {
    "clip-vision": (17, 1, True, 32, False),
    "siglip": (16, 0, False, 32, True),
    "clip": (17, 1, True, 24, True),
    "llava": (17, 1, True, 32, False),
    "paligemma": (16, 0, False, 32, False),
    "internvl": (17, 1, True, 32, False),
}


def reference_layers(model):
    """The encoder layers of the vision tower, found independently of the library: the
    module paths ending in `encoder.layers.<i>` or `encoder.layer.<i>` outside the language
    model."""
    layers = {}
    for path, module in model.named_modules():
        parts = path.split(".")
        vision = "text" not in path and "language" not in path
        if vision and parts[-3:-1] in (["encoder", "layers"], ["encoder", "layer"]):
            layers.setdefault(".".join(parts[:-1]), []).append(module)
    (found,) = layers.values()
    return found


def reference_mlp_outputs(folder, pixels) -> np.ndarray:
    """[tokens, layers * width]: a fresh model from `folder`, forward hooks on each vision
    layer's own `mlp` (times `lambda_2` where the layer has one), the tower run alone."""
    model = transformers.AutoModel.from_pretrained(folder).eval()
    layers = reference_layers(model)
    tower = getattr(model, "vision_model", None) or getattr(model, "vision_tower", model)
    outs = []

    def hook(layer):
        scale = getattr(layer, "lambda_2", None)
        return lambda m, i, o: outs.append((o if scale is None else o * scale).detach())

    handles = [layer.mlp.register_forward_hook(hook(layer)) for layer in layers]
    with torch.no_grad():
        tower(pixel_values=pixels[None])
    for h in handles:
        h.remove()
    return torch.cat(outs, -1)[0].numpy()


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
    ref = [reference_mlp_outputs(folder, loaded.preprocess(Image.open(p))) for p in paths]
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


def test_internvl_configs_read_without_torch_and_remote_code_ones_are_refused(tmp_path):
    vision = {"model_type": "internvl_vision", **SMALL, "image_size": [64, 64]}
    hf = write_config(tmp_path / "hf", {"model_type": "internvl", "vision_config": vision})
    g = vision_geometry(transformers_model_config(hf))
    assert (g["tokens"], g["n_prefix_tokens"], g["cls_token"], g["pool"]) == (17, 1, True, "avg")
    assert g["has_text"] is False
    chat = write_config(tmp_path / "chat", {"model_type": "internvl_chat", "vision_config": {}})
    with pytest.raises(UnsupportedTransformersModel, match="ivl2.*remote-code.*-hf"):
        transformers_model_config(chat, "ivl2")
    wide = {**vision, "image_size": [64, 96]}
    odd = write_config(tmp_path / "odd", {"model_type": "internvl", "vision_config": wide})
    with pytest.raises(UnsupportedTransformersModel, match="image_size.*only square"):
        transformers_model_config(odd, "odd")
