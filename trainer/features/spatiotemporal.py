"""All spatio-temporal features of a batch, from the raw example tensors.

`compute(batch, config)` is the one function the model (and later the serving
graph) calls, so training and serving derive the same features from the same
raw inputs.
"""

from __future__ import annotations

import tensorflow as tf

from trainer.config import FeatureConfig
from trainer.data import example_schema as es
from trainer.features import geo, time

HISTORY_MASK = "history_mask"


def compute(batch: dict[str, tf.Tensor], config: FeatureConfig) -> dict[str, tf.Tensor]:
    """Features of a batch of raw examples.

    Args:
      batch: raw tensors named as in `trainer.data.example_schema`:
        history_item_ids [B, T] string ("" = padding), history_timestamps [B, T]
        int64, history_utc_offsets [B, T] int64, history_latitudes/longitudes
        [B, T] float32 (NaN unknown), request_timestamp [B] int64,
        request_utc_offset [B] int64, request_latitude/longitude [B] float32.
      config: cell sizes and gap buckets.

    Returns (B batch, T history length):
      history_mask [B, T] bool;
      history_hour, history_weekday [B, T] int32; history_cyclic_time [B, T, 4] float32;
      history_gap_bucket [B, T] int32 (since the previous event; 0 = none);
      history_request_gap_bucket [B, T] int32 (to the request; 0 = padding);
      history_coarse_cell, history_fine_cell [B, T] int64 (0 = unknown);
      history_step_km [B, T] float32 (from the previous event's place; NaN unknown);
      request_hour, request_weekday [B] int32; request_cyclic_time [B, 4] float32;
      request_coarse_cell, request_fine_cell [B] int64;
      request_last_place_km [B] float32 (request place to the last known history place; NaN unknown);
      history_request_km [B, T] float32 (request place to each history event's place; NaN unknown or padding).
    Padding positions carry 0 / NaN and must be masked by the consumer.
    """
    mask = tf.not_equal(batch[es.HISTORY_ITEM_IDS], "")
    history_ts = tf.cast(batch[es.HISTORY_TIMESTAMPS], tf.int64)
    history_offsets = tf.cast(batch[es.HISTORY_UTC_OFFSETS], tf.int64)
    history_lat = tf.cast(batch[es.HISTORY_LATITUDES], tf.float32)
    history_lon = tf.cast(batch[es.HISTORY_LONGITUDES], tf.float32)
    request_ts = tf.cast(batch[es.REQUEST_TIMESTAMP], tf.int64)
    request_offset = tf.cast(batch[es.REQUEST_UTC_OFFSET], tf.int64)
    request_lat = tf.cast(batch[es.REQUEST_LATITUDE], tf.float32)
    request_lon = tf.cast(batch[es.REQUEST_LONGITUDE], tf.float32)

    zero_i32 = tf.zeros_like(history_ts, dtype=tf.int32)
    last_lat, last_lon = geo.last_known_place(history_lat, history_lon, mask)
    return {
        HISTORY_MASK: mask,
        "history_hour": tf.where(mask, time.hour_of_day(history_ts, history_offsets), zero_i32),
        "history_weekday": tf.where(mask, time.day_of_week(history_ts, history_offsets), zero_i32),
        "history_cyclic_time": time.cyclic_time(history_ts, history_offsets)
        * tf.cast(mask, tf.float32)[..., tf.newaxis],
        "history_gap_bucket": time.gap_bucket(time.previous_event_gaps(history_ts, mask), config.num_gap_buckets),
        "history_request_gap_bucket": time.gap_bucket(
            time.gaps_to_request(history_ts, mask, request_ts), config.num_gap_buckets
        ),
        "history_coarse_cell": geo.geo_cell(history_lat, history_lon, config.coarse_cell_degrees),
        "history_fine_cell": geo.geo_cell(history_lat, history_lon, config.fine_cell_degrees),
        "history_step_km": geo.previous_place_distances(history_lat, history_lon, mask),
        "request_hour": time.hour_of_day(request_ts, request_offset),
        "request_weekday": time.day_of_week(request_ts, request_offset),
        "request_cyclic_time": time.cyclic_time(request_ts, request_offset),
        "request_coarse_cell": geo.geo_cell(request_lat, request_lon, config.coarse_cell_degrees),
        "request_fine_cell": geo.geo_cell(request_lat, request_lon, config.fine_cell_degrees),
        "request_last_place_km": geo.haversine_km(request_lat, request_lon, last_lat, last_lon),
        "history_request_km": tf.where(
            mask, geo.haversine_km(request_lat[:, None], request_lon[:, None], history_lat, history_lon), float("nan")
        ),
    }
