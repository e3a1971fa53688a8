"""Random `CanonicalTables` of any size for speed tests of the data report.

Not a realistic world, but shaped like one where it matters for cost: Zipf item
popularity, skewed events per user, personal favourite items (repeats), a daily
rhythm in local time, a few location clusters, UTC offsets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainer.data import schema


def random_tables(
    num_events: int, *, num_users: int = 50_000, num_items: int = 20_000, seed: int = 0
) -> schema.CanonicalTables:
    """`num_events` random events of `num_users` users on `num_items` items."""
    rng = np.random.default_rng(seed)
    # Skewed activity: user of each event drawn with log-normal weights.
    user_weight = rng.lognormal(0.0, 1.0, num_users)
    users = rng.choice(num_users, size=num_events, p=user_weight / user_weight.sum())
    # Half the events go to one of the user's 5 favourites (repeats), the rest Zipf-popular.
    popularity = 1.0 / np.arange(1, num_items + 1) ** 1.05
    popular = rng.choice(num_items, size=num_events, p=popularity / popularity.sum())
    favourite = (users * 7919 + rng.integers(0, 5, num_events) * 104_729) % num_items
    items = np.where(rng.random(num_events) < 0.5, favourite, popular)

    start = 1_609_459_200  # 2021-01-01 UTC
    day = rng.integers(0, 365, num_events)
    # Local hours peak in the evening; offsets of New York winter/summer.
    local_hour = rng.normal(18, 4, num_events) % 24
    offsets = rng.choice(np.array([-300, -240], dtype=np.int32), size=num_events)
    timestamps = start + day * 86_400 + (local_hour * 3600).astype(np.int64) - offsets.astype(np.int64) * 60

    centres = np.array([[40.75, -73.99], [40.69, -73.95], [40.76, -73.83], [40.85, -73.88]])
    item_centre = centres[np.arange(num_items) % len(centres)]
    item_lat = item_centre[:, 0] + rng.normal(0, 0.02, num_items)
    item_lon = item_centre[:, 1] + rng.normal(0, 0.025, num_items)
    located = rng.random(num_events) < 0.9
    event_types = np.array(["view", "click", "purchase"])[rng.choice(3, size=num_events, p=[0.7, 0.25, 0.05])]

    user_ids = np.array([f"u{i}" for i in range(num_users)], dtype=object)
    item_ids = np.array([f"i{i}" for i in range(num_items)], dtype=object)
    events = pd.DataFrame(
        {
            schema.USER_ID: user_ids[users],
            schema.ITEM_ID: item_ids[items],
            schema.TIMESTAMP: timestamps.astype(np.int64),
            schema.EVENT_TYPE: event_types,
            schema.VALUE: np.full(num_events, np.nan),
            schema.LATITUDE: np.where(located, item_lat[items], np.nan),
            schema.LONGITUDE: np.where(located, item_lon[items], np.nan),
            schema.UTC_OFFSET: offsets,
            schema.READ_ORDER: np.arange(num_events, dtype=np.int64),
        }
    )
    catalogue = pd.DataFrame(
        {
            schema.ITEM_ID: item_ids,
            schema.TEXT: [f"product {i} in aisle {i % 40}" for i in range(num_items)],
            schema.CATEGORY: np.array(["food|fresh", "home", "toys|kids", "books"])[np.arange(num_items) % 4],
            schema.LATITUDE: item_lat,
            schema.LONGITUDE: item_lon,
            schema.PRICE: rng.uniform(1, 100, num_items).round(2),
        }
    )
    return schema.CanonicalTables(
        name=f"random-{num_events}",
        events=events,
        items=catalogue,
        users=None,
        event_location_is_item_location=False,
    )
