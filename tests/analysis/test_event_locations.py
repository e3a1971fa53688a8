"""Where event coordinates come from, and the map window."""

from __future__ import annotations

import numpy as np
import pytest

from tests.analysis.frames import make_events, make_items
from trainer.analysis.event_locations import EventLocations, LocationSource, view_bounds
from trainer.data import schema


def test_event_coordinates_win_over_item_coordinates():
    events = make_events([("u1", "A", 1), ("u1", "B", 2)], latitude=[10.0, np.nan], longitude=[20.0, np.nan])
    items = make_items(["A", "B"])
    items[schema.LATITUDE] = [50.0, 60.0]
    items[schema.LONGITUDE] = [5.0, 6.0]
    locations = EventLocations.from_tables(events, items)
    assert locations.source == LocationSource.EVENTS
    assert locations.latitude.tolist() == [10.0] and locations.longitude.tolist() == [20.0]
    assert locations.share_located == pytest.approx(0.5)


def test_no_coordinates_anywhere():
    locations = EventLocations.from_tables(make_events([("u1", "A", 1)]), make_items(["A"]))
    assert locations.source == LocationSource.NONE
    assert locations.latitude.size == 0


def test_view_bounds_ignore_a_far_outlier():
    # 999 points near (40, -74) and one at (0, 0): the window stays near the cluster.
    latitude = np.append(np.linspace(40.0, 40.1, 999), 0.0)
    longitude = np.append(np.linspace(-74.1, -74.0, 999), 0.0)
    lon_min, lon_max, lat_min, lat_max = view_bounds(latitude, longitude)
    assert 39.9 < lat_min < 40.0 and 40.1 < lat_max < 40.2
    assert -74.2 < lon_min < -74.1 and -74.0 < lon_max < -73.9
    with pytest.raises(ValueError, match="coverage"):
        view_bounds(latitude, longitude, coverage=0)
