"""Sorting and coding of events into `UserSequences`."""

from __future__ import annotations

import numpy as np
import pytest

from tests.analysis.frames import make_events
from trainer.analysis.user_sequences import UserSequences
from trainer.data import schema


def test_sorted_by_user_time_then_read_order():
    events = make_events([("u2", "X", 5), ("u1", "B", 9), ("u1", "A", 3), ("u2", "Y", 5), ("u1", "C", 9)])
    sequences = UserSequences.from_events(events)
    assert sequences.user_ids.tolist() == ["u1", "u2"]
    items = sequences.item_ids[sequences.item_codes].tolist()
    # u1: A@3, then B and C both @9 in read order; u2: X and Y both @5 in read order.
    assert items == ["A", "B", "C", "X", "Y"]
    assert sequences.timestamps.tolist() == [3, 9, 9, 5, 5]
    assert sequences.row_positions.tolist() == [2, 1, 4, 0, 3]
    assert sequences.is_last_of_user().tolist() == [False, False, True, False, True]
    assert sequences.events_per_user().tolist() == [3, 2]


def test_read_order_column_beats_row_order():
    events = make_events([("u1", "A", 5), ("u1", "B", 5)])
    events[schema.READ_ORDER] = np.array([1, 0], dtype=np.int64)
    sequences = UserSequences.from_events(events)
    assert sequences.item_ids[sequences.item_codes].tolist() == ["B", "A"]


def test_missing_required_column_is_named():
    events = make_events([("u1", "A", 5)]).drop(columns=[schema.TIMESTAMP])
    with pytest.raises(ValueError, match="timestamp"):
        UserSequences.from_events(events)
