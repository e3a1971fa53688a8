"""Full-catalogue ranking metrics and binary classification metrics.

Ranking protocol (the whole catalogue is ranked for every example):
  rank of the target (0-based) = number of OTHER items, not excluded, whose
  score is >= the target's score. Ties are counted against the model
  (pessimistic): a model that gives every item the same score ranks every
  target last, never first. Excluded items never count; the target is never
  excluded. A NaN score is treated as -inf (a NaN target ranks last).

  HR@k    = mean(rank < k)
  NDCG@k  = mean(1 / log2(rank + 2) if rank < k else 0)   (one relevant item)
  MRR     = mean(1 / (rank + 1))                          (full ranking, no cut-off)

Scores are processed in row chunks (`RankingAccumulator` streams batches), so a
[U, N] matrix of every example against every item never has to exist at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse
import scipy.stats

log = logging.getLogger(__name__)

DEFAULT_KS: tuple[int, ...] = (10, 20, 50)
DEFAULT_NDCG_KS: tuple[int, ...] = (10, 20)
DEFAULT_COVERAGE_K = 10
# Temporaries per chunk stay around this many elements (bool / float).
_CHUNK_ELEMENTS = 1 << 24

Exclusion = np.ndarray | scipy.sparse.spmatrix | scipy.sparse.sparray


def _as_numpy(values) -> np.ndarray:
    return values.numpy() if hasattr(values, "numpy") else np.asarray(values)


def _check_scores_targets(scores: np.ndarray, targets: np.ndarray) -> None:
    if scores.ndim != 2:
        raise ValueError(f"`scores` must be [U, N]. Received: scores.shape={scores.shape}")
    if targets.shape != (scores.shape[0],):
        raise ValueError(
            f"`targets` must be [U] with U={scores.shape[0]} (rows of scores). Received: targets.shape={targets.shape}"
        )
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"`targets` must be integer item indices. Received: targets.dtype={targets.dtype}")
    if len(targets) and (targets.min() < 0 or targets.max() >= scores.shape[1]):
        raise ValueError(
            f"`targets` must be in [0, {scores.shape[1]}) (columns of scores). "
            f"Received: targets in [{targets.min()}, {targets.max()}]"
        )


def _finite_or_low(scores: np.ndarray) -> np.ndarray:
    """Scores with NaN replaced by -inf (so NaN never wins a comparison it should lose)."""
    if not np.issubdtype(scores.dtype, np.floating):
        return scores.astype(np.float64)
    nan = np.isnan(scores)
    if nan.any():
        log.warning("%d NaN scores treated as -inf (a NaN target ranks last).", int(nan.sum()))
        scores = np.where(nan, -np.inf, scores)
    return scores


def _dense_ranks(scores: np.ndarray, targets: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets]
    ahead = scores >= target_scores[:, None]  # (U, N); includes the target itself
    if exclude is not None:
        ahead &= ~exclude
    ahead[rows, targets] = False  # the target is never ahead of itself, and never excluded
    return ahead.sum(axis=1, dtype=np.int64)


def _sparse_excluded_ahead(
    scores: np.ndarray, targets: np.ndarray, exclude: scipy.sparse.csr_matrix
) -> np.ndarray:
    """[U] number of excluded, non-target items scoring >= the target (O(nnz))."""
    exclude = exclude.tocsr(copy=True)
    exclude.eliminate_zeros()
    exclude.sum_duplicates()
    rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
    cols = exclude.indices
    target_scores = scores[np.arange(len(targets)), targets]
    hit = (scores[rows, cols] >= target_scores[rows]) & (cols != targets[rows])
    return np.bincount(rows[hit], minlength=len(targets)).astype(np.int64)


def target_ranks(
    scores: np.ndarray,
    targets: np.ndarray,
    exclude: Exclusion | None = None,
    *,
    chunk_rows: int | None = None,
) -> np.ndarray:
    """0-based rank of each target among all items, ties counted pessimistically.

    Args:
      scores: [U, N] float scores over the whole catalogue (higher = better).
      targets: [U] int, the column of each row's target item.
      exclude: optional [U, N] bool (dense, or a scipy sparse matrix whose
        non-zeros are the excluded items): items removed from the ranking, such
        as the user's already-seen items. The target is never excluded, even if
        marked.
      chunk_rows: rows per chunk (default: about 16M elements per chunk).

    Returns:
      [U] int64: the number of other, non-excluded items whose score is >= the
      target's score.
    """
    scores = _as_numpy(scores)
    targets = _as_numpy(targets)
    _check_scores_targets(scores, targets)
    sparse_exclude = exclude is not None and scipy.sparse.issparse(exclude)
    if exclude is not None:
        if exclude.shape != scores.shape:
            raise ValueError(
                f"`exclude` must have the shape of scores {scores.shape}. Received: exclude.shape={exclude.shape}"
            )
        if not sparse_exclude:
            exclude = np.asarray(exclude, dtype=bool)
    if chunk_rows is None:
        chunk_rows = max(1, _CHUNK_ELEMENTS // max(scores.shape[1], 1))
    if chunk_rows < 1:
        raise ValueError(f"`chunk_rows` must be >= 1. Received: chunk_rows={chunk_rows}")
    out = np.empty(len(targets), dtype=np.int64)
    for start in range(0, len(targets), chunk_rows):
        stop = min(start + chunk_rows, len(targets))
        chunk = _finite_or_low(scores[start:stop])
        t = targets[start:stop]
        if sparse_exclude:
            ranks = _dense_ranks(chunk, t, None)
            ranks -= _sparse_excluded_ahead(chunk, t, scipy.sparse.csr_matrix(exclude[start:stop]))
        else:
            ranks = _dense_ranks(chunk, t, None if exclude is None else exclude[start:stop])
        out[start:stop] = ranks
    return out


def top_k_indices(scores: np.ndarray, k: int, exclude: Exclusion | None = None) -> np.ndarray:
    """[U, min(k, N)] int64 item indices of the k best scores per row, best first.

    Excluded items (dense bool or sparse non-zeros, [U, N]) are never returned
    unless a row has fewer than k items left. Ties are broken arbitrarily.
    """
    if k < 1:
        raise ValueError(f"`k` must be >= 1. Received: k={k}")
    scores = _finite_or_low(_as_numpy(scores))
    if scores.ndim != 2:
        raise ValueError(f"`scores` must be [U, N]. Received: scores.shape={scores.shape}")
    if exclude is not None:
        scores = scores.astype(np.promote_types(scores.dtype, np.float32), copy=True)
        if scipy.sparse.issparse(exclude):
            coo = scipy.sparse.coo_matrix(exclude)
            nonzero = coo.data != 0
            scores[coo.row[nonzero], coo.col[nonzero]] = -np.inf
        else:
            scores[np.asarray(exclude, dtype=bool)] = -np.inf
    k = min(k, scores.shape[1])
    if k == scores.shape[1]:
        part = np.tile(np.arange(k), (scores.shape[0], 1))
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def _without_targets(exclude: Exclusion, targets: np.ndarray) -> Exclusion:
    """`exclude` ([U, N] dense bool or sparse) with each row's target column cleared."""
    rows = np.arange(len(targets))
    if scipy.sparse.issparse(exclude):
        marks = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, targets)), shape=exclude.shape)
        cleared = scipy.sparse.csr_matrix(exclude, dtype=np.float64)
        cleared = (cleared - cleared.multiply(marks)).tocsr()
        cleared.eliminate_zeros()
        return cleared
    cleared = np.array(exclude, dtype=bool, copy=True)
    cleared[rows, targets] = False
    return cleared


