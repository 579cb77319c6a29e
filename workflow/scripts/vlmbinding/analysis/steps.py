"""The superposition analysis step by step, from the workflow's files to its tables.

Each analysis rule script reads its Snakemake inputs and params, calls one function here
and writes what it returns; `benchmarks/bench_analysis.py` and `bench_specification.py`
time the same functions, so a benchmark measures what the workflow runs. The keyword
arguments are named as the rules' `params:` blocks name them (`top_k`, `reduce`, `tokens`,
`bootstrap`, ...), so a block passes as `**params`. Torch-free: the store is read through
`vlmbinding.extraction.store`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vlmbinding.data.reading import dataset_presence, open_checked_store
from vlmbinding.data.vocab import Vocabulary, all_pairs
from vlmbinding.extraction import store as st

Paths = Sequence[str | Path]


def dataset_and_store(
    images, objects, store, vocab: Vocabulary
) -> tuple[list[str], np.ndarray, object]:
    """(image ids, presence [image, feature], the opened store), the store checked to hold
    the rows of images.parquet in order."""
    image_ids, presence = dataset_presence(images, objects, vocab)
    return image_ids, presence, open_checked_store(store, image_ids)


def layer_neurons(
    images, objects, store, layer: int, vocab: Vocabulary, top_k: int, reduce: str, tokens: str
) -> pd.DataFrame:
    """Rule neuron_statistics: one block's neurons (affinities, entropy, top images) from
    its activations reduced over each image's tokens (METHOD.md 2-3)."""
    from vlmbinding.analysis.neurons import neuron_table

    image_ids, presence, root = dataset_and_store(images, objects, store, vocab)
    acts = st.reduced_layer(root, layer, reduce, tokens)
    return neuron_table(layer, acts, presence, vocab.features, image_ids, top_k)


def resample_entropy(
    images,
    objects,
    store,
    layers: Sequence[int],
    vocab: Vocabulary,
    top_k: int,
    reduce: str,
    tokens: str,
    threshold: float,
    n_draws: int,
    seed: int,
) -> pd.DataFrame:
    """Rule resample_entropy: the median entropy and the share under `threshold` bits over
    the neurons of `layers`, on the full image set and on half samples of the images (the
    unit resampled: the image; `controls.entropy_resampling.half_sample_table`)."""
    from vlmbinding.controls.entropy_resampling import half_sample_table

    _, presence, root = dataset_and_store(images, objects, store, vocab)
    acts = (st.reduced_layer(root, layer, reduce, tokens) for layer in sorted(set(layers)))
    return half_sample_table(acts, presence, top_k, threshold, n_draws, seed)


def block_table(step, inputs, layer, vocabulary: Mapping, settings: Mapping) -> pd.DataFrame:
    """A per-block step (`layer_neurons`, `layer_specifications`) run as its rule runs it:
    on the rule's inputs (`inputs.images`, `.objects`, `.store`), its `layer` wildcard, its
    vocabulary params and its settings block, passed as keywords."""
    vocab = Vocabulary.from_config(vocabulary)
    return step(inputs.images, inputs.objects, inputs.store, int(layer), vocab, **settings)


def gather_tables(tables: Paths) -> pd.DataFrame:
    """Rule gather_neurons: the per-block tables in one, in the order given."""
    return pd.concat([pd.read_parquet(path) for path in tables], ignore_index=True)


