"""Slices: labels by hand, metrics per group."""

import math

import numpy as np
import pytest

import trainer  # noqa: F401
from trainer.evaluation import metrics, slices

HOUR = 3600


def test_time_of_day_uses_local_time():
    stamps = np.array([0, 6 * HOUR - 1, 6 * HOUR, 0, 12 * HOUR, 13 * HOUR])
    offsets = np.array([0, 0, 0, -60, 360, 0])  # minutes; -60 at midnight UTC is 23:00 the day before
    labels = slices.time_of_day_labels(stamps, offsets)
    assert labels.tolist() == ["night", "night", "morning", "evening", "evening", "afternoon"]


def test_cold_items():
    labels = slices.cold_item_labels(np.array(["a", "b", "c"], dtype=object), {"a": 3, "b": 0})
    assert labels.tolist() == ["warm", "cold", "cold"]  # unknown to the catalogue counts as cold


def test_regions_top_other_unknown():
    lat = np.array([40.7, 40.6, 40.9, 34.05, 34.1, math.nan, 51.5])
    lon = np.array([-73.9, -73.8, -73.6, -118.2, -118.3, math.nan, -0.1])
    labels = slices.region_labels(lat, lon, cell_degrees=0.5, top_regions=1)
    # 0.5-degree cells: NYC points share the cell with south-west corner (40.5, -74).
    assert labels.tolist() == ["40.5,-74"] * 3 + ["other"] * 2 + ["unknown", "other"]
    two = slices.region_labels(lat, lon, cell_degrees=0.5, top_regions=2)
    assert two[3] == "34,-118.5" and two[6] == "other"


def test_slice_metrics_groups_and_counts():
    ranks = np.array([0, 5, 20, 1, 100])
    fields = {
        "target_item_id": np.array(["a", "a", "b", "c", "b"], dtype=object),
        "request_timestamp": np.array([1 * HOUR, 7 * HOUR, 13 * HOUR, 19 * HOUR, 2 * HOUR]),
        "request_utc_offset": np.zeros(5, dtype=np.int64),
        "request_latitude": np.array([40.7, 40.7, math.nan, 34.05, 40.6]),
        "request_longitude": np.array([-73.9, -73.9, math.nan, -118.2, -73.8]),
    }
    out = slices.slice_metrics(ranks, fields, {"a": 2, "b": 0, "c": 1}, coarse_cell_degrees=0.5, top_regions=1)
    assert list(out) == ["item", "time_of_day", "region"]
    # warm: items a, a, c -> ranks 0, 5, 1; cold: b, b -> ranks 20, 100
    assert out["item"]["warm"]["count"] == 3 and out["item"]["cold"]["count"] == 2
    assert out["item"]["warm"]["hr@10"] == pytest.approx(1.0)
    assert out["item"]["cold"]["hr@50"] == pytest.approx(0.5)
    assert out["item"]["cold"]["mrr"] == pytest.approx((1 / 21 + 1 / 101) / 2)
    night = out["time_of_day"]["night"]  # 01:00 and 02:00 -> ranks 0 and 100
    assert night["count"] == 2 and night["hr@10"] == pytest.approx(0.5)
    assert list(out["time_of_day"]) == ["night", "morning", "afternoon", "evening"]
    assert out["region"]["40.5,-74"]["count"] == 3
    assert list(out["region"]) == ["40.5,-74", "other", "unknown"]
    assert out["region"]["unknown"]["hr@10"] == 0.0  # rank 20


def test_item_user_slicing_crosses_cold_with_first_time():
    ranks = np.array([0, 5, 20, 1, 100])
    fields = {"target_item_id": np.array(["a", "a", "b", "c", "b"], dtype=object)}
    seen = np.array([True, False, True, False, False])
    out = slices.slice_metrics(ranks, fields, {"a": 2, "b": 0, "c": 1}, coarse_cell_degrees=0.5, target_seen=seen)
    assert list(out) == ["item", "item_user"]
    groups = out["item_user"]
    assert list(groups) == ["warm_repeat", "warm_new", "cold_repeat", "cold_new"]
    assert [groups[g]["count"] for g in groups] == [1, 2, 1, 1]
    assert groups["cold_new"]["mrr"] == pytest.approx(1 / 101)  # the second b, first time for its user
    assert groups["cold_repeat"]["hr@50"] == 1.0  # rank 20
    with pytest.raises(ValueError, match="target_seen"):
        slices.slice_metrics(ranks, fields, {}, coarse_cell_degrees=0.5, target_seen=seen[:2])


def test_empty_fixed_slices_are_kept_with_null_metrics():
    out = slices.group_metrics(np.array([3]), np.array(["warm"], dtype=object), order=("warm", "cold"))
    assert out["cold"]["count"] == 0 and out["cold"]["hr@10"] is None
    assert out["warm"]["hr@10"] == metrics.ranking_metrics(np.array([3]))["hr@10"] == 1.0
