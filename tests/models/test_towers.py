"""Sequence tower masking, repeat head, labels and the joint model's scores."""

import numpy as np
import pytest
import tensorflow as tf

from trainer.config import FeatureConfig, ModelConfig, RetrievalMode
from trainer.data import dataset
from trainer.data import example_schema as es
from trainer.features import spatiotemporal
from trainer.features.vocabulary import Vocabulary
from trainer.models import labels
from trainer.models.recommender import MarginalPointerLoss
from trainer.models.repeat_head import NEG_INF, gate_evidence, repeat_counts
from trainer.models.sequence_tower import SequenceTower
from trainer.training import build_model

NAN = float("nan")


def _batch(ids, times):
    """A raw batch with the given history ids/timestamps ([B, T]); other fields filled in."""
    ids = tf.constant(ids)
    shape = tf.shape(ids)
    mask = tf.not_equal(ids, "")
    nan = tf.fill(shape, NAN)
    return {
        es.HISTORY_ITEM_IDS: ids,
        es.HISTORY_EVENT_TYPES: tf.where(mask, "view", ""),
        es.HISTORY_TIMESTAMPS: tf.constant(times, tf.int64),
        es.HISTORY_UTC_OFFSETS: tf.zeros(shape, tf.int64),
        es.HISTORY_LATITUDES: tf.where(mask, 4.6, nan),
        es.HISTORY_LONGITUDES: tf.where(mask, -74.1, nan),
        es.REQUEST_TIMESTAMP: tf.constant([10_000] * len(times), tf.int64),
        es.REQUEST_UTC_OFFSET: tf.zeros([len(times)], tf.int64),
        es.REQUEST_LATITUDE: tf.constant([4.6] * len(times)),
        es.REQUEST_LONGITUDE: tf.constant([-74.1] * len(times)),
    }


def test_padding_never_changes_the_sequence_output():
    tf.keras.utils.set_random_seed(0)
    tower = SequenceTower(Vocabulary("event_type", ("view",), (1,)), ModelConfig(gru_units=(6, 5)), FeatureConfig())
    rng = np.random.default_rng(0)
    short = _batch([["a", "b", "c", ""], ["a", "", "", ""]], [[1, 50, 900, 0], [7, 0, 0, 0]])
    long = _batch([["a", "b", "c", "", "", "", ""], ["a", "", "", "", "", "", ""]],
                  [[1, 50, 900, 0, 0, 0, 0], [7, 0, 0, 0, 0, 0, 0]])
    vectors = rng.normal(size=(2, 7, 4)).astype(np.float32)
    vectors[0, 3:] = rng.normal(size=(4, 4))  # garbage at padding must not leak in
    f_short, f_long = spatiotemporal.compute(short, FeatureConfig()), spatiotemporal.compute(long, FeatureConfig())
    pos_s, state_s = tower(tf.constant(vectors[:, :4]), short[es.HISTORY_EVENT_TYPES], f_short)
    pos_l, state_l = tower(tf.constant(vectors), long[es.HISTORY_EVENT_TYPES], f_long)
    np.testing.assert_allclose(state_s.numpy(), state_l.numpy(), atol=1e-6)
    np.testing.assert_allclose(pos_s.numpy(), pos_l.numpy()[:, :4], atol=1e-6)
    # Row 1 alone (length 1) gives the same state as inside the padded batch.
    alone = _batch([["a"]], [[7]])
    _, state_alone = tower(tf.constant(vectors[1:, :1]), alone[es.HISTORY_EVENT_TYPES],
                           spatiotemporal.compute(alone, FeatureConfig()))
    np.testing.assert_allclose(state_alone.numpy()[0], state_s.numpy()[1], atol=1e-6)
    assert np.all(pos_l.numpy()[0, 3:] == 0)


def test_repeat_counts_and_labels_by_hand():
    ids = tf.constant([["a", "b", "a", ""], ["c", "", "", ""]])
    mask = tf.not_equal(ids, "")
    assert repeat_counts(ids, mask).numpy().tolist() == [[2, 1, 2, 0], [1, 0, 0, 0]]
    batch = {es.HISTORY_ITEM_IDS: ids, es.TARGET_ITEM_ID: tf.constant(["a", "z"]),
             es.TARGET_VALUE: tf.constant([4.0, NAN])}
    batch[es.TARGET_EVENT_TYPE] = tf.constant(["rating", "rating"])
    assert labels.is_repeat(batch).numpy().tolist() == [1.0, 0.0]
    assert labels.history_matches(batch).numpy().tolist() == [[True, False, True, False], [False] * 4]
    value, weight = labels.rating_values(batch)
    assert value.numpy().tolist() == [4.0, 0.0] and weight.numpy().tolist() == [1.0, 0.0]
    batch[es.TARGET_EVENT_TYPE] = tf.constant(["purchase", "rating"])  # a price is not a rating
    assert labels.rating_values(batch)[1].numpy().tolist() == [0.0, 0.0]