def score_superposition(
    neurons, vocab: Vocabulary, n_neurons: int, ratio_threshold: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule score_superposition: (the n_neurons lowest-entropy neurons, S of every feature
    pair over them) from the gathered neuron table (METHOD.md 4)."""
    from vlmbinding.analysis.neurons import select_feature_neurons, superposition_scores

    selected = select_feature_neurons(pd.read_parquet(neurons), n_neurons)
    pairs = all_pairs(vocab.features)
    return selected, superposition_scores(selected, vocab.features, pairs, ratio_threshold)


def measure_separability(images, objects, store, vocab: Vocabulary, pca_variance: float):
    """Rule measure_separability: D and M of every feature pair in the embedding space,
    full and PCA (METHOD.md 5)."""
    from vlmbinding.analysis.separability import separability_table

    _, presence, root = dataset_and_store(images, objects, store, vocab)
    pairs = all_pairs(vocab.features)
    return separability_table(st.embeddings(root), presence, vocab.features, pairs, pca_variance)


def correlate_superposition(
    superposition,
    separability,
    vocab: Vocabulary,
    bootstrap: int,
    permutations: int,
    seed: int,
    primary: dict | None = None,
) -> pd.DataFrame:
    """Rule correlate_superposition: S against D and M with jackknife intervals (features
    left out) and Mantel tests (feature labels permuted) (METHOD.md 6); the row of the test
    declared in advance (`primary`, config analysis.primary) marked (`mark_primary`)."""
    from vlmbinding.analysis.correlation import correlation_table, mark_primary

    table = correlation_table(
        pd.read_parquet(superposition),
        pd.read_parquet(separability),
        vocab.feature_kinds,
        n_boot=bootstrap,
        n_perm=permutations,
        seed=seed,
    )
    return mark_primary(table, primary)


def layer_specifications(
    images,
    objects,
    store,
    layer: int,
    vocab: Vocabulary,
    top_k: Sequence[int],
    reduce: Sequence[str],
    tokens: Sequence[str],
) -> pd.DataFrame:
    """Rule specification_neurons: one block's affinities and entropy under every top_k,
    reduce and tokens choice (the top_k values larger than the dataset dropped)."""
    from vlmbinding.analysis.specification import layer_affinity_grid, usable_top_ks

    image_ids, presence, root = dataset_and_store(images, objects, store, vocab)
    return layer_affinity_grid(
        layer,
        st.layer_slice(root, layer),
        presence,
        vocab.features,
        usable_top_ks(top_k, len(image_ids)),
        reductions=reduce,
        token_sets=tokens,
        n_prefix=st.n_prefix_tokens(root),
    )


def specification_overlaps(
    images,
    objects,
    store,
    vocab: Vocabulary,
    pools: Mapping[str, Sequence[int]],
    reduce: Sequence[str],
    tokens: Sequence[str],
    m: int | None,
    n_null: int,
    seed: int,
    decorrelate: bool,
) -> pd.DataFrame:
    """Rule specification_overlap: the co-tuned neuron overlap z of every pair under every
    layer pool, reduction and token set (`specification_overlap.overlap_grid`)."""
    from vlmbinding.analysis.sharing_stage import object_counts
    from vlmbinding.analysis.specification_overlap import overlap_grid

    image_ids, presence, root = dataset_and_store(images, objects, store, vocab)
    counts = object_counts(pd.read_parquet(objects), image_ids)
    return overlap_grid(
        lambda layer, how, toks: st.reduced_layer(root, layer, how, toks),
        presence,
        vocab.features,
        counts,
        pools,
        reduce,
        tokens,
        m=m,
        n_null=n_null,
        seed=seed,
        decorrelate=decorrelate,
    )


def specification_omegas(
    images,
    objects,
    store,
    vocab: Vocabulary,
    pools: Mapping[str, Sequence[int]],
    canvas: Sequence[int],
    preprocess: Mapping,
    n_null: int,
    n_bins: int,
    seed: int,
) -> pd.DataFrame:
    """Rule specification_omega: the encoding geometry's neuron sharing omega (value, z) of
    every pair under every layer pool (`specification_omega.omega_grid`), from the patch
    tokens inside each object's box (a tokens store); `canvas` the generated images'
    (width, height), `preprocess` the model's (whether it crops to a square)."""
    from vlmbinding.analysis.geometry_stage import image_sizes, object_masks
    from vlmbinding.analysis.specification_omega import omega_grid
    from vlmbinding.data.crop import crops_to_square

    image_ids, _, root = dataset_and_store(images, objects, store, vocab)
    images_table, objects_table = pd.read_parquet(images), pd.read_parquet(objects)
    prefix = st.n_prefix_tokens(root)
    masks = object_masks(
        objects_table,
        image_sizes(images_table, *canvas),
        crops_to_square(preprocess),
        root.attrs["token_grid"],
    )
    return omega_grid(
        lambda layer: st.layer_slice(root, layer)[:, prefix:, :],
        pools,
        objects_table,
        image_ids,
        vocab.features,
        masks,
        n_null=n_null,
        n_bins=n_bins,
        seed=seed,
    )


def assemble_specifications(
    layers: Paths,
    separability,
    vocab: Vocabulary,
    pools: Mapping[str, Sequence[int]],
    grid: Mapping,
    ratio_threshold: float,
    main: Mapping | None = None,
    overlap=None,
    omega=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule assemble_specifications: (r(S, D) and r(S, M) under every specification, the
    summary of their signs at `grid["alpha"]` with the joint test of the whole curve).
    `grid` is the config's robustness block (n_neurons, space, subset, bootstrap,
    permutations, seed, alpha); `main` the main analysis's choices, marked in the table.
    With `overlap` (the file of `specification_overlaps`; robustness.measure has overlap)
    the overlap z's specifications follow S's, measure 'overlap', summarised and tested
    on their own with the same feature permutations; with `omega` (the file of
    `specification_omegas`) the neuron sharing's z likewise, measure 'omega', its main
    specification the pool of the analysed blocks.
    The bootstrap resamples features; the Mantel test and the joint test permute feature
    labels (one permutation applied to every specification at once)."""
    from vlmbinding.analysis.specification import specification_summary, specification_table
    from vlmbinding.analysis.specification_joint import joint_summary

    table, a, b = specification_table(
        gather_tables(layers),
        pd.read_parquet(separability),
        vocab.feature_kinds,
        pools,
        grid["n_neurons"],
        spaces=grid["space"],
        subsets=grid["subset"],
        ratio_threshold=ratio_threshold,
        n_boot=grid["bootstrap"],
        n_perm=grid["permutations"],
        seed=grid["seed"],
        main=main,
        keep_matrices=True,
    )
    from vlmbinding.analysis.specification_omega import OMEGA_REDUCE, OMEGA_TOKENS
    from vlmbinding.analysis.specification_overlap import overlap_specification_table

    omega_main = main and dict(main) | {"reduce": OMEGA_REDUCE, "tokens": OMEGA_TOKENS}
    for measure, path, its_main in (("overlap", overlap, main), ("omega", omega, omega_main)):
        if path is None:
            continue
        more, a2, b2 = overlap_specification_table(
            pd.read_parquet(path),
            pd.read_parquet(separability),
            vocab.feature_kinds,
            spaces=grid["space"],
            subsets=grid["subset"],
            n_boot=grid["bootstrap"],
            n_perm=grid["permutations"],
            seed=grid["seed"],
            main=its_main,
            measure=measure,
        )
        table = pd.concat([table, more], ignore_index=True)
        a, b = np.concatenate([a, a2]), np.concatenate([b, b2])
    joint = joint_summary(
        table, a, b, vocab.feature_kinds, grid["permutations"], grid["seed"], grid["alpha"]
    )
    summary = specification_summary(table, grid["alpha"])
    summary = summary.merge(joint, on=["measure", "metric"], how="left")
    return table, summary
