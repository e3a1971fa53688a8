"""Per-example ranks grouped into slices: where and when does a model work?

Slicings (each slice reports "count" and the ranking metrics of its examples):
  item         "warm" / "cold": the target item had no training-period events
               (train_count 0 in items.tfrecord.gz), so only side information
               or luck can rank it.
  item_user    the item slicing crossed with whether the user had the target
               among earlier events: "warm_repeat", "warm_new", "cold_repeat",
               "cold_new". "cold_new" (an item without training events that the
               user meets for the first time) is where only side information
               (text, category, place, price) can place the item.
  time_of_day  local time of the request, from request_timestamp +
               request_utc_offset * 60: night [0, 6), morning [6, 12),
               afternoon [12, 18), evening [18, 24).
  region       the request's coarse geo cell (`trainer.features.geo.geo_cell`
               at the manifest's coarse_cell_degrees): the `top_regions` most
               frequent cells, named "lat,lon" of their south-west corner, then
               "other" and "unknown" (no request place).
Slices of an empty group are left out, except the fixed item and time-of-day
slices, which are always present (with count 0 and null metrics) so runs compare.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from trainer.data import example_schema as es
from trainer.evaluation import evaluator as ev
from trainer.evaluation import metrics as metrics_lib
from trainer.features import geo

log = logging.getLogger(__name__)

ITEM = "item"
ITEM_USER = "item_user"
ITEM_USER_SLICES = ("warm_repeat", "warm_new", "cold_repeat", "cold_new")
TIME_OF_DAY = "time_of_day"
REGION = "region"
WARM, COLD = "warm", "cold"
TIMES_OF_DAY: tuple[tuple[str, int, int], ...] = (
    ("night", 0, 6),
    ("morning", 6, 12),
    ("afternoon", 12, 18),
    ("evening", 18, 24),
)
OTHER, UNKNOWN = "other", "unknown"
DEFAULT_TOP_REGIONS = 8

SliceMetrics = dict[str, dict[str, dict[str, float | int | None]]]  # slicing -> slice -> {"count", metric...}


def cold_item_labels(target_item_ids: np.ndarray, item_train_counts: Mapping[str, int]) -> np.ndarray:
    """[U] object "cold" where the target had no training events (or is unknown), else "warm"."""
    ids = np.asarray(target_item_ids, dtype=object).reshape(-1)
    counts = np.array([item_train_counts.get(str(i), 0) for i in ids], dtype=np.int64)
    return np.where(counts > 0, WARM, COLD).astype(object)


def local_hours(request_timestamps: np.ndarray, request_utc_offsets: np.ndarray) -> np.ndarray:
    """[U] int64 local hour 0..23 of unix seconds shifted by offsets in minutes."""
    seconds = np.asarray(request_timestamps, np.int64) + np.asarray(request_utc_offsets, np.int64) * 60
    return np.floor_divide(np.mod(seconds, 86_400), 3_600)


def time_of_day_labels(request_timestamps: np.ndarray, request_utc_offsets: np.ndarray) -> np.ndarray:
    """[U] object "night" / "morning" / "afternoon" / "evening" of the local request time."""
    hours = local_hours(request_timestamps, request_utc_offsets)
    labels = np.empty(len(hours), dtype=object)
    for name, start, stop in TIMES_OF_DAY:
        labels[(hours >= start) & (hours < stop)] = name
    return labels


def cell_name(cell: int, cell_degrees: float) -> str:
    """"lat,lon" of the south-west corner of a `geo.geo_cell` id (inverse of its numbering)."""
    columns = int(math.ceil(360.0 / cell_degrees))
    row, column = divmod(int(cell) - 1, columns)
    return f"{round(row * cell_degrees - 90.0, 6):g},{round(column * cell_degrees - 180.0, 6):g}"


def region_labels(
    latitudes: np.ndarray, longitudes: np.ndarray, cell_degrees: float, top_regions: int = DEFAULT_TOP_REGIONS
) -> np.ndarray:
    """[U] object region of each request: a top cell's name, "other" or "unknown" (NaN place).

    Ties in cell frequency are broken by the smaller cell id, so labels are deterministic.
    """
    if top_regions < 0:
        raise ValueError(f"`top_regions` must be >= 0. Received: top_regions={top_regions}")
    cells = geo.geo_cell(
        tf.constant(np.asarray(latitudes, np.float64)), tf.constant(np.asarray(longitudes, np.float64)), cell_degrees
    ).numpy()
    labels = np.full(len(cells), OTHER, dtype=object)
    labels[cells == geo.UNKNOWN_CELL] = UNKNOWN
    known = cells[cells != geo.UNKNOWN_CELL]
    if len(known):
        values, counts = np.unique(known, return_counts=True)
        order = np.lexsort((values, -counts))[:top_regions]
        for cell in values[order]:
            labels[cells == cell] = cell_name(int(cell), cell_degrees)
    return labels


def group_metrics(
    ranks: np.ndarray,
    labels: np.ndarray,
    order: Sequence[str] | None = None,
    ks: Sequence[int] = metrics_lib.DEFAULT_KS,
    ndcg_ks: Sequence[int] = metrics_lib.DEFAULT_NDCG_KS,
) -> dict[str, dict[str, float | int | None]]:
    """Ranking metrics per label.

    Args:
      ranks: [U] int 0-based ranks.
      labels: [U] slice label of each example.
      order: labels to report, in this order, even when empty (count 0, metrics
        None); None = the labels present, by descending count.
      ks / ndcg_ks: metric cut-offs.

    Returns:
      label -> {"count": int, "hr@10": ..., "mrr": ...}.
    """
    ranks = np.asarray(ranks)
    labels = np.asarray(labels, dtype=object)
    if ranks.shape != labels.shape:
        raise ValueError(f"`labels` must be [U] like ranks {ranks.shape}. Received: labels.shape={labels.shape}")
    if order is None:
        values, counts = np.unique(labels.astype(str), return_counts=True)
        order = [str(v) for v in values[np.argsort(-counts, kind="stable")]]
    names = metrics_lib.metric_names(ks, ndcg_ks)
    out: dict[str, dict[str, float | int | None]] = {}
    for label in order:
        members = labels == label
        count = int(members.sum())
        stats: dict[str, float | int | None] = {"count": count}
        if count:
            stats.update(metrics_lib.ranking_metrics(ranks[members], ks, ndcg_ks))
        else:
            stats.update({name: None for name in names})
        out[str(label)] = stats
    return out


def slice_metrics(
    ranks: np.ndarray,
    fields: Mapping[str, np.ndarray],
    item_train_counts: Mapping[str, int],
    coarse_cell_degrees: float,
    *,
    top_regions: int = DEFAULT_TOP_REGIONS,
    target_seen: np.ndarray | None = None,
    ks: Sequence[int] = metrics_lib.DEFAULT_KS,
    ndcg_ks: Sequence[int] = metrics_lib.DEFAULT_NDCG_KS,
) -> SliceMetrics:
    """Every slicing of one model's per-example ranks.

    Args:
      ranks: [U] int64 ranks (one filter mode of a `RankingResult`).
      fields: [U] arrays by example-schema name: target_item_id,
        request_timestamp, request_utc_offset, request_latitude, request_longitude
        (`RankingResult.fields`); a slicing whose fields are missing is skipped.
      item_train_counts: item id -> training-period events (items.tfrecord.gz).
      coarse_cell_degrees: the region cell size (manifest feature_config).
      top_regions: how many of the most frequent regions get their own slice.
      target_seen: optional [U] bool, the target was among the user's earlier
        items (`RankingResult.target_seen`); adds the "item_user" slicing.

    Returns:
      {"item": {"warm", "cold"}, "item_user": {...}, "time_of_day": {"night", ...}, "region": {...}},
      each slice {"count", metric...}.
    """
    ranks = np.asarray(ranks)
    for name, values in fields.items():
        if len(values) != len(ranks):
            raise ValueError(f"`fields[{name!r}]` must have one value per rank ({len(ranks)}). Received: {len(values)}")
    out: SliceMetrics = {}
    if es.TARGET_ITEM_ID in fields:
        items = cold_item_labels(fields[es.TARGET_ITEM_ID], item_train_counts)
        out[ITEM] = group_metrics(ranks, items, (WARM, COLD), ks, ndcg_ks)
        if target_seen is not None:
            seen = np.asarray(target_seen, bool)
            if seen.shape != ranks.shape:
                raise ValueError(f"`target_seen` must be [U] like ranks {ranks.shape}. Received: {seen.shape}")
            labels = np.array([f"{i}_{'repeat' if s else 'new'}" for i, s in zip(items, seen)], dtype=object)
            out[ITEM_USER] = group_metrics(ranks, labels, ITEM_USER_SLICES, ks, ndcg_ks)
    if es.REQUEST_TIMESTAMP in fields and es.REQUEST_UTC_OFFSET in fields:
        labels = time_of_day_labels(fields[es.REQUEST_TIMESTAMP], fields[es.REQUEST_UTC_OFFSET])
        out[TIME_OF_DAY] = group_metrics(ranks, labels, [name for name, _, _ in TIMES_OF_DAY], ks, ndcg_ks)
    if es.REQUEST_LATITUDE in fields and es.REQUEST_LONGITUDE in fields:
        labels = region_labels(fields[es.REQUEST_LATITUDE], fields[es.REQUEST_LONGITUDE], coarse_cell_degrees, top_regions)
        names, counts = np.unique(labels.astype(str), return_counts=True)
        by_count = [str(n) for n in names[np.argsort(-counts, kind="stable")]]
        order = [n for n in by_count if n not in (OTHER, UNKNOWN)] + [n for n in (OTHER, UNKNOWN) if n in by_count]
        out[REGION] = group_metrics(ranks, labels, order, ks, ndcg_ks)
    if not out:
        log.warning("No slice fields among %s: no slices.", sorted(fields))
    return out


def item_train_counts(catalogue_ids: np.ndarray, train_counts: np.ndarray) -> dict[str, int]:
    """item id -> training events, from the catalogue's parallel [N] arrays."""
    return {str(i): int(c) for i, c in zip(np.asarray(catalogue_ids).tolist(), np.asarray(train_counts).tolist())}


def result_slices(
    result: ev.RankingResult, filter_name: str, catalogue: ev.Catalogue, coarse_cell_degrees: float, **kwargs: Any
) -> SliceMetrics:
    """`slice_metrics` of a `RankingResult` in one filter mode, with the catalogue's train counts."""
    if filter_name not in ev.FILTERS:
        raise ValueError(f"`filter_name` must be one of {ev.FILTERS}. Received: filter_name={filter_name!r}")
    counts = item_train_counts(catalogue.ids, catalogue.train_counts)
    return slice_metrics(
        result.ranks[filter_name], result.fields, counts, coarse_cell_degrees, target_seen=result.target_seen, **kwargs
    )
