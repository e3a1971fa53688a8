"""Local hour/weekday, activity counts, gaps and duration quantiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.analysis.frames import make_events
from trainer.analysis import time_patterns
from trainer.analysis.user_sequences import UserSequences

TUE_2024_01_02_0230_UTC = 1_704_162_600  # 2024-01-02 is a Tuesday
MON_2024_01_01_2000_UTC = 1_704_139_200


@pytest.mark.parametrize(
    "timestamp,offset,hour,weekday",
    [
        # 02:30 UTC Tuesday at UTC-5 is 21:30 on Monday.
        (TUE_2024_01_02_0230_UTC, -300, 21, 0),
        # 20:00 UTC Monday at UTC+5:30 is 01:30 on Tuesday.
        (MON_2024_01_01_2000_UTC, 330, 1, 1),
        # The epoch, 1970-01-01 00:00 UTC, was a Thursday.
        (0, 0, 0, 3),
        # One second before the epoch: Wednesday 23:59:59.
        (-1, 0, 23, 2),
    ],
)
def test_local_hour_and_weekday_by_hand(timestamp, offset, hour, weekday):
    got_hour, got_weekday = time_patterns.local_hour_and_weekday(np.array([timestamp]), np.array([offset]))
    assert (int(got_hour[0]), int(got_weekday[0])) == (hour, weekday)


def test_local_hour_and_weekday_match_pandas():
    rng = np.random.default_rng(0)
    timestamps = rng.integers(-10**9, 2 * 10**9, 1000)
    offsets = rng.choice([-720, -300, -240, 0, 60, 330, 345, 840], 1000)
    hour, weekday = time_patterns.local_hour_and_weekday(timestamps, offsets)
    local = pd.to_datetime(timestamps, unit="s", utc=True) + pd.to_timedelta(offsets, unit="min")
    np.testing.assert_array_equal(hour, local.hour)
    np.testing.assert_array_equal(weekday, local.day_of_week)


def test_activity_counts_use_local_time():
    events = make_events(
        [
            ("u1", "A", TUE_2024_01_02_0230_UTC),
            ("u1", "B", TUE_2024_01_02_0230_UTC),
            ("u2", "A", MON_2024_01_01_2000_UTC),
        ],
        offsets=[-300, 0, 330],
    )
    counts = time_patterns.activity_counts(UserSequences.from_events(events))
    # Events at (Mon, 21), (Tue, 2), (Tue, 1).
    expected_cells = np.zeros((7, 24), dtype=np.int64)
    expected_cells[0, 21] = expected_cells[1, 2] = expected_cells[1, 1] = 1
    np.testing.assert_array_equal(counts.by_weekday_hour, expected_cells)
    np.testing.assert_array_equal(counts.by_hour, expected_cells.sum(axis=0))
    np.testing.assert_array_equal(counts.by_weekday, [1, 2, 0, 0, 0, 0, 0])
    assert counts.share_with_offset == pytest.approx(2 / 3)


def _gap_events():
    # u1 at 0, 60, 180, 360, 3960 -> gaps 60, 120, 180, 3600; u2 one event -> none;
    # u3 twice at the same second -> gap 0. Rows shuffled: gaps follow time, not rows.
    return make_events(
        [
            ("u1", "A", 360),
            ("u3", "A", 50),
            ("u1", "B", 0),
            ("u2", "A", 99),
            ("u1", "C", 3960),
            ("u1", "A", 60),
            ("u3", "B", 50),
            ("u1", "D", 180),
        ]
    )


def test_consecutive_gaps():
    gaps = time_patterns.consecutive_gaps(UserSequences.from_events(_gap_events()))
    assert sorted(gaps.tolist()) == [0, 60, 120, 180, 3600]


def test_gap_quantiles_by_hand():
    gaps = time_patterns.consecutive_gaps(UserSequences.from_events(_gap_events()))
    table = time_patterns.duration_quantiles(gaps, quantiles=(0.1, 0.25, 0.5, 0.9))
    # Sorted gaps 0, 60, 120, 180, 3600; linear interpolation at position q * 4:
    #   q=0.1 -> position 0.4 -> 0 + 0.4 * 60 = 24
    #   q=0.25 -> position 1 -> 60;  q=0.5 -> position 2 -> 120
    #   q=0.9 -> position 3.6 -> 180 + 0.6 * (3600 - 180) = 2232
    np.testing.assert_allclose(table["seconds"], [24, 60, 120, 2232])
    np.testing.assert_allclose(table["minutes"], [0.4, 1, 2, 37.2])
    np.testing.assert_allclose(table["hours"], [24 / 3600, 1 / 60, 1 / 30, 0.62])
    np.testing.assert_allclose(table["days"], [24 / 86400, 60 / 86400, 120 / 86400, 2232 / 86400])


def test_quantiles_of_nothing_are_nan_and_bad_quantiles_raise():
    assert time_patterns.duration_quantiles(np.zeros(0))["seconds"].isna().all()
    with pytest.raises(ValueError, match="quantiles"):
        time_patterns.duration_quantiles(np.ones(3), quantiles=(0.5, 1.5))


def test_events_per_day_fills_empty_days():
    days, counts = time_patterns.events_per_day(np.array([5, 2 * 86_400 + 7, 100]))
    np.testing.assert_array_equal(days, [0, 1, 2])
    np.testing.assert_array_equal(counts, [2, 0, 1])
