"""Grad-CAM of text-image similarity (METHOD.md section 7) on a tiny random-weight CLIP."""

from __future__ import annotations

import functools

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
from pytorch_grad_cam import GradCAM

from vlmbinding.analysis import gradcam as gc

IMAGE_SIZE = 56
PATCH = 14
GRID = IMAGE_SIZE // PATCH
PROMPTS = ["a green square", "a red circle", "a blue triangle"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = open_clip.model.CLIP(
        embed_dim=32,
        vision_cfg={
            "image_size": IMAGE_SIZE,
            "layers": 3,
            "width": 64,
            "patch_size": PATCH,
            "head_width": 32,
        },
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    )
    return m.eval()


@pytest.fixture(scope="module")
def tokenizer():
    return functools.partial(open_clip.tokenize, context_length=16)


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)


@pytest.fixture(scope="module")
def text_emb(model, tokenizer):
    return gc.text_embeddings(model, tokenizer, PROMPTS)


def no_hooks_left(model) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


# --- the hooked module ------------------------------------------------------------------


def test_hooked_module_picks_block_outputs(model):
    blocks = model.visual.transformer.resblocks
    assert gc.hooked_module(model, -2, "mlp") is blocks[1].ls_2
    assert gc.hooked_module(model, 0, "ln_1") is blocks[0].ln_1
    assert gc.hooked_module(model, -3, "mlp") is blocks[0].ls_2


@pytest.mark.parametrize(("layer", "module"), [(3, "mlp"), (-4, "mlp"), (0, "attn")])
def test_hooked_module_rejects_bad_choices(model, layer, module):
    with pytest.raises(ValueError, match="layer|module"):
        gc.hooked_module(model, layer, module)


def test_text_embeddings_are_unit_vectors(model, text_emb):
    assert text_emb.shape == (len(PROMPTS), 32)
    assert not text_emb.requires_grad
    torch.testing.assert_close(text_emb.norm(dim=-1), torch.ones(len(PROMPTS)))


# --- the maps ---------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["mlp", "ln_1"])
def test_maps_shape_range_and_no_side_effects(model, images, text_emb, module):
    model.train()  # the caller's mode must come back
    requires = [p.requires_grad for p in model.parameters()]
    try:
        maps = gc.gradcam_maps(model, images, text_emb, layer=-2, module=module)
        assert model.training
    finally:
        model.eval()
    assert maps.shape == (2, len(PROMPTS), GRID, GRID)
    assert not maps.requires_grad
    assert (maps >= 0).all()
    assert maps.amax(dim=(-2, -1)).gt(0).all()  # every image-prompt map has signal
    assert not torch.equal(maps[:, 0], maps[:, 1])  # prompts give different maps
    assert len(gc.hooked_module(model, -2, module)._forward_hooks) == 0
    assert no_hooks_left(model)
    assert [p.requires_grad for p in model.parameters()] == requires
    assert all(p.grad is None for p in model.parameters())


def test_maps_do_not_depend_on_the_batch(model, images, text_emb):
    together = gc.gradcam_maps(model, images, text_emb)
    alone = gc.gradcam_maps(model, images[1:], text_emb)
    torch.testing.assert_close(together[1:], alone, rtol=1e-5, atol=1e-6)


def test_maps_work_with_frozen_parameters_under_no_grad(model, images, text_emb):
    reference = gc.gradcam_maps(model, images, text_emb)
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            frozen = gc.gradcam_maps(model, images, text_emb)
        assert not any(p.requires_grad for p in model.parameters())
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    torch.testing.assert_close(frozen, reference)


def test_last_block_mlp_gives_zero_maps(model, images, text_emb):
    # Its patch tokens never reach the CLS token the embedding is read from (METHOD.md 7).
    last = gc.gradcam_maps(model, images, text_emb, layer=-1, module="mlp")
    assert torch.count_nonzero(last) == 0
    assert torch.count_nonzero(gc.gradcam_maps(model, images, text_emb, layer=-2)) > 0
    assert torch.count_nonzero(gc.gradcam_maps(model, images, text_emb, -1, "ln_1")) > 0


# --- equality with the grad-cam package ------------------------------------------------


class ImageEncoder(torch.nn.Module):
    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, x):
        return self.clip.encode_image(x)


class CosineTarget:
    def __init__(self, text):
        self.text = text

    def __call__(self, image_embedding):
        return torch.nn.functional.cosine_similarity(image_embedding, self.text, dim=-1)


