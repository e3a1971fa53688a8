"""`EventLocations`: where events happen, from the events or else from their items."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
import pandas as pd

from trainer.data import schema


class LocationSource(str, enum.Enum):
    EVENTS = "events"  # the events' own latitude/longitude
    ITEMS = "items"  # events carry none; the location of each event's item
    NONE = "none"  # neither events nor items have a location


@dataclasses.dataclass(frozen=True)
class EventLocations:
    """Coordinates of the events that have a place.

    Attributes:
      latitude: [L] float64 degrees, one per located event.
      longitude: [L] float64 degrees.
      source: where the coordinates come from.
      share_located: L / number of events.
    """

    latitude: np.ndarray
    longitude: np.ndarray
    source: LocationSource
    share_located: float

    @classmethod
    def from_tables(cls, events: pd.DataFrame, items: pd.DataFrame | None) -> EventLocations:
        """Event coordinates when any event has one, otherwise those of the event's item."""
        n = len(events)
        lat, lon = _coordinates(events)
        if lat is not None and np.isfinite(lat).any():
            located = np.isfinite(lat) & np.isfinite(lon)
            return cls(lat[located], lon[located], LocationSource.EVENTS, _share(located.sum(), n))
        item_lat, item_lon = _coordinates(items) if items is not None else (None, None)
        if item_lat is not None and np.isfinite(item_lat).any():
            catalogue = pd.DataFrame(
                {"latitude": item_lat, "longitude": item_lon},
                index=pd.Index(items[schema.ITEM_ID].astype(str), name=schema.ITEM_ID),
            )
            catalogue = catalogue[~catalogue.index.duplicated(keep="first")]
            placed = catalogue.reindex(events[schema.ITEM_ID].astype(str))
            lat = placed["latitude"].to_numpy(dtype=np.float64)
            lon = placed["longitude"].to_numpy(dtype=np.float64)
            located = np.isfinite(lat) & np.isfinite(lon)
            return cls(lat[located], lon[located], LocationSource.ITEMS, _share(located.sum(), n))
        empty = np.zeros(0, dtype=np.float64)
        return cls(empty, empty, LocationSource.NONE, 0.0)


def _coordinates(frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
    if schema.LATITUDE not in frame.columns or schema.LONGITUDE not in frame.columns:
        return None, None
    return (
        frame[schema.LATITUDE].to_numpy(dtype=np.float64, na_value=np.nan),
        frame[schema.LONGITUDE].to_numpy(dtype=np.float64, na_value=np.nan),
    )


def _share(count: int, total: int) -> float:
    return float(count) / total if total else 0.0


def view_bounds(
    latitude: np.ndarray, longitude: np.ndarray, *, coverage: float = 0.99
) -> tuple[float, float, float, float]:
    """(lon_min, lon_max, lat_min, lat_max) holding the central `coverage` of points.

    A few far-away points (a traveller, a bad coordinate) would otherwise shrink
    the dense area to a dot. A margin of 2% is added; a single place gets a
    0.01-degree window.
    """
    if latitude.size == 0:
        raise ValueError("`latitude` is empty; there is nothing to bound.")
    if not 0 < coverage <= 1:
        raise ValueError(f"`coverage` must be in (0, 1]. Received: coverage={coverage}")
    tail = (1 - coverage) / 2
    lat_lo, lat_hi = np.quantile(latitude, [tail, 1 - tail])
    lon_lo, lon_hi = np.quantile(longitude, [tail, 1 - tail])
    lat_pad = max((lat_hi - lat_lo) * 0.02, 0.005)
    lon_pad = max((lon_hi - lon_lo) * 0.02, 0.005)
    return (
        float(max(lon_lo - lon_pad, -180.0)),
        float(min(lon_hi + lon_pad, 180.0)),
        float(max(lat_lo - lat_pad, -90.0)),
        float(min(lat_hi + lat_pad, 90.0)),
    )
