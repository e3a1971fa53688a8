"""Local-time offsets from an IANA time zone, for inputs that carry none."""

from __future__ import annotations

import numpy as np
import pandas as pd


def utc_offsets_minutes(timestamps: np.ndarray, zone: str) -> np.ndarray:
    """[n] int32 minutes that `zone` is ahead of UTC at each instant (DST-aware).

    Args:
      timestamps: [n] int64 unix seconds.
      zone: IANA name, e.g. "America/New_York" (-240 in summer, -300 in winter).
    """
    if not zone:
        raise ValueError("`zone` must be an IANA time-zone name. Received: zone=''")
    utc = pd.to_datetime(np.asarray(timestamps, dtype=np.int64), unit="s", utc=True)
    local_wall = utc.tz_convert(zone).tz_localize(None)
    offsets = (local_wall - utc.tz_localize(None)) // pd.Timedelta(minutes=1)
    return np.asarray(offsets, dtype=np.int32)
