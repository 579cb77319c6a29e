"""Sparse-autoencoder basis: a TopK dictionary per layer, trained on per-token MLP outputs.

Issue 22, measure 3. A layer's MLP output tokens (from images that are not the analysed
ones) train a TopK sparse autoencoder (Gao et al. 2024) with overcomplete's `TopKSAE` and
`train_sae`; each analysed image's tokens are then encoded and reduced over tokens the same
way as the neurons (`reduce_tokens`), so the overlap measure can run on [image, latent]
instead of [image, neuron]. One call trains one dictionary with one seed: the issue's three
SAE seeds are a loop outside, over `seed`.

Inputs are standardised before training: each unit's mean removed, then divided by one
scale for the whole layer (`scaling="global"`, the root mean square of the centred values:
it keeps the angles between units, so decoder atoms are directions of the activation
space) or by each unit's standard deviation (`scaling="unit"`). The mean and scale are
stored with the dictionary and applied again by `encode`.

torch and overcomplete are imported inside the functions, so importing this module (and
parsing the Snakefile) stays torch-free.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlmbinding.atomic import atomic_path

log = logging.getLogger(__name__)

TRAINING_COLUMNS = ["step", "loss", "fvu", "dead_fraction"]
SCALINGS = ("global", "unit")
DICTIONARY_FILE = "dictionary.safetensors"
META_FILE = "dictionary.json"
TRAINING_FILE = "training.tsv"
_MEAN, _SCALE = "standardise.mean", "standardise.scale"


@dataclass
class SparseDictionary:
    """A trained TopK autoencoder with the standardisation its inputs need.

    `model` is overcomplete's TopKSAE in eval mode; `mean` and `scale` (float32 [unit]) map
    an activation x to the autoencoder's input (x - mean) / scale; `meta` holds the
    settings and the final fit (fvu, dead_fraction); `training` the curve, one row an epoch.
    """

    model: Any
    mean: np.ndarray
    scale: np.ndarray
    meta: dict
    training: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TRAINING_COLUMNS))

    @property
    def n_latents(self) -> int:
        return int(self.meta["n_latents"])

    def atoms(self) -> np.ndarray:
        """Decoder atoms float32 [latent, unit], unit norm, in the standardised space."""
        import torch

        with torch.no_grad():
            return self.model.get_dictionary().detach().cpu().numpy().astype(np.float32)


def _overcomplete_sae():
    """What the autoencoders use of overcomplete's `sae` subpackage: a namespace with
    TopKSAE, train_sae and losses, imported without the packages' __init__ modules.

    overcomplete 0.3.0's top-level __init__ also imports its visualisation helpers, which
    call `matplotlib.cm.get_cmap` (removed in matplotlib 3.9; the workflow pins 3.11), so a
    plain `import overcomplete` fails; and `overcomplete.sae`'s __init__ imports every SAE
    variant, one of which pulls in scikit-learn (1 CPU-s of the 1.7 an import took on a
    quiet machine, in each of the stage's five autoencoder jobs). So both packages are
    registered without running their __init__ and only the three modules are imported
    (they need torch, einops and scipy). A working full import (a later release, already
    imported) is used as it is.
    """
    import importlib
    import importlib.util
    import sys
    from types import SimpleNamespace

    if "overcomplete.sae" in sys.modules and hasattr(sys.modules["overcomplete.sae"], "TopKSAE"):
        return sys.modules["overcomplete.sae"]
    for package in ("overcomplete", "overcomplete.sae"):
        if package not in sys.modules:
            spec = importlib.util.find_spec(package)
            if spec is None:
                raise ImportError(
                    "the sparse-autoencoder basis needs overcomplete (pip install "
                    "overcomplete==0.3.0 einops, as requirements.txt pins them)"
                )
            sys.modules[package] = importlib.util.module_from_spec(spec)
    return SimpleNamespace(
        TopKSAE=importlib.import_module("overcomplete.sae.topk_sae").TopKSAE,
        train_sae=importlib.import_module("overcomplete.sae.train").train_sae,
        losses=importlib.import_module("overcomplete.sae.losses"),
    )


def standardisation(tokens: np.ndarray, scaling: str = "global") -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale), float32 [unit] each, of tokens [n, unit]; see the module docstring.

    A unit (or a layer) with zero variance gets scale 1, so constant inputs stay finite.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling={scaling!r} is not a standardisation; use one of {SCALINGS}")
    x = np.asarray(tokens)
    mean = x.mean(axis=0, dtype=np.float64)
    sq = np.zeros(x.shape[1])
    for start in range(0, len(x), 65536):  # float64 sums without a float64 copy of x
        sq += np.square(x[start : start + 65536] - mean).sum(axis=0)
    var = sq / len(x)
    scale = np.full(x.shape[1], np.sqrt(var.mean())) if scaling == "global" else np.sqrt(var)
    scale[~(scale > 0)] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)


def _check_tokens(tokens: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(tokens)
    if x.ndim != 2:
        raise ValueError(f"{name}: tokens must be [token, unit], got shape {x.shape}")
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise ValueError(
            f"{name}: {bad} of the {x.size} token activations are NaN or infinite; the "
            "sparse autoencoder cannot train on them (check the activation store of this layer)"
        )
    return x


def _placed(model, device: str):
    """The model in eval mode on `device`, its fused dictionary too.

    In eval mode overcomplete's DictionaryLayer decodes with a fused copy of its atoms
    (`_fused_dictionary`, made when eval() is called from training mode) that is not a
    parameter or buffer, so `.to()` does not move it; eval() again would not refuse it.
    """
    model.to(device)
    if model.training:
        model.eval()
    layer = model.dictionary
    layer._fused_dictionary = layer._fused_dictionary.to(device)
    return model


def _fvu(model, x, batch_size: int) -> float:
    """Fraction of variance unexplained of x [n, unit] (standardised) by the model's output."""
    import torch

    resid = total = 0.0
    mu = x.mean(dim=0)
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            resid += float((xb - model(xb)[2]).square().sum())
            total += float((xb - mu).square().sum())
    return resid / total if total > 0 else float("nan")


def _alive(model, x, batch_size: int):
    """Boolean tensor [latent]: the latents active (> 0) on at least one token of x."""
    import torch

    alive = None
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            fired = (model.encode(x[start : start + batch_size])[1] > 0).any(dim=0)
            alive = fired if alive is None else alive | fired
    return alive


class _Rows:
    """Rows of a tensor as a dataset that DataLoader asks for a batch's indices at once
    (`__getitems__`): one indexing a batch, not one per token and a stack."""

    def __init__(self, x):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitems__(self, indices):
        return self.x[indices]


def _batch_loader(x_train, batch_size: int, seed: int):
    """Shuffled batches (x,) of x_train, the very batches DataLoader(TensorDataset(x_train),
    shuffle=True, generator seeded with `seed`) draws (same sampler and random stream)."""
    import torch

    return torch.utils.data.DataLoader(
        _Rows(x_train), batch_size=batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(seed), collate_fn=lambda batch: (batch,),
    )  # fmt: skip


def train_topk_sae(
    tokens: np.ndarray,
    *,
    expansion: int = 4,
    k: int = 16,
    epochs: int = 5,
    lr: float = 3e-3,
    batch_size: int = 256,
    seed: int = 0,
    scaling: str = "global",
    aux_penalty: float = 0.0,
    holdout: float = 0.1,
    dead_warn: float = 0.5,
    device: str = "cpu",
    name: str = "layer",
) -> tuple[SparseDictionary, pd.DataFrame]:
    """Train one TopK sparse autoencoder on tokens [n, unit]; (dictionary, training curve).

    expansion * unit latents, k active per token; Adam at `lr`, `epochs` passes over the
    training tokens in shuffled batches; loss = mean squared error plus `aux_penalty` times
    overcomplete's AuxK term (which trains latents that have stopped firing; Gao et al. use
    1/32: on the toy model it did not lower the dead fraction and cost 1.5x the time, so it
    is off by default). `seed` fixes the held-out split, the initialisation and the batch
    order (the unit resampled between SAE seeds is the whole training run). A fraction
    `holdout` of the tokens (chosen by `seed`) is held out: `fvu` is measured on them.
    The defaults train one layer of the demo's toy model (width 128, 16,384 tokens) in 3-4
    CPU-seconds to a held-out FVU of 0.03-0.04 with 22-31% dead latents (bench_sae.py);
    the batches are drawn as DataLoader(TensorDataset(x), shuffle=True) draws them
    (`_batch_loader`), so a seed gives the same dictionary as before that loader.

    The curve has one row an epoch: step (optimiser steps so far), loss (the epoch's mean),
    fvu (held out, eval mode) and dead_fraction (latents that fired on no token that
    epoch). The dictionary's meta holds the settings and the final fvu and dead_fraction
    (latents active on no training token). A loss that turns NaN or infinite, or a
    dictionary whose latents are all dead, raises an error naming `name` (the layer); a
    dead fraction above `dead_warn` is logged as a warning.
    """
    from importlib.metadata import version

    import torch

    oc = _overcomplete_sae()
    x_all = _check_tokens(tokens, name)
    n, n_units = x_all.shape
    n_latents = int(expansion) * n_units
    if not 1 <= k <= n_latents:
        raise ValueError(f"{name}: k={k} must be between 1 and the {n_latents} latents")
    if not 0 <= holdout < 1:
        raise ValueError(f"{name}: holdout={holdout} must be in [0, 1)")
    order = np.random.default_rng(seed).permutation(n)
    n_held = int(round(holdout * n))
    train_idx, held_idx = order[n_held:], order[:n_held]
    if len(train_idx) < batch_size:
        raise ValueError(
            f"{name}: {len(train_idx)} training tokens, fewer than one batch ({batch_size})"
        )
    mean, scale = standardisation(x_all[train_idx], scaling)
    xs = torch.from_numpy(((x_all - mean) / scale).astype(np.float32))
    x_train = xs[torch.from_numpy(train_idx)]
    x_eval = xs[torch.from_numpy(held_idx)] if n_held else x_train

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # Initialised on the CPU whatever the device, so a seed gives the same start anywhere.
        model = oc.TopKSAE(n_units, nb_concepts=n_latents, top_k=int(k), device="cpu")
    model.to(device)
    loader = _batch_loader(x_train, batch_size, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = [0]
    epoch_log = {"loss": 0.0, "batches": 0, "alive": torch.zeros(n_latents, dtype=torch.bool)}

    def criterion(x, x_hat, pre_codes, codes, dictionary):
        steps[0] += 1
        if aux_penalty:
            loss = oc.losses.top_k_auxiliary_loss(
                x, x_hat, pre_codes, codes, dictionary, penalty=aux_penalty
            )
        else:
            loss = (x - x_hat).square().mean()
        value = loss.item()
        if not np.isfinite(value):
            raise FloatingPointError(
                f"{name}: the sparse autoencoder's loss is {value} at step {steps[0]} "
                f"(seed {seed}, lr {lr}); lower the learning rate or check this layer's tokens"
            )
        # what train_sae's monitoring=1 logs (the epoch's mean loss, its dead latents),
        # without the per-step R2 and L0 it would also compute
        epoch_log["loss"] += value
        epoch_log["batches"] += 1
        epoch_log["alive"] |= (codes > 0).any(dim=0).cpu()
        return loss

    rows = []
    x_eval_dev = x_eval.to(device)
    for epoch in range(epochs):
        epoch_log.update(loss=0.0, batches=0, alive=torch.zeros(n_latents, dtype=torch.bool))
        oc.train_sae(model, loader, criterion, optimizer, nb_epochs=1, monitoring=0, device=device)
        model.eval()
        fvu = _fvu(model, x_eval_dev, 4096)
        model.train()
        dead = 1.0 - epoch_log["alive"].float().mean().item()
        rows.append((steps[0], epoch_log["loss"] / epoch_log["batches"], fvu, dead))
        log.info("%s: epoch %d, loss %.4g, fvu %.4f, dead %.3f", name, epoch + 1, *rows[-1][1:])
        if dead >= 1.0:
            break  # reported below with the final pass
    model.eval()
    dead_fraction = 1.0 - float(_alive(model, x_train.to(device), 4096).float().mean())
    fvu = _fvu(model, x_eval_dev, 4096)
    if dead_fraction >= 1.0:
        raise RuntimeError(
            f"{name}: every one of the {n_latents} latents of the sparse autoencoder is dead "
            f"(active on no training token; seed {seed}); check this layer's tokens "
            "(constant activations?) or the training settings"
        )
    if dead_fraction > dead_warn:
        log.warning(
            "%s: %.0f%% of the %d latents are dead (active on no training token; seed %d)",
            name, 100 * dead_fraction, n_latents, seed,
        )  # fmt: skip
    _placed(model, "cpu")
    training = pd.DataFrame(rows, columns=TRAINING_COLUMNS)
    meta = {
        "layer": name, "expansion": int(expansion), "k": int(k), "seed": int(seed),
        "epochs": int(epochs), "lr": float(lr), "batch_size": int(batch_size),
        "scaling": scaling, "aux_penalty": float(aux_penalty), "holdout": float(holdout),
        "n_tokens": int(n), "n_units": int(n_units), "n_latents": int(n_latents),
        "fvu": fvu, "dead_fraction": dead_fraction,
        "library": f"overcomplete {version('overcomplete')}",
    }  # fmt: skip
    return SparseDictionary(model, mean, scale, meta, training), training


def save_dictionary(path_dir: str | Path, dictionary: SparseDictionary, meta: dict | None = None):
    """Write `dictionary.safetensors`, `dictionary.json` (meta) and `training.tsv` into path_dir.

    The safetensors file holds the autoencoder's state dict and the standardisation
    (standardise.mean, standardise.scale); `meta` adds keys (model, dataset seed, ...) to the
    dictionary's own. Each file is written atomically.
    """
    import torch
    from safetensors.torch import save_file

    path_dir = Path(path_dir)
    path_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in dictionary.model.state_dict().items()}
    tensors[_MEAN] = torch.from_numpy(np.ascontiguousarray(dictionary.mean, dtype=np.float32))
    tensors[_SCALE] = torch.from_numpy(np.ascontiguousarray(dictionary.scale, dtype=np.float32))
    full_meta = {**dictionary.meta, **(meta or {})}
    with atomic_path(path_dir / DICTIONARY_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"meta": json.dumps(full_meta, sort_keys=True)})
    with atomic_path(path_dir / META_FILE) as tmp:
        tmp.write_text(json.dumps(full_meta, indent=2, sort_keys=True) + "\n")
    with atomic_path(path_dir / TRAINING_FILE) as tmp:
        dictionary.training[TRAINING_COLUMNS].to_csv(tmp, sep="\t", index=False)


