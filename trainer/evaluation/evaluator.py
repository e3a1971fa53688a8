"""Full-catalogue evaluation of any scorer over a split of prepared examples.

`evaluate_ranking` takes a `score_fn(batch) -> [B, N]` (scores in catalogue
order), ranks every catalogue item for every example and reports the metrics
twice:
  unfiltered     every item competes, including ones the user already had;
  seen_filtered  every item the user had BEFORE the target (all their earlier
                 events in events.parquet, not only the history window) is
                 removed; the target never is.
Ranks are pessimistic on ties (see `metrics`). Per-example ranks and the batch
fields the slices need are kept in the `RankingResult`.

Which mode is primary is a property of the domain: films are rarely re-watched
(seen items are removed), places are revisited (kept). `resolve_primary_filter`
decides "auto" from the share of targets that repeat an earlier item.
"""

from __future__ import annotations

import dataclasses
import io as io_lib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
import tensorflow as tf

from trainer.data import dataset as data_lib
from trainer.data import example_schema as es
from trainer.data import io
from trainer.evaluation import metrics as metrics_lib

log = logging.getLogger(__name__)

UNFILTERED = "unfiltered"
SEEN_FILTERED = "seen_filtered"
FILTERS = (UNFILTERED, SEEN_FILTERED)
# A share of repeat targets at or above this makes "auto" keep seen items.
REPEAT_SHARE_FOR_UNFILTERED = 0.05

# Batch fields kept per example for slicing and inspection.
SLICE_FIELDS: tuple[str, ...] = (
    es.USER_ID,
    es.TARGET_ITEM_ID,
    es.TARGET_EVENT_TYPE,
    es.TARGET_TIMESTAMP,
    es.REQUEST_TIMESTAMP,
    es.REQUEST_UTC_OFFSET,
    es.REQUEST_LATITUDE,
    es.REQUEST_LONGITUDE,
)

Batch = Mapping[str, Any]  # name -> tf.Tensor or np.ndarray, [B] or [B, T]
ScoreFn = Callable[[Batch], Any]  # batch -> [B, N] float scores in catalogue order


def _numpy(value: Any) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def decode_strings(value: Any) -> np.ndarray:
    """[...] object array of str from a tf string tensor, or a bytes / str array (same shape)."""
    array = _numpy(value)
    if array.dtype == object or array.dtype.kind == "S":
        flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
        return np.array(flat, dtype=object).reshape(array.shape)
    return array.astype(str).astype(object)


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """The ranked catalogue: ids [N] object (str) in catalogue order, train_counts [N] int64.

    Only what evaluation needs; `trainer.models.catalogue.Catalogue` (same
    fields, same order) can be passed wherever this is taken.
    """

    ids: np.ndarray
    train_counts: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def load_catalogue(data_dir: str) -> Catalogue:
    """Item ids and training counts from `<data_dir>/items.tfrecord.gz`, in catalogue order."""
    ids, counts = [], []
    for batch in data_lib.make_item_dataset(data_dir, batch_size=8192):
        ids.append(decode_strings(batch["item_id"]))
        counts.append(_numpy(batch["train_count"]).astype(np.int64))
    if not ids:
        raise ValueError(f"The catalogue in {data_dir!r} is empty: nothing to rank.")
    return Catalogue(np.concatenate(ids), np.concatenate(counts))


def load_events(data_dir: str) -> pd.DataFrame:
    """The validated events (`events.parquet`, with the `period` column) of a prepared dataset."""
    manifest = data_lib.read_manifest(data_dir)
    return pd.read_parquet(io_lib.BytesIO(io.read_bytes(os.path.join(data_dir, manifest["files"]["events"]))))


