"""The candidate tower: unit vectors, the shared OOV row, and content that places unseen items."""

import numpy as np
import tensorflow as tf

from trainer.config import FeatureConfig, ModelConfig
from trainer.features.vocabulary import Vocabulary
from trainer.models.candidate_tower import CandidateTower

NAN = float("nan")


def _tower(use_text):
    tf.keras.utils.set_random_seed(0)
    return CandidateTower(
        Vocabulary("item_id", ("a", "b"), (3, 2)), Vocabulary("category", ("cafe", "bar"), (4, 1)),
        ModelConfig(embedding_dim=6, id_embedding_dim=4, dropout=0.0), FeatureConfig(), use_text=use_text,
    )


def _items(ids, categories, text=None):
    n = len(ids)
    features = {
        "item_id": tf.constant(ids), "category": tf.constant(categories),
        "latitude": tf.constant([40.7] * n), "longitude": tf.constant([-74.0] * n),
        "price": tf.constant([NAN] * n),
    }
    if text is not None:
        features["text_vector"] = tf.constant(text, tf.float32)
    return features


def test_vectors_are_unit_and_unseen_ids_share_one_row():
    tower = _tower(use_text=False)
    vectors = tower(_items(["a", "b", "new-1", "new-2", "a"], ["cafe"] * 5)).numpy()
    assert vectors.shape == (5, 6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # Two unseen ids with the same content get the same vector (the OOV row) ...
    np.testing.assert_allclose(vectors[2], vectors[3], atol=1e-6)
    # ... and known ids their own.
    assert not np.allclose(vectors[0], vectors[2], atol=1e-3)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-3)
    np.testing.assert_allclose(vectors[0], vectors[4], atol=1e-6)


def test_categories_average_and_blank_entries_are_ignored():
    tower = _tower(use_text=False)
    vectors = tower(_items(["a", "a", "a", "a"], ["cafe", "cafe||", " cafe |", "cafe|bar"])).numpy()
    np.testing.assert_allclose(vectors[1], vectors[0], atol=1e-6)
    np.testing.assert_allclose(vectors[2], vectors[0], atol=1e-6)
    assert not np.allclose(vectors[3], vectors[0], atol=1e-3)


def test_text_places_an_item_no_one_has_interacted_with():
    tower = _tower(use_text=True)
    text = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 0.0]])
    vectors = tower(_items(["new-1", "new-2", "new-3"], ["cafe"] * 3, text)).numpy()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # Same (unknown) id, same category and place: only the text tells them apart.
    assert not np.allclose(vectors[0], vectors[1], atol=1e-3)
    # An item without text (a zero vector) gets no text part at all, not the projection's bias:
    # moving the bias moves items with text only.
    tower.text_projection.bias.assign(tf.ones_like(tower.text_projection.bias))
    moved = tower(_items(["new-1", "new-2", "new-3"], ["cafe"] * 3, text)).numpy()
    np.testing.assert_allclose(moved[2], vectors[2], atol=1e-6)
    assert not np.allclose(moved[0], vectors[0], atol=1e-3)


def test_unknown_price_and_place_still_give_a_unit_vector():
    tower = _tower(use_text=False)
    features = _items(["a", "new"], ["", ""])
    features["latitude"] = tf.constant([NAN, NAN])
    features["longitude"] = tf.constant([NAN, NAN])
    vectors = tower(features).numpy()
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_has_text_is_pythons_strip_unicode_whitespace_included():
    from trainer.models.candidate_tower import has_text

    texts = ["", " \t\n", "a", " x ", "\u3000\u00a0", "\x1c\x85", "\u00a0caf\u00e9"]
    assert has_text(tf.constant(texts)).numpy().tolist() == [bool(t.strip()) for t in texts]
