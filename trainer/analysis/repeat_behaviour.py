"""`RepeatBehaviour`: how often users come back to items they already had.

On check-in data most events revisit a place the user has been before, which is
why "recommend the user's own most frequent items" is a strong baseline there;
these figures say how strong before any model is trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from trainer.analysis.user_sequences import UserSequences

DEFAULT_BASELINE_KS = (1, 10)


def repeat_flags(sequences: UserSequences) -> np.ndarray:
    """[N] bool in sorted order: the user had interacted with the event's item before.

    "Before" is in the (timestamp, read order) order, so of two events of the same
    user and item at the same second the later-read one is the repeat.
    """
    # Events are sorted by user then time, so the first occurrence of a
    # (user, item) key is the earliest one.
    return pd.Series(sequences.user_item_keys()).duplicated(keep="first").to_numpy()


def return_gaps(sequences: UserSequences) -> np.ndarray:
    """[R] int64 seconds from a user's previous event on the same item to each repeat event.

    R equals the number of repeat events (`repeat_flags(...).sum()`).
    """
    keys = sequences.user_item_keys()
    # A stable sort on the key keeps each (user, item)'s events in time order.
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    times = sequences.timestamps[order]
    return np.diff(times)[keys[1:] == keys[:-1]]


def frequent_item_ranks(sequences: UserSequences) -> np.ndarray:
    """Rank of each user's last item among that user's earlier items.

    Earlier items are ranked by how often the user had them before the last
    event, ties by the most recent use first: the "repeat the user's own
    frequent items" baseline.

    Returns:
      [U2] float64, one entry per user with >= 2 events in `user_ids` order:
      0 = the last item was the user's most frequent earlier item; NaN = the
      last item is new to the user.
    """
    is_last = sequences.is_last_of_user()
    counts = sequences.events_per_user()
    history = ~is_last & (counts[sequences.user_codes] >= 2)
    positions = np.arange(sequences.num_events, dtype=np.int64)
    per_item = (
        pd.DataFrame(
            {
                "user": sequences.user_codes[history],
                "item": sequences.item_codes[history],
                "position": positions[history],
            }
        )
        .groupby(["user", "item"], sort=False)["position"]
        .agg(["size", "max"])
        .reset_index()
        .sort_values(["user", "size", "max"], ascending=[True, False, False], kind="stable")
    )
    per_item["rank"] = per_item.groupby("user", sort=False).cumcount()
    last = is_last & (counts[sequences.user_codes] >= 2)
    targets = pd.DataFrame({"user": sequences.user_codes[last], "item": sequences.item_codes[last]})
    ranked = targets.merge(per_item[["user", "item", "rank"]], on=["user", "item"], how="left")
    return ranked["rank"].to_numpy(dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class RepeatBehaviour:
    """Repeat and return figures of one event table.

    Attributes:
      repeat_event_share: share of all events whose item the user had before.
      users_with_history: users with >= 2 events (the denominator below).
      last_event_repeat_share: share of those users whose last event is a repeat.
      baseline_hit_rates: k -> share of those users whose last item is among
        their k most frequent earlier items.
      return_gaps: [R] int64 seconds from the previous use of the same item to
        each repeat event.
    """

    repeat_event_share: float
    users_with_history: int
    last_event_repeat_share: float
    baseline_hit_rates: dict[int, float]
    return_gaps: np.ndarray

    @classmethod
    def compute(
        cls, sequences: UserSequences, *, baseline_ks: Sequence[int] = DEFAULT_BASELINE_KS
    ) -> RepeatBehaviour:
        """Computes every figure from time-sorted `sequences`."""
        if any(int(k) < 1 for k in baseline_ks):
            raise ValueError(f"`baseline_ks` must all be >= 1. Received: baseline_ks={tuple(baseline_ks)}")
        flags = repeat_flags(sequences)
        counts = sequences.events_per_user()
        last = sequences.is_last_of_user() & (counts[sequences.user_codes] >= 2)
        users_with_history = int(last.sum())
        ranks = frequent_item_ranks(sequences)
        hit_rates = {
            int(k): float(np.mean(ranks < k)) if users_with_history else float("nan") for k in baseline_ks
        }
        return cls(
            repeat_event_share=float(flags.mean()) if flags.size else float("nan"),
            users_with_history=users_with_history,
            last_event_repeat_share=float(flags[last].mean()) if users_with_history else float("nan"),
            baseline_hit_rates=hit_rates,
            return_gaps=return_gaps(sequences),
        )