def _check_ks(name: str, ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"`{name}` must be positive cut-offs. Received: {name}={ks}")
    return ks


def metric_names(ks: Sequence[int] = DEFAULT_KS, ndcg_ks: Sequence[int] = DEFAULT_NDCG_KS) -> tuple[str, ...]:
    """Names in report order: per cut-off ascending hr@k then ndcg@k; then mrr."""
    names = []
    for k in sorted(set(ks) | set(ndcg_ks)):
        if k in ks:
            names.append(f"hr@{k}")
        if k in ndcg_ks:
            names.append(f"ndcg@{k}")
    return tuple(names) + ("mrr",)


def ranking_metrics(
    ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS, ndcg_ks: Sequence[int] = DEFAULT_NDCG_KS
) -> dict[str, float]:
    """HR@k, NDCG@k and MRR from 0-based target ranks.

    Args:
      ranks: [U] int, 0-based ranks (see `target_ranks`). Must be non-empty.
      ks: cut-offs for HR.
      ndcg_ks: cut-offs for NDCG.

    Returns:
      {"hr@10", "ndcg@10", "hr@20", "ndcg@20", "hr@50", "mrr"} for the defaults
      (order of `metric_names`), python floats.
    """
    ks = _check_ks("ks", ks)
    ndcg_ks = _check_ks("ndcg_ks", ndcg_ks)
    ranks = _as_numpy(ranks)
    if ranks.ndim != 1 or len(ranks) == 0:
        raise ValueError(f"`ranks` must be a non-empty [U] array. Received: ranks.shape={ranks.shape}")
    if ranks.min() < 0:
        raise ValueError(f"`ranks` must be >= 0 (0-based). Received: min rank {ranks.min()}")
    ranks = ranks.astype(np.float64)
    gains = 1.0 / np.log2(ranks + 2.0)
    out = {}
    for name in metric_names(ks, ndcg_ks)[:-1]:
        kind, k = name.split("@")
        inside = ranks < int(k)
        out[name] = float(inside.mean()) if kind == "hr" else float(np.where(inside, gains, 0.0).mean())
    out["mrr"] = float((1.0 / (ranks + 1.0)).mean())
    return out


