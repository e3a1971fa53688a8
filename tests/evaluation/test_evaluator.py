"""SeenItems and evaluate_ranking on hand-made events and batches."""

import numpy as np
import pandas as pd
import pytest

import trainer  # noqa: F401
from trainer.evaluation import evaluator as ev

CATALOGUE = np.array(["x", "y", "z", "p", "q", "r", "s", "t"], dtype=object)


def events_frame(rows):
    """rows: (user, item, timestamp) in read order."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame["_read_order"] = np.arange(len(frame))
    return frame


def batch(users, stamps, targets, histories, width):
    """A numpy batch like make_dataset's: histories padded with "" to `width`."""
    padded = np.array([list(h) + [""] * (width - len(h)) for h in histories], dtype=object)
    return {
        "user_id": np.array(users, dtype=object),
        "target_timestamp": np.array(stamps, dtype=np.int64),
        "target_item_id": np.array(targets, dtype=object),
        "history_item_ids": padded,
    }


def dense_counts(seen, b):
    return seen.counts(b).toarray()


def test_counts_use_all_earlier_events_and_same_second_order():
    # user a: x@10, y@20, z@20 (same second, read in this order), x@30; user b: p@5
    seen = ev.SeenItems.from_events(
        events_frame([("a", "x", 10), ("b", "p", 5), ("a", "y", 20), ("a", "z", 20), ("a", "x", 30)]), CATALOGUE
    )
    b = batch(
        ["a", "a", "a", "b", "nobody"],
        [30, 20, 20, 5, 30],
        ["x", "z", "y", "p", "x"],
        [["x", "y", "z"], ["x", "y"], ["x"], [], ["x"]],
        width=10,
    )
    counts = dense_counts(seen, b)
    expected = np.zeros((5, len(CATALOGUE)))
    expected[0, [0, 1, 2]] = 1  # x's earlier event counts; the target event itself does not
    expected[1, [0, 1]] = 1  # z comes after y at the same second
    expected[2, [0]] = 1  # y: only x before it
    np.testing.assert_array_equal(counts, expected)  # b's first event and an unknown user: nothing


def test_full_window_finds_the_target_among_same_second_events():
    # T = 2: the window cannot give the position; its contents do.
    seen = ev.SeenItems.from_events(
        events_frame([("a", "p", 1), ("a", "q", 2), ("a", "r", 3), ("a", "r", 3), ("a", "t", 3)]), CATALOGUE
    )
    b = batch(["a", "a"], [3, 3], ["t", "r"], [["r", "r"], ["q", "r"]], width=2)
    counts = dense_counts(seen, b)
    index = {item: i for i, item in enumerate(CATALOGUE)}
    assert counts[0, index["p"]] == 1 and counts[0, index["q"]] == 1 and counts[0, index["r"]] == 2
    assert counts[0].sum() == 4  # p, q, r, r before t
    assert counts[1].sum() == 3 and counts[1, index["r"]] == 1  # the second r: p, q, r before it


def test_from_events_rejects_unknown_items():
    with pytest.raises(ValueError, match="catalogue_ids"):
        ev.SeenItems.from_events(events_frame([("a", "nope", 1)]), CATALOGUE)


def test_seen_filter_never_removes_the_target():
    # user a had y (twice) and z before; the target is y again (a repeat).
    seen = ev.SeenItems.from_events(
        events_frame([("a", "y", 1), ("a", "z", 2), ("a", "y", 3), ("a", "y", 4)]), CATALOGUE
    )
    b = batch(["a"], [4], ["y"], [["y", "z", "y"]], width=5)
    # scores: z (seen) 0.9 > y (target) 0.5 = p 0.5 (unseen tie) > others
    scores = np.array([[0.1, 0.5, 0.9, 0.5, 0.0, 0.0, 0.0, 0.0]])
    result = ev.evaluate_ranking(lambda _: scores, [b], CATALOGUE, seen, ks=(1, 2), ndcg_ks=(1,))
    assert result.ranks["unfiltered"].tolist() == [2]  # z higher, p tied (pessimistic)
    assert result.ranks["seen_filtered"].tolist() == [1]  # z removed; y stays; p still tied
    assert result.target_seen.tolist() == [True]
    assert result.unfiltered["hr@2"] == 0.0 and result.seen_filtered["hr@2"] == 1.0
    assert result.top_k["seen_filtered"][0, 0] != 2  # z never recommended when filtered
    assert result.fields["target_item_id"].tolist() == ["y"]


def test_evaluate_ranking_checks_the_score_shape_and_targets():
    seen = ev.SeenItems.from_events(events_frame([("a", "x", 1), ("a", "y", 2)]), CATALOGUE)
    b = batch(["a"], [2], ["y"], [["x"]], width=3)
    with pytest.raises(ValueError, match="score_fn"):
        ev.evaluate_ranking(lambda _: np.zeros((1, 3)), [b], CATALOGUE, seen)
    bad = dict(b, target_item_id=np.array(["unknown"], dtype=object))
    with pytest.raises(ValueError, match="catalogue_ids"):
        ev.evaluate_ranking(lambda _: np.zeros((1, 8)), [bad], CATALOGUE, seen)


def test_resolve_primary_filter():
    assert ev.resolve_primary_filter("auto", 0.0) == "seen_filtered"  # films: nobody re-watches
    assert ev.resolve_primary_filter("auto", 0.6) == "unfiltered"  # places: people return
    assert ev.resolve_primary_filter("seen_filtered", 0.6) == "seen_filtered"
    with pytest.raises(ValueError, match="setting"):
        ev.resolve_primary_filter("both", 0.1)
