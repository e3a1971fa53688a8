"""Baselines the model must beat, scored by the same full-catalogue evaluator.

Each baseline has `fit(train_events, catalogue_ids)` (statistics from the
training period only) and `score_fn(batch) -> [B, N]` scores in catalogue order:

  popularity          training-period event count of each item.
  repeat_frequency    how often the user had each item before the target (all
                      their earlier events, any period), popularity breaking ties.
  cooccurrence        item-to-item association rules from training-period
                      sequences: score(j) = sum over the last few history items h
                      (recency-weighted) of P(j follows h), plus a little popularity.
  tfrs_two_tower_ids  the TFRS basic-retrieval tutorial model: user-id and item-id
                      embedding towers (32-d), in-batch softmax, Adagrad(0.1).

`evaluate_baselines` fits and scores every requested baseline on a prepared
dataset, so a training run can report them next to the model.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse
import tensorflow as tf
import tensorflow_recommenders as tfrs

from trainer.data import dataset as data_lib
from trainer.data import example_schema as es
from trainer.evaluation import evaluator as ev
from trainer.evaluation import metrics as metrics_lib

log = logging.getLogger(__name__)

POPULARITY = "popularity"
REPEAT_FREQUENCY = "repeat_frequency"
COOCCURRENCE = "cooccurrence"
TWO_TOWER = "tfrs_two_tower_ids"
BASELINES: tuple[str, ...] = (POPULARITY, REPEAT_FREQUENCY, COOCCURRENCE, TWO_TOWER)


class Baseline(Protocol):
    name: str

    def fit(self, train_events: pd.DataFrame, catalogue_ids: np.ndarray) -> "Baseline": ...

    def score_fn(self, batch: ev.Batch) -> np.ndarray: ...


def _catalogue_index(catalogue_ids: np.ndarray) -> pd.Index:
    ids = np.asarray(catalogue_ids).astype(str)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError(f"`catalogue_ids` must be a non-empty [N] array. Received: shape={ids.shape}")
    index = pd.Index(ids)
    if not index.is_unique:
        raise ValueError("`catalogue_ids` must be unique. Received duplicates, e.g. "
                         f"{list(index[index.duplicated()][:5])}")
    return index


def _train_counts(train_events: pd.DataFrame, index: pd.Index) -> np.ndarray:
    """[N] float64 training events per catalogue item (items outside the catalogue ignored)."""
    if "item_id" not in train_events.columns:
        raise ValueError(f"`train_events` needs an item_id column. Received columns: {list(train_events.columns)}")
    positions = index.get_indexer(train_events["item_id"].astype(str))
    return np.bincount(positions[positions >= 0], minlength=len(index)).astype(np.float64)


def _batch_size(batch: ev.Batch) -> int:
    return int(np.shape(batch[es.USER_ID])[0])


class Popularity:
    """Every user gets the training-period counts: score(j) = train events of j."""

    name = POPULARITY

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None  # [N] float64

    def fit(self, train_events: pd.DataFrame, catalogue_ids: np.ndarray) -> "Popularity":
        self.counts = _train_counts(train_events, _catalogue_index(catalogue_ids))
        return self

    def score_fn(self, batch: ev.Batch) -> np.ndarray:
        """[B, N] float64: the same popularity row for every example."""
        if self.counts is None:
            raise ValueError("Call `fit` before `score_fn`.")
        return np.tile(self.counts, (_batch_size(batch), 1))


class RepeatFrequency:
    """score(j) = (times the user had j before the target) * (max count + 1) + train count(j).

    The user's own counts come from ALL their earlier events (`seen`, built on
    events.parquet), not only the history window; popularity only breaks ties
    (the product keeps both exact in float64).
    """

    name = REPEAT_FREQUENCY

    def __init__(self, seen: ev.SeenItems):
        self.seen = seen
        self.popularity: np.ndarray | None = None

    def fit(self, train_events: pd.DataFrame, catalogue_ids: np.ndarray) -> "RepeatFrequency":
        index = _catalogue_index(catalogue_ids)
        if len(index) != self.seen.num_items:
            raise ValueError(
                f"`catalogue_ids` has {len(index)} items but `seen` was built for {self.seen.num_items}."
            )
        self.popularity = _train_counts(train_events, index)
        return self

    def score_fn(self, batch: ev.Batch) -> np.ndarray:
        """[B, N] float64 user counts, scaled above any popularity, plus popularity."""
        if self.popularity is None:
            raise ValueError("Call `fit` before `score_fn`.")
        counts = self.seen.counts(batch).toarray()
        return counts * (self.popularity.max() + 1.0) + self.popularity[None, :]


@dataclasses.dataclass(frozen=True)
class CooccurrenceParams:
    """Association-rule settings (tuned on the validation split by `tune_cooccurrence`)."""

    window: int = 3  # j counts as following h when it is among the next `window` events (weight 1/distance)
    symmetric: bool = False  # also count j BEFORE h: co-occurrence instead of "follows"
    history: int = 5  # how many of the most recent history items vote
    decay: float = 0.7  # weight of the k-th most recent voter (k = 0 newest) = decay ** k
    popularity_weight: float = 1e-3  # + weight * train share of j: breaks ties, backs off for cold histories

    def __post_init__(self):
        if self.window < 1:
            raise ValueError(f"`window` must be >= 1. Received: window={self.window}")
        if self.history < 1:
            raise ValueError(f"`history` must be >= 1. Received: history={self.history}")
        if not 0 < self.decay <= 1:
            raise ValueError(f"`decay` must be in (0, 1]. Received: decay={self.decay}")
        if self.popularity_weight < 0:
            raise ValueError(f"`popularity_weight` must be >= 0. Received: popularity_weight={self.popularity_weight}")


class Cooccurrence:
    """Item-to-item rules learnt on training-period sequences.

    Counts C[h, j] = sum over users' training-period sequences of 1/d for every
    pair where j comes d <= window events after h (and, if symmetric, before);
    P(j | h) = C[h, j] / sum_j' C[h, j'] (the rule's confidence). A request
    scores score(j) = sum_k w_k P(j | h_k) / sum_k w_k + popularity_weight * p(j)
    over its last `history` items h_k (w_k = decay ** k, newest k = 0) and the
    training share p(j) of each item.
    """

    name = COOCCURRENCE

    def __init__(self, params: CooccurrenceParams | None = None):
        self.params = params or CooccurrenceParams()
        self.index: pd.Index | None = None
        self.transitions: scipy.sparse.csr_matrix | None = None  # [N, N] P(j | h)
        self.popularity: np.ndarray | None = None  # [N] training share

    def fit(self, train_events: pd.DataFrame, catalogue_ids: np.ndarray) -> "Cooccurrence":
        """Learns P(j | h) from `train_events` (user_id, item_id, timestamp[, _read_order])."""
        for column in ("user_id", "item_id", "timestamp"):
            if column not in train_events.columns:
                raise ValueError(f"`train_events` needs column {column!r}. Received: {list(train_events.columns)}")
        self.index = _catalogue_index(catalogue_ids)
        counts = _train_counts(train_events, self.index)
        self.popularity = counts / max(counts.sum(), 1.0)
        order = ["user_id", "timestamp"] + (["_read_order"] if "_read_order" in train_events.columns else [])
        frame = train_events.sort_values(order, kind="mergesort")
        items = self.index.get_indexer(frame["item_id"].astype(str))
        users = frame["user_id"].astype(str).to_numpy(dtype=object)
        n = len(self.index)
        rows, cols, weights = [], [], []
        for distance in range(1, self.params.window + 1):
            same_user = users[:-distance] == users[distance:]
            valid = same_user & (items[:-distance] >= 0) & (items[distance:] >= 0)
            before, after = items[:-distance][valid], items[distance:][valid]
            rows.append(before)
            cols.append(after)
            weights.append(np.full(len(before), 1.0 / distance))
            if self.params.symmetric:
                rows.append(after)
                cols.append(before)
                weights.append(np.full(len(before), 1.0 / distance))
        matrix = scipy.sparse.csr_matrix(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        matrix.sum_duplicates()
        row_sums = np.asarray(matrix.sum(axis=1)).reshape(-1)
        inverse = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=row_sums > 0)
        self.transitions = scipy.sparse.diags(inverse) @ matrix
        self.transitions = self.transitions.tocsr()
        log.info("cooccurrence %s: %d rules over %d items", self.params, self.transitions.nnz, n)
        return self

    def with_params(self, params: CooccurrenceParams) -> "Cooccurrence":
        """A copy with new scoring params sharing the learnt rules (window/symmetric must match)."""
        if (params.window, params.symmetric) != (self.params.window, self.params.symmetric):
            raise ValueError("`with_params` may only change history/decay/popularity_weight; refit for window/symmetric.")
        other = Cooccurrence(params)
        other.index, other.transitions, other.popularity = self.index, self.transitions, self.popularity
        return other

    def voters(self, batch: ev.Batch) -> scipy.sparse.csr_matrix:
        """[B, N] sparse weights w_k of the last `history` items (normalised to sum 1 per row)."""
        history = ev.decode_strings(batch[es.HISTORY_ITEM_IDS])  # [B, T], padding "" at the end
        lengths = (history != "").sum(axis=1)
        rows, cols, weights = [], [], []
        for k in range(self.params.history):  # k-th most recent item
            position = lengths - 1 - k
            has = position >= 0
            ids = history[np.flatnonzero(has), position[has]]
            index = self.index.get_indexer(ids.astype(str)) if len(ids) else np.zeros(0, np.int64)
            known = index >= 0
            rows.append(np.flatnonzero(has)[known])
            cols.append(index[known])
            weights.append(np.full(int(known.sum()), self.params.decay**k))
        b = len(history)
        matrix = scipy.sparse.csr_matrix(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(b, len(self.index))
        )
        totals = np.asarray(matrix.sum(axis=1)).reshape(-1)
        inverse = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
        return (scipy.sparse.diags(inverse) @ matrix).tocsr()

    def score_fn(self, batch: ev.Batch) -> np.ndarray:
        """[B, N] float64 rule scores plus the popularity back-off."""
        if self.transitions is None:
            raise ValueError("Call `fit` before `score_fn`.")
        scores = (self.voters(batch) @ self.transitions).toarray()
        return scores + self.params.popularity_weight * self.popularity[None, :]


def cooccurrence_grid() -> list[CooccurrenceParams]:
    """The settings `tune_cooccurrence` tries (96): windows, direction, voters, decay, back-off.

    From strictly sequential (the next event after the last item) to
    basket-like (any of 30 neighbours, voted on by the whole 50-event window).
    """
    voters = [(1, 1.0), (3, 0.5), (10, 0.7), (10, 0.9), (50, 0.9), (50, 1.0)]
    return [
        CooccurrenceParams(window=w, symmetric=s, history=h, decay=d, popularity_weight=p)
        for w, s, (h, d), p in itertools.product((1, 3, 10, 30), (False, True), voters, (1e-4, 0.05))
    ]


def tune_cooccurrence(
    train_events: pd.DataFrame,
    catalogue_ids: np.ndarray,
    validation: Iterable[ev.Batch],
    seen: ev.SeenItems,
    filter_name: str,
    grid: Sequence[CooccurrenceParams] | None = None,
    metric: str = "ndcg@10",
) -> tuple[Cooccurrence, dict[CooccurrenceParams, float]]:
    """Fits a `Cooccurrence` per rule setting; keeps the best on validation `metric` in `filter_name`.

    Returns (the best fitted baseline, params -> validation metric).
    """
    grid = list(grid or cooccurrence_grid())
    if not grid:
        raise ValueError("`grid` must hold at least one CooccurrenceParams. Received: []")
    batches = list(validation)
    scores: dict[CooccurrenceParams, float] = {}
    best, best_value = None, -1.0
    fitted: dict[tuple[int, bool], Cooccurrence] = {}
    for params in grid:
        key = (params.window, params.symmetric)
        if key not in fitted:
            fitted[key] = Cooccurrence(params).fit(train_events, catalogue_ids)
        candidate = fitted[key].with_params(params)
        result = ev.evaluate_ranking(
            candidate.score_fn, batches, catalogue_ids, seen, ks=(10,), ndcg_ks=(10,), name=COOCCURRENCE
        )
        value = result.metrics(filter_name)[metric]
        scores[params] = value
        if value > best_value:
            best, best_value = candidate, value
    log.info("cooccurrence tuned on validation %s %s = %.4f with %s", filter_name, metric, best_value, best.params)
    return best, scores


class TwoTowerRetrieval(tfrs.Model):
    """The tutorial's model: two towers wired to an in-batch softmax retrieval task."""

    def __init__(self, user_model: tf.keras.Model, item_model: tf.keras.Model):
        super().__init__()
        self.user_model = user_model
        self.item_model = item_model
        self.task = tfrs.tasks.Retrieval()

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.task(self.user_model(features["user_id"]), self.item_model(features["item_id"]))


class TwoTowerIds:
    """The TFRS basic-retrieval tutorial model on (user, item) training pairs.

    As in the tutorial: StringLookup + Embedding(32) towers for user ids
    (training-period users) and item ids (the whole catalogue), in-batch softmax
    (`tfrs.tasks.Retrieval`), Adagrad(0.1), pairs shuffled (buffer 100k), batches
    of 8192 cached, a fixed number of epochs. Score = user vector . item vector.
    """

    name = TWO_TOWER

    def __init__(
        self,
        epochs: int = 15,
        embedding_dim: int = 32,
        batch_size: int = 8192,
        learning_rate: float = 0.1,
        shuffle_buffer: int = 100_000,
        seed: int = 42,
    ):
        for arg, value in (("epochs", epochs), ("embedding_dim", embedding_dim), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"`{arg}` must be >= 1. Received: {arg}={value}")
        if learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={learning_rate}")
        self.epochs = epochs
        self.embedding_dim = embedding_dim
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.user_model: tf.keras.Model | None = None
        self.item_vectors: np.ndarray | None = None  # [N, D] float32
        self.history: dict[str, list[float]] = {}

    def _tower(self, vocabulary: np.ndarray, seed: int) -> tf.keras.Model:
        return tf.keras.Sequential([
            tf.keras.layers.StringLookup(vocabulary=list(vocabulary), mask_token=None),
            tf.keras.layers.Embedding(
                len(vocabulary) + 1,
                self.embedding_dim,
                embeddings_initializer=tf.keras.initializers.RandomUniform(-0.05, 0.05, seed=seed),
            ),
        ])

    def fit(self, train_events: pd.DataFrame, catalogue_ids: np.ndarray) -> "TwoTowerIds":
        index = _catalogue_index(catalogue_ids)
        users = np.unique(train_events["user_id"].astype(str).to_numpy())
        if len(users) == 0:
            raise ValueError("`train_events` is empty: nothing to train the two-tower baseline on.")
        self.user_model = self._tower(users, self.seed)
        item_model = self._tower(index.to_numpy(), self.seed + 1)
        model = TwoTowerRetrieval(self.user_model, item_model)
        model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate=self.learning_rate))
        pairs = tf.data.Dataset.from_tensor_slices({
            "user_id": train_events["user_id"].astype(str).to_numpy(),
            "item_id": train_events["item_id"].astype(str).to_numpy(),
        })
        train = pairs.shuffle(self.shuffle_buffer, seed=self.seed).batch(self.batch_size).cache()
        started = time.time()
        fitted = model.fit(train, epochs=self.epochs, verbose=0)
        self.history = {k: [float(v) for v in values] for k, values in fitted.history.items()}
        log.info(
            "%s: %d epochs on %d pairs in %.1f s, loss %.1f -> %.1f",
            self.name, self.epochs, len(train_events), time.time() - started,
            self.history["loss"][0], self.history["loss"][-1],
        )
        self.item_vectors = item_model(tf.constant(index.to_numpy())).numpy()
        return self

    def score_fn(self, batch: ev.Batch) -> np.ndarray:
        """[B, N] float32 dot products of the user's and every item's vector."""
        if self.user_model is None:
            raise ValueError("Call `fit` before `score_fn`.")
        users = self.user_model(tf.reshape(tf.convert_to_tensor(batch[es.USER_ID]), [-1])).numpy()
        return users @ self.item_vectors.T


