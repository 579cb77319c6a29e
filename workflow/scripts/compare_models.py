"""Rule compare_models: one table and one figure across the config's models."""

import pandas as pd

from vlmbinding.analysis.cross_model import (
    base_differences,
    model_summary,
    pair_table,
    replicate_means,
    sharing_summary,
)
from vlmbinding.analysis.cross_model_sharing import (
    SHARING_SUMMARY_COLUMNS,
    pool_sharing_replicates,
    sharing_correlation_rows,
    sharing_pairs_by_key,
)
from vlmbinding.analysis.pooling import pool_replicate_entropy, pool_replicate_pairs
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file
from vlmbinding.report import figures
from vlmbinding.report.pages import html_page

to_file(snakemake.log[0])
kinds = Vocabulary.from_config(snakemake.params.vocabulary).feature_kinds
entries = snakemake.params.entries  # per model, in model order
rows, pairs_by_base, sharing_by_base, sharing_rows = [], {}, {}, []
zero_shots = iter(snakemake.input.zero_shot)  # one per toy model, in model order
sharing = bool(snakemake.input.sharing)  # sharing.enabled: one table per model
# one per model with a text tower, in model order (none for a vision-only tower)
bindings = iter(zip(snakemake.input.binding, snakemake.input.binding_correlation))
for i, model in enumerate(entries["models"]):
    zero_shot = next(zero_shots) if entries["toy"][i] else None
    binding, binding_correlation = next(bindings) if entries["text"][i] else (None, None)
    separability = pd.read_parquet(snakemake.input.separability[i])
    pairs = pair_table(pd.read_parquet(snakemake.input.superposition[i]), separability, kinds)
    trained = entries["roles"][i] == "trained"
    if trained:
        pairs_by_base.setdefault(entries["bases"][i], []).append(pairs)
    overlap = {}
    if sharing:  # the overlap z (neuron basis) beside S; every sharing row in its own table
        correlation = pd.read_parquet(snakemake.input.sharing_correlation[i])
        overlap = sharing_summary(correlation)
        sharing_rows.append(sharing_correlation_rows(model, correlation))
        if trained:
            table = pd.read_parquet(snakemake.input.sharing[i])
            keyed = sharing_pairs_by_key(table, separability, kinds)
            sharing_by_base.setdefault(entries["bases"][i], []).append(keyed)
    rows.append(
        model_summary(
            model,
            pd.read_parquet(snakemake.input.correlation[i]),
            pd.read_parquet(snakemake.input.neurons[i]),
            pd.read_csv(binding, sep="\t") if binding else None,
            pd.read_parquet(binding_correlation) if binding_correlation else None,
            pd.read_csv(zero_shot, sep="\t") if zero_shot else None,
            pairs=pairs,
        )
        | overlap
    )
summary = pd.DataFrame(rows)
summary.insert(1, "base", entries["bases"])
summary.insert(2, "role", entries["roles"])
summary.insert(3, "training_seed", [t for t, _ in entries["seeds"]])
summary.insert(4, "dataset_seed", [d for _, d in entries["seeds"]])
summary.to_csv(snakemake.output.table, sep="\t", index=False)
# features and seeds resampled together: the error the seeds share counts once
stats = snakemake.params.statistics
pooled = pool_replicate_pairs(pairs_by_base, stats["bootstrap"], stats["seed"])
if sharing_by_base:  # every measure x basis x layers of sharing: shared features once
    more = pool_sharing_replicates(sharing_by_base, stats["bootstrap"], stats["seed"])
    pooled = pd.concat([pooled, more], ignore_index=True)
pooled.to_csv(snakemake.output.pooled, sep="\t", index=False)
per_model = (
    pd.concat(sharing_rows, ignore_index=True)
    if sharing_rows
    else pd.DataFrame(columns=SHARING_SUMMARY_COLUMNS)
)
if snakemake.output.get("sharing"):  # results/comparison/sharing.tsv where the rule names it
    per_model.to_csv(snakemake.output.sharing, sep="\t", index=False)
# images (one half sample for all seeds) and seeds resampled: shared images counted once
halves = iter(snakemake.input.entropy_halves)  # one per replicate pooled, in model order
halves_by_base = {}
for base, pooled_here in zip(entries["bases"], entries["entropy_replicates"]):
    if pooled_here:
        halves_by_base.setdefault(base, []).append(pd.read_parquet(next(halves)))
