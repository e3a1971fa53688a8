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


def event_type_classes(event_type_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """StringLookup ids (0 pad, 1 OOV, 2.. known) -> ([B] class in [0, E), [B] weight 0 for unknown)."""
    known = event_type_ids >= 2
    return tf.where(known, event_type_ids - 2, 0), tf.cast(known, tf.float32)


RATING = "rating"


def rating_values(batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """([B] target rating with NaN -> 0, [B] weight 1 where the target is a rating with a value).

    Other events' values (e.g. a purchase's price) are not ratings and get weight 0.
    """
    value = tf.cast(batch[es.TARGET_VALUE], tf.float32)
    known = tf.logical_and(tf.logical_not(tf.math.is_nan(value)), tf.equal(batch[es.TARGET_EVENT_TYPE], RATING))
    return tf.where(known, value, 0.0), tf.cast(known, tf.float32)
