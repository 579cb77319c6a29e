"""The analysis steps the rule scripts and benchmarks call: files in, the library's tables out."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vlmbinding.analysis import steps
from vlmbinding.analysis.neurons import neuron_table, reduce_tokens
from vlmbinding.analysis.separability import separability_table
from vlmbinding.data.toyshapes import sample_scenes
from vlmbinding.data.vocab import Vocabulary, all_pairs, presence_matrix
from vlmbinding.extraction import store as st
from vlmbinding.extraction.metadata import store_arrays, store_attributes

VOCAB = Vocabulary()
GEO = {
    "width": 8,
    "tokens": 5,
    "grid": 2,
    "image_size": 28,
    "patch_size": 14,
    "embed_dim": 6,
    "n_prefix_tokens": 1,
    "cls_token": True,
    "n_registers": 0,
    "family": "open_clip-vit",
    "pool": "tok",
}
DEPTH = 3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """images/objects tables of 40 scenes and a tokens store of random activations."""
    out = tmp_path_factory.mktemp("steps")
    objects = sample_scenes(VOCAB, [1, 2], 20, seed=3)
    ids = list(dict.fromkeys(objects["image_id"].astype(str)))
    pd.DataFrame({"image_id": ids, "path": ids}).to_parquet(out / "images.parquet")
    objects.to_parquet(out / "objects.parquet")
    rng = np.random.default_rng(0)
    mlp = rng.standard_normal((len(ids), GEO["tokens"], DEPTH * GEO["width"])).astype("float16")
    emb = rng.standard_normal((len(ids), GEO["embed_dim"])).astype("float32")
    arrays = store_arrays("tokens", DEPTH, GEO["width"], GEO["tokens"], GEO["embed_dim"], "float16")
    root = st.create_store(out / "s.zarr", ids, arrays, 16, GEO["width"])
    root["mlp_out"][:] = mlp
    root["embeddings"][:] = emb
    model = {"name": "m", "arch": "none", "weights": "random", "quick_gelu": False}
    st.close_store(root, out / "s.zarr", store_attributes(model, GEO, DEPTH, ids, {}))
    presence = presence_matrix(objects, ids, VOCAB)
    inputs = (out / "images.parquet", out / "objects.parquet", out / "s.zarr")
    return inputs, ids, presence, mlp, emb, out


def test_layer_neurons_is_neuron_table_of_the_reduced_layer(files):
    inputs, ids, presence, mlp, _, _ = files
    got = steps.layer_neurons(*inputs, 1, VOCAB, top_k=5, reduce="max", tokens="patches")
    acts = reduce_tokens(mlp[:, :, 8:16], "max", "patches")
    pd.testing.assert_frame_equal(got, neuron_table(1, acts, presence, VOCAB.features, ids, 5))


def test_block_table_runs_a_step_as_its_rule_does(files):
    inputs, *_ = files
    named = SimpleNamespace(images=inputs[0], objects=inputs[1], store=inputs[2])
    settings = {"top_k": 5, "reduce": "max", "tokens": "patches"}
    got = steps.block_table(steps.layer_neurons, named, "1", {}, settings)
    pd.testing.assert_frame_equal(got, steps.layer_neurons(*inputs, 1, VOCAB, **settings))


def test_measure_separability_reads_the_embeddings(files):
    inputs, _, presence, _, emb, _ = files
    got = steps.measure_separability(*inputs, VOCAB, 0.9)
    want = separability_table(emb, presence, VOCAB.features, all_pairs(VOCAB.features), 0.9)
    pd.testing.assert_frame_equal(got, want)


def test_the_steps_chain_from_layers_to_correlation_and_specifications(files):
    inputs, _, _, _, _, out = files
    layers = []
    for layer in range(DEPTH):
        layers.append(out / f"layer_{layer}.parquet")
        steps.layer_neurons(*inputs, layer, VOCAB, 5, "mean", "all").to_parquet(layers[-1])
    gathered = steps.gather_tables(layers)
    assert sorted(gathered["layer"].unique()) == [0, 1, 2] and len(gathered) == DEPTH * 8
    gathered.to_parquet(out / "neurons.parquet")
    selected, scores = steps.score_superposition(out / "neurons.parquet", VOCAB, 10, 0.3)
    assert len(selected) == 10 and len(scores) == len(all_pairs(VOCAB.features))
    scores.to_parquet(out / "superposition.parquet")
    steps.measure_separability(*inputs, VOCAB, 0.9).to_parquet(out / "separability.parquet")
    table = steps.correlate_superposition(
        out / "superposition.parquet", out / "separability.parquet", VOCAB, 50, 49, 0
    )
    assert {"pearson_r", "mantel_p"} <= set(table.columns)

    grid = {"n_neurons": [10], "space": ["full"], "subset": ["all"], "alpha": 0.05}
    grid |= {"bootstrap": 20, "permutations": 19, "seed": 0}
    blocks = []
    for layer in range(DEPTH):
        blocks.append(out / f"grid_{layer}.parquet")
        part = steps.layer_specifications(*inputs, layer, VOCAB, [5, 500], ["mean"], ["all"])
        part.to_parquet(blocks[-1])
    specs, summary = steps.assemble_specifications(
        blocks, out / "separability.parquet", VOCAB, {"all": [0, 1, 2]}, grid, 0.3
    )
    assert len(specs) == 2 and set(summary["metric"]) == {"D", "M"}  # top_k 500 dropped


def test_resample_entropy_reads_the_layers_reduced_and_draws_half_samples(files):
    from vlmbinding.controls.entropy_resampling import half_sample_table

    inputs, ids, presence, mlp, _, _ = files
    got = steps.resample_entropy(*inputs, [2, 0], VOCAB, 6, "mean", "all", 3.0, 10, 1)
    acts = [reduce_tokens(mlp[:, :, j * 8 : (j + 1) * 8], "mean", "all") for j in (0, 2)]
    pd.testing.assert_frame_equal(got, half_sample_table(acts, presence, 6, 3.0, 10, 1))
    assert len(got) == 11 and got["m"].iloc[1] == len(ids) // 2