class SeenItems:
    """Per user, the items of all their events in time order: "what came before" a target.

    The position of a target in its user's sequence is found from
    (user_id, target_timestamp); when several events of the user share that
    second, the example's history window tells which one is the target (its
    length when shorter than the window, else its contents), exactly as the
    example was built (events at one second keep read order). Lookups are
    vectorised per batch; only full windows at a shared second are matched one
    by one.
    """

    def __init__(
        self,
        user_ids: np.ndarray,
        user_starts: np.ndarray,
        item_index: np.ndarray,
        timestamps: np.ndarray,
        catalogue_ids: np.ndarray,
    ):
        """Use `from_events`.

        Args:
          user_ids: [M] str, one per user.
          user_starts: [M + 1] int64 offsets: user m's events are [starts[m], starts[m + 1]).
          item_index: [E] int64 catalogue index of each event's item, per user in time order.
          timestamps: [E] int64 unix seconds, ascending within each user.
          catalogue_ids: [N] str item ids in catalogue order.
        """
        self._users = pd.Index(np.asarray(user_ids, dtype=object))
        self._starts = np.asarray(user_starts, np.int64)
        self._items = np.asarray(item_index, np.int64)
        self._timestamps = np.asarray(timestamps, np.int64)
        self._catalogue = pd.Index(np.asarray(catalogue_ids).astype(str))
        self.num_items = len(self._catalogue)
        if len(self._starts) != len(self._users) + 1 or (len(self._starts) and self._starts[-1] != len(self._items)):
            raise ValueError(
                f"`user_starts` must be [{len(self._users) + 1}] offsets ending at {len(self._items)}. "
                f"Received: user_starts.shape={self._starts.shape}"
            )
        ts_min = int(self._timestamps.min()) if len(self._timestamps) else 0
        ts_max = int(self._timestamps.max()) if len(self._timestamps) else 0
        self._ts_min = ts_min
        self._span = ts_max - ts_min + 3  # room for "before all" (0) and "after all" (span - 1)
        if (len(self._users) + 1) * self._span >= 2**62:
            raise ValueError(f"Too many users x seconds for one int64 lookup key: {len(self._users)} x {self._span}")
        codes = np.repeat(np.arange(len(self._users), dtype=np.int64), np.diff(self._starts))
        # One ascending key per event: (user code, second); a batch is located by searchsorted.
        self._keys = codes * self._span + (self._timestamps - ts_min + 1)

    @classmethod
    def from_events(cls, events: pd.DataFrame, catalogue_ids: np.ndarray) -> "SeenItems":
        """Builds the lookup from an events frame (events.parquet: every period).

        Args:
          events: columns user_id, item_id, timestamp (int64 unix seconds) and
            optionally _read_order (the same-second tie-break). Pass all periods,
            so a test target sees its training and validation events before it.
          catalogue_ids: [N] str item ids in catalogue order.
        """
        for column in ("user_id", "item_id", "timestamp"):
            if column not in events.columns:
                raise ValueError(f"`events` needs column {column!r}. Received columns: {list(events.columns)}")
        order = ["user_id", "timestamp"] + (["_read_order"] if "_read_order" in events.columns else [])
        frame = events[order + ["item_id"]].copy()
        frame["user_id"] = frame["user_id"].astype(str)
        frame = frame.sort_values(order, kind="mergesort")  # stable: same-second events keep their order
        catalogue = pd.Index(np.asarray(catalogue_ids).astype(str))
        item_index = catalogue.get_indexer(frame["item_id"].astype(str))
        if (item_index < 0).any():
            missing = frame["item_id"].to_numpy()[item_index < 0][:5]
            raise ValueError(
                f"`events` has {int((item_index < 0).sum())} events of items not in `catalogue_ids`, "
                f"e.g. {list(missing)}"
            )
        users = frame["user_id"].to_numpy(dtype=object)
        boundaries = np.flatnonzero(users[1:] != users[:-1]) + 1
        starts = np.concatenate([[0], boundaries, [len(users)]]).astype(np.int64)
        if not len(users):
            starts = np.zeros([1], np.int64)
        return cls(users[starts[:-1]], starts, item_index, frame["timestamp"].to_numpy(np.int64), catalogue_ids)

    def item_indices(self, item_ids: np.ndarray) -> np.ndarray:
        """[...] int64 catalogue index of each str id; -1 unknown."""
        ids = np.asarray(item_ids, dtype=object)
        return self._catalogue.get_indexer(ids.reshape(-1)).reshape(ids.shape).astype(np.int64)

    def ranges(
        self,
        user_ids: np.ndarray,
        target_timestamps: np.ndarray,
        history_items: np.ndarray | None = None,
        history_lengths: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The global range [start, end) of each target's earlier events.

        Args:
          user_ids: [B] str.
          target_timestamps: [B] int64 unix seconds.
          history_items: [B, T] int64 catalogue indices of each example's history
            window (oldest first; -1 for unknown items; padding after the length).
          history_lengths: [B] int, real events in each window. A length below T
            IS the target's position in the user's sequence (the window holds
            every earlier event); a full window is matched against the events to
            find the target among same-second events.

        Returns:
          (starts [B] int64, ends [B] int64); an unknown user gets an empty range.
          Without history information, ends = the user's first event at the
          target's second (events at that same second are not counted).
        """
        user_ids = np.asarray(user_ids, dtype=object).reshape(-1)
        stamps = np.asarray(target_timestamps, np.int64).reshape(-1)
        if stamps.shape != user_ids.shape:
            raise ValueError(
                f"`target_timestamps` must be [B] like user_ids {user_ids.shape}. Received: {stamps.shape}"
            )
        codes = self._users.get_indexer(user_ids)
        known = codes >= 0
        safe = np.where(known, codes, 0)
        starts = self._starts[safe] if len(self._users) else np.zeros_like(codes)
        keys = safe * self._span + np.clip(stamps - self._ts_min + 1, 0, self._span - 1)
        lo = np.searchsorted(self._keys, keys, side="left")
        hi = np.searchsorted(self._keys, keys, side="right")
        ends = lo.copy()
        if history_items is not None and history_lengths is not None:
            history_items = np.asarray(history_items, np.int64)
            lengths = np.asarray(history_lengths, np.int64).reshape(-1)
            max_history = history_items.shape[1]
            exact = lengths < max_history
            by_length = starts + lengths
            consistent = exact & (lo <= by_length) & (by_length < hi)
            ends = np.where(consistent, by_length, ends)
            for b in np.flatnonzero(known & ~exact & (hi - lo > 1)):
                # Several events at the target's second, beyond the window: the target is
                # the first of them whose preceding events are exactly the history window.
                for p in range(max(lo[b], starts[b] + max_history), hi[b]):
                    if np.array_equal(self._items[p - max_history : p], history_items[b]):
                        ends[b] = p
                        break
            mismatched = int((known & exact & ~consistent).sum())
            if mismatched:
                log.warning(
                    "%d examples do not match the events (history length vs target second); "
                    "counting only events before the target's second for them.",
                    mismatched,
                )
        unknown = int((~known).sum())
        if unknown:
            log.warning("%d examples of users absent from the events: nothing seen before them.", unknown)
        starts = np.where(known, starts, 0)
        ends = np.where(known, ends, 0)
        return starts.astype(np.int64), ends.astype(np.int64)

    def counts(self, batch: Batch) -> scipy.sparse.csr_matrix:
        """[B, N] float64 sparse: how many times the user had each item before the target.

        Reads the batch's user_id [B], target_timestamp [B] and, when present,
        history_item_ids [B, T] (the same-second tie-break). The target event
        itself is never counted (an earlier event of the same item is).
        """
        user_ids = decode_strings(batch[es.USER_ID]).reshape(-1)
        stamps = _numpy(batch[es.TARGET_TIMESTAMP]).reshape(-1)
        history_items = lengths = None
        if es.HISTORY_ITEM_IDS in batch:
            history = decode_strings(batch[es.HISTORY_ITEM_IDS])  # [B, T], "" padding at the end
            lengths = (history != "").sum(axis=1)
            history_items = self.item_indices(history)
        starts, ends = self.ranges(user_ids, stamps, history_items, lengths)
        sizes = np.maximum(ends - starts, 0)
        rows = np.repeat(np.arange(len(user_ids)), sizes)
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # j-th earlier event
        cols = self._items[np.repeat(starts, sizes) + within]
        return scipy.sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(user_ids), self.num_items), dtype=np.float64
        )


@dataclasses.dataclass
class RankingResult:
    """What `evaluate_ranking` measured for one scorer on one split.

    Attributes:
      name: the scorer's name ("popularity", the model's name, ...).
      num_items: N, the size of the ranked catalogue.
      unfiltered / seen_filtered: metric name -> value (`metrics.metric_names`
        plus "coverage", the share of the catalogue in any top-`coverage_k`).
      ranks: {"unfiltered", "seen_filtered"} -> [U] int64 0-based pessimistic ranks.
      top_k: {"unfiltered", "seen_filtered"} -> [U, coverage_k] int64 catalogue indices.
      target_seen: [U] bool, the target item was among the user's earlier items (a repeat).
      targets: [U] int64 catalogue index of each target.
      fields: `SLICE_FIELDS` name -> [U] array (str fields as object arrays).
      seconds: wall-clock seconds spent scoring and ranking.
      fit_seconds: wall-clock seconds spent fitting the scorer (set by its caller).
    """

    name: str
    num_items: int
    unfiltered: dict[str, float]
    seen_filtered: dict[str, float]
    ranks: dict[str, np.ndarray]
    top_k: dict[str, np.ndarray]
    target_seen: np.ndarray
    targets: np.ndarray
    fields: dict[str, np.ndarray]
    seconds: float = 0.0
    fit_seconds: float = 0.0

    @property
    def num_examples(self) -> int:
        return len(self.targets)

    @property
    def repeat_share(self) -> float:
        """Share of targets that repeat an item the user had before."""
        return float(self.target_seen.mean()) if len(self.target_seen) else 0.0

    def metrics(self, filter_name: str) -> dict[str, float]:
        """The metrics of one mode: "unfiltered" or "seen_filtered"."""
        if filter_name not in FILTERS:
            raise ValueError(f"`filter_name` must be one of {FILTERS}. Received: filter_name={filter_name!r}")
        return self.unfiltered if filter_name == UNFILTERED else self.seen_filtered


def resolve_primary_filter(setting: str, repeat_share: float) -> str:
    """"unfiltered" or "seen_filtered" from `EvalConfig.primary_filter`.

    "auto" keeps seen items when at least `REPEAT_SHARE_FOR_UNFILTERED` of the
    targets repeat an earlier item of the user (places, shops: people return),
    and removes them otherwise (films: a watched film is not recommended again).
    """
    if setting in FILTERS:
        return setting
    if setting != "auto":
        raise ValueError(f"`setting` must be auto, unfiltered or seen_filtered. Received: setting={setting!r}")
    if not 0.0 <= repeat_share <= 1.0:
        raise ValueError(f"`repeat_share` must be in [0, 1]. Received: repeat_share={repeat_share}")
    return UNFILTERED if repeat_share >= REPEAT_SHARE_FOR_UNFILTERED else SEEN_FILTERED


def repeat_share(examples: tf.data.Dataset | Iterable[Batch], catalogue_ids: np.ndarray, seen: SeenItems) -> float:
    """Share of the examples whose target item the user already had before (a repeat)."""
    index = pd.Index(np.asarray(catalogue_ids).astype(str))
    repeats = total = 0
    for batch in examples:
        targets = index.get_indexer(decode_strings(batch[es.TARGET_ITEM_ID]).reshape(-1))
        known = targets >= 0
        counts = seen.counts(batch)
        rows = np.flatnonzero(known)
        repeats += int((np.asarray(counts[rows, targets[known]]).reshape(-1) > 0).sum())
        total += len(targets)
    if total == 0:
        raise ValueError("`examples` is empty: no repeat share to measure.")
    return repeats / total


def evaluate_ranking(
    score_fn: ScoreFn,
    examples: tf.data.Dataset | Iterable[Batch],
    catalogue_ids: np.ndarray,
    seen: SeenItems,
    ks: Sequence[int] = metrics_lib.DEFAULT_KS,
    ndcg_ks: Sequence[int] = metrics_lib.DEFAULT_NDCG_KS,
    *,
    coverage_k: int = metrics_lib.DEFAULT_COVERAGE_K,
    name: str = "model",
    max_batches: int | None = None,
) -> RankingResult:
    """Ranks the whole catalogue for every example, unfiltered and seen-filtered.

    Args:
      score_fn: batch -> [B, N] float scores (tf.Tensor or np.ndarray) in the
        order of `catalogue_ids`; higher is better.
      examples: batches from `trainer.data.dataset.make_dataset`, or any
        iterable of such dicts of tensors or numpy arrays: at least user_id,
        target_item_id, target_timestamp [B]; history_item_ids [B, T] makes the
        seen items exact when several events share the target's second.
      catalogue_ids: [N] str item ids, the ranked catalogue, in score order.
      seen: the users' earlier items (`SeenItems.from_events` on events.parquet).
      ks / ndcg_ks: HR and NDCG cut-offs.
      coverage_k: top-k size for catalogue coverage.
      name: the scorer's name in the result.
      max_batches: stop after this many batches (None: the whole dataset).

    Returns:
      RankingResult with metrics for both modes and per-example ranks.
    """
    catalogue_ids = np.asarray(catalogue_ids).astype(str).astype(object)
    if catalogue_ids.ndim != 1 or len(catalogue_ids) == 0:
        raise ValueError(f"`catalogue_ids` must be a non-empty [N] array. Received: shape={catalogue_ids.shape}")
    if seen.num_items != len(catalogue_ids):
        raise ValueError(
            f"`seen` was built for {seen.num_items} items but `catalogue_ids` has {len(catalogue_ids)}; "
            "build both from the same catalogue."
        )
    num_items = len(catalogue_ids)
    index = pd.Index(catalogue_ids)
    accumulators = {f: metrics_lib.RankingAccumulator(num_items, coverage_k) for f in FILTERS}
    targets_all, seen_all = [], []
    fields: dict[str, list[np.ndarray]] = {}
    started = time.time()
    next_report = started + 30
    for step, batch in enumerate(examples):
        if max_batches is not None and step >= max_batches:
            break
        target_ids = decode_strings(batch[es.TARGET_ITEM_ID]).reshape(-1)
        targets = index.get_indexer(target_ids).astype(np.int64)
        if (targets < 0).any():
            raise ValueError(
                f"Target items not in `catalogue_ids`, e.g. {list(target_ids[targets < 0][:5])}: "
                "evaluate against the catalogue of the same prepared data."
            )
        scores = _numpy(score_fn(batch))
        if scores.shape != (len(targets), num_items):
            raise ValueError(
                f"`score_fn` must return [B, N] = [{len(targets)}, {num_items}] scores in catalogue order. "
                f"Received: shape={scores.shape}"
            )
        counts = seen.counts(batch)
        rows = np.arange(len(targets))
        seen_all.append(np.asarray(counts[rows, targets]).reshape(-1) > 0)
        accumulators[UNFILTERED].update(scores, targets)
        accumulators[SEEN_FILTERED].update(scores, targets, counts)  # the target is never excluded
        targets_all.append(targets)
        for field in SLICE_FIELDS:
            if field in batch:
                value = _numpy(batch[field]).reshape(-1)
                fields.setdefault(field, []).append(decode_strings(value) if value.dtype == object else value)
        now = time.time()
        if now >= next_report:
            done = sum(map(len, targets_all))
            log.info("Evaluating %s: %d examples, %.0f examples/s", name, done, done / (now - started))
            next_report = now + 30
    if not targets_all:
        raise ValueError("`examples` is empty: nothing to evaluate.")
    result = RankingResult(
        name=name,
        num_items=num_items,
        unfiltered=accumulators[UNFILTERED].metrics(ks, ndcg_ks),
        seen_filtered=accumulators[SEEN_FILTERED].metrics(ks, ndcg_ks),
        ranks={f: a.ranks for f, a in accumulators.items()},
        top_k={f: a.top_k for f, a in accumulators.items()},
        target_seen=np.concatenate(seen_all),
        targets=np.concatenate(targets_all),
        fields={k: np.concatenate(v) for k, v in fields.items()},
        seconds=time.time() - started,
    )
    log.info(
        "%s on %d examples in %.1f s: unfiltered HR@10 %.4f NDCG@10 %.4f | seen_filtered HR@10 %.4f NDCG@10 %.4f",
        name, result.num_examples, result.seconds, result.unfiltered.get("hr@10", float("nan")),
        result.unfiltered.get("ndcg@10", float("nan")), result.seen_filtered.get("hr@10", float("nan")),
        result.seen_filtered.get("ndcg@10", float("nan")),
    )
    return result
