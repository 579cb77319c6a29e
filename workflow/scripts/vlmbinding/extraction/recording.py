"""Recording the MLP outputs of every block of CLIP's vision tower into a Zarr store.

METHOD.md section 2. For each image and each token, the output of every residual block's
MLP before it is added to the residual stream: `mlp_out[image, token, layer*width + unit]`
(store mode `tokens`), or only its mean and max over each image's tokens (mode `reduced`).

The extraction never waits where it need not: images are decoded and preprocessed by a pool
of threads ahead of the model (pinned host memory on CUDA, non-blocking copies), the
conversion to the storage dtype and the token reductions run on the device, device-to-host
copies go into reused pinned buffers, and a writer thread with a bounded queue writes batch
i while batch i+1 runs. The store only appears under its final name once complete
(`vlmbinding.extraction.store`).
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch

from vlmbinding.extraction import store as st
from vlmbinding.extraction.images import (  # noqa: F401 - re-exported for callers
    choose_preprocess,
    image_batches,
    load_image,
    load_images,
    reference_preprocess,
)
from vlmbinding.extraction.metadata import model_identity, store_arrays, store_attributes
from vlmbinding.extraction.pooling_head import head_recorder, pooling_head_attrs
from vlmbinding.extraction.store import layer_slice, open_store  # noqa: F401 - re-exported for callers
from vlmbinding.models import towers

log = logging.getLogger(__name__)

AUTOCAST = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def blocks(model) -> list[torch.nn.Module]:
    """The vision tower's residual blocks, in any supported family (models.towers)."""
    return towers.vision_blocks(model)


@contextmanager
def recording_mlp_outputs(model, center: bool = False, dtype: torch.dtype | None = None):
    """Collect each block's MLP output as it joins the residual stream, layer scale
    included (`vlmbinding.models.towers`: open_clip's `ls_2`, timm's `ls2`, an EVA block's
    `mlp` times `gamma_2`, transformers' `mlp`).

    Yields a list that each forward pass fills with one [batch, token, width] tensor per
    block, in block order. `center` subtracts each vector's mean over the width, which is
    what the authors' hooked model with centred writing weights recorded (METHOD.md 2b).
    `dtype` converts each output as it is recorded (on its device; halves the memory).
    """
    outputs: list[torch.Tensor] = []

    def record(_layer, output):
        out = output.detach()
        if center:
            out = out - out.mean(dim=-1, keepdim=True)
        outputs.append(out if dtype is None else out.to(dtype))

    with towers.hooked_mlp_outputs(model, record):
        yield outputs


@torch.no_grad()
def forward_layers(model, images: torch.Tensor, center: bool = False, dtype=None, autocast=None):
    """One forward pass: ([B, T, width] per block, embeddings [B, D]), on the device.

    `dtype`: convert the MLP outputs to it as they are recorded; `autocast`: run the model
    under torch.autocast with this dtype (bfloat16 or float16), None = full precision.
    """
    amp = torch.autocast(images.device.type, dtype=autocast) if autocast else nullcontext()
    with recording_mlp_outputs(model, center, dtype) as outputs, amp:
        embeddings = model.encode_image(images)
    return outputs, embeddings


def forward_batch(model, images: torch.Tensor, center: bool = False, dtype=None, autocast=None):
    """One forward pass: (mlp_out [B, T, layers*width], embeddings [B, D]), on the device."""
    outputs, embeddings = forward_layers(model, images, center, dtype, autocast)
    return torch.cat(outputs, dim=-1), embeddings


def device_outputs(
    layers: list[torch.Tensor], emb: torch.Tensor, mode: str, n_prefix: int = 1
) -> dict:
    """What is stored of one batch, computed on the model's device: per-layer tensors
    `mlp_out/<layer>` (mode tokens) or the token reductions (`patches`: without the first
    `n_prefix` tokens, class token and registers). `layers` are already in the storage
    dtype, so the reductions see exactly the values a tokens-mode store holds (mean
    accumulated in float32, max exact). `finite` [layer + 1, image]: is every value of that
    image's block output (the last row: its embedding) finite (one pass per block on the
    device; copied to the host with the rest, so checking it costs no extra wait)."""
    out = {"embeddings": emb.float()}
    finite = [torch.isfinite(x).flatten(1).all(dim=1) for x in [*layers, emb]]
    out["finite"] = torch.stack(finite)
    if mode == "tokens":
        out.update({f"mlp_out/{i}": x for i, x in enumerate(layers)})
        return out
    for (how, tokens), name in st.REDUCED_ARRAYS.items():
        parts = [x[:, n_prefix:] if tokens == "patches" else x for x in layers]
        reduced = [x.float().mean(dim=1) if how == "mean" else x.amax(dim=1).float() for x in parts]
        out[name] = torch.cat(reduced, dim=-1)
    return out