def vit_reshape(tokens):
    """Drop CLS and put the patch tokens back on the grid, channels first."""
    b, t, c = tokens.shape
    return tokens[:, 1:].reshape(b, GRID, GRID, c).permute(0, 3, 1, 2)


def reference_cams(model, images, text_emb, layer, module):
    """pytorch_grad_cam's raw (ReLU'd) cams [B, P, g, g] and final maps [B, P, H, W]."""
    target_layer = gc.hooked_module(model, layer, module)
    raw, final = [], []
    with GradCAM(ImageEncoder(model), [target_layer], reshape_transform=vit_reshape) as cam:
        for text in text_emb:
            targets = [CosineTarget(text)] * len(images)
            final.append(cam(images, targets))
            acts = cam.activations_and_grads.activations[0].numpy()
            grads = cam.activations_and_grads.gradients[0].numpy()
            raw.append(np.maximum(cam.get_cam_image(images, target_layer, targets, acts, grads), 0))
    return np.stack(raw, axis=1), np.stack(final, axis=1)


@pytest.mark.parametrize(("layer", "module"), [(-2, "mlp"), (0, "mlp"), (-1, "ln_1")])
def test_maps_equal_the_grad_cam_package(model, images, text_emb, layer, module):
    ours = gc.gradcam_maps(model, images, text_emb, layer=layer, module=module)
    raw, final = reference_cams(model, images, text_emb, layer, module)
    assert no_hooks_left(model)
    # The raw maps are small (about 1e-3 here), so the tolerance is relative to their scale.
    assert raw.max() > 0
    np.testing.assert_allclose(ours.numpy(), raw, rtol=1e-5, atol=1e-5 * raw.max())
    # Their pipeline: scale_cam_image (normalise, resize), then once more over the layers.
    pipeline = gc.normalise(gc.upsample(gc.normalise(ours), (IMAGE_SIZE, IMAGE_SIZE)))
    np.testing.assert_allclose(pipeline.numpy(), final, atol=1e-5)


# --- post-processing ---------------------------------------------------------------------


def test_upsample_and_normalise():
    maps = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[0.0, 0.0], [0.0, 0.0]]])
    big = gc.upsample(maps, (5, 7))
    assert big.shape == (2, 5, 7)
    torch.testing.assert_close(big[:, [0, -1], [0, -1]], maps[:, [0, -1], [0, -1]])  # corners
    unit = gc.normalise(maps)
    torch.testing.assert_close(unit[0], maps[0] / (3 + gc.NORMALISE_EPS))
    assert torch.count_nonzero(unit[1]) == 0  # an all-zero map stays zero


def test_box_mass_shares_on_hand_made_maps():
    boxes = np.array([[0, 0, 4, 5], [10, 2, 20, 8], [5, 10, 15, 20]])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    uniform = np.ones((20, 30))
    np.testing.assert_allclose(gc.box_mass_shares(uniform, boxes), areas / 600)
    inside = np.zeros((20, 30))
    inside[3:7, 12:18] = np.arange(24).reshape(4, 6)  # all of it inside box 1
    np.testing.assert_allclose(gc.box_mass_shares(inside, boxes), [0, 1, 0])
    rng = np.random.default_rng(0)
    assert gc.box_mass_shares(rng.random((20, 30)), boxes).sum() <= 1
    assert np.isnan(gc.box_mass_shares(np.zeros((20, 30)), boxes)).all()  # no share
    with pytest.raises(ValueError, match="outside"):
        gc.box_mass_shares(uniform, [[0, 0, 31, 5]])


def test_all_zero_maps_are_counted_and_left_out_of_the_mean():
    objects = pd.DataFrame(
        {
            "x0": [0, 10],
            "y0": [0, 0],
            "x1": [10, 20],
            "y1": [10, 10],
            "shape": ["circle", "square"],
            "color": ["red", "blue"],
        }
    )
    prompts = pd.DataFrame(
        {
            "prompt": ["a red circle", "a blue square"],
            "kind": "true",
            "color_object": [0, 1],
            "shape_object": [0, 1],
        }
    )
    maps = np.zeros((2, 10, 20))
    maps[0, :, :10] = 1.0  # all of it on object 0; map 1 is all zero
    shares = gc.object_shares(maps, prompts, objects)
    assert shares["zero_map"].tolist() == [False, False, True, True]
    assert shares["share"].isna().tolist() == [False, False, True, True]
    summary = gc.localisation_summary(shares).set_index("role")
    assert summary.loc["target", "n"] == 2 and summary.loc["target", "n_zero_map"] == 1
    assert summary.loc["target", "mean_share"] == pytest.approx(1.0)  # not 0.5
