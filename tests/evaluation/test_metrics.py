"""Ranking and binary metrics against hand-worked examples and brute-force references."""

import math

import numpy as np
import pytest
import scipy.sparse

import trainer  # noqa: F401
from trainer.evaluation import metrics


def reference_rank(scores, target, excluded=()):
    """Plain python: other, non-excluded items scoring >= the target's score."""
    return sum(
        1 for j, s in enumerate(scores) if j != target and j not in excluded and s >= scores[target]
    )


def test_ranks_hand_checked_with_ties():
    scores = np.array(
        [
            [0.9, 0.5, 0.5, 0.1],  # target 2 (0.5): item 0 higher, item 1 tied -> rank 2
            [0.2, 0.2, 0.2, 0.2],  # everything tied: pessimistic -> last, rank 3
            [0.3, 0.8, 0.1, 0.8],  # target 3 (0.8) tied with item 1 -> rank 1
        ]
    )
    targets = np.array([2, 0, 3])
    np.testing.assert_array_equal(metrics.target_ranks(scores, targets), [2, 3, 1])


def test_excluded_items_never_count_and_the_target_is_never_excluded():
    scores = np.array([[0.9, 0.5, 0.5, 0.1], [0.3, 0.8, 0.1, 0.8]])
    targets = np.array([2, 3])
    exclude = np.zeros_like(scores, dtype=bool)
    exclude[0, 1] = True  # the tied item 1 is removed: rank 2 -> 1
    exclude[1, 3] = True  # marks the target itself: ignored, rank stays 1
    np.testing.assert_array_equal(metrics.target_ranks(scores, targets, exclude), [1, 1])
    exclude[1, 1] = True  # now the tied competitor goes too: rank 0
    np.testing.assert_array_equal(metrics.target_ranks(scores, targets, exclude), [1, 0])


def test_ranks_match_reference_dense_sparse_and_chunked():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(40, 15)).astype(np.float32)  # few values: many ties
    targets = rng.integers(0, 15, size=40)
    exclude = rng.random((40, 15)) < 0.3
    expected_plain = [reference_rank(scores[u], targets[u]) for u in range(40)]
    expected_excl = [
        reference_rank(scores[u], targets[u], set(np.flatnonzero(exclude[u]))) for u in range(40)
    ]
    np.testing.assert_array_equal(metrics.target_ranks(scores, targets), expected_plain)
    np.testing.assert_array_equal(metrics.target_ranks(scores, targets, exclude), expected_excl)
    np.testing.assert_array_equal(
        metrics.target_ranks(scores, targets, scipy.sparse.csr_matrix(exclude)), expected_excl
    )
    np.testing.assert_array_equal(metrics.target_ranks(scores, targets, exclude, chunk_rows=3), expected_excl)
    assert metrics.target_ranks(scores, targets).dtype == np.int64


def test_nan_target_ranks_last_and_nan_competitors_never_win():
    scores = np.array([[np.nan, 0.1, 0.2], [0.5, np.nan, 0.1]])
    np.testing.assert_array_equal(metrics.target_ranks(scores, np.array([0, 0])), [2, 0])


