"""Checkpoints and pretrained tags: safe loading, and every bad one named with its entry.

A checkpoint of random bytes, of another architecture, of pickled objects, a TorchScript
archive, a missing path, an unknown or uncached open_clip tag and an hf-hub id offline each
give an error that names the models entry, the file and the fix, in seconds.
"""

from __future__ import annotations

import json
import time

import open_clip
import pytest
import torch
from conftest import run_workflow
from helpers import TINY_CFG, tiny_model

from vlmbinding.models import architectures as archs
from vlmbinding.models import loading as models
from vlmbinding.models import pretrained
from vlmbinding.models.checkpoints import CheckpointError, checkpoint_format, checkpoint_problem
from vlmbinding.workflow import startup


class Pickled:  # an arbitrary Python object: a safe load refuses it
    pass


def _entry(path, **kw):
    return {"name": "mine", "arch": "ViT-B-32", "weights": str(path), **kw}


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "tiny.pt"
    models.save_checkpoint(tiny_model(seed=2).model, TINY_CFG, path)
    return path


def test_workflow_checkpoints_load_safely(saved):
    assert checkpoint_format(saved) == "torch"
    loaded = models.load_entry(_entry(saved), None, "cpu")
    assert loaded.geometry["width"] == 64


def test_random_bytes_are_named_before_torch_sees_them(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(range(256)) * 40)
    assert checkpoint_format(path) == "unknown"
    assert "not a PyTorch, TorchScript or safetensors checkpoint" in checkpoint_problem(path)
    with pytest.raises(CheckpointError, match="models entry 'mine'.*corrupt or partial"):
        models.load_entry(_entry(path), None, "cpu")


def test_a_garbled_torch_zip_is_explained(saved):
    data = bytearray(saved.read_bytes())
    data[200:4000] = b"\0" * 3800  # inside the archive: the header still says zip
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="models entry 'mine': checkpoint file"):
        models.load_entry(_entry(saved), None, "cpu")


def test_pickled_objects_need_trust_checkpoint(tmp_path):
    loaded = tiny_model(seed=3)
    path = tmp_path / "objects.pt"
    torch.save(
        {"state_dict": loaded.model.state_dict(), "model_cfg": TINY_CFG, "extra": Pickled()}, path
    )
    with pytest.raises(CheckpointError) as err:
        models.load_entry(_entry(path), None, "cpu")
    assert "models entry 'mine'" in str(err.value) and "trust_checkpoint: true" in str(err.value)
    again = models.load_entry(_entry(path, trust_checkpoint=True), None, "cpu")
    x = torch.randn(1, 3, 56, 56)
    assert torch.equal(again.model.encode_image(x), loaded.model.encode_image(x))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_archives_need_trust_checkpoint(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    assert checkpoint_format(path) == "torchscript"
    assert "TorchScript" in checkpoint_problem(path) and "trust_checkpoint" in checkpoint_problem(
        path
    )
    assert checkpoint_problem(path, trust=True) is None


def test_safetensors_are_recognised(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(3)}, path)
    assert checkpoint_format(path) == "safetensors"


def test_a_checkpoint_of_another_architecture_is_named(tmp_path):
    cfg_dir = tmp_path / "cfgs"
    cfg_dir.mkdir()
    wide = {**TINY_CFG, "vision_cfg": {**TINY_CFG["vision_cfg"], "width": 96}}
    (cfg_dir / "Tiny-Wide.json").write_text(json.dumps(wide))
    open_clip.add_model_config(cfg_dir)
    path = tmp_path / "plain.pt"
    torch.save({"state_dict": tiny_model().model.state_dict()}, path)
    with pytest.raises(CheckpointError, match="does not fit architecture 'Tiny-Wide'"):
        models.load_model("Tiny-Wide", str(path), "cpu", arch_dir=cfg_dir)


def test_missing_path_names_the_entry(tmp_path):
    with pytest.raises(models.WeightsUnavailable, match="models entry 'mine'.*does not exist"):
        models.load_entry(_entry(tmp_path / "nowhere.pt"), None, "cpu")


