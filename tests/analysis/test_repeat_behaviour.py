"""Repeat shares, the frequent-items baseline and return times, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tests.analysis.frames import make_events
from trainer.analysis.repeat_behaviour import RepeatBehaviour, frequent_item_ranks, repeat_flags
from trainer.analysis.user_sequences import UserSequences

# In time order: u1 A B A A; u2 C D; u3 E; u4 X X at the same second.
# Repeats: u1's 3rd and 4th, u4's 2nd -> 3 of 9 events.
ROWS = [
    ("u2", "D", 20),
    ("u1", "A", 4),
    ("u4", "X", 100),
    ("u1", "A", 1),
    ("u3", "E", 5),
    ("u1", "B", 2),
    ("u2", "C", 10),
    ("u4", "X", 100),
    ("u1", "A", 3),
]


def _sequences(rows):
    return UserSequences.from_events(make_events(rows))


def test_repeat_flags_in_time_order():
    sequences = _sequences(ROWS)
    flags = repeat_flags(sequences)
    # Sorted order: u1 A1 B2 A3 A4, u2 C D, u3 E, u4 X X.
    assert flags.tolist() == [False, False, True, True, False, False, False, False, True]


def test_repeat_behaviour_by_hand():
    behaviour = RepeatBehaviour.compute(_sequences(ROWS), baseline_ks=(1, 10))
    assert behaviour.repeat_event_share == pytest.approx(3 / 9)
    # Users with >= 2 events: u1, u2, u4; last events: A (repeat), D (new), X (repeat).
    assert behaviour.users_with_history == 3
    assert behaviour.last_event_repeat_share == pytest.approx(2 / 3)
    # u1's most frequent earlier item is A (twice) = its last item; u4's only one is X; u2's D is new.
    assert behaviour.baseline_hit_rates == {1: pytest.approx(2 / 3), 10: pytest.approx(2 / 3)}
    # Returns: u1 A at 1 -> 3 (2 s) and 3 -> 4 (1 s); u4 X at 100 -> 100 (0 s).
    assert sorted(behaviour.return_gaps.tolist()) == [0, 1, 2]


def test_frequent_item_ranks_break_ties_by_recency():
    # History P (t=1) then Q (t=2), once each: Q is more recent, so rank 0; last item P -> rank 1.
    # History R R S: R twice -> rank 0 although S is more recent; last item S -> rank 1.
    ranks = frequent_item_ranks(
        _sequences(
            [("a", "P", 1), ("a", "Q", 2), ("a", "P", 3), ("b", "R", 1), ("b", "R", 2), ("b", "S", 3), ("b", "S", 4)]
        )
    )
    np.testing.assert_array_equal(ranks, [1, 1])


def test_single_event_users_have_no_history():
    behaviour = RepeatBehaviour.compute(_sequences([("u1", "A", 1), ("u2", "A", 2)]))
    assert behaviour.repeat_event_share == 0
    assert behaviour.users_with_history == 0
    assert np.isnan(behaviour.last_event_repeat_share)
    assert behaviour.return_gaps.size == 0


def test_bad_baseline_ks_raise():
    with pytest.raises(ValueError, match="baseline_ks"):
        RepeatBehaviour.compute(_sequences(ROWS), baseline_ks=(0,))
