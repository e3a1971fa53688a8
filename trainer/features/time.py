"""Time features computed inside TensorFlow from raw unix seconds.

Training (tf.data / the model) and serving (the exported graph) call these same
functions on raw inputs, so both compute exactly the same features. Plain-Python
references live in the tests.

Conventions: `timestamps` are int64 unix seconds (UTC); `utc_offset_minutes`
are int64 minutes to add for local time (broadcastable to `timestamps`).
"""

from __future__ import annotations

import math

import tensorflow as tf

SECONDS_PER_DAY = 86_400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
# 1970-01-01 was a Thursday; with Monday = 0 that is day 3.
_EPOCH_WEEKDAY = 3
NO_GAP_BUCKET = 0  # padding, the first event (no previous one) or a negative gap


def local_seconds(timestamps: tf.Tensor, utc_offset_minutes: tf.Tensor) -> tf.Tensor:
    """Local wall-clock time as seconds since the local epoch. Shape of the inputs; int64."""
    timestamps = tf.cast(timestamps, tf.int64)
    return timestamps + 60 * tf.cast(utc_offset_minutes, tf.int64)


def hour_of_day(timestamps: tf.Tensor, utc_offset_minutes: tf.Tensor) -> tf.Tensor:
    """Local hour in [0, 24); int32, shape of the inputs."""
    local = local_seconds(timestamps, utc_offset_minutes)
    return tf.cast(tf.math.floormod(local, SECONDS_PER_DAY) // 3600, tf.int32)


def day_of_week(timestamps: tf.Tensor, utc_offset_minutes: tf.Tensor) -> tf.Tensor:
    """Local weekday in [0, 7), Monday = 0; int32, shape of the inputs."""
    local = local_seconds(timestamps, utc_offset_minutes)
    days = tf.math.floordiv(local, SECONDS_PER_DAY)
    return tf.cast(tf.math.floormod(days + _EPOCH_WEEKDAY, 7), tf.int32)


def cyclic_time(timestamps: tf.Tensor, utc_offset_minutes: tf.Tensor) -> tf.Tensor:
    """[..., 4] float32: sin/cos of the local time of day, sin/cos of the time of week.

    Continuous (23:59 is next to 00:00; Sunday night next to Monday morning).
    """
    local = local_seconds(timestamps, utc_offset_minutes)
    day_fraction = tf.cast(tf.math.floormod(local, SECONDS_PER_DAY), tf.float64) / SECONDS_PER_DAY
    # Shift so the week starts on Monday 00:00 local.
    week_seconds = tf.math.floormod(local + _EPOCH_WEEKDAY * SECONDS_PER_DAY, SECONDS_PER_WEEK)
    week_fraction = tf.cast(week_seconds, tf.float64) / SECONDS_PER_WEEK
    two_pi = 2.0 * math.pi
    return tf.cast(
        tf.stack(
            [
                tf.sin(two_pi * day_fraction),
                tf.cos(two_pi * day_fraction),
                tf.sin(two_pi * week_fraction),
                tf.cos(two_pi * week_fraction),
            ],
            axis=-1,
        ),
        tf.float32,
    )


def gap_bucket(gap_seconds: tf.Tensor, num_buckets: int) -> tf.Tensor:
    """Log2 buckets of non-negative gaps; int32 in [0, num_buckets).

    Bucket 0 (`NO_GAP_BUCKET`) means no gap (negative input: padding / no
    previous event). A gap g >= 0 goes to 1 + min(floor(log2(1 + g)), num_buckets - 2),
    computed exactly on integers: 0 s -> 1, 1-2 s -> 2, 3-6 s -> 3, ... ~1 h -> 12,
    ~1 day -> 17, ~1 year -> 25.
    """
    if num_buckets < 2:
        raise ValueError(f"`num_buckets` must be >= 2. Received: num_buckets={num_buckets}")
    gaps = tf.cast(gap_seconds, tf.int64)
    # floor(log2(1 + g)) = number of powers of two 2^1..2^62 that are <= 1 + g.
    powers = tf.constant([2**k for k in range(1, 63)], dtype=tf.int64)
    flat = tf.reshape(gaps, [-1])
    log2 = tf.searchsorted(powers, tf.expand_dims(flat, 0) + 1, side="right", out_type=tf.int64)[0]
    bucket = 1 + tf.minimum(log2, num_buckets - 2)
    bucket = tf.where(flat < 0, tf.constant(NO_GAP_BUCKET, tf.int64), bucket)
    return tf.cast(tf.reshape(bucket, tf.shape(gaps)), tf.int32)


def previous_event_gaps(history_timestamps: tf.Tensor, history_mask: tf.Tensor) -> tf.Tensor:
    """[B, T] int64 seconds since the previous history event; -1 where none.

    Args:
      history_timestamps: [B, T] int64, real events first (time order), then padding.
      history_mask: [B, T] bool, True at real events.
    """
    timestamps = tf.cast(history_timestamps, tf.int64)
    previous = tf.concat([timestamps[:, :1], timestamps[:, :-1]], axis=1)
    has_previous = tf.concat([tf.zeros_like(history_mask[:, :1]), history_mask[:, :-1]], axis=1)
    valid = tf.logical_and(history_mask, has_previous)
    return tf.where(valid, timestamps - previous, tf.constant(-1, tf.int64))


def gaps_to_request(history_timestamps: tf.Tensor, history_mask: tf.Tensor, request_timestamps: tf.Tensor) -> tf.Tensor:
    """[B, T] int64 seconds from each history event to the request; -1 at padding.

    Args:
      history_timestamps: [B, T] int64; history_mask: [B, T] bool;
      request_timestamps: [B] int64.
    """
    gaps = tf.cast(request_timestamps, tf.int64)[:, tf.newaxis] - tf.cast(history_timestamps, tf.int64)
    return tf.where(history_mask, gaps, tf.constant(-1, tf.int64))
