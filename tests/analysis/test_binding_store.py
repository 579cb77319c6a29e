"""The binding test reads the image embeddings from the activation store
and gets what re-encoding every image gets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from helpers import tiny_model

from vlmbinding.analysis import binding as bd
from vlmbinding.analysis.gradcam import text_embeddings
from vlmbinding.data.toyshapes import generate_dataset
from vlmbinding.data.vocab import Vocabulary
from vlmbinding.extraction import recording as act
from vlmbinding.extraction.store import open_store


def test_accuracy_from_the_store_equals_re_encoding_the_images(tmp_path):
    vocab = Vocabulary()
    images, objects = generate_dataset(tmp_path / "images", vocab, [2, 3], 4, seed=1)
    loaded = tiny_model(seed=2)
    paths, ids = images["path"].tolist(), images["image_id"].astype(str).tolist()
    act.extract_activations(loaded, paths, ids, tmp_path / "s.zarr", batch_size=3)
    stored = open_store(tmp_path / "s.zarr")["embeddings"][:]

    def encode_texts(texts):
        return text_embeddings(loaded.model, loaded.tokenizer, texts).numpy()

    trials = bd.swapped_caption_trials(objects)
    from_store, acc_store = bd.swapped_caption_test(
        trials, ids, stored, encode_texts, vocab.features
    )
    # the old path: every image of a trial encoded again with the model's preprocessing
    with torch.no_grad():
        again = loaded.model.encode_image(act.load_images(paths, loaded.preprocess)).numpy()
    re_encoded, acc_again = bd.swapped_caption_test(
        trials, ids, again, encode_texts, vocab.features
    )
    np.testing.assert_allclose(from_store["sim_true"], re_encoded["sim_true"], atol=1e-5)
    np.testing.assert_allclose(from_store["sim_swapped"], re_encoded["sim_swapped"], atol=1e-5)
    assert from_store["correct"].tolist() == re_encoded["correct"].tolist()
    for k in ("overall", "per_count", "per_pair"):
        pd.testing.assert_frame_equal(acc_store[k], acc_again[k])
    assert len(trials) == 4 * 1 + 4 * 3
