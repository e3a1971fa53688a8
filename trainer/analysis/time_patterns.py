"""When events happen: local hour and weekday, and gaps between a user's events."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from trainer.analysis.user_sequences import UserSequences

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86_400
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# 1970-01-01 (unix day 0) was a Thursday, weekday 3 when Monday is 0.
_EPOCH_WEEKDAY = 3
DEFAULT_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def local_hour_and_weekday(
    timestamps: np.ndarray, utc_offset_minutes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Local hour of day and weekday of each event.

    Args:
      timestamps: [N] int unix seconds (UTC).
      utc_offset_minutes: [N] int offset of local time from UTC (-300 = UTC-5).

    Returns:
      hour: [N] int64 in 0..23 of local time (timestamp + 60 * offset).
      weekday: [N] int64 in 0..6, Monday = 0, of the local date.
    """
    local = np.asarray(timestamps, dtype=np.int64) + 60 * np.asarray(utc_offset_minutes, dtype=np.int64)
    # Floor division keeps times before 1970 on the right day and hour.
    hour = (local // SECONDS_PER_HOUR) % 24
    weekday = (local // SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7
    return hour, weekday


@dataclasses.dataclass(frozen=True)
class ActivityCounts:
    """Event counts by local time.

    Attributes:
      by_hour: [24] int64 events per local hour of day.
      by_weekday: [7] int64 events per local weekday, Monday first.
      by_weekday_hour: [7, 24] int64 events per (weekday, hour).
      share_with_offset: share of events with a non-zero UTC offset; 0 means the
        hours are UTC (offsets unknown or the data is in UTC).
    """

    by_hour: np.ndarray
    by_weekday: np.ndarray
    by_weekday_hour: np.ndarray
    share_with_offset: float


def activity_counts(sequences: UserSequences) -> ActivityCounts:
    """Counts events per local hour, weekday and (weekday, hour) cell."""
    hour, weekday = local_hour_and_weekday(sequences.timestamps, sequences.utc_offset_minutes)
    cells = np.bincount(weekday * 24 + hour, minlength=7 * 24).reshape(7, 24)
    n = sequences.num_events
    return ActivityCounts(
        by_hour=cells.sum(axis=0),
        by_weekday=cells.sum(axis=1),
        by_weekday_hour=cells,
        share_with_offset=float(np.count_nonzero(sequences.utc_offset_minutes) / n) if n else 0.0,
    )


def consecutive_gaps(sequences: UserSequences) -> np.ndarray:
    """[G] int64 seconds between each event and the previous event of the same user.

    G = N - U: a user with k events contributes k - 1 gaps. Events at the same
    second give gaps of 0.
    """
    return np.diff(sequences.timestamps)[sequences.continues_user()]


def events_per_day(timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events per UTC calendar day over the whole span.

    Returns:
      days: [D] int64 unix day numbers (days since 1970-01-01), consecutive.
      counts: [D] int64 events on each day, 0 for days without events.
    """
    timestamps = np.asarray(timestamps, dtype=np.int64)
    if timestamps.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    day = timestamps // SECONDS_PER_DAY
    first = int(day.min())
    counts = np.bincount(day - first).astype(np.int64)
    return np.arange(first, first + counts.size, dtype=np.int64), counts


def duration_quantiles(seconds: np.ndarray, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
    """Quantiles of durations, in several units so each reads naturally.

    Uses numpy's default linear interpolation between order statistics.

    Args:
      seconds: [G] durations in seconds.
      quantiles: probabilities in [0, 1].

    Returns:
      One row per quantile, columns quantile, seconds, minutes, hours, days
      (NaN when `seconds` is empty).
    """
    qs = np.asarray(quantiles, dtype=np.float64)
    if qs.size == 0 or np.any((qs < 0) | (qs > 1)):
        raise ValueError(f"`quantiles` must be non-empty probabilities in [0, 1]. Received: quantiles={quantiles}")
    seconds = np.asarray(seconds, dtype=np.float64)
    values = np.quantile(seconds, qs) if seconds.size else np.full(qs.shape, np.nan)
    return pd.DataFrame(
        {
            "quantile": qs,
            "seconds": values,
            "minutes": values / 60,
            "hours": values / SECONDS_PER_HOUR,
            "days": values / SECONDS_PER_DAY,
        }
    )
