"""Tiny hand-made canonical frames for the analysis tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from trainer.data import schema


def make_events(
    rows: Sequence[tuple[str, str, int]],
    *,
    offsets: Sequence[int] | None = None,
    latitude: Sequence[float] | None = None,
    longitude: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Canonical events from (user_id, item_id, timestamp) rows; read order = row order."""
    n = len(rows)
    return pd.DataFrame(
        {
            schema.USER_ID: [r[0] for r in rows],
            schema.ITEM_ID: [r[1] for r in rows],
            schema.TIMESTAMP: np.array([r[2] for r in rows], dtype=np.int64),
            schema.EVENT_TYPE: ["interaction"] * n,
            schema.VALUE: np.full(n, np.nan),
            schema.LATITUDE: np.full(n, np.nan) if latitude is None else np.asarray(latitude, np.float64),
            schema.LONGITUDE: np.full(n, np.nan) if longitude is None else np.asarray(longitude, np.float64),
            schema.UTC_OFFSET: np.zeros(n, np.int32) if offsets is None else np.asarray(offsets, np.int32),
            schema.READ_ORDER: np.arange(n, dtype=np.int64),
        }
    )


def make_items(item_ids: Sequence[str], *, texts: Sequence[str] | None = None) -> pd.DataFrame:
    n = len(item_ids)
    return pd.DataFrame(
        {
            schema.ITEM_ID: list(item_ids),
            schema.TEXT: [""] * n if texts is None else list(texts),
            schema.CATEGORY: [""] * n,
            schema.LATITUDE: np.full(n, np.nan),
            schema.LONGITUDE: np.full(n, np.nan),
            schema.PRICE: np.full(n, np.nan),
        }
    )


def make_tables(events: pd.DataFrame, items: pd.DataFrame | None = None, name: str = "tiny") -> schema.CanonicalTables:
    if items is None:
        items = make_items(sorted(set(events[schema.ITEM_ID])))
    return schema.CanonicalTables(
        name=name, events=events, items=items, users=None, event_location_is_item_location=False
    )
