"""Time features against plain-Python (datetime) references."""

import datetime
import math
import random

import numpy as np
import tensorflow as tf

from trainer.features import time as tfeat


def _local(ts, offset):
    zone = datetime.timezone(datetime.timedelta(minutes=offset))
    return datetime.datetime.fromtimestamp(ts, tz=zone)


def _cases(n=300, seed=0):
    rng = random.Random(seed)
    stamps = [rng.randrange(0, 4_000_000_000) for _ in range(n)] + [0, 86_399, 86_400, 1_704_067_200]
    offsets = [rng.choice([-720, -300, -240, 0, 60, 330, 545, 840]) for _ in stamps]
    return stamps, offsets


def test_hour_and_weekday_match_datetime():
    stamps, offsets = _cases()
    hours = tfeat.hour_of_day(tf.constant(stamps, tf.int64), tf.constant(offsets, tf.int64)).numpy()
    days = tfeat.day_of_week(tf.constant(stamps, tf.int64), tf.constant(offsets, tf.int64)).numpy()
    for ts, off, h, d in zip(stamps, offsets, hours, days):
        local = _local(ts, off)
        assert (h, d) == (local.hour, local.weekday()), (ts, off)


def test_hand_checked_new_york_evening():
    # 2012-04-04 02:30 UTC is 22:30 on Tuesday 2012-04-03 in New York (UTC-4).
    ts = int(datetime.datetime(2012, 4, 4, 2, 30, tzinfo=datetime.timezone.utc).timestamp())
    assert tfeat.hour_of_day(tf.constant([ts]), tf.constant([-240])).numpy().tolist() == [22]
    assert tfeat.day_of_week(tf.constant([ts]), tf.constant([-240])).numpy().tolist() == [1]


def test_cyclic_time_matches_reference():
    stamps, offsets = _cases(100, seed=1)
    got = tfeat.cyclic_time(tf.constant(stamps, tf.int64), tf.constant(offsets, tf.int64)).numpy()
    for row, ts, off in zip(got, stamps, offsets):
        local = _local(ts, off)
        day = (local.hour * 3600 + local.minute * 60 + local.second) / 86400
        week = (local.weekday() + day) / 7
        expected = [math.sin(2 * math.pi * day), math.cos(2 * math.pi * day),
                    math.sin(2 * math.pi * week), math.cos(2 * math.pi * week)]
        np.testing.assert_allclose(row, expected, atol=1e-5)


def _reference_bucket(gap, num_buckets):
    if gap < 0:
        return 0
    return 1 + min((1 + gap).bit_length() - 1, num_buckets - 2)


def test_gap_buckets_match_integer_log2_reference():
    gaps = [-5, -1, 0, 1, 2, 3, 6, 7, 8, 59, 60, 3599, 3600, 86_399, 86_400, 2**31, 2**40] + list(range(0, 70))
    for num_buckets in (2, 8, 32):
        got = tfeat.gap_bucket(tf.constant(gaps, tf.int64), num_buckets).numpy().tolist()
        assert got == [_reference_bucket(g, num_buckets) for g in gaps]


def test_gap_bucket_hand_values():
    # 0 s -> 1; 1-2 s -> 2; 3-6 s -> 3; 1 h = 3600 s: log2(3601) = 11.8 -> 12.
    got = tfeat.gap_bucket(tf.constant([[0, 1, 2, 3, 6, 3600]], tf.int64), 32).numpy().tolist()
    assert got == [[1, 2, 2, 3, 3, 12]]


def test_previous_and_request_gaps_respect_padding():
    ts = tf.constant([[100, 160, 400, 0], [50, 0, 0, 0]], tf.int64)
    mask = tf.constant([[True, True, True, False], [True, False, False, False]])
    assert tfeat.previous_event_gaps(ts, mask).numpy().tolist() == [[-1, 60, 240, -1], [-1, -1, -1, -1]]
    request = tf.constant([1000, 70], tf.int64)
    assert tfeat.gaps_to_request(ts, mask, request).numpy().tolist() == [[900, 840, 600, -1], [20, -1, -1, -1]]
