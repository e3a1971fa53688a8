"""Repeat or explore: a gate and a pointer over the user's own history.

People return to places and re-buy consumables; they also discover. The head
predicts p(repeat) (the next item is one already in the history window) and,
for a repeat, which history position it returns to (attention over the GRU's
per-position outputs). `trainer.models.recommender` mixes this with the
retrieval softmax over items outside the history:
  P(item) = p_repeat * P(item | repeat)        for items in the history,
          = (1 - p_repeat) * P(item | explore) for the others.
"""

from __future__ import annotations

import tensorflow as tf

from trainer.features import spatiotemporal
from trainer.models.sequence_tower import log_distance

NEG_INF = -1e9


def repeat_counts(history_item_ids: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """[B, T] float32: how often each position's item occurs in the history (0 at padding)."""
    same = tf.equal(history_item_ids[:, :, None], history_item_ids[:, None, :])
    same = tf.logical_and(same, mask[:, None, :])
    return tf.reduce_sum(tf.cast(same, tf.float32), axis=-1) * tf.cast(mask, tf.float32)


def pointer_context(features: dict[str, tf.Tensor]) -> tf.Tensor:
    """[B, T, 5] float32: how each history event relates to the request (0 at padding).

    cos of the time-of-day and time-of-week differences between the event and
    the request (people return at the same hours), the log distance from the
    request place to the event's place with a known flag, and the log of how
    many events ago it was. `features` is the dict from `spatiotemporal.compute`.
    """
    mask = features[spatiotemporal.HISTORY_MASK]
    history = features["history_cyclic_time"]
    request = features["request_cyclic_time"][:, None, :]
    same_day_time = history[..., 0] * request[..., 0] + history[..., 1] * request[..., 1]
    same_week_time = history[..., 2] * request[..., 2] + history[..., 3] * request[..., 3]
    km, has_km = log_distance(features["history_request_km"])
    length = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1, keepdims=True)
    events_ago = tf.cast(tf.maximum(length - 1 - tf.range(tf.shape(mask)[1])[None, :], 0), tf.float32)
    context = tf.stack([same_day_time, same_week_time, km, has_km, tf.math.log1p(events_ago) / 3.0], axis=-1)
    return context * tf.cast(mask, tf.float32)[..., None]


def gate_evidence(pointer: tf.Tensor, mask: tf.Tensor, context: tf.Tensor) -> tf.Tensor:
    """[B, 5] float32: what the history says about a return, for the gate.

    The pointer's unnormalised evidence (logsumexp and max of its logits: a
    history event that fits the request well argues for a return), how near
    the request is to the nearest history place (scaled log km, and whether any
    place is known) and the best time-of-day match. Rows without history get 0.

    pointer: [B, T] logits (NEG_INF at padding); mask: [B, T] bool;
    context: [B, T, C] `pointer_context` features (zeros at padding).
    """
    any_event = tf.reduce_any(mask, axis=1)
    evidence = tf.where(any_event, tf.reduce_logsumexp(pointer, axis=1), 0.0)
    strongest = tf.where(any_event, tf.reduce_max(pointer, axis=1), 0.0)
    placed = context[..., 3] > 0  # the known-place flag, 0 at padding
    any_place = tf.reduce_any(placed, axis=1)
    nearest = tf.where(any_place, tf.reduce_min(tf.where(placed, context[..., 2], 1e9), axis=1), 0.0)
    same_time = tf.where(any_event, tf.reduce_max(tf.where(mask, context[..., 0], -1.0), axis=1), 0.0)
    return tf.stack([evidence, strongest, nearest, tf.cast(any_place, tf.float32), same_time], axis=-1)


class RepeatHead(tf.keras.layers.Layer):
    """(positions [B, T, U], hidden [B, H], history ids [B, T], mask [B, T], context [B, T, C])
    -> (gate logit [B], pointer logits [B, T]).

    The gate reads the query's hidden state, the history's length and share of
    distinct items, and `gate_evidence` (how well the history fits the request).

    positions: the sequence tower's per-position outputs (zeros at padding);
    mask: [B, T] bool, True at real events that may be pointed at;
    context: `pointer_context` features (zeros at padding).
    Pointer logits are NEG_INF at padding.
    """

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.position_projection = tf.keras.layers.Dense(units, use_bias=False, name="pointer_position")
        self.query_projection = tf.keras.layers.Dense(units, name="pointer_query")
        self.count_projection = tf.keras.layers.Dense(units, use_bias=False, name="pointer_count")
        self.context_projection = tf.keras.layers.Dense(units, use_bias=False, name="pointer_context")
        self.score = tf.keras.layers.Dense(1, use_bias=False, name="pointer_score")
        self.gate_hidden = tf.keras.layers.Dense(units, activation="gelu", name="gate_hidden")
        self.gate = tf.keras.layers.Dense(1, name="gate_logit")

    def call(self, positions: tf.Tensor, hidden: tf.Tensor, history_item_ids: tf.Tensor, mask: tf.Tensor, context: tf.Tensor):
        counts = repeat_counts(history_item_ids, mask)
        count_features = tf.stack([tf.math.log1p(counts), tf.cast(counts > 1, tf.float32)], axis=-1)
        energy = tf.tanh(
            self.position_projection(positions)
            + self.query_projection(hidden)[:, None, :]
            + self.count_projection(count_features)
            + self.context_projection(context)
        )
        pointer = tf.squeeze(self.score(energy), -1)
        pointer = tf.where(mask, pointer, NEG_INF)
        length = tf.reduce_sum(tf.cast(mask, tf.float32), axis=1, keepdims=True)
        distinct = tf.reduce_sum(tf.math.divide_no_nan(tf.cast(mask, tf.float32), counts), axis=1, keepdims=True)
        gate_input = tf.concat(
            [
                hidden, tf.math.log1p(length), tf.math.divide_no_nan(distinct, length),
                gate_evidence(pointer, mask, context),
            ],
            axis=-1,
        )
        gate_logit = tf.squeeze(self.gate(self.gate_hidden(gate_input)), -1)
        return gate_logit, pointer
