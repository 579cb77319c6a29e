"""The activation store's integrity, layout, xarray view, reduced mode and overlapped writer."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import tiny_model

from vlmbinding.analysis.neurons import neuron_table
from vlmbinding.data.toyshapes import generate_dataset
from vlmbinding.data.vocab import Vocabulary, presence_matrix
from vlmbinding.extraction import recording as act
from vlmbinding.extraction import store as st


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("imgs")
    images, objects = generate_dataset(out / "images", Vocabulary(), [1, 2, 3], 4, seed=1)
    return images["path"].tolist(), images["image_id"].tolist(), objects


@pytest.fixture(scope="module")
def stores(tmp_path_factory, dataset):
    """A tokens-mode and a reduced-mode store of the same tiny model and images."""
    paths, ids, _ = dataset
    out = tmp_path_factory.mktemp("stores")
    loaded = tiny_model()
    for mode in st.MODES:
        act.extract_activations(loaded, paths, ids, out / f"{mode}.zarr", batch_size=5, store=mode)
    return out / "tokens.zarr", out / "reduced.zarr"


def copy_of(src, tmp_path):
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_store_is_complete_and_records_its_chunks(stores):
    root = st.open_store(stores[0])
    assert root.attrs["complete"] is True and root.attrs["store_format"] == st.STORE_FORMAT
    # 12 images in batches of 5: 3 x 3 layer chunks of mlp_out, 3 chunks of embeddings
    assert root.attrs["chunk_files"] == {"image": 1, "mlp_out": 9, "embeddings": 3}
    assert root.attrs["layout"] == "layer-chunks" and root["mlp_out"].chunks == (5, 17, 64)
    assert not st.partial_path(stores[0]).exists()


def test_deleted_chunk_is_named_not_read_as_zeros(stores, tmp_path):
    path = copy_of(stores[0], tmp_path)
    os.remove(path / "mlp_out" / "c" / "1" / "0" / "0")
    with pytest.raises(st.StoreError, match=r"mlp_out has 8 of its 9 chunk files.*c/1/0/0.*delete"):
        st.open_store(path)


def test_deleted_chunk_of_a_reduced_store_is_named(stores, tmp_path):
    path = copy_of(stores[1], tmp_path)
    os.remove(path / "mlp_max_patches" / "c" / "2" / "0")
    with pytest.raises(st.StoreError, match=r"reduced.zarr: array mlp_max_patches .*c/2/0"):
        st.open_store(path)


@pytest.mark.parametrize("codec,layout", [("none", "layer-chunks"), ("zstd", "batch-shards")])
def test_garbled_chunk_gives_an_error_naming_store_and_chunk(dataset, tmp_path, codec, layout):
    paths, ids, _ = dataset
    out = tmp_path / "g.zarr"
    act.extract_activations(tiny_model(), paths, ids, out, batch_size=5, codec=codec, layout=layout)
    target = out / "mlp_out" / "c" / "1" / "0" / "0"
    raw = bytearray(target.read_bytes())
    raw[100:120] = bytes(20)  # garble bytes inside layer 0's chunk of the second batch
    target.write_bytes(bytes(raw))
    root = st.open_store(out)  # the file is there: opening succeeds
    np.testing.assert_array_equal(st.layer_slice(root, 2).shape, (12, 17, 64))
    with pytest.raises(st.StoreError, match=r"g.zarr: array mlp_out, chunk file c/1/0/0"):
        st.layer_slice(root, 0)


def test_missing_completion_marker_is_refused(stores, tmp_path):
    path = copy_of(stores[0], tmp_path)
    import zarr

    root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    root.attrs["complete"] = False
    st.consolidate(path)
    with pytest.raises(st.StoreError, match="not a complete activation store.*delete"):
        st.open_store(path)


def test_store_left_by_a_killed_writer_is_refused(dataset, tmp_path):
    """What kill -9 leaves: a .partial folder with chunks but no marker, nothing under the
    final name; the partial store is refused too, and the rerun starts cleanly."""
    paths, ids, _ = dataset
    out = tmp_path / "k.zarr"
    arrays = act.store_arrays("tokens", 3, 64, 17, 32, "float16")
    root = st.create_store(out, ids, arrays, 5, 64)
    root["mlp_out"][0:5] = np.ones((5, 17, 192), dtype=np.float16)
    assert not out.exists() and st.partial_path(out).exists()
    with pytest.raises(st.StoreError, match="not a complete"):
        st.open_store(st.partial_path(out))
    act.extract_activations(tiny_model(), paths, ids, out, batch_size=5)
    assert st.open_store(out)["mlp_out"].shape == (12, 17, 192)
    assert not st.partial_path(out).exists()


def test_interrupted_write_leaves_nothing_that_looks_complete(dataset, tmp_path, monkeypatch):
    paths, ids, _ = dataset
    out = tmp_path / "i.zarr"
    act.extract_activations(tiny_model(), paths, ids, out, batch_size=5)  # an older store
    calls = []
    real = act.BatchWriter._write

    def failing(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(self, *args)

    monkeypatch.setattr(act.BatchWriter, "_write", failing)
    with pytest.raises(OSError, match="simulated"):
        act.extract_activations(tiny_model(), paths, ids, out, batch_size=5)
    assert not st.partial_path(out).exists()
    assert out.exists()  # the older, complete store stays as it was
    st.open_store(out)
    assert [t.name for t in threading.enumerate() if t.name == "store_writer"] == []


def test_not_a_store_and_old_format_are_named(stores, tmp_path):
    with pytest.raises(st.StoreError, match="no zarr.json"):
        st.open_store(tmp_path / "nothing.zarr")
    import zarr

    path = copy_of(stores[0], tmp_path)
    root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    root.attrs["store_format"] = 1
    st.consolidate(path)
    with pytest.raises(st.StoreError, match="store format 1"):
        st.open_store(path)


@pytest.mark.parametrize(
    "codec,layout",
    [("none", "batch-shards"), ("zstd", "layer-chunks"), ("lz4-bitshuffle", "batch-chunks")],
)
def test_every_codec_and_layout_reads_back_exactly(stores, dataset, tmp_path, codec, layout):
    paths, ids, _ = dataset
    out = tmp_path / "c.zarr"
    act.extract_activations(
        tiny_model(), paths, ids, out, batch_size=5, codec=codec, compression_level=3, layout=layout
    )
    got, ref = st.open_store(out), st.open_store(stores[0])
    np.testing.assert_array_equal(got["mlp_out"][:], ref["mlp_out"][:])
    np.testing.assert_array_equal(st.embeddings(got), st.embeddings(ref))


def test_store_opens_in_xarray_with_named_dimensions(stores, dataset):
    xr = pytest.importorskip("xarray")
    _, ids, _ = dataset
    ds = xr.open_zarr(stores[0])
    assert ds["mlp_out"].dims == ("image", "token", "neuron")
    assert ds["embeddings"].dims == ("image", "dim")
    assert ds["image"].values.tolist() == ids
    np.testing.assert_array_equal(
        ds["mlp_out"].sel(image=ids[3]).values, st.open_store(stores[0])["mlp_out"][3]
    )
    red = xr.open_zarr(stores[1])
    assert red["mlp_mean"].dims == ("image", "neuron")


def test_overlap_gives_the_same_store_as_one_batch_after_the_other(stores, dataset, tmp_path):
    paths, ids, _ = dataset
    for mode, ref in zip(st.MODES, stores, strict=True):
        out = tmp_path / f"{mode}.zarr"
        act.extract_activations(
            tiny_model(), paths, ids, out, batch_size=5, store=mode, overlap=False
        )
        a, b = st.open_store(out), st.open_store(ref)
        for name, arr in a.arrays():
            np.testing.assert_array_equal(arr[:], b[name][:], err_msg=name)


def test_reduced_store_holds_the_token_reductions(stores):
    tokens, reduced = (st.open_store(p) for p in stores)
    for how, which in st.REDUCED_ARRAYS:
        for layer in range(3):
            np.testing.assert_allclose(
                st.reduced_layer(reduced, layer, how, which),
                st.reduced_layer(tokens, layer, how, which),
                rtol=1e-6,
                atol=1e-7,
            )
    with pytest.raises(st.StoreError, match="activations.store: tokens"):
        st.layer_slice(reduced, 0)


def test_reduced_mode_analysis_equals_per_token_mode(stores, dataset):
    _, ids, objects = dataset
    vocab = Vocabulary()
    presence = presence_matrix(objects, ids, vocab)
    tokens, reduced = (st.open_store(p) for p in stores)
    for how, which in st.REDUCED_ARRAYS:
        for layer in range(3):
            tables = [
                neuron_table(
                    layer, st.reduced_layer(r, layer, how, which), presence, vocab.features, ids, 4
                )
                for r in (tokens, reduced)
            ]
            pd.testing.assert_frame_equal(*tables)
    np.testing.assert_array_equal(st.embeddings(tokens), st.embeddings(reduced))


def test_autocast_is_recorded_and_close_to_full_precision(stores, dataset, tmp_path):
    paths, ids, _ = dataset
    out = tmp_path / "bf16.zarr"
    act.extract_activations(tiny_model(), paths, ids, out, batch_size=5, autocast="bf16")
    got, ref = st.open_store(out), st.open_store(stores[0])
    assert got.attrs["autocast"] == "bf16" and ref.attrs["autocast"] == "none"
    np.testing.assert_allclose(st.embeddings(got), st.embeddings(ref), atol=0.1, rtol=0.1)
    with pytest.raises(ValueError, match="activations.autocast"):
        act.extract_activations(tiny_model(), paths, ids, out, autocast="int8")


def test_host_copies_bound_and_reuse_buffers():
    copies = act.HostCopies(torch.device("cpu"), limit=1)
    arrays, ready, release = copies.take({"x": torch.arange(6.0).reshape(2, 3)})
    ready()
    release()
    np.testing.assert_array_equal(arrays["x"], np.arange(6.0).reshape(2, 3))


def test_image_batches_keep_order_with_threads(dataset):
    paths, _, _ = dataset
    pre = act.reference_preprocess(28)
    threaded = list(act.image_batches(paths, pre, 5, workers=3))
    plain = list(act.image_batches(paths, pre, 5, workers=0))
    assert [s for s, _ in threaded] == [0, 5, 10]
    for (_, a), (_, b) in zip(threaded, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_patch_maps_recomputed_for_a_reduced_store_equal_the_stored_ones(stores, dataset, tmp_path):
    from vlmbinding.extraction import patch_maps

    paths, _, _ = dataset
    tokens, reduced = (st.open_store(p) for p in stores)
    rows = [0, 7, 11]
    stored = patch_maps.maps_from_store(tokens, rows, 1, 5)
    again = patch_maps.maps_from_model(
        tiny_model(), [paths[r] for r in rows], 1, 5, dict(reduced.attrs)
    )
    assert stored.shape == (3, 4, 4)
    np.testing.assert_allclose(again, stored, rtol=2e-3, atol=2e-3)  # float16, other batch
    out = tmp_path / "maps.npz"
    patch_maps.save_maps(out, ["a", "b", "c"], ["t1", "t2", "t3"], stored, 1, 5)
    back = patch_maps.load_maps(out)
    assert back["image_ids"] == ["a", "b", "c"] and (back["layer"], back["unit"]) == (1, 5)
    np.testing.assert_array_equal(back["maps"], stored)
    with pytest.raises(st.StoreError, match="reduced store"):
        patch_maps.maps_from_store(reduced, rows, 1, 5)


def test_zarr_threads_leaves_zarr_usable_in_a_fresh_process(stores):
    """The first zarr call of a job may be inside zarr_threads (the extraction's writes)."""
    import subprocess
    import sys

    from conftest import REPO

    code = (
        f"import sys; sys.path.insert(0, {str(REPO / 'workflow' / 'scripts')!r})\n"
        "from vlmbinding.extraction import store as st\n"
        f"with st.zarr_threads(2): st.open_store({str(stores[0])!r})\n"
        f"print(st.embeddings(st.open_store({str(stores[0])!r})).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(12, 32)"


def test_raw_chunk_writes_equal_zarr_own_bytes(tmp_path):
    arrays = {"mlp_out": ((3, 8), "float16", ["image", "token", "neuron"])}
    ids = [f"i{k}" for k in range(5)]
    values = np.random.default_rng(0).standard_normal((5, 3, 8)).astype(np.float16)
    roots = {w: st.create_store(tmp_path / f"{w}.zarr", ids, arrays, 2, 4) for w in ("raw", "zarr")}
    assert st.raw_chunks(roots["raw"]["mlp_out"])
    for row in range(3):
        for layer in range(2):
            part = values[2 * row : 2 * row + 2, :, 4 * layer : 4 * layer + 4]
            st.write_chunk(roots["raw"]["mlp_out"], (row, 0, layer), part)  # last: via zarr
            roots["zarr"]["mlp_out"][2 * row : 2 * row + 2, :, 4 * layer : 4 * layer + 4] = part
    for key in sorted(st.chunk_files(st.partial_path(tmp_path / "zarr.zarr"), "mlp_out")):
        a, b = (st.partial_path(tmp_path / f"{w}.zarr") / "mlp_out" / key for w in ("raw", "zarr"))
        assert a.read_bytes() == b.read_bytes(), key
    np.testing.assert_array_equal(roots["raw"]["mlp_out"][:], values)
    zstd = st.create_store(tmp_path / "z.zarr", ids, arrays, 2, 4, codec="zstd", level=1)
    assert not st.raw_chunks(zstd["mlp_out"])


def test_concurrent_layer_chunk_writes_equal_serial_ones_and_raise_errors(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    arrays = {"mlp_out": ((3, 32), "float16", ["image", "token", "neuron"])}
    ids = [f"i{k}" for k in range(6)]
    values = np.random.default_rng(1).standard_normal((6, 3, 32)).astype(np.float16)
    layers = [
        [np.ascontiguousarray(values[r : r + 2, :, 4 * i : 4 * i + 4]) for i in range(8)]
        for r in (0, 2, 4)
    ]
    roots = {w: st.create_store(tmp_path / f"{w}.zarr", ids, arrays, 2, 4) for w in ("one", "many")}
    with ThreadPoolExecutor(4) as pool:
        for row, parts in enumerate(layers):
            st.write_layer_chunks(roots["one"]["mlp_out"], row, parts)
            st.write_layer_chunks(roots["many"]["mlp_out"], row, parts, pool)
    for key in sorted(st.chunk_files(st.partial_path(tmp_path / "one.zarr"), "mlp_out")):
        a, b = (st.partial_path(tmp_path / f"{w}.zarr") / "mlp_out" / key for w in ("one", "many"))
        assert a.read_bytes() == b.read_bytes(), key
    np.testing.assert_array_equal(roots["many"]["mlp_out"][:], values)

    real, done = st.write_chunk, []

    def failing(arr, index, v):
        if index[2] == 5:
            raise OSError("disk full (simulated)")
        time.sleep(0.05)  # still writing when layer 5 fails
        real(arr, index, v)
        done.append(index[2])

    monkeypatch.setattr(st, "write_chunk", failing)
    with ThreadPoolExecutor(4) as pool, pytest.raises(OSError, match="simulated"):
        st.write_layer_chunks(roots["many"]["mlp_out"], 0, layers[0], pool)
    # raised only once no write still reads the batch's buffers (the caller then frees them)
    assert sorted(done) == [0, 1, 2, 3, 4, 6, 7]


def test_interrupted_concurrent_write_leaves_no_store_and_no_writer_threads(
    dataset, tmp_path, monkeypatch
):
    paths, ids, _ = dataset
    out = tmp_path / "c.zarr"
    real, calls = st.write_chunk, []

    def failing(arr, index, v):
        calls.append(index)
        if len(calls) == 7:
            raise OSError("disk full (simulated)")
        return real(arr, index, v)

    monkeypatch.setattr(st, "write_chunk", failing)
    with pytest.raises(OSError, match="simulated"):
        act.extract_activations(tiny_model(), paths, ids, out, batch_size=5)
    assert not out.exists() and not st.partial_path(out).exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("chunk_writer")]
