"""`UserSequences`: canonical events as per-user, time-ordered integer arrays.

Every statistic of the data report that depends on order (gaps, repeats,
transitions) or on per-user sets (association rules) reads these arrays, so the
string ids are factorised and the events sorted once.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from trainer.data import schema


@dataclasses.dataclass(frozen=True)
class UserSequences:
    """Events sorted by (user, timestamp, read order), ids replaced by codes.

    Events of one user are contiguous, oldest first; users are in `user_ids`
    order and codes are positions in the sorted unique ids, so the result does
    not depend on the row order of the input.

    Attributes:
      user_codes: [N] int64; index into `user_ids`.
      item_codes: [N] int64; index into `item_ids`.
      timestamps: [N] int64 unix seconds (UTC).
      utc_offset_minutes: [N] int64; local time = timestamp + 60 * offset.
      row_positions: [N] int64; position of each sorted event in the input frame.
      user_ids: [U] object; sorted unique user ids.
      item_ids: [I] object; sorted unique item ids.
    """

    user_codes: np.ndarray
    item_codes: np.ndarray
    timestamps: np.ndarray
    utc_offset_minutes: np.ndarray
    row_positions: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_events(cls, events: pd.DataFrame) -> UserSequences:
        """Sorts canonical `events`; ties at one second are broken by `_read_order`.

        `_read_order` (see `schema.READ_ORDER`) is the position of the event in
        the input as read; without that column the frame's row order stands in.
        `utc_offset_minutes` defaults to 0 (UTC) when the column is absent.
        """
        missing = [c for c in schema.REQUIRED_EVENT_COLUMNS if c not in events.columns]
        if missing:
            raise ValueError(
                f"`events` lacks required column(s) {missing}. Received columns: {list(events.columns)}"
            )
        n = len(events)
        user_codes, user_ids = pd.factorize(events[schema.USER_ID], sort=True)
        item_codes, item_ids = pd.factorize(events[schema.ITEM_ID], sort=True)
        timestamps = events[schema.TIMESTAMP].to_numpy(dtype=np.int64)
        if schema.READ_ORDER in events.columns:
            read_order = events[schema.READ_ORDER].to_numpy(dtype=np.int64)
        else:
            read_order = np.arange(n, dtype=np.int64)
        if schema.UTC_OFFSET in events.columns:
            offsets = events[schema.UTC_OFFSET].to_numpy(dtype=np.int64)
        else:
            offsets = np.zeros(n, dtype=np.int64)
        # np.lexsort sorts by the last key first.
        order = np.lexsort((read_order, timestamps, user_codes))
        return cls(
            user_codes=user_codes.astype(np.int64)[order],
            item_codes=item_codes.astype(np.int64)[order],
            timestamps=timestamps[order],
            utc_offset_minutes=offsets[order],
            row_positions=order.astype(np.int64),
            user_ids=np.asarray(user_ids, dtype=object),
            item_ids=np.asarray(item_ids, dtype=object),
        )

    @property
    def num_events(self) -> int:
        return int(self.user_codes.shape[0])

    @property
    def num_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.item_ids.shape[0])

    def continues_user(self) -> np.ndarray:
        """[N-1] bool: event i+1 belongs to the same user as event i."""
        return self.user_codes[1:] == self.user_codes[:-1]

    def is_last_of_user(self) -> np.ndarray:
        """[N] bool: the event is its user's most recent one."""
        return np.append(self.user_codes[1:] != self.user_codes[:-1], True) if self.num_events else np.zeros(0, bool)

    def events_per_user(self) -> np.ndarray:
        """[U] int64 number of events of each user."""
        return np.bincount(self.user_codes, minlength=self.num_users).astype(np.int64)

    def user_item_keys(self) -> np.ndarray:
        """[N] int64 key identifying the (user, item) pair of each event."""
        return self.user_codes * np.int64(self.num_items) + self.item_codes