class HostCopies:
    """Device-to-host copies into reused pinned buffers (CUDA) or plain views (CPU).

    `take` starts non-blocking copies of a batch's tensors and returns (arrays, ready,
    release): `ready()` waits for the copies, `release()` returns the buffers for reuse.
    At most `limit` batches hold buffers at once (bounded host memory).
    """

    def __init__(self, device: torch.device, limit: int):
        self.cuda = device.type == "cuda"
        self.free: dict[tuple, list[torch.Tensor]] = {}
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(limit)

    def _buffer(self, t: torch.Tensor) -> torch.Tensor:
        key = (tuple(t.shape), t.dtype)
        with self.lock:
            pool = self.free.setdefault(key, [])
            if pool:
                return pool.pop()
        return torch.empty(t.shape, dtype=t.dtype, pin_memory=True)

    def take(self, tensors: dict[str, torch.Tensor]):
        if not self.cuda:
            arrays = {k: v.contiguous().numpy() for k, v in tensors.items()}
            return arrays, lambda: None, lambda: None
        self.slots.acquire()
        bufs = {k: self._buffer(v) for k, v in tensors.items()}
        for k, v in tensors.items():
            bufs[k].copy_(v, non_blocking=True)
        event = torch.cuda.Event()
        event.record()

        def release():
            with self.lock:
                for b in bufs.values():
                    self.free.setdefault((tuple(b.shape), b.dtype), []).append(b)
            self.slots.release()

        return {k: b.numpy() for k, b in bufs.items()}, event.synchronize, release


class NonFiniteActivations(ValueError):
    """The model produced NaN or infinite values; the message names the block and images."""


def check_finite(finite: np.ndarray, start: int, image_ids=None, dtype: str = "") -> None:
    """Raise NonFiniteActivations if `finite` [block + 1, image] (device_outputs) is False
    anywhere: a NaN would otherwise be stored as the arrays' fill value (a chunk of only
    NaN is never written, and the store fails its close with a missing chunk)."""
    if finite.all():
        return
    blocks_bad = np.flatnonzero(~finite.all(axis=1))  # the last row is the embedding
    rows = np.flatnonzero(~finite.all(axis=0))
    ids = [str(image_ids[start + r]) if image_ids is not None else f"row {start + r}" for r in rows]
    first, n_blocks = int(blocks_bad[0]), len(finite) - 1
    where = "image embedding" if first == n_blocks else f"MLP output of block {first} (0-based)"
    if len(blocks_bad) > 1 and blocks_bad[1] < n_blocks:
        where += f" and {int(sum(blocks_bad < n_blocks)) - 1} later block(s)"
    hint = " (a float16 store overflows above 65,504: try activations.dtype: float32)"
    raise NonFiniteActivations(
        f"the model produced non-finite values (NaN or infinity) in the {where}, for images "
        f"{', '.join(ids[:5])}{f' and {len(ids) - 5} more' if len(ids) > 5 else ''}: check "
        f"the checkpoint's weights for NaN/inf{hint if dtype == 'float16' else ''}"
    )


WRITERS = 4  # concurrent chunk-file writes per batch (benchmarks/bench_store.py)


class BatchWriter:
    """Writes batches into the store's arrays on a thread behind a bounded queue (depth 0:
    in the caller's thread). An error in the writer is raised by the next put or close."""

    def __init__(
        self, root, depth, per_layer=True, file_writers=WRITERS, image_ids=None, dtype="", pool=None
    ):
        self.root, self.error, self.per_layer, self.pooling = root, None, per_layer, pool
        self.image_ids, self.dtype = image_ids, dtype
        self.arrays = dict(root.arrays())  # looked up once: each lookup reads metadata
        self.mlp_out = self.arrays.get("mlp_out")
        self.files = (  # a batch's layer files written concurrently (st.write_layer_chunks)
            ThreadPoolExecutor(file_writers, thread_name_prefix="chunk_writer")
            if per_layer and file_writers > 1
            else None
        )
        self.queue: queue.Queue | None = queue.Queue(maxsize=depth) if depth > 0 else None
        if self.queue is not None:
            self.thread = threading.Thread(target=self._run, name="store_writer", daemon=True)
            self.thread.start()

    def _write(self, start, arrays, ready, release):
        try:
            ready()
            if "finite" in arrays:
                arrays = dict(arrays)
                check_finite(arrays.pop("finite"), start, self.image_ids, self.dtype)
            if self.pooling is not None:  # its own arrays (object_pooling.ObjectPooling)
                arrays = self.pooling.write(self.arrays, start, arrays)
            layers = [v for k, v in arrays.items() if k.startswith("mlp_out/")]
            for name, values in arrays.items():
                if not name.startswith("mlp_out/"):
                    self.arrays[name][start : start + len(values)] = values
            if not layers:
                return
            stop = start + len(layers[0])
            if self.per_layer:  # one whole chunk per layer, from contiguous memory
                st.write_layer_chunks(
                    self.mlp_out, start // self.mlp_out.chunks[0], layers, self.files
                )
            else:  # one whole shard (or chunk) per batch
                self.mlp_out[start:stop] = np.concatenate(layers, axis=-1)
        finally:
            release()

    def _run(self):
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self._write(*item)
                except BaseException as err:  # noqa: BLE001 - re-raised in the caller
                    self.error = err
            else:
                item[3]()  # keep draining (and freeing buffers) so put never blocks forever

    def put(self, start, arrays, ready, release):
        if self.error is not None:
            raise self.error
        if self.queue is None:
            self._write(start, arrays, ready, release)
        else:
            self.queue.put((start, arrays, ready, release))

    def close(self, reraise: bool = True):
        if self.queue is not None:
            self.queue.put(None)
            self.thread.join()
        if self.files is not None:
            self.files.shutdown(wait=True)
        if reraise and self.error is not None:
            raise self.error