def test_ranking_metrics_by_hand():
    ranks = np.array([0, 1, 9, 10, 49, 60])
    out = metrics.ranking_metrics(ranks)
    assert list(out) == ["hr@10", "ndcg@10", "hr@20", "ndcg@20", "hr@50", "mrr"]
    assert out["hr@10"] == pytest.approx(3 / 6)
    assert out["hr@20"] == pytest.approx(4 / 6)
    assert out["hr@50"] == pytest.approx(5 / 6)
    # 1/log2(rank + 2): rank 0 -> 1, rank 1 -> 1/log2(3), rank 9 -> 1/log2(11), rank 10 -> 1/log2(12)
    ndcg10 = (1 + 1 / math.log2(3) + 1 / math.log2(11)) / 6
    assert out["ndcg@10"] == pytest.approx(ndcg10)
    assert out["ndcg@20"] == pytest.approx(ndcg10 + 1 / math.log2(12) / 6)
    assert out["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 11 + 1 / 50 + 1 / 61) / 6)


def test_ranking_metrics_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ranks"):
        metrics.ranking_metrics(np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="ks"):
        metrics.ranking_metrics(np.array([1]), ks=(0,))
    with pytest.raises(ValueError, match="targets"):
        metrics.target_ranks(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="exclude"):
        metrics.target_ranks(np.zeros((2, 3)), np.array([0, 1]), np.zeros((2, 2), bool))


def test_catalogue_coverage_and_top_k():
    assert metrics.catalogue_coverage(np.array([[0, 1], [1, 2]]), num_items=5) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="num_items"):
        metrics.catalogue_coverage(np.array([[0, 7]]), num_items=5)
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    np.testing.assert_array_equal(metrics.top_k_indices(scores, 2), [[1, 3]])
    np.testing.assert_array_equal(metrics.top_k_indices(scores, 2, np.array([[False, True, False, False]])), [[3, 2]])


def test_accumulator_streams_like_one_pass():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(30, 12)).astype(np.float64)
    targets = rng.integers(0, 12, size=30)
    acc = metrics.RankingAccumulator(num_items=12, coverage_k=3)
    for start in range(0, 30, 7):
        acc.update(scores[start : start + 7], targets[start : start + 7])
    np.testing.assert_array_equal(acc.ranks, metrics.target_ranks(scores, targets))
    out = acc.metrics()
    expected = metrics.ranking_metrics(metrics.target_ranks(scores, targets))
    for name, value in expected.items():
        assert out[name] == pytest.approx(value)
    assert acc.top_k.shape == (30, 3)
    assert out["coverage"] == pytest.approx(len(np.unique(acc.top_k)) / 12)


def brute_force_auc(labels, scores):
    pairs = wins = 0.0
    for i, yi in enumerate(labels):
        for j, yj in enumerate(labels):
            if yi == 1 and yj == 0:
                pairs += 1
                wins += 1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0
    return wins / pairs


def test_binary_metrics_by_hand():
    # positives 0.8, 0.3; negatives 0.8, 0.1. Pairs: (0.8,0.8) tie 1/2, (0.8,0.1) 1, (0.3,0.8) 0, (0.3,0.1) 1.
    out = metrics.binary_metrics(np.array([1, 0, 1, 0]), np.array([0.8, 0.8, 0.3, 0.1]))
    assert out["auc"] == pytest.approx(2.5 / 4)
    # predicted [1, 1, 0, 0]: tp 1, fp 1, fn 1, tn 1
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["precision"] == pytest.approx(0.5)
    assert out["recall"] == pytest.approx(0.5)
    assert out["f1"] == pytest.approx(0.5)


def test_auc_with_ties_matches_brute_force_pairs():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, size=60)
    scores = rng.integers(0, 5, size=60) / 4.0
    assert metrics.binary_metrics(labels, scores)["auc"] == pytest.approx(brute_force_auc(labels, scores))


def test_binary_metrics_edge_cases():
    out = metrics.binary_metrics(np.array([1, 1]), np.array([0.2, 0.9]))
    assert math.isnan(out["auc"])
    assert out["recall"] == pytest.approx(0.5)
    nothing = metrics.binary_metrics(np.array([0, 1]), np.array([0.1, 0.2]))
    assert nothing["precision"] == 0.0 and nothing["f1"] == 0.0
    with pytest.raises(ValueError, match="labels"):
        metrics.binary_metrics(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="probabilities"):
        metrics.binary_metrics(np.array([0, 1]), np.array([0.1]))


def test_accumulator_top_k_keeps_an_excluded_target():
    scores = np.array([[0.9, 0.8, 0.1]])
    exclude = np.array([[True, True, False]])  # item 1 is the target: marked, but never excluded
    for mask in (exclude, scipy.sparse.csr_matrix(exclude)):
        acc = metrics.RankingAccumulator(num_items=3, coverage_k=1)
        assert acc.update(scores, np.array([1]), mask).tolist() == [0]
        assert acc.top_k.tolist() == [[1]]