def test_pretrained_tags_are_read_without_torch_as_open_clip_lists_them():
    table = pretrained.pretrained_tags()
    for arch in ("ViT-B-32", "ViT-L-14", "ViT-B-16"):
        assert sorted(table[arch]) == sorted(open_clip.list_pretrained_tags_by_model(arch))
    assert table["ViT-L-14"]["openai"]["quick_gelu"] is True


def test_tag_typo_and_uncached_tag_offline_are_named(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = {"name": "m", "arch": "ViT-B-32", "weights": "opneai"}
    assert "not an open_clip pretrained tag for ViT-B-32" in startup.weights_problem(entry, "tag")
    monkeypatch.setattr(pretrained, "tag_is_cached", lambda cfg, cache_dir=None: False)
    start = time.time()
    problem = startup.weights_problem({**entry, "weights": "openai"}, "tag")
    assert "not in the local cache" in problem and time.time() - start < 2
    monkeypatch.setattr(pretrained, "tag_is_cached", lambda cfg, cache_dir=None: True)
    assert startup.weights_problem({**entry, "weights": "openai"}, "tag") is None


def test_hf_hub_config_offline_fails_in_seconds(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.time()
    with pytest.raises(archs.UnknownArchitecture, match="not in the local hub cache"):
        archs.hub_model_config("hf-hub:nobody/nothing")
    assert time.time() - start < 5


@pytest.mark.parametrize(
    "weights, words",
    [
        ("random", "not a PyTorch, TorchScript or safetensors checkpoint"),
        ("missing", "does not exist"),
        ("opneai", "not an open_clip pretrained tag"),
        ("hf-hub:nobody/nothing", "not in the local hub cache"),
    ],
)
def test_bad_weights_stop_the_start_up_naming_the_entry(tmp_path, tiny_config, weights, words):
    if weights == "random":
        weights = str(tmp_path / "random.pt")
        (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 8)
    elif weights == "missing":
        weights = str(tmp_path / "missing.pt")
    tiny_config["models"] = [{"name": "mine", "arch": "ViT-B-32", "weights": weights}]
    tiny_config["analysis"]["layers"] = [-1]
    # checked when the DAG holds a job of the model, before any job runs
    proc = run_workflow(tmp_path / "run", tiny_config, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert "models entry 'mine'" in out and words in out, out[-2000:]


class Dangerous:
    """Pickles as a call to os.system: loading it unsafely would run a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_shapes_are_read_without_torch_and_without_running_pickled_code(tmp_path):
    from vlmbinding.models.checkpoints import state_dict_shapes

    marker = tmp_path / "ran"
    path = tmp_path / "plain.pt"
    state = tiny_model().model.state_dict()
    torch.save({"state_dict": state, "payload": Dangerous(marker)}, path)
    shapes = state_dict_shapes(path)
    assert shapes["visual.conv1.weight"] == (64, 3, 14, 14)
    assert len(shapes) == len(state) and not marker.exists()
    models.save_checkpoint(tiny_model().model, TINY_CFG, tmp_path / "own.pt")
    assert state_dict_shapes(tmp_path / "own.pt") is None  # carries its own config


def test_another_architecture_is_named_at_start_up(tmp_path, tiny_config):
    from vlmbinding.models.architectures import architecture_config, vision_geometry
    from vlmbinding.models.checkpoints import architecture_mismatch, state_dict_shapes

    path = tmp_path / "plain.pt"
    torch.save({"state_dict": tiny_model().model.state_dict()}, path)
    shapes = state_dict_shapes(path)
    assert architecture_mismatch(shapes, vision_geometry(TINY_CFG), "tiny") is None
    problem = architecture_mismatch(
        shapes, vision_geometry(architecture_config("ViT-B-32")), "ViT-B-32"
    )
    assert "width 64 where ViT-B-32 has 768" in problem and "layers 3 where" in problem
    tiny_config["models"] = [{"name": "mine", "arch": "ViT-B-32", "weights": str(path)}]
    tiny_config["analysis"]["layers"] = [-1]
    proc = run_workflow(tmp_path / "run", tiny_config, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "models entry 'mine'" in out, out[-2000:]
    assert "does not fit architecture 'ViT-B-32'" in out


def test_offline_mode_is_switched_on_when_the_hub_cannot_be_reached(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert pretrained.offline_unless_reachable() is False
    assert constants.HF_HUB_OFFLINE is True  # cached files load without 25 s of retries
