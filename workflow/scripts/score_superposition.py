"""Rule score_superposition: select the feature neurons and score every feature pair."""

import pandas as pd

from vlmbinding.analysis.neurons import select_feature_neurons, superposition_scores
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary, all_pairs
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
p, features = snakemake.params.selection, vocab.features
selected = select_feature_neurons(pd.read_parquet(snakemake.input.neurons), p["n_neurons"])
write_parquet(selected, snakemake.output.feature_neurons)
scores = superposition_scores(selected, features, all_pairs(features), p["ratio_threshold"])
write_parquet(scores, snakemake.output.superposition)
