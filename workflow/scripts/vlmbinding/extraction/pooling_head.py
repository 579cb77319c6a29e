"""The pooling head's MLP: an optional array of the activation store (`activations.pooling_head`).

SigLIP's, SigLIP2's and PE-Core's towers pool their last tokens with an attention head
(timm's `AttentionPoolLatent` in open_clip's timm trunks, transformers' SigLIP `head`) that
ends in an MLP of its own: `x = x + mlp(norm(x))` on one pooled latent token. That MLP acts
on one token per image, not on the token grid, so it has no place in `mlp_out [image, token,
neuron]`; with `activations.pooling_head: true` its output (the quantity before it joins the
head's residual, as for the blocks) is recorded into a separate array

  pooling_head_mlp [image, head_unit]   storage dtype, `center_mlp_out` applied like the blocks

in both store modes (a reduction over one token is the token). No analysis stage reads it
yet: the stages' layers are block indices (`neurons/layer_<l>.parquet`, the `{layer}`
wildcard is a number), and the head is not a block. It is there for analyses of the head's
units (`read_pooling_head`, e.g. `analysis.neurons.neuron_table` on it by hand); the
analysis keeps using the blocks.

Importing this module does not import torch (the start-up check uses it).
"""

from __future__ import annotations

ARRAY = "pooling_head_mlp"
DIMS = ["image", "head_unit"]  # not `neuron`: a different length than mlp_out's neuron axis
DESCRIPTION = (
    "output of the attention-pooling head's MLP before the head's residual add (timm "
    "attn_pool.mlp, transformers head.mlp), one pooled token per image, storage dtype; "
    "no analysis stage reads it"
)
SUPPORTED = (
    "open_clip towers with a timm trunk pooled by an attention head (timm_pool: map: SigLIP, "
    "SigLIP2, PE-Core) and transformers SigLIP towers with their head"
)


class NoPoolingHead(ValueError):
    """activations.pooling_head is on for a tower without an attention-pooling head's MLP."""


def has_pooling_head(geometry: dict) -> bool:
    """Whether a tower's geometry (`vision_geometry`, torch-free) says it pools its tokens with
    an attention head (`pool: map`), whose MLP `activations.pooling_head` records."""
    return geometry.get("pool") == "map" and geometry.get("family") != "open_clip-vit"


def pooling_head_problem(geometry: dict) -> str | None:
    """Why `activations.pooling_head: true` cannot be honoured for this tower, or None."""
    if has_pooling_head(geometry):
        return None
    return (
        f"activations.pooling_head: true, but its vision tower (family {geometry.get('family')}"
        f", pooling {geometry.get('pool')!r}) has no attention-pooling head with an MLP to "
        f"record; supported: {SUPPORTED}. Set activations.pooling_head: false (the option "
        "applies to every model of the config)"
    )


def pooling_head_arrays(width: int, dtype: str) -> dict:
    """The extra store array: name -> (shape after the image axis, dtype, dimension names)."""
    return {ARRAY: ((int(width),), dtype, DIMS)}


def pooling_head_attrs(width: int) -> dict:
    return {ARRAY: DESCRIPTION, "pooling_head_width": int(width)}


class PoolingHeadRecorder:
    """Records the pooling head's MLP output of every forward pass inside `with recorder:`;
    `pop()` returns the last batch's {ARRAY: [batch, width]} (on the device, in `dtype`).

    Raises NoPoolingHead (naming the model) if the built tower has no such MLP, or if the head
    pools into more than one latent token."""

    def __init__(self, model, center: bool = False, dtype=None, name: str = ""):
        from vlmbinding.models import towers

        self.mlp = towers.pooling_head_mlp(model)
        self.name = name or type(model).__name__
        if self.mlp is None:
            raise NoPoolingHead(
                f"model {self.name}: activations.pooling_head is on, but its vision tower has "
                f"no attention-pooling head with an MLP; supported: {SUPPORTED}"
            )
        self.center, self.dtype = center, dtype
        self.values: list = []
        self.handle = None

    @property
    def width(self) -> int:
        return int(self.mlp.fc2.out_features)

    def arrays(self, dtype: str) -> dict:
        return pooling_head_arrays(self.width, dtype)

    def _hook(self, _module, _inputs, output):
        if output.dim() != 3 or output.shape[1] != 1:
            raise NoPoolingHead(
                f"model {self.name}: the pooling head's MLP gave shape {tuple(output.shape)}; "
                "only a head that pools into one latent token [batch, 1, width] is recorded"
            )
        out = output[:, 0].detach()
        if self.center:
            out = out - out.mean(dim=-1, keepdim=True)
        self.values.append(out if self.dtype is None else out.to(self.dtype))

    def __enter__(self):
        self.handle = self.mlp.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
        self.values.clear()
        return False

    def pop(self) -> dict:
        if len(self.values) != 1:
            raise NoPoolingHead(
                f"model {self.name}: the pooling head ran {len(self.values)} times in one "
                "forward pass (expected once)"
            )
        return {ARRAY: self.values.pop()}


def head_recorder(enabled: bool, model, center=False, dtype=None, name: str = ""):
    """A PoolingHeadRecorder if `enabled` (NoPoolingHead, naming the model, for a tower
    without a pooling head's MLP: raised before the store is created), else None."""
    return PoolingHeadRecorder(model, center, dtype, name) if enabled else None


def read_pooling_head(root):
    """float [image, width]: the pooling head's MLP output of a store written with
    `activations.pooling_head: true` (a StoreError naming the store otherwise)."""
    from vlmbinding.extraction import store as st

    if ARRAY not in root.attrs.get("chunk_files", {}):
        raise st.StoreError(
            f"{st.store_path(root)} holds no {ARRAY}: it was written with "
            "activations.pooling_head: false (or by a tower without an attention-pooling head)"
        )
    return st.read(root, ARRAY)