def catalogue_coverage(top_k_indices: np.ndarray, num_items: int) -> float:
    """Share of the catalogue that appears in at least one top-k list.

    Args:
      top_k_indices: [U, k] int item indices recommended per example.
      num_items: N, the catalogue size.

    Returns:
      distinct recommended items / N, in [0, 1].
    """
    if num_items < 1:
        raise ValueError(f"`num_items` must be >= 1. Received: num_items={num_items}")
    indices = _as_numpy(top_k_indices)
    if indices.size and (indices.min() < 0 or indices.max() >= num_items):
        raise ValueError(
            f"`top_k_indices` must be in [0, num_items={num_items}). "
            f"Received: values in [{indices.min()}, {indices.max()}]"
        )
    return float(len(np.unique(indices)) / num_items)


class RankingAccumulator:
    """Streams [B, N] score chunks; keeps per-example ranks and top-k lists.

    >>> acc = RankingAccumulator(num_items=N)
    >>> for scores, targets, seen in batches: acc.update(scores, targets, seen)
    >>> acc.metrics()  # ranking metrics + "coverage"
    """

    def __init__(self, num_items: int, coverage_k: int = DEFAULT_COVERAGE_K):
        if num_items < 1:
            raise ValueError(f"`num_items` must be >= 1. Received: num_items={num_items}")
        if coverage_k < 1:
            raise ValueError(f"`coverage_k` must be >= 1. Received: coverage_k={coverage_k}")
        self.num_items = num_items
        self.coverage_k = coverage_k
        self._ranks: list[np.ndarray] = []
        self._top_k: list[np.ndarray] = []

    def update(self, scores: np.ndarray, targets: np.ndarray, exclude: Exclusion | None = None) -> np.ndarray:
        """Adds one chunk: scores [B, N], targets [B] int, exclude [B, N] bool/sparse or None.

        Returns the chunk's [B] int64 ranks.
        """
        scores = _as_numpy(scores)
        if scores.ndim != 2 or scores.shape[1] != self.num_items:
            raise ValueError(f"`scores` must be [B, {self.num_items}]. Received: scores.shape={scores.shape}")
        targets = _as_numpy(targets)
        ranks = target_ranks(scores, targets, exclude)
        self._ranks.append(ranks)
        if exclude is not None:
            exclude = _without_targets(exclude, targets)  # the target stays recommendable
        self._top_k.append(top_k_indices(scores, self.coverage_k, exclude))
        return ranks

    @property
    def ranks(self) -> np.ndarray:
        """[U] int64, every example so far in update order."""
        return np.concatenate(self._ranks) if self._ranks else np.zeros([0], np.int64)

    @property
    def top_k(self) -> np.ndarray:
        """[U, coverage_k] int64 item indices, best first."""
        k = min(self.coverage_k, self.num_items)
        return np.concatenate(self._top_k) if self._top_k else np.zeros([0, k], np.int64)

    def metrics(
        self, ks: Sequence[int] = DEFAULT_KS, ndcg_ks: Sequence[int] = DEFAULT_NDCG_KS
    ) -> dict[str, float]:
        """`ranking_metrics` of every example so far, plus "coverage" (of the top-`coverage_k`)."""
        out = ranking_metrics(self.ranks, ks, ndcg_ks)
        out["coverage"] = catalogue_coverage(self.top_k, self.num_items)
        return out


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUC, accuracy, precision, recall and F1 of a binary classifier.

    Args:
      labels: [U] 0/1 (bool, int or float) true classes.
      probabilities: [U] float predicted probability (or any score) of class 1.
      threshold: predicted class = probability >= threshold.

    Returns:
      {"auc", "accuracy", "precision", "recall", "f1"}: AUC is the
      Mann-Whitney statistic on ranks with ties averaged (a tied
      positive/negative pair counts 1/2); NaN when one class is absent.
      Precision is 0 when nothing is predicted positive, recall 0 when there
      are no positives, F1 0 when both are 0.
    """
    labels = _as_numpy(labels).reshape(-1)
    probabilities = _as_numpy(probabilities).astype(np.float64).reshape(-1)
    if labels.shape != probabilities.shape:
        raise ValueError(
            f"`labels` and `probabilities` must have the same length. Received: "
            f"labels.shape={labels.shape}, probabilities.shape={probabilities.shape}"
        )
    if len(labels) == 0:
        raise ValueError("`labels` must be non-empty. Received: 0 labels")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"`labels` must be 0/1. Received: values {np.unique(labels)[:10]}")
    if np.isnan(probabilities).any():
        raise ValueError(f"`probabilities` must not be NaN. Received: {int(np.isnan(probabilities).sum())} NaN values")
    positive = labels.astype(bool)
    num_pos, num_neg = int(positive.sum()), int((~positive).sum())
    if num_pos and num_neg:
        ranks = scipy.stats.rankdata(probabilities, method="average")  # 1-based, ties averaged
        auc = (ranks[positive].sum() - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg)
    else:
        log.warning("AUC undefined with %d positives and %d negatives; reporting NaN.", num_pos, num_neg)
        auc = float("nan")
    predicted = probabilities >= threshold
    tp = int((predicted & positive).sum())
    fp = int((predicted & ~positive).sum())
    fn = int((~predicted & positive).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "auc": float(auc),
        "accuracy": float((predicted == positive).mean()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }
