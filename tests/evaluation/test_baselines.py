"""Baselines on hand-made histories and sequences."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import trainer  # noqa: F401
from trainer.evaluation import baselines
from trainer.evaluation import evaluator as ev

CATALOGUE = np.array(["A", "B", "C", "D", "E"], dtype=object)
A, B, C, D, E = range(5)


def events_frame(rows):
    """rows: (user, item, timestamp) in read order."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame["_read_order"] = np.arange(len(frame))
    return frame


def batch(users, stamps, histories, width=6):
    padded = np.array([list(h) + [""] * (width - len(h)) for h in histories], dtype=object)
    return {
        "user_id": np.array(users, dtype=object),
        "target_timestamp": np.array(stamps, dtype=np.int64),
        "history_item_ids": padded,
    }


def test_popularity_scores_training_counts():
    train = events_frame([("u", "B", 1), ("v", "B", 2), ("v", "C", 3)])
    model = baselines.Popularity().fit(train, CATALOGUE)
    scores = model.score_fn(batch(["u", "w"], [9, 9], [[], []]))
    np.testing.assert_array_equal(scores, [[0, 2, 1, 0, 0]] * 2)


def test_repeat_frequency_on_a_hand_made_history():
    # Training popularity (other users): D 3, C 2, E 1.
    train = events_frame([("o", "D", 1), ("o", "D", 2), ("o", "D", 3), ("o", "C", 4), ("o", "C", 5), ("o", "E", 6)])
    # u had A, B, A before the target at t=40 (B at t=30 is a later, validation-period event: still earlier).
    everything = pd.concat(
        [train, events_frame([("u", "A", 10), ("u", "B", 20), ("u", "A", 30), ("u", "E", 40)])], ignore_index=True
    )
    seen = ev.SeenItems.from_events(everything, CATALOGUE)
    model = baselines.RepeatFrequency(seen).fit(train, CATALOGUE)
    scores = model.score_fn(batch(["u"], [40], [["A", "B", "A"]]))[0]
    # Expected order: A (2 visits) > B (1 visit) > then popularity D (3) > C (2) > E (1).
    assert list(np.argsort(-scores)) == [A, B, D, C, E]
    # The tie-break never overturns a visit: one visit beats the most popular item.
    assert scores[B] > scores[D]


def test_cooccurrence_on_a_hand_made_sequence():
    # Training sequences: u1 A B C, u2 A B D, u3 A C.
    train = events_frame([
        ("u1", "A", 1), ("u1", "B", 2), ("u1", "C", 3),
        ("u2", "A", 1), ("u2", "B", 2), ("u2", "D", 3),
        ("u3", "A", 1), ("u3", "C", 2),
    ])
    params = baselines.CooccurrenceParams(window=1, symmetric=False, history=1, popularity_weight=0.0)
    model = baselines.Cooccurrence(params).fit(train, CATALOGUE)
    # Next-item counts: A->B 2, A->C 1, B->C 1, B->D 1. P(C|B) = P(D|B) = 1/2.
    np.testing.assert_allclose(model.score_fn(batch(["q"], [9], [["A", "B"]])), [[0, 0, 0.5, 0.5, 0]])
    # Two voters, newest weight 1, previous 0.5 -> normalised B 2/3, A 1/3:
    # B: 1/3 * P(B|A) = 1/3 * 2/3; C: 2/3 * 1/2 + 1/3 * 1/3; D: 2/3 * 1/2.
    two = model.with_params(dataclasses.replace(params, history=2, decay=0.5))
    np.testing.assert_allclose(two.score_fn(batch(["q"], [9], [["A", "B"]])), [[0, 2 / 9, 4 / 9, 1 / 3, 0]])
    # Window 2 adds the pairs two steps apart with weight 1/2: A->C 0.5 (u1), A->D 0.5 (u2).
    # Row A: B 2, C 1 + 0.5, D 0.5 (total 4).
    wide = baselines.Cooccurrence(dataclasses.replace(params, window=2)).fit(train, CATALOGUE)
    np.testing.assert_allclose(wide.score_fn(batch(["q"], [9], [["A"]])), [[0, 0.5, 0.375, 0.125, 0]])
    # Symmetric: C's neighbours are B (1, from u1) and A (1, from u3), each 1/2.
    sym = baselines.Cooccurrence(dataclasses.replace(params, symmetric=True)).fit(train, CATALOGUE)
    np.testing.assert_allclose(sym.score_fn(batch(["q"], [9], [["C"]])), [[0.5, 0.5, 0, 0, 0]])


def test_cooccurrence_popularity_back_off_for_an_unknown_history():
    train = events_frame([("u1", "A", 1), ("u1", "B", 2), ("u2", "B", 1)])
    params = baselines.CooccurrenceParams(window=1, history=1, popularity_weight=0.1)
    scores = baselines.Cooccurrence(params).fit(train, CATALOGUE).score_fn(batch(["q"], [9], [["E"]]))
    # E never seen in training: only 0.1 * train share (A 1/3, B 2/3).
    np.testing.assert_allclose(scores, [[0.1 / 3, 0.2 / 3, 0, 0, 0]])


def test_tfrs_two_tower_learns_a_tiny_user_item_pattern():
    # Four users, each with one favourite item (20 events each), a few noise events.
    rows = []
    for u, item in enumerate(["A", "B", "C", "D"]):
        rows += [(f"u{u}", item, t) for t in range(20)]
        rows += [(f"u{u}", "E", 100)]
    train = events_frame(rows)
    model = baselines.TwoTowerIds(epochs=40, batch_size=16, shuffle_buffer=200, seed=3).fit(train, CATALOGUE)
    scores = model.score_fn({"user_id": np.array(["u0", "u1", "u2", "u3"], dtype=object)})
    assert scores.shape == (4, 5)
    assert list(np.argmax(scores, axis=1)) == [A, B, C, D]
    assert model.history["loss"][-1] < model.history["loss"][0]


def test_make_baseline_names_and_arguments():
    with pytest.raises(ValueError, match="name"):
        baselines.make_baseline("most_recent")
    with pytest.raises(ValueError, match="seen"):
        baselines.make_baseline("repeat_frequency")
    with pytest.raises(ValueError, match="window"):
        baselines.CooccurrenceParams(window=0)
    with pytest.raises(ValueError, match="epochs"):
        baselines.TwoTowerIds(epochs=0)
    with pytest.raises(ValueError, match="fit"):
        baselines.Popularity().score_fn(batch(["u"], [1], [[]]))
