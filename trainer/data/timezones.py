"""Time zones: validating IANA names and local-time offsets at given instants."""

from __future__ import annotations

import functools
import zoneinfo

import numpy as np
import pandas as pd


@functools.lru_cache(maxsize=None)
def valid_timezone(name: str) -> str:
    """`name` if it is an IANA zone this machine knows ("America/New_York"), else ""."""
    if not name:
        return ""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return ""
    return name


def is_valid_timezone(name: str) -> bool:
    """Whether `name` is an IANA zone this machine knows."""
    return isinstance(name, str) and bool(valid_timezone(name))


def utc_offset_minutes(unix_seconds: np.ndarray | pd.Series, zones: np.ndarray | pd.Series | str) -> np.ndarray:
    """Offset of local time from UTC at each instant, DST-aware.

    Args:
      unix_seconds: [N] float seconds since the epoch (UTC); NaN where unknown.
      zones: [N] IANA zone names ("" where unknown), or one name for all rows.

    Returns:
      [N] int32 minutes (e.g. -240 for New York in summer, -300 in winter); 0
      where the instant or the zone is unknown or invalid.
    """
    seconds = np.asarray(unix_seconds, dtype="float64")
    if isinstance(zones, str):
        zone_array = np.full(seconds.shape, zones, dtype=object)
    else:
        zone_array = np.asarray(zones, dtype=object)
    if zone_array.shape != seconds.shape:
        raise ValueError(
            f"`zones` must have one entry per instant. Received: {zone_array.shape} zones for {seconds.shape} instants"
        )
    out = np.zeros(seconds.shape, dtype="int32")
    # datetime64[ns] spans 1677..2262; outside it an instant is certainly bad input.
    valid = np.isfinite(seconds) & (np.abs(seconds) < 9.0e9)
    for zone in pd.unique(zone_array[valid]):
        if not isinstance(zone, str) or not valid_timezone(zone):
            continue
        mask = valid & (zone_array == zone)
        utc = pd.to_datetime(seconds[mask], unit="s", utc=True)
        local = utc.tz_convert(zone).tz_localize(None)
        out[mask] = ((local - utc.tz_localize(None)) // pd.Timedelta(minutes=1)).to_numpy(dtype="int64")
    return out