def test_marginal_pointer_loss_by_hand():
    # Logits (0, ln 2, 0, pad): softmax = (1/4, 2/4, 1/4); the target sits at positions 0 and 2,
    # so P(target | repeat) = 1/2 and the loss is ln 2.
    logits = tf.constant([[0.0, np.log(2.0), 0.0, -1e9]])
    matches = tf.constant([[1.0, 0.0, 1.0, 0.0]])
    loss = MarginalPointerLoss(reduction=tf.keras.losses.Reduction.NONE)(matches, logits)
    np.testing.assert_allclose(loss.numpy(), [np.log(2.0)], rtol=1e-6)


def test_gate_evidence_by_hand():
    # Row 0: two events (logits ln 1, ln 3) at scaled log distances 0.4 / 0.2 (the
    # second place unknown), time-of-day cos 0.5 / -0.3, then padding.
    # Row 1: no history at all -> zeros.
    pointer = tf.constant([[np.log(1.0), np.log(3.0), NEG_INF], [NEG_INF, NEG_INF, NEG_INF]], tf.float32)
    mask = tf.constant([[True, True, False], [False, False, False]])
    context = np.zeros([2, 3, 6], np.float32)
    context[0, 0, [0, 2, 3]] = [0.5, 0.4, 1.0]
    context[0, 1, [0, 2, 3]] = [-0.3, 0.2, 0.0]  # place unknown: its distance must be ignored
    evidence = gate_evidence(pointer, mask, tf.constant(context)).numpy()
    np.testing.assert_allclose(evidence[0], [np.log(4.0), np.log(3.0), 0.4, 1.0, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(evidence[1], np.zeros(5))


@pytest.mark.parametrize("retrieval, repeat_aware", [(RetrievalMode.FULL, True), (RetrievalMode.IN_BATCH, False)])
def test_catalogue_scores_are_a_distribution_with_repeat_mass(tiny_data_dir, retrieval, repeat_aware):
    from trainer.config import Config

    config = Config(model=ModelConfig(embedding_dim=8, id_embedding_dim=8, gru_units=(8,), retrieval=retrieval,
                                      repeat_aware=repeat_aware))
    model = build_model(config, tiny_data_dir, None)
    batch = next(iter(dataset.make_dataset(tiny_data_dir, "test", 16)))
    loss = model.compute_loss(batch)
    assert np.isfinite(float(loss))
    scores = model.score_catalogue(batch).numpy()
    assert scores.shape == (16, model.num_items)
    np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0, rtol=1e-4)
    if repeat_aware:
        out = model.forward(batch)
        in_history = model.history_item_mask(out.history_index).numpy()
        gate = tf.sigmoid(out.gate_logit).numpy()
        # All repeat mass sits on the history items: P(history) = p_repeat.
        np.testing.assert_allclose(np.where(in_history, np.exp(scores), 0).sum(axis=1), gate, rtol=1e-4)


def test_training_loss_is_the_likelihood_the_scores_rank_by(tiny_data_dir):
    """At unit weights (no dropout, no behaviour term) compute_loss = -mean log P(target)
    under the very mixture `score_catalogue` ranks by: the model is trained on what it scores."""
    from trainer.config import Config

    config = Config(model=ModelConfig(embedding_dim=8, id_embedding_dim=8, gru_units=(8,), dropout=0.0, id_dropout=0.0,
                                      behaviour_weight=0.0))
    model = build_model(config, tiny_data_dir, None)
    batch = next(iter(dataset.make_dataset(tiny_data_dir, "test", 32)))
    loss = float(model.compute_loss(batch, training=False))
    scores = model.score_catalogue(batch).numpy()
    targets = model.catalogue_lookup(batch[es.TARGET_ITEM_ID]).numpy() - 2
    expected = -scores[np.arange(len(targets)), targets].mean()
    assert loss == pytest.approx(expected, rel=1e-4)
