"""Training labels derived from a batch of examples (see `example_schema`)."""

from __future__ import annotations

import tensorflow as tf

from trainer.data import example_schema as es


def history_matches(batch: dict[str, tf.Tensor]) -> tf.Tensor:
    """[B, T] bool: history positions holding the target item (never padding)."""
    history = batch[es.HISTORY_ITEM_IDS]
    return tf.logical_and(tf.equal(history, batch[es.TARGET_ITEM_ID][:, None]), tf.not_equal(history, ""))


def is_repeat(batch: dict[str, tf.Tensor]) -> tf.Tensor:
    """[B] float32: 1 when the target item is already in the history window."""
    return tf.cast(tf.reduce_any(history_matches(batch), axis=1), tf.float32)


def pointer_targets(batch: dict[str, tf.Tensor]) -> tf.Tensor:
    """[B, T] float32: uniform over the positions holding the target (zeros if none)."""
    matches = tf.cast(history_matches(batch), tf.float32)
    return tf.math.divide_no_nan(matches, tf.reduce_sum(matches, axis=1, keepdims=True))


def event_type_classes(event_type_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """StringLookup ids (0 pad, 1 OOV, 2.. known) -> ([B] class in [0, E), [B] weight 0 for unknown)."""
    known = event_type_ids >= 2
    return tf.where(known, event_type_ids - 2, 0), tf.cast(known, tf.float32)


def values(batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """([B] target value with NaN -> 0, [B] weight 1 where the value is known)."""
    value = tf.cast(batch[es.TARGET_VALUE], tf.float32)
    known = tf.logical_not(tf.math.is_nan(value))
    return tf.where(known, value, 0.0), tf.cast(known, tf.float32)
