"""Maximal marginal relevance (MMR) re-ranking, in graph (TF core ops only).

Greedy: each step takes the candidate maximising
    (1 - diversity) * relevance - diversity * max cosine to the items already taken,
where relevance is the score rescaled to [0, 1] within the request's pool.
diversity 0 keeps the score order exactly (ties: the earlier candidate).
"""

from __future__ import annotations

import tensorflow as tf

NEG_INF = float("-inf")


def rerank(scores: tf.Tensor, vectors: tf.Tensor, diversity: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Chooses k of M pooled candidates per row.

    Args:
      scores: [B, M] float32, best first (from top-k); -inf = not a candidate.
      vectors: [B, M, D] float32 unit item vectors of the pool.
      diversity: [B] float32 in [0, 1].
      k: scalar int32, 1 <= k <= M.

    Returns:
      ([B, k] int32 positions in the pool, [B, k] bool: a real candidate was left).
    """
    valid = tf.math.is_finite(scores)
    low = tf.reduce_min(tf.where(valid, scores, float("inf")), axis=1, keepdims=True)
    high = tf.reduce_max(tf.where(valid, scores, NEG_INF), axis=1, keepdims=True)
    relevance = tf.math.divide_no_nan(scores - low, high - low)
    relevance = tf.where(valid, relevance, 0.0)
    weight = diversity[:, None]
    batch = tf.shape(scores)[0]
    pool = tf.shape(scores)[1]

    def step(i, taken, max_similarity, picks, found):
        value = (1.0 - weight) * relevance - weight * max_similarity
        value = tf.where(tf.logical_or(taken, tf.logical_not(valid)), NEG_INF, value)
        pick = tf.argmax(value, axis=1, output_type=tf.int32)
        ok = tf.math.is_finite(tf.reduce_max(value, axis=1))
        chosen = tf.gather(vectors, pick, batch_dims=1)  # [B, D]
        similarity = tf.einsum("bmd,bd->bm", vectors, chosen)
        max_similarity = tf.where(tf.equal(i, 0), similarity, tf.maximum(max_similarity, similarity))
        taken = tf.logical_or(taken, tf.one_hot(pick, pool, on_value=True, off_value=False))
        return i + 1, taken, max_similarity, picks.write(i, pick), found.write(i, ok)

    _, _, _, picks, found = tf.while_loop(
        lambda i, *_: i < k,
        step,
        (
            tf.constant(0),
            tf.zeros([batch, pool], tf.bool),
            tf.zeros([batch, pool], tf.float32),
            tf.TensorArray(tf.int32, size=k, element_shape=tf.TensorShape([None])),
            tf.TensorArray(tf.bool, size=k, element_shape=tf.TensorShape([None])),
        ),
    )
    return tf.transpose(picks.stack(), [1, 0]), tf.transpose(found.stack(), [1, 0])
