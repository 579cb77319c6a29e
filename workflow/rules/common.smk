"""Helpers shared by the rules: config validation, the vocabulary, models, targets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from vlmbinding.config import ConfigError, validate_config  # noqa: E402
from vlmbinding.vocab import Vocabulary  # noqa: E402
from vlmbinding import dataset as ds  # noqa: E402

REPO = Path(workflow.basedir)
ENVS = REPO / "envs"


def _check_config(config):
    """Schema first, then the checks a schema cannot express; exit with the key named."""
    try:
        validate_config(config, REPO / "config" / "schema.yaml")
        dataset = config["dataset"]
        try:
            vocab = Vocabulary.from_config(dataset)
        except ValueError as e:
            raise ConfigError(f"dataset: {e}") from None
        most = min(len(vocab.shapes), len(vocab.colors), len(vocab.positions))
        if max(dataset["object_counts"]) > most:
            raise ConfigError(
                f"dataset.object_counts: {max(dataset['object_counts'])} objects per image, "
                f"but shapes, colours and positions are distinct within an image and the "
                f"smallest vocabulary has {most} values"
            )
        names = [m["name"] for m in config["models"]]
        if len(set(names)) != len(names):
            raise ConfigError(f"models: model names must be unique, got {names}")
        if dataset["external"]:
            _check_external(dataset["external"], vocab)
    except (ConfigError, ds.DatasetError) as e:
        raise WorkflowError(str(e)) from None
    return vocab


def _check_external(external, vocab):
    """Validate a user's dataset at start-up, so a defect stops the run before any job."""
    objects = ds.read_objects_table(external["objects"])
    ds.validate_external(
        objects,
        external["images"],
        vocab,
        source=f"dataset.external ({external['objects']})",
    )


VOCAB = _check_config(config)
FEATURES = VOCAB.features


def dataset_params():
    """The dataset block as a plain, sorted dict (tracked for reruns)."""
    return {k: config["dataset"][k] for k in sorted(config["dataset"])}


def all_targets():
    return [
        "results/dataset/images.parquet",
        "results/dataset/objects.parquet",
    ]
