"""The TFRS retrieval task as the model wires it, against numpy references."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from trainer.models.recommender import full_softmax_candidates


def _task(temperature):
    return tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction=tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
        temperature=temperature, remove_accidental_hits=True,
    )


def _log_softmax(x):
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def test_full_catalogue_softmax_by_hand():
    # Catalogue a=(1,0), b=(0,1), c=(1,1); queries q0=(1,0) -> target a, q1=(0,2) -> target b.
    catalogue = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    query = np.array([[1, 0], [0, 2]], np.float32)
    targets = np.array(["a", "b"])
    allowed = np.array([[True, True, True], [True, True, False]])  # row 1 may not score c
    candidates, ids, mask = full_softmax_candidates(
        tf.constant(catalogue[[0, 1]]), tf.constant(targets), tf.constant(catalogue), tf.constant(["a", "b", "c"]),
        tf.constant(allowed),
    )
    loss = _task(0.5)(tf.constant(query), candidates, candidate_ids=ids, score_mask=mask, compute_metrics=False)
    # Scores / 0.5: row 0 over (a, b, c) = (2, 0, 2) -> -log(e^2 / (e^2 + 1 + e^2));
    # row 1 over (a, b) = (0, 4) -> -log(e^4 / (1 + e^4)).
    row0 = -np.log(np.e**2 / (2 * np.e**2 + 1))
    row1 = -np.log(np.e**4 / (1 + np.e**4))
    assert float(loss) == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_full_softmax_equals_numpy_on_random_data():
    rng = np.random.default_rng(0)
    catalogue = rng.normal(size=(7, 3)).astype(np.float32)
    query = rng.normal(size=(4, 3)).astype(np.float32)
    target_rows = np.array([0, 3, 3, 6])
    ids = np.array([f"i{k}" for k in range(7)])
    allowed = rng.random((4, 7)) > 0.3
    allowed[np.arange(4), target_rows] = True
    candidates, candidate_ids, mask = full_softmax_candidates(
        tf.constant(catalogue[target_rows]), tf.constant(ids[target_rows]), tf.constant(catalogue), tf.constant(ids),
        tf.constant(allowed),
    )
    loss = _task(0.1)(tf.constant(query), candidates, candidate_ids=candidate_ids, score_mask=mask, compute_metrics=False)
    expected = []
    for row, target in enumerate(target_rows):
        scores = query[row] @ catalogue.T / 0.1
        keep = np.flatnonzero(allowed[row])
        expected.append(-_log_softmax(scores[keep])[list(keep).index(target)])
    assert float(loss) == pytest.approx(np.mean(expected), rel=1e-4)


def test_in_batch_logq_correction_by_numpy():
    rng = np.random.default_rng(1)
    query = rng.normal(size=(3, 2)).astype(np.float32)
    positives = rng.normal(size=(3, 2)).astype(np.float32)
    probability = np.array([0.5, 0.1, 0.4], np.float32)
    ids = tf.constant(["x", "y", "z"])
    loss = _task(1.0)(tf.constant(query), tf.constant(positives), candidate_sampling_probability=tf.constant(probability),
                      candidate_ids=ids, compute_metrics=False)
    # logQ: every logit of candidate j loses log(p_j), so popular items are not over-penalised as negatives.
    scores = query @ positives.T - np.log(probability)[None, :]
    expected = np.mean([-_log_softmax(scores[r])[r] for r in range(3)])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    without = _task(1.0)(tf.constant(query), tf.constant(positives), candidate_ids=ids, compute_metrics=False)
    assert float(without) != pytest.approx(float(loss), rel=1e-3)


def test_accidental_hits_are_removed():
    query = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    positives = tf.constant([[1.0, 0.0], [1.0, 0.0]])  # both rows' positive is item "a"
    loss = _task(1.0)(query, positives, candidate_ids=tf.constant(["a", "a"]), compute_metrics=False)
    # Each row's only other candidate is its own item: removed, so loss = -log(1) = 0.
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_in_batch_history_mask_by_hand():
    from trainer.models.recommender import in_batch_history_mask

    history = tf.constant([["b", "x", ""], ["a", "", ""], ["y", "", ""]])
    targets = tf.constant(["a", "b", "c"])
    # Row 0's history holds row 1's positive (b); row 1's holds row 0's (a); the diagonal is always kept.
    assert in_batch_history_mask(history, targets).numpy().tolist() == [
        [True, False, True], [False, True, True], [True, True, True]]


@pytest.mark.parametrize("repeat_aware", [True, False])
def test_model_in_batch_loss_equals_numpy_with_logq_hits_and_history(tiny_data_dir, repeat_aware):
    """`Recommender.retrieval_loss` in in-batch mode, from the model's own query and
    positive vectors: logits / temperature - log q(item) (q = the item's share of
    training events, at least one), other rows holding the same item removed, with
    the repeat head other rows' positives that sit in this row's history removed,
    and rows weighted by `weight` over the batch size."""
    from trainer.config import Config, ModelConfig, RetrievalMode
    from trainer.data import dataset
    from trainer.data import example_schema as es
    from trainer.models.catalogue import Catalogue
    from trainer.training import build_model

    temperature = 0.2
    config = Config(model=ModelConfig(embedding_dim=8, id_embedding_dim=8, gru_units=(8,), dropout=0.0, id_dropout=0.0,
                                      retrieval=RetrievalMode.IN_BATCH, temperature=temperature,
                                      repeat_aware=repeat_aware))
    model = build_model(config, tiny_data_dir, None)
    batch = next(iter(dataset.make_dataset(tiny_data_dir, "train", 32)))
    out = model.forward(batch, training=False)
    positives = model.positive_vectors(model.catalogue_lookup(batch[es.TARGET_ITEM_ID]), out.catalogue, False)
    weight = np.linspace(0.2, 1.0, 32).astype(np.float32)
    loss = float(model.retrieval_loss(out, batch, positives, tf.constant(weight)))

    catalogue = Catalogue.load(tiny_data_dir)
    counts = {str(i): max(int(c), 1) for i, c in zip(catalogue.ids, catalogue.train_counts)}
    total = float(catalogue.train_counts.sum())
    targets = [t.decode() for t in batch[es.TARGET_ITEM_ID].numpy()]
    histories = [{h.decode() for h in row if h} for row in batch[es.HISTORY_ITEM_IDS].numpy()]
    q = np.array([counts[t] / total for t in targets])
    assert len(set(q.round(6))) > 3, "the batch must mix popular and rare items for logQ to matter"
    scores = out.query.numpy() @ positives.numpy().T / temperature

    def reference(logq: bool) -> float:
        total_loss, removed = 0.0, 0
        for r, target in enumerate(targets):
            row = scores[r] - (np.log(q) if logq else 0.0)
            keep = [j for j, other in enumerate(targets)
                    if j == r or (other != target and not (repeat_aware and other in histories[r]))]
            removed += len(targets) - len(keep)
            total_loss += weight[r] * -_log_softmax(row[keep])[keep.index(r)]
        assert removed > 0, "the batch must hold accidental hits (or history items) to remove"
        return total_loss / len(targets)

    assert loss == pytest.approx(reference(logq=True), rel=1e-4)
    assert reference(logq=False) != pytest.approx(reference(logq=True), rel=1e-3)