def make_baseline(name: str, seen: ev.SeenItems | None = None, **kwargs: Any) -> Baseline:
    """A fresh, unfitted baseline by name (`BASELINES`); repeat_frequency needs `seen`."""
    if name == POPULARITY:
        return Popularity()
    if name == REPEAT_FREQUENCY:
        if seen is None:
            raise ValueError("`seen` is required for repeat_frequency (the users' earlier events).")
        return RepeatFrequency(seen)
    if name == COOCCURRENCE:
        return Cooccurrence(kwargs.get("params"))
    if name == TWO_TOWER:
        return TwoTowerIds(**{k: v for k, v in kwargs.items() if k != "params"})
    raise ValueError(f"`name` must be one of {BASELINES}. Received: name={name!r}")


def evaluate_baselines(
    data_dir: str,
    names: Sequence[str] = BASELINES,
    *,
    split: str = "test",
    batch_size: int = 256,
    ks: Sequence[int] = metrics_lib.DEFAULT_KS,
    ndcg_ks: Sequence[int] = metrics_lib.DEFAULT_NDCG_KS,
    coverage_k: int = metrics_lib.DEFAULT_COVERAGE_K,
    primary_filter: str = "auto",
    tune: bool = True,
    tuning_grid: Sequence[CooccurrenceParams] | None = None,
    two_tower_epochs: int = 15,
    seed: int = 42,
    seen: ev.SeenItems | None = None,
    events: pd.DataFrame | None = None,
) -> dict[str, ev.RankingResult]:
    """Fits every named baseline on the training period and ranks the `split` examples.

    Args:
      data_dir: a prepared data directory (`<job_dir>/data`).
      names: baselines to run, from `BASELINES`.
      split: "validation" or "test".
      batch_size: examples per scored batch ([batch_size, N] scores at a time).
      ks / ndcg_ks / coverage_k: metric cut-offs.
      primary_filter: "auto" | "unfiltered" | "seen_filtered": the mode the
        cooccurrence tuning optimises (auto: from the validation repeat share).
      tune: tune cooccurrence on the validation split (else default params).
      tuning_grid: the settings to tune over (default `cooccurrence_grid()`).
      two_tower_epochs: epochs of the TFRS two-tower baseline.
      seed: seeds the two-tower initialisation and shuffling.
      seen / events: already loaded `SeenItems` / events.parquet frame, to share.

    Returns:
      name -> RankingResult (its `fit_seconds` says how long fitting/tuning took).
    """
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"`names` must be from {BASELINES}. Received unknown: {unknown}")
    if split not in ("validation", "test"):
        raise ValueError(f"`split` must be validation or test. Received: split={split!r}")
    catalogue = ev.load_catalogue(data_dir)
    if events is None:
        events = ev.load_events(data_dir)
    if seen is None:
        seen = ev.SeenItems.from_events(events, catalogue.ids)
    train_events = events[events["period"] == "train"]
    results: dict[str, ev.RankingResult] = {}
    validation = None
    filter_name = primary_filter
    for name in names:
        started = time.time()
        if name == COOCCURRENCE and tune:
            if validation is None:
                validation = [
                    {k: v.numpy() for k, v in b.items()} for b in data_lib.make_dataset(data_dir, "validation", batch_size)
                ]
            if filter_name == "auto":
                filter_name = ev.resolve_primary_filter("auto", ev.repeat_share(validation, catalogue.ids, seen))
            baseline: Baseline = tune_cooccurrence(
                train_events, catalogue.ids, validation, seen, filter_name, tuning_grid
            )[0]
        else:
            baseline = make_baseline(name, seen, epochs=two_tower_epochs, seed=seed).fit(train_events, catalogue.ids)
        fit_seconds = time.time() - started
        result = ev.evaluate_ranking(
            baseline.score_fn,
            data_lib.make_dataset(data_dir, split, batch_size),
            catalogue.ids,
            seen,
            ks,
            ndcg_ks,
            coverage_k=coverage_k,
            name=name,
        )
        result.fit_seconds = fit_seconds
        results[name] = result
    return results