def load_dictionary(path_dir: str | Path) -> SparseDictionary:
    """The dictionary `save_dictionary` wrote into path_dir (model on the CPU, eval mode)."""
    from safetensors.torch import load_file

    path_dir = Path(path_dir)
    meta = json.loads((path_dir / META_FILE).read_text())
    tensors = load_file(str(path_dir / DICTIONARY_FILE))
    mean = tensors.pop(_MEAN).numpy()
    scale = tensors.pop(_SCALE).numpy()
    oc = _overcomplete_sae()
    model = oc.TopKSAE(int(meta["n_units"]), nb_concepts=int(meta["n_latents"]), top_k=meta["k"])
    model.load_state_dict(tensors)
    model.eval()
    training = pd.read_csv(path_dir / TRAINING_FILE, sep="\t")
    return SparseDictionary(model, mean, scale, meta, training)


def encode(
    dictionary: SparseDictionary,
    activations: np.ndarray,
    *,
    batch_size: int = 8192,
    device: str = "cpu",
) -> np.ndarray:
    """Latent activations float32 [n, latent] of activations [n, unit] (k nonzero a row)."""
    import torch

    x = _check_tokens(activations, str(dictionary.meta.get("layer", "layer")))
    if x.shape[1] != dictionary.mean.shape[0]:
        raise ValueError(
            f"{dictionary.meta.get('layer')}: activations have {x.shape[1]} units, the "
            f"dictionary was trained on {dictionary.mean.shape[0]}"
        )
    model = _placed(dictionary.model, device)
    out = np.empty((x.shape[0], dictionary.n_latents), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = (x[start : start + batch_size] - dictionary.mean) / dictionary.scale
            xb = torch.from_numpy(np.asarray(xb, dtype=np.float32)).to(device)
            out[start : start + len(xb)] = model.encode(xb)[1].cpu().numpy()
    _placed(dictionary.model, "cpu")
    return out
