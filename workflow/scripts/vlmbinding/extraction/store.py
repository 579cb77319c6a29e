"""The activation store on disk: layout, codecs, integrity; reading it without torch.

A store is a Zarr v3 group that opens in xarray (`xr.open_zarr(path)`): every array has
named dimensions (`image`, `token`, `neuron`, `dim`), the image ids are the `image`
coordinate array, and the metadata is consolidated.

Two modes (`activations.store`):
  tokens   mlp_out [image, token, neuron], every token of every image (the paper's tensor)
  reduced  mlp_mean / mlp_max [image, neuron] over all tokens, and mlp_mean_patches /
           mlp_max_patches over the patch tokens only (the store's `n_prefix_tokens`
           dropped: CLS, registers; none for SigLIP): what the neuron
           statistics need, 32 times smaller for ViT-L/14 (float32, 4 reductions); with
           the encoding geometry on, also what its object vectors need, per pooled block
           (`vlmbinding.extraction.object_pooling`, attribute `object_pooling`: layers,
           n_objects, crop, masks_sha256): object_patch_mean [object, pooled_unit] float32,
           each object's mean over the patch tokens in its box, objects table row order;
           patch_mean [patch, pooled_unit] float64, each patch position's mean over all
           images; object_image [object], each object's image id (pooled_unit = i * width +
           unit, i the block's index in object_pooling.layers)
Both hold embeddings [image, dim] (float32).

Integrity: the writer builds the store under `<path>.partial` and renames it only after
close, which records the number of chunk files of every array and `complete: true`. The
readers here check both and name the store, the array and the missing chunk; every chunk
carries a crc32c checksum, so garbled bytes raise an error naming the chunk rather than a
bare codec error or silently wrong numbers. A missing chunk is never read as zeros (and the
float arrays' fill value is NaN besides).
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from itertools import product
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

STORE_FORMAT = 2
MODES = ("tokens", "reduced")
REDUCED_ARRAYS = {
    ("mean", "all"): "mlp_mean",
    ("max", "all"): "mlp_max",
    ("mean", "patches"): "mlp_mean_patches",
    ("max", "patches"): "mlp_max_patches",
}
CODECS = ("none", "zstd", "lz4", "lz4-shuffle", "lz4-bitshuffle", "zstd-bitshuffle")
FIX = "delete it and rerun the workflow (Snakemake then re-creates it)"


class StoreError(ValueError):
    """A store that is missing, incomplete, or damaged; the message names it and the fix."""


def codecs_for(codec: str, level: int, typesize: int) -> list:
    """Bytes-to-bytes codecs of one chunk: the compressor (if any), then a crc32c checksum."""
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    if codec not in CODECS:
        raise ValueError(f"activations.codec must be one of {CODECS}, not {codec!r}")
    if codec == "none":
        compressors = []
    elif codec == "zstd":
        compressors = [ZstdCodec(level=level)]
    else:
        cname, _, shuffle = codec.partition("-")
        compressors = [
            BloscCodec(cname=cname, clevel=level, shuffle=shuffle or "noshuffle", typesize=typesize)
        ]
    return [*compressors, Crc32cCodec()]


def _layer_chunks(batch, mid, width, neurons):
    return (batch, *mid, width), None


def _batch_shards(batch, mid, width, neurons):
    return (batch, *mid, width), (batch, *mid, neurons)


def _batch_chunks(batch, mid, width, neurons):
    return (batch, *mid, neurons), None


# (chunks, shards) of an array [image, *mid, neuron] written `batch` images at a time.
# layer-chunks: one file per layer per batch; batch-shards: one file per batch holding one
# inner chunk per layer (per-layer reads fetch only their inner chunks); batch-chunks: one
# chunk per batch (a per-layer read decodes every layer).
STORE_LAYOUTS = {
    "layer-chunks": _layer_chunks,
    "batch-shards": _batch_shards,
    "batch-chunks": _batch_chunks,
}


@contextmanager
def zarr_threads(n: int | None) -> Iterator[None]:
    """Encode/decode chunks on n threads inside this block (zarr's default pool otherwise)."""
    if not n:
        yield
        return
    from zarr.core import sync

    loop = sync._get_loop()
    old = sync._executor
    pool = ThreadPoolExecutor(n, thread_name_prefix="zarr_pool")
    sync._executor = pool
    loop.set_default_executor(pool)
    try:
        yield
    finally:
        sync._executor = old
        if old is None:
            sync._get_executor()  # a fresh pool of zarr's own, as the default again
        else:
            loop.set_default_executor(old)
        pool.shutdown(wait=True)


def partial_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial")


def create_store(
    path,
    image_ids: list[str],
    arrays: dict[str, tuple[tuple[int, ...], str, list[str]]],
    batch_size: int,
    width: int,
    codec: str = "none",
    level: int = 0,
    layout: str = "layer-chunks",
):
    """An empty store under `<path>.partial`: the `image` coordinate and one array per entry
    of `arrays` (name -> (shape after the image axis, dtype, dimension names)). The per-token
    array [image, token, neuron] is split per layer (`width` units) as `layout` says; the
    reductions [image, neuron] are one shard per batch of one chunk per layer."""
    import zarr

    if layout not in STORE_LAYOUTS:
        raise ValueError(f"activations.layout must be one of {sorted(STORE_LAYOUTS)}")
    tmp = partial_path(path)
    shutil.rmtree(tmp, ignore_errors=True)
    root = zarr.open_group(str(tmp), mode="w")
    n = len(image_ids)
    batch = max(1, min(batch_size, n))
    ids = root.create_array(
        "image",
        shape=(n,),
        dtype=np.dtypes.StringDType(),
        chunks=(max(n, 1),),
        compressors=codecs_for("zstd", 1, 1),
        dimension_names=["image"],
        config={"write_empty_chunks": True},
    )
    ids[:] = np.asarray(image_ids, dtype=np.dtypes.StringDType())
    for name, (tail, dtype, dims) in arrays.items():
        dtype = np.dtype(dtype)
        if dims == ["image", "neuron"]:  # reductions: small, one shard per batch
            chunks, shards = _batch_shards(batch, (), width, tail[-1])
        elif dims[-1] == "neuron":
            chunks, shards = STORE_LAYOUTS[layout](batch, tail[:-1], width, tail[-1])
        else:
            chunks, shards = (batch, *tail), None
        root.create_array(
            name,
            shape=(n, *tail),
            chunks=chunks,
            shards=shards,
            dtype=dtype,
            compressors=codecs_for(codec, level, dtype.itemsize),
            fill_value=np.nan,
            dimension_names=dims,
            config={"write_empty_chunks": True},
        )
    return root


def raw_chunks(arr) -> bool:
    """Are this array's chunk files plain little-endian bytes + a crc32c (codec none, no
    shards)? Then `write_chunk` writes them without zarr's codec pipeline."""
    names = [c.to_dict() for c in arr.metadata.codecs]
    return (
        arr.shards is None
        and [c["name"] for c in names] == ["bytes", "crc32c"]
        and names[0].get("configuration", {}).get("endian", "little") == "little"
        and arr.dtype.byteorder in "<=|"
        and np.little_endian
    )


def write_chunk(arr, index: tuple[int, ...], values: np.ndarray) -> None:
    """Write one whole chunk: the chunk of zarr array `arr` at grid position `index`.

    For raw chunks (codec none) the file is written directly, the bytes of `values` then
    their crc32c, as zarr itself would write it but without its copies (about 3 times less
    CPU per GB, measured by benchmarks/bench_store.py); otherwise, or for an edge chunk
    smaller than the chunk shape, through zarr.
    """
    region = tuple(slice(i * c, i * c + n) for i, c, n in zip(index, arr.chunks, values.shape))
    if values.shape != tuple(arr.chunks) or not raw_chunks(arr):
        arr[region] = values
        return
    import google_crc32c

    data = np.ascontiguousarray(values, dtype=arr.dtype).view()
    data.flags.writeable = False  # google_crc32c takes read-only buffers only
    crc = np.uint32(google_crc32c.value(data)).astype("<u4")
    path = store_path(arr) / arr.metadata.encode_chunk_key(index)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(memoryview(data).cast("B"))
        f.write(crc.tobytes())


def write_layer_chunks(arr, row: int, layers: list[np.ndarray], pool=None) -> None:
    """Write one batch (chunk row `row`) of per-layer chunks, one file per layer.

    With a thread pool the files are written concurrently: file writes release the GIL, so
    the disk sees several requests at once (on these machines' disks about 1.2x the rate of
    one after the other, benchmarks/bench_store.py). An error in any write is raised here,
    after every write of the batch has finished (none still reads `layers`).
    """
    jobs = [(row, 0, i) for i in range(len(layers))]
    if pool is None:
        for index, values in zip(jobs, layers):
            write_chunk(arr, index, values)
    else:
        futures = [pool.submit(write_chunk, arr, i, v) for i, v in zip(jobs, layers)]
        wait(futures)  # all done before raising: the caller may then reuse the buffers
        for future in futures:
            future.result()


def chunk_files(store_path, name: str) -> set[str]:
    """Keys ("c/0/0/3") of the chunk (or shard) files of one array that are on disk."""
    base = Path(store_path) / name / "c"
    if not base.is_dir():
        return set()
    return {
        Path(d, f).relative_to(base.parent).as_posix()
        for d, _, files in os.walk(base)
        for f in files
    }


def expected_chunk_files(arr) -> set[str]:
    """Every chunk (or shard) key of a fully written array."""
    per_file = arr.shards or arr.chunks
    grid = [range(-(-s // c)) for s, c in zip(arr.shape, per_file, strict=True)]
    return {"c/" + "/".join(map(str, idx)) for idx in product(*grid)}


def consolidate(path) -> None:
    """Consolidated metadata (one read opens the store; xarray expects it)."""
    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        zarr.consolidate_metadata(str(path))


def close_store(root, path, attrs: dict) -> Path:
    """Record the chunk counts and the completion marker, consolidate, rename to `path`."""

    path, tmp = Path(path), partial_path(path)
    counts = {}
    for name, arr in root.arrays():
        on_disk, expected = chunk_files(tmp, name), expected_chunk_files(arr)
        if on_disk != expected:
            missing = sorted(expected - on_disk)[:3]
            raise StoreError(f"{tmp}: {name} lacks chunks {missing} at close; nothing renamed")
        counts[name] = len(expected)
    root.attrs.update(
        {**attrs, "chunk_files": counts, "store_format": STORE_FORMAT, "complete": True}
    )
    consolidate(tmp)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


def open_store(path):
    """Open a finished store read-only, after checking that its writer closed it and that
    every chunk it recorded is on disk. Raises StoreError naming the store and the fix."""
    import zarr

    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path} is not an activation store (no zarr.json); {FIX}")
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as err:
        raise StoreError(f"{path}: its metadata cannot be read ({err}); {FIX}") from err
    attrs = root.attrs
    if not attrs.get("complete"):
        raise StoreError(
            f"{path} is not a complete activation store (its writer did not close it: "
            f"interrupted, or still running); {FIX}"
        )
    if attrs.get("store_format") != STORE_FORMAT:
        raise StoreError(
            f"{path} has store format {attrs.get('store_format', 1)}, this code reads "
            f"{STORE_FORMAT}; {FIX}"
        )
    for name, count in attrs["chunk_files"].items():
        on_disk = chunk_files(path, name)
        if len(on_disk) != count:
            missing = sorted(expected_chunk_files(root[name]) - on_disk)
            raise StoreError(
                f"{path}: array {name} has {len(on_disk)} of its {count} chunk files; missing "
                f"{', '.join(missing[:5]) or '(unexpected extra files)'} (deleted or damaged "
                f"since it was written); {FIX}"
            )
    return root


def store_path(root) -> Path:
    return Path(str(root.store.root)) / root.path


def read(root, name: str, selection=slice(None)) -> np.ndarray:
    """root[name][selection], or a StoreError naming the store and the damaged chunk."""
    arr = root[name]
    try:
        return arr[selection]
    except Exception as err:
        raise StoreError(
            f"{store_path(root)}: array {name}, {bad_chunk(arr, selection)} cannot be decoded "
            f"({type(err).__name__}: {err}); the file is damaged; {FIX}"
        ) from err


def bad_chunk(arr, selection) -> str:
    """The first chunk file of `selection` that fails to decode (the slow path of errors)."""
    per_file = arr.shards or arr.chunks
    sel = selection if isinstance(selection, tuple) else (selection,)
    sel = sel + (slice(None),) * (arr.ndim - len(sel))
    ranges = []
    for s, n, c in zip(sel, arr.shape, per_file, strict=True):
        lo, hi, _ = s.indices(n) if isinstance(s, slice) else (int(s), int(s) + 1, 1)
        ranges.append(range(lo // c, -(-hi // c)))
    for idx in product(*ranges):
        region = tuple(
            slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(idx, per_file, arr.shape)
        )
        try:
            arr[region]
        except Exception:
            return "chunk file c/" + "/".join(map(str, idx))
    return "a chunk"


def layer_slice(root, layer: int) -> np.ndarray:
    """mlp_out of one block: [image, token, width] (reads only that block's chunks)."""
    if root.attrs.get("mode", "tokens") != "tokens":
        raise StoreError(
            f"{store_path(root)} holds per-image reductions only (activations.store: reduced); "
            "per-token activations need activations.store: tokens"
        )
    width = root.attrs["width"]
    return read(
        root, "mlp_out", (slice(None), slice(None), slice(layer * width, (layer + 1) * width))
    )


def n_prefix_tokens(root) -> int:
    """Tokens before the patches (class token, registers); 1 in stores written before the
    attribute existed (all of them open_clip ViTs, whose token 0 is CLS)."""
    return int(root.attrs.get("n_prefix_tokens", 1))


def reduced_layer(root, layer: int, how: str, tokens: str) -> np.ndarray:
    """float32 [image, width]: one block's activations reduced over each image's tokens
    (`how` mean|max over `tokens` all|patches), from either store mode."""
    width = root.attrs["width"]
    if root.attrs.get("mode", "tokens") == "tokens":
        from vlmbinding.analysis.neurons import reduce_tokens

        return reduce_tokens(layer_slice(root, layer), how, tokens, n_prefix_tokens(root))
    if (how, tokens) not in REDUCED_ARRAYS:
        raise ValueError(f"no reduction {how!r} over {tokens!r} tokens; use {REDUCED_ARRAYS}")
    name = REDUCED_ARRAYS[how, tokens]
    return read(root, name, (slice(None), slice(layer * width, (layer + 1) * width)))


def embeddings(root) -> np.ndarray:
    return read(root, "embeddings")
