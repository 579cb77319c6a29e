"""Reading the workflow's tables and stores together, checked against each other."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlmbinding.data.vocab import Vocabulary, presence_matrix
from vlmbinding.extraction.store import open_store


def dataset_presence(images_path, objects_path, vocab: Vocabulary) -> tuple[list[str], np.ndarray]:
    """Image ids in images.parquet order and the presence matrix [image, feature]."""
    image_ids = pd.read_parquet(images_path)["image_id"].astype(str).tolist()
    objects = pd.read_parquet(objects_path)
    return image_ids, presence_matrix(objects, image_ids, vocab)


def open_checked_store(path, image_ids: list[str]):
    """The activation store, refusing one whose rows are not these images in this order."""
    root = open_store(path)
    if list(root.attrs["image_ids"]) != list(image_ids):
        raise ValueError(f"{path}: its rows are not the images of images.parquet in order")
    return root
