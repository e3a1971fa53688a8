"""Zip code -> approximate location and time zone.

Exact locations come from the maintained `zipcodes` package (42k US zip codes
with lat/long and an IANA time zone, bundled offline). Where the package has no
usable entry the resolution falls back, coarsest last:

  "zip"              the package's own entry for the 5-digit zip code (a ZIP+4
                     "12345-6789" uses its first five digits).
  "zip3-centroid"    the unweighted mean lat/long of the package's zip codes
                     sharing the code's first three digits (its sectional
                     centre), and the time zone most of them have. Typical
                     error: tens of km in the East, more in the rural West.
  "canada-province"  Canadian postal codes (letter, digit, letter first, e.g.
                     "T8H1N"): the approximate geographic centre of the
                     province named by the first letter (`CANADIAN_PROVINCES`)
                     and its main time zone. Error: hundreds of km.
  "unknown"          anything else: NaN location, no time zone, and a reason.

Package entries at (0, 0) (military APO/FPO codes) and time zone names that are
not IANA zones (the package has "" and one city name) count as absent.

Resolution works per unique code over data loaded once per process, so a
Series of a million codes costs one dictionary look-up per distinct code.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import re
from collections.abc import Iterable

import pandas as pd

from trainer.data import timezones

SOURCE_ZIP = "zip"
SOURCE_ZIP3 = "zip3-centroid"
SOURCE_CANADA = "canada-province"
SOURCE_UNKNOWN = "unknown"
LOCATION_SOURCES = (SOURCE_ZIP, SOURCE_ZIP3, SOURCE_CANADA, SOURCE_UNKNOWN)

# Columns of `resolve_zip_codes`' result.
ZIP_CODE = "zip_code"
LATITUDE = "latitude"
LONGITUDE = "longitude"
TIMEZONE = "timezone"
LOCATION_SOURCE = "location_source"
REASON = "reason"
RESULT_COLUMNS = (ZIP_CODE, LATITUDE, LONGITUDE, TIMEZONE, LOCATION_SOURCE, REASON)


@dataclasses.dataclass(frozen=True)
class Province:
    """A Canadian province or territory as used for the coarse fallback."""

    name: str
    latitude: float  # approximate geographic centre, WGS84, rounded to 0.01 degree
    longitude: float
    timezone: str  # the zone most of its population uses


# First letter of a Canadian postal code -> province (Canada Post's assignment).
# Centres are approximate geographic centres (as commonly listed for
# geocoding), not population centres: coarse by design, hundreds of km off for
# most addresses. "X" covers both the Northwest Territories and Nunavut; its
# codes are mostly in the NWT, whose centre is used.
CANADIAN_PROVINCES: dict[str, Province] = {
    "A": Province("Newfoundland and Labrador", 53.14, -57.66, "America/St_Johns"),
    "B": Province("Nova Scotia", 44.68, -63.74, "America/Halifax"),
    "C": Province("Prince Edward Island", 46.51, -63.42, "America/Halifax"),
    "E": Province("New Brunswick", 46.57, -66.46, "America/Moncton"),
    "G": Province("Quebec", 52.94, -73.55, "America/Toronto"),
    "H": Province("Quebec", 52.94, -73.55, "America/Toronto"),
    "J": Province("Quebec", 52.94, -73.55, "America/Toronto"),
    "K": Province("Ontario", 51.25, -85.32, "America/Toronto"),
    "L": Province("Ontario", 51.25, -85.32, "America/Toronto"),
    "M": Province("Ontario", 51.25, -85.32, "America/Toronto"),
    "N": Province("Ontario", 51.25, -85.32, "America/Toronto"),
    "P": Province("Ontario", 51.25, -85.32, "America/Toronto"),
    "R": Province("Manitoba", 53.76, -98.81, "America/Winnipeg"),
    "S": Province("Saskatchewan", 52.94, -106.45, "America/Regina"),
    "T": Province("Alberta", 53.93, -116.58, "America/Edmonton"),
    "V": Province("British Columbia", 53.73, -127.65, "America/Vancouver"),
    "X": Province("Northwest Territories", 64.83, -124.85, "America/Edmonton"),
    "Y": Province("Yukon", 64.28, -135.00, "America/Whitehorse"),
}

_US_ZIP = re.compile(r"^(\d{5})(?:-?\d{4})?$")
_CANADIAN = re.compile(r"^([A-Z])\d[A-Z]")


@dataclasses.dataclass(frozen=True)
class ZipLocation:
    """Where a zip code is, and how that was decided.

    Attributes:
      latitude/longitude: WGS84 degrees; NaN when unknown.
      timezone: IANA zone name; "" when unknown.
      source: one of `LOCATION_SOURCES`.
      reason: why a fallback was used ("" for an exact "zip" match).
    """

    latitude: float
    longitude: float
    timezone: str
    source: str
    reason: str


@dataclasses.dataclass(frozen=True)
class _ZipData:
    exact: dict[str, tuple[float, float, str]]  # zip -> (lat, long, tz); lat NaN when none
    kind: dict[str, str]  # zip -> the package's zip_code_type
    prefix: dict[str, tuple[float, float, str]]  # 3-digit prefix -> centroid, majority tz


def _float(text: object) -> float:
    try:
        return float(str(text))
    except ValueError:
        return math.nan


@functools.lru_cache(maxsize=1)
def _zip_data() -> _ZipData:
    # Imported here: loading the package's 42k records takes ~1 s, paid once and
    # only by readers that resolve zip codes.
    import zipcodes  # pylint: disable=g-import-not-at-top

    exact: dict[str, tuple[float, float, str]] = {}
    kind: dict[str, str] = {}
    sums: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    zones: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for record in zipcodes.list_all():
        code = str(record.get("zip_code", ""))
        lat, lon = _float(record.get("lat")), _float(record.get("long"))
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (lat == 0.0 and lon == 0.0):
            lat = lon = math.nan  # (0, 0) marks military codes without a place
        tz = timezones.valid_timezone(str(record.get("timezone") or ""))
        exact[code] = (lat, lon, tz)
        kind[code] = str(record.get("zip_code_type") or "")
        prefix = code[:3]
        if not math.isnan(lat):
            total = sums[prefix]
            total[0] += lat
            total[1] += lon
            total[2] += 1
        if tz:
            zones[prefix][tz] += 1
    prefixes: dict[str, tuple[float, float, str]] = {}
    for prefix in set(sums) | set(zones):
        total = sums.get(prefix, [0.0, 0.0, 0.0])
        lat = total[0] / total[2] if total[2] else math.nan
        lon = total[1] / total[2] if total[2] else math.nan
        # Ties go to the alphabetically first zone so the result is deterministic.
        counter = zones.get(prefix)
        tz = min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counter else ""
        prefixes[prefix] = (lat, lon, tz)
    return _ZipData(exact=exact, kind=kind, prefix=prefixes)


def lookup_zip_code(zip_code: str) -> ZipLocation:
    """Resolves one zip / postal code (see the module docstring for the fallbacks).

    Args:
      zip_code: a US zip code ("85711", "85711-1234"), a Canadian postal code
        ("T8H1N", "M4J 2K1") or anything else; surrounding spaces and letter
        case are ignored.

    Returns:
      The location; never raises for unrecognised codes (source "unknown").
    """
    if not isinstance(zip_code, str):
        raise ValueError(f"`zip_code` must be a str. Received: zip_code={zip_code!r}")
    code = zip_code.strip().upper()
    if not code:
        return ZipLocation(math.nan, math.nan, "", SOURCE_UNKNOWN, "empty zip code")
    us = _US_ZIP.match(code)
    if us:
        return _lookup_us(us.group(1))
    canadian = _CANADIAN.match(code)
    if canadian:
        province = CANADIAN_PROVINCES.get(canadian.group(1))
        if province is not None:
            return ZipLocation(
                province.latitude,
                province.longitude,
                timezones.valid_timezone(province.timezone),
                SOURCE_CANADA,
                f"Canadian postal code: centre of {province.name}",
            )
        return ZipLocation(
            math.nan,
            math.nan,
            "",
            SOURCE_UNKNOWN,
            f"looks like a Canadian postal code but no province uses the letter {canadian.group(1)!r}",
        )
    return ZipLocation(math.nan, math.nan, "", SOURCE_UNKNOWN, "neither a US zip code nor a Canadian postal code")


def _lookup_us(code: str) -> ZipLocation:
    data = _zip_data()
    lat, lon, tz = data.exact.get(code, (math.nan, math.nan, ""))
    prefix_lat, prefix_lon, prefix_tz = data.prefix.get(code[:3], (math.nan, math.nan, ""))
    if not math.isnan(lat):
        # An entry without a valid zone takes its neighbours' (same 3-digit prefix).
        return ZipLocation(lat, lon, tz or prefix_tz, SOURCE_ZIP, "")
    if code in data.exact:
        why = f"the package's entry for {code} ({data.kind[code] or 'no type'}) has no location"
    else:
        why = f"{code} is not in the zipcodes package"
    if not math.isnan(prefix_lat):
        return ZipLocation(prefix_lat, prefix_lon, prefix_tz, SOURCE_ZIP3, f"{why}: centre of prefix {code[:3]}")
    return ZipLocation(math.nan, math.nan, "", SOURCE_UNKNOWN, f"{why} and no zip code with prefix {code[:3]} has one")


def resolve_zip_codes(zip_codes: Iterable[str] | pd.Series) -> pd.DataFrame:
    """Resolves many codes at once, one look-up per distinct code.

    Args:
      zip_codes: [N] codes as text (a Series keeps its index).

    Returns:
      [N] frame with columns `RESULT_COLUMNS`: the input `zip_code`, `latitude`
      and `longitude` (float64, NaN when unknown), `timezone` (IANA name or ""),
      `location_source` (one of `LOCATION_SOURCES`) and `reason` ("" for exact
      matches).
    """
    codes = zip_codes if isinstance(zip_codes, pd.Series) else pd.Series(list(zip_codes), dtype=object)
    codes = codes.astype(str)
    unique = pd.unique(codes.to_numpy())
    resolved = {code: lookup_zip_code(code) for code in unique}
    table = pd.DataFrame(
        {
            LATITUDE: [resolved[c].latitude for c in unique],
            LONGITUDE: [resolved[c].longitude for c in unique],
            TIMEZONE: [resolved[c].timezone for c in unique],
            LOCATION_SOURCE: [resolved[c].source for c in unique],
            REASON: [resolved[c].reason for c in unique],
        },
        index=pd.Index(unique, dtype=object),
    )
    positions = table.index.get_indexer(codes.to_numpy())
    out = table.iloc[positions].set_axis(codes.index)
    out.insert(0, ZIP_CODE, codes.to_numpy())
    out[LATITUDE] = out[LATITUDE].astype("float64")
    out[LONGITUDE] = out[LONGITUDE].astype("float64")
    return out


def location_summary(resolved: pd.DataFrame, what: str = "zip codes") -> list[str]:
    """Human-readable notes on how `resolve_zip_codes` output was obtained.

    Args:
      resolved: a frame from `resolve_zip_codes` (one row per entity).
      what: what the rows are, e.g. "users' zip codes".
    """
    total = len(resolved)
    counts = resolved[LOCATION_SOURCE].value_counts()
    notes = [
        f"{what}: " + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in LOCATION_SOURCES) + f" (of {total})."
    ]
    for source, description in (
        (SOURCE_ZIP3, "fell back to the centre of their 3-digit zip prefix"),
        (SOURCE_CANADA, "fell back to a Canadian province centre"),
        (SOURCE_UNKNOWN, "have no location (NaN)"),
    ):
        rows = resolved[resolved[LOCATION_SOURCE] == source]
        if len(rows):
            examples = sorted(set(rows[ZIP_CODE]))
            shown = ", ".join(repr(c) for c in examples[:20]) + (", ..." if len(examples) > 20 else "")
            notes.append(f"{len(rows)} of {total} {what} {description}: {shown}.")
    for reason, count in resolved.loc[resolved[LOCATION_SOURCE] == SOURCE_UNKNOWN, REASON].value_counts().items():
        notes.append(f"  unknown location ({count}): {reason}.")
    return notes
