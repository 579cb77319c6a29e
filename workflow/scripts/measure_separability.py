"""Rule measure_separability: D and M of every feature pair, full and PCA space."""

from vlmbinding.atomic import write_parquet
from vlmbinding.io import dataset_presence, open_checked_store
from vlmbinding.logs import to_file
from vlmbinding.separability import separability_table
from vlmbinding.store import embeddings as stored_embeddings
from vlmbinding.vocab import Vocabulary, all_pairs

to_file(snakemake.log[0])
vocab = Vocabulary.from_config(snakemake.params.vocabulary)
features = vocab.features
image_ids, presence = dataset_presence(snakemake.input.images, snakemake.input.objects, vocab)
embeddings = stored_embeddings(open_checked_store(snakemake.input.store, image_ids))
table = separability_table(
    embeddings, presence, features, all_pairs(features), snakemake.params.pca_variance
)
write_parquet(table, snakemake.output.table)
