"""Place features computed inside TensorFlow from raw latitude/longitude.

Locations are WGS84 degrees (float32 or float64) with NaN for unknown.
Plain-Python references live in the tests.
"""

from __future__ import annotations

import math

import tensorflow as tf

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
UNKNOWN_CELL = 0


def geo_cell(latitude: tf.Tensor, longitude: tf.Tensor, cell_degrees: float) -> tf.Tensor:
    """Id of the lat/lon grid cell of side `cell_degrees` containing each point.

    Cells are numbered 1 + row * columns + column, row counted from the south
    pole, column from longitude -180 (180 wraps to -180); 0 = unknown place
    (NaN). int64, shape of the inputs.
    """
    if not 0 < cell_degrees <= 180:
        raise ValueError(f"`cell_degrees` must be in (0, 180]. Received: cell_degrees={cell_degrees}")
    rows = int(math.ceil(180.0 / cell_degrees))
    columns = int(math.ceil(360.0 / cell_degrees))
    lat = tf.cast(latitude, tf.float64)
    lon = tf.cast(longitude, tf.float64)
    known = tf.logical_not(tf.logical_or(tf.math.is_nan(lat), tf.math.is_nan(lon)))
    safe_lat = tf.where(known, lat, tf.zeros_like(lat))
    safe_lon = tf.where(known, lon, tf.zeros_like(lon))
    row = tf.clip_by_value(tf.cast(tf.floor((safe_lat + 90.0) / cell_degrees), tf.int64), 0, rows - 1)
    column = tf.math.floormod(tf.cast(tf.floor((safe_lon + 180.0) / cell_degrees), tf.int64), columns)
    cell = 1 + row * columns + column
    return tf.where(known, cell, tf.constant(UNKNOWN_CELL, tf.int64))


def haversine_km(lat1: tf.Tensor, lon1: tf.Tensor, lat2: tf.Tensor, lon2: tf.Tensor) -> tf.Tensor:
    """Great-circle distance in km (float32), NaN where either place is unknown."""
    to_rad = math.pi / 180.0
    phi1 = tf.cast(lat1, tf.float64) * to_rad
    phi2 = tf.cast(lat2, tf.float64) * to_rad
    d_phi = phi2 - phi1
    d_lambda = (tf.cast(lon2, tf.float64) - tf.cast(lon1, tf.float64)) * to_rad
    a = tf.sin(d_phi / 2.0) ** 2 + tf.cos(phi1) * tf.cos(phi2) * tf.sin(d_lambda / 2.0) ** 2
    a = tf.clip_by_value(a, 0.0, 1.0)
    return tf.cast(2.0 * EARTH_RADIUS_KM * tf.asin(tf.sqrt(a)), tf.float32)


def previous_place_distances(history_latitudes: tf.Tensor, history_longitudes: tf.Tensor, history_mask: tf.Tensor) -> tf.Tensor:
    """[B, T] float32 km from the previous history event's place; NaN where unknown.

    Args:
      history_latitudes/history_longitudes: [B, T] float, NaN unknown/padding.
      history_mask: [B, T] bool, True at real events.
    """
    previous_lat = tf.concat([tf.fill(tf.shape(history_latitudes[:, :1]), float("nan")), history_latitudes[:, :-1]], 1)
    previous_lon = tf.concat([tf.fill(tf.shape(history_longitudes[:, :1]), float("nan")), history_longitudes[:, :-1]], 1)
    distances = haversine_km(previous_lat, previous_lon, history_latitudes, history_longitudes)
    return tf.where(history_mask, distances, tf.constant(float("nan"), tf.float32))


def last_known_place(history_latitudes: tf.Tensor, history_longitudes: tf.Tensor, history_mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """([B], [B]) float32 place of the latest history event with a known place; NaN if none."""
    lat = tf.cast(history_latitudes, tf.float32)
    lon = tf.cast(history_longitudes, tf.float32)
    known = tf.logical_and(history_mask, tf.logical_not(tf.math.is_nan(lat)))
    positions = tf.range(tf.shape(lat)[1])[tf.newaxis, :]
    last = tf.reduce_max(tf.where(known, positions, -1), axis=1)  # [B]
    safe = tf.maximum(last, 0)
    last_lat = tf.gather(lat, safe, batch_dims=1)
    last_lon = tf.gather(lon, safe, batch_dims=1)
    nan = tf.constant(float("nan"), tf.float32)
    return tf.where(last >= 0, last_lat, nan), tf.where(last >= 0, last_lon, nan)