entropy = pool_replicate_entropy(halves_by_base, stats["bootstrap"], stats["seed"])
entropy.to_csv(snakemake.output.entropy, sep="\t", index=False)
means = replicate_means(summary)
means.to_csv(snakemake.output.means, sep="\t", index=False)
differences = base_differences(summary)
differences.to_csv(snakemake.output.differences, sep="\t", index=False)
figures.save_figure(
    figures.replicate_forest(summary, pooled),
    snakemake.output.replicates_png,
    snakemake.output.replicates_pdf,
)
figures.save_figure(figures.model_comparison(summary), snakemake.output.png, snakemake.output.pdf)
with open(snakemake.output.html, "w") as f:
    f.write(
        html_page(
            "Models compared",
            [
                (
                    "One row per model",
                    "r_D, r_M: Pearson r of S with D and M (with _low/_high the 95% interval "
                    "of a bootstrap that resamples features, _mantel_p the Mantel p-value "
                    "with features permuted, _rho Spearman) over the pairs "
                    "in `subset`, in the `space` embedding; binding_accuracy: swapped-caption "
                    "test; r_binding: Pearson r of per-pair binding accuracy with S; "
                    "entropies in bits over the analysed neurons; zero_shot_*: toy models, on "
                    "colour-shape-position combinations held out of training; base: the config "
                    "entry a replicate belongs to; role: trained | random; training_seed and "
                    "dataset_seed: the seeds it ran with (empty: not trained here, or a "
                    "dataset brought by the user). With the sharing stage on, r_overlap_D and "
                    "r_overlap_M (with _low/_high and _mantel_p, the same statistics): the "
                    "co-tuned neuron overlap's z (neuron basis) against D and M, beside S's.",
                    summary,
                ),
                (
                    "Every measure of sharing, per model",
                    "With the sharing stage on: each measure of sharing's z (measure, in "
                    "basis neurons or sae, over the blocks in layers: the overlap over the "
                    "analysed pool, the encoding geometry's neuron_sharing (omega) and "
                    "interference (iota) per block) against D and M in the full embedding "
                    "over the pairs without positions: Pearson r, its 95% feature-bootstrap "
                    "interval and the Mantel p with features permuted.",
                    per_model,
                ),
                (
                    "Replicates pooled per base model",
                    "The trained replicates' r pooled, per measure (S, and with the sharing "
                    "stage on every measure of sharing's z, named by measure, basis and "
                    "layers; S's layers are the analysis's): r_pooled is tanh of their mean "
                    "Fisher z; ci_low/ci_high a 95% bootstrap interval that draws the features "
                    "once for all seeds (the pairs among them rebuilt in each) and the seeds "
                    "themselves, so the error the seeds share (which features were sampled) "
                    "counts once; it always contains feature_ci_low/high, the interval with "
                    "features drawn and every seed kept. The spread between seeds on its own: "
                    "r_sd over seeds and seed_ci_low/high, the Student t interval of their mean "
                    "r (k - 1 df).",
                    pooled,
                ),
                (
                    "Entropy pooled over seeds, per base model",
                    "Per base model with two or more trained replicates: the median neuron "
                    "entropy (bits) and the share of neurons under the entropy threshold, "
                    "pooled = the mean over seeds of each seed's value on all images; "
                    "ci_low/ci_high a 95% interval that resamples the images (half samples of "
                    "the images, the same images for every seed on one dataset, so the error "
                    "the seeds share counts once) and the seeds themselves; it always contains "
                    "image_ci_low/high, the images-only interval with every seed kept. The "
                    "spread between seeds on its own: sd over seeds and seed_ci_low/high, the "
                    "Student t interval of their mean (k - 1 df).",
                    entropy,
                ),
                (
                    "Other statistics over seeds, per base model",
                    "The trained replicates' mean of each statistic with a 95% Student t "
                    "interval over the seeds (k - 1 degrees of freedom; the replicate is the "
                    "unit). Over the pairs of the summary's subset: sd_S the spread of S "
                    "(its mean is fixed by its definition, S(f1, f2) = P(f1) + P(f2)), "
                    "mean_n_over_threshold the mean count of neurons whose pair ratio "
                    "exceeds the threshold, mean_D and mean_M; entropy_p10: the 10th "
                    "percentile of the neurons' entropies.",
                    means,
                ),
                (
                    "Base models compared",
                    "For every two base models, the difference of their replicate means "
                    "(a - b) with a 95% Welch t interval and p-value over the replicates "
                    "(k_a, k_b of them; for example with and without hard negatives, "
                    "config/binding-pressure.yaml). With few replicates the intervals are "
                    "wide: an interval that includes 0 means the difference is not shown, not "
                    "that it is absent. The p-values are not corrected for the number of "
                    "statistics and pairs of bases.",
                    differences,
                ),
            ],
        )
    )
