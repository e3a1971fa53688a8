"""Geo features against plain-Python references."""

import math
import random

import numpy as np
import pytest
import tensorflow as tf

from trainer.config import FeatureConfig
from trainer.data import example_schema as es
from trainer.features import geo, spatiotemporal

NAN = float("nan")


def _haversine(lat1, lon1, lat2, lon2, radius=6371.0088):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(a))


def _cell(lat, lon, deg):
    if math.isnan(lat) or math.isnan(lon):
        return 0
    rows, cols = math.ceil(180 / deg), math.ceil(360 / deg)
    row = min(max(math.floor((lat + 90) / deg), 0), rows - 1)
    col = math.floor((lon + 180) / deg) % cols
    return 1 + row * cols + col


def test_haversine_known_distance_and_reference():
    # One degree along a meridian is pi * R / 180 = 111.195 km for R = 6371.0088 km;
    # a quarter of the equator is pi * R / 2 = 10007.5 km.
    got = geo.haversine_km(tf.constant([10.0, 0.0]), tf.constant([20.0, 0.0]), tf.constant([11.0, 0.0]), tf.constant([20.0, 90.0]))
    np.testing.assert_allclose(got.numpy(), [111.1952, 10007.56], rtol=1e-5)
    rng = random.Random(3)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180), rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(200)]
    lat1, lon1, lat2, lon2 = (tf.constant(c, tf.float64) for c in zip(*points))
    expected = [_haversine(*p) for p in points]
    np.testing.assert_allclose(geo.haversine_km(lat1, lon1, lat2, lon2).numpy(), expected, rtol=1e-5, atol=1e-3)


def test_haversine_unknown_place_is_nan():
    got = geo.haversine_km(tf.constant([NAN, 1.0]), tf.constant([0.0, 1.0]), tf.constant([1.0, 1.0]), tf.constant([1.0, 1.0]))
    assert math.isnan(got.numpy()[0]) and got.numpy()[1] == 0.0


@pytest.mark.parametrize("degrees", [0.5, 0.02, 7.0])
def test_geo_cells_match_reference(degrees):
    rng = random.Random(5)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(300)]
    points += [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0), (NAN, 3.0), (40.7128, -74.006)]
    lat, lon = (tf.constant(c, tf.float64) for c in zip(*points))
    got = geo.geo_cell(lat, lon, degrees).numpy().tolist()
    assert got == [_cell(a, b, degrees) for a, b in points]


def test_nearby_points_share_coarse_but_not_fine_cells():
    # Two points ~3 km apart in Manhattan: same 0.5-degree cell, different 0.02-degree cells.
    lat = tf.constant([40.75, 40.777])
    lon = tf.constant([-73.99, -73.99])
    coarse = geo.geo_cell(lat, lon, 0.5).numpy()
    fine = geo.geo_cell(lat, lon, 0.02).numpy()
    assert coarse[0] == coarse[1] and fine[0] != fine[1]


def test_last_known_place_skips_unknown_and_padding():
    lat = tf.constant([[1.0, 2.0, NAN, NAN], [NAN, NAN, NAN, NAN]])
    lon = tf.constant([[10.0, 20.0, NAN, NAN], [NAN, NAN, NAN, NAN]])
    mask = tf.constant([[True, True, True, False], [True, False, False, False]])
    last_lat, last_lon = geo.last_known_place(lat, lon, mask)
    assert last_lat.numpy()[0] == 2.0 and last_lon.numpy()[0] == 20.0
    assert math.isnan(last_lat.numpy()[1])


def test_batch_features_against_references():
    batch = {
        es.HISTORY_ITEM_IDS: tf.constant([["a", "b", ""]]),
        es.HISTORY_TIMESTAMPS: tf.constant([[1_700_000_000, 1_700_003_600, 0]], tf.int64),
        es.HISTORY_UTC_OFFSETS: tf.constant([[-300, -300, 0]], tf.int64),
        es.HISTORY_LATITUDES: tf.constant([[40.70, 40.80, NAN]]),
        es.HISTORY_LONGITUDES: tf.constant([[-74.00, -73.95, NAN]]),
        es.REQUEST_TIMESTAMP: tf.constant([1_700_090_000], tf.int64),
        es.REQUEST_UTC_OFFSET: tf.constant([-300], tf.int64),
        es.REQUEST_LATITUDE: tf.constant([40.75]),
        es.REQUEST_LONGITUDE: tf.constant([-74.0]),
    }
    f = spatiotemporal.compute(batch, FeatureConfig())
    assert f["history_mask"].numpy().tolist() == [[True, True, False]]
    # 1_700_000_000 = 2023-11-14 22:13:20 UTC = 17:13 Tuesday in UTC-5.
    assert f["history_hour"].numpy().tolist() == [[17, 18, 0]]
    assert f["history_weekday"].numpy().tolist() == [[1, 1, 0]]
    assert f["history_gap_bucket"].numpy().tolist() == [[0, 12, 0]]  # 3600 s -> 12
    # 90,000 s and 86,400 s to the request: floor(log2(90001)) = 16 -> 17; log2(86401) -> 17.
    assert f["history_request_gap_bucket"].numpy().tolist() == [[17, 17, 0]]
    step = f["history_step_km"].numpy()[0]
    assert math.isnan(step[0]) and math.isnan(step[2])
    # Inputs are float32 (~0.4 m of rounding at this latitude), hence rel=1e-4 on ~7 km.
    assert step[1] == pytest.approx(_haversine(40.70, -74.00, 40.80, -73.95), rel=1e-4)
    assert f["request_last_place_km"].numpy()[0] == pytest.approx(_haversine(40.75, -74.0, 40.80, -73.95), rel=1e-4)
    # Cells are computed from the float32 inputs (as stored in the examples and
    # sent to serving); 40.70 in float32 is 40.7000008, just past a cell edge.
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    assert f["history_fine_cell"].numpy()[0].tolist() == [
        _cell(f32(40.70), f32(-74.00), 0.02), _cell(f32(40.80), f32(-73.95), 0.02), 0]
    assert f["request_coarse_cell"].numpy().tolist() == [_cell(f32(40.75), f32(-74.0), 0.5)]
