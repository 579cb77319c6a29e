"""Rule score_superposition: select the feature neurons and score every feature pair."""

from vlmbinding.analysis.steps import score_superposition
from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
selected, scores = score_superposition(snakemake.input.neurons, vocab, **snakemake.params.selection)
write_parquet(selected, snakemake.output.feature_neurons)
write_parquet(scores, snakemake.output.superposition)
