"""Rule measure_separability: D and M of every feature pair, full and PCA space."""

from vlmbinding.analysis.separability import separability_table
from vlmbinding.atomic import write_parquet
from vlmbinding.data.reading import dataset_presence, open_checked_store
from vlmbinding.data.vocab import Vocabulary, all_pairs
from vlmbinding.extraction.store import embeddings as stored_embeddings
from vlmbinding.logs import to_file

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
features = vocab.features
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
embeddings = stored_embeddings(open_checked_store(snakemake.input.store, image_ids))
table = separability_table(
    embeddings, presence, features, all_pairs(features), snakemake.params.pca_variance
)
write_parquet(table, snakemake.output.table)