def extract_activations(
    loaded,
    image_paths: list[str],
    image_ids: list[str],
    out_path: str | Path,
    batch_size: int = 32,
    dtype: str = "float16",
    preprocess: str = "model",
    center_mlp_out: bool = False,
    codec: str = "none",
    compression_level: int = 0,
    layout: str = "layer-chunks",
    store: str = "tokens",
    autocast: str = "none",
    workers: int = 2,
    overlap: bool = True,
    encode_threads: int | None = None,
    model_name: str = "",
    pooling=None,
    pooling_head: bool = False,
) -> Path:
    """Run the vision tower over every image and stream its MLP outputs to `out_path`.

    Rows follow `image_paths`. The store is built under `<out_path>.partial` and renamed
    when complete, so an interrupted run never leaves something that looks finished.
    `overlap=False` loads, computes and writes one batch after the other (same output).
    `pooling` (an `object_pooling.ObjectPooling`) adds each object's pooled patch vectors.
    `pooling_head` also records the attention-pooling head's MLP (`extraction.pooling_head`).
    """
    model = loaded.model.eval()
    device = next(model.parameters()).device
    geometry = loaded.geometry
    towers.check_geometry(model, geometry, model_name)  # the built tower is the one its config says
    n_layers, width = len(blocks(model)), geometry["width"]
    if autocast not in AUTOCAST:
        raise ValueError(f"activations.autocast must be one of {sorted(AUTOCAST)}")
    transform = choose_preprocess(loaded, preprocess)
    out_path = Path(out_path)
    arrays = store_arrays(store, n_layers, width, geometry["tokens"], geometry["embed_dim"], dtype)
    head = head_recorder(pooling_head, model, center_mlp_out, getattr(torch, dtype), model_name)
    arrays.update(head.arrays(dtype) if head else {})
    root = st.create_store(
        out_path, list(image_ids), arrays, batch_size, width, codec, compression_level, layout
    )
    if pooling is not None:
        pooling.create(root, batch_size, width, codec, compression_level)
    copies = HostCopies(device, limit=4)
    t0, done = time.time(), 0
    try:
        with st.zarr_threads(encode_threads), head or nullcontext():
            depth, per_layer = (2 if overlap else 0), layout == "layer-chunks"
            writer = BatchWriter(root, depth, per_layer, WRITERS, image_ids, dtype, pooling)
            loader = image_batches(
                image_paths, transform, batch_size, workers if overlap else 0, pin=copies.cuda
            )
            try:
                for start, images in loader:
                    mlp, emb = forward_layers(
                        model,
                        images.to(device, non_blocking=True),
                        center_mlp_out,
                        getattr(torch, dtype),
                        AUTOCAST[autocast],
                    )
                    outputs = device_outputs(mlp, emb, store, geometry["n_prefix_tokens"])
                    if pooling is not None:
                        outputs |= pooling.device_outputs(mlp, start, geometry["n_prefix_tokens"])
                    outputs.update(head.pop() if head else {})
                    writer.put(start, *copies.take(outputs))
                    done += len(images)
                    rate = done / (time.time() - t0)
                    log.info(f"{done}/{len(image_paths)} images ({rate:.1f} images/s)")
            except BaseException:
                loader.close()
                writer.close(reraise=False)
                raise
            writer.close()
        settings = {
            "preprocess": preprocess,
            "center_mlp_out": center_mlp_out,
            "dtype": dtype,
            "store": store,
            "codec": codec,
            "compression_level": compression_level,
            "layout": layout,
            "autocast": autocast,
            "pooling_head": pooling_head,
        }
        ident = model_identity(loaded, model_name)
        attrs = store_attributes(ident, geometry, n_layers, image_ids, settings)
        attrs |= pooling.finish(root) if pooling is not None else {}
        attrs.update(pooling_head_attrs(head.width) if head else {})
        st.close_store(root, out_path, attrs)
    except BaseException:
        shutil.rmtree(st.partial_path(out_path), ignore_errors=True)
        raise
    log.info(f"wrote {out_path} in {time.time() - t0:.1f} s")
    return out_path
