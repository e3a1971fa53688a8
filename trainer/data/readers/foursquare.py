"""Foursquare check-ins -> `RawTables`, from two formats.

`read_foursquare_csv`: CSV files with a header, as in `foursquare-nyc/`:
  checkins.csv  user_id, venue_id, timestamp (ISO-8601 UTC), latitude, longitude
  venues.csv    (optional) venue_id, latitude, longitude -> items without text.
  The files carry no local time, so `utc_offset_minutes` comes from an IANA
  zone the caller names (DST-aware per instant), or is absent (= 0, unknown).

`read_foursquare_tsmc`: the raw TSMC2014 text release (Yang et al., 2015):
  tab-separated, no header: user id, venue id, venue category id, venue
  category name, latitude, longitude, UTC offset in minutes, UTC time such as
  "Tue Apr 03 18:00:09 +0000 2012". The time is rewritten as ISO-8601 with its
  zone ("2012-04-03T18:00:09+00:00"); one that cannot be (bad date, weekday
  that does not match the date, other layout) stays as its raw text, so
  validation rejects that row and reports the original value. The category
  name is the item's text and category.

In both, a check-in's place is the venue (`event_location_is_item_location`).
Values read as text (ids, coordinates, the offset column) stay text.
"""

from __future__ import annotations

import bz2
import gzip
import io as std_io
import logging
import os
import re

import numpy as np
import pandas as pd

from trainer.data import io
from trainer.data import schema, timezones
from trainer.data.schema import RawTables

CHECKINS_FILE = "checkins.csv"
VENUES_FILE = "venues.csv"
VENUE_ID = "venue_id"  # the input's name for the item id
CHECKIN_COLUMNS = (schema.USER_ID, VENUE_ID, schema.TIMESTAMP, schema.LATITUDE, schema.LONGITUDE)
VENUE_COLUMNS = (VENUE_ID, schema.LATITUDE, schema.LONGITUDE)
TSMC_FIELDS = (
    schema.USER_ID,
    VENUE_ID,
    "venue_category_id",
    "venue_category",
    schema.LATITUDE,
    schema.LONGITUDE,
    schema.UTC_OFFSET,
    "utc_time",
)
EVENT_TYPE = "checkin"

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # index = pandas day_of_week
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# "Tue Apr 03 18:00:09 +0000 2012" (Twitter's created_at layout).
_TSMC_TIME = (
    rf"^(?P<weekday>{'|'.join(_WEEKDAYS)}) (?P<month>{'|'.join(_MONTHS)}) (?P<day>\d{{1,2}}) "
    r"(?P<clock>\d{2}:\d{2}:\d{2}) (?P<sign>[+-])(?P<hh>\d{2})(?P<mm>\d{2}) (?P<year>\d{4})$"
)
_SURROGATE = re.compile("[\udc80-\udcff]")


def read_foursquare_csv(directory_or_file: str, timezone: str = "") -> RawTables:
    """Reads Foursquare check-ins from CSV (see the module docstring).

    Args:
      directory_or_file: a folder holding checkins.csv (and optionally
        venues.csv), or one check-ins .csv file (then no items are read).
      timezone: IANA zone of the check-ins' local time ("America/New_York"):
        each event's `utc_offset_minutes` is that zone's offset at its instant.
        "" leaves the column out, which validation reads as 0 (unknown).

    Returns:
      `RawTables` with events (user_id, item_id, timestamp, event_type
      "checkin", latitude, longitude, and utc_offset_minutes [int32] when
      `timezone` is set) and, when venues.csv exists, items (item_id, text "",
      category "", latitude, longitude).

    Raises:
      ValueError naming the file when it is missing, empty or lacks a column,
      or naming `timezone` when it is not an IANA zone.
    """
    if not isinstance(directory_or_file, str) or not directory_or_file:
        raise ValueError(
            f"`directory_or_file` must be a non-empty path. Received: directory_or_file={directory_or_file!r}"
        )
    if not isinstance(timezone, str) or (timezone and not timezones.is_valid_timezone(timezone)):
        raise ValueError(
            f"`timezone` must be an IANA zone name such as 'America/New_York', or ''. Received: timezone={timezone!r}"
        )
    if _is_csv_file(directory_or_file):
        checkins_path, venues_path = directory_or_file, ""
        directory = os.path.dirname(directory_or_file.rstrip("/"))
    else:
        directory = directory_or_file.rstrip("/")
        checkins_path = os.path.join(directory, CHECKINS_FILE)
        venues_path = os.path.join(directory, VENUES_FILE)
        if not io.exists(checkins_path):
            raise ValueError(
                f"Check-in file {checkins_path!r} does not exist: `directory_or_file` must be a .csv file or a "
                f"folder holding {CHECKINS_FILE}. Received: directory_or_file={directory_or_file!r}"
            )
    name = os.path.basename(directory) or "foursquare"
    notes: list[str] = []

    raw = io.read_delimited(checkins_path, sep=",")
    io.check_columns(raw, CHECKIN_COLUMNS, checkins_path, "Check-in")
    if raw.empty:
        raise ValueError(f"Check-in file {checkins_path!r} has a header but no rows.")
    events = pd.DataFrame(
        {
            schema.USER_ID: raw[schema.USER_ID],
            schema.ITEM_ID: raw[VENUE_ID],
            schema.TIMESTAMP: raw[schema.TIMESTAMP],
            schema.EVENT_TYPE: EVENT_TYPE,
            schema.LATITUDE: raw[schema.LATITUDE],
            schema.LONGITUDE: raw[schema.LONGITUDE],
        }
    )
    if timezone:
        # Unparsable or naive times get 0 here; validation rejects them with their text.
        instants = pd.to_datetime(raw[schema.TIMESTAMP], utc=True, format="ISO8601", errors="coerce")
        events[schema.UTC_OFFSET] = timezones.utc_offset_minutes(_unix_seconds(instants), timezone)
        notes.append(f"utc_offset_minutes is {timezone}'s offset at each check-in (DST-aware).")
    else:
        # Left absent rather than filled with zeros: absent validates to 0 (unknown), and
        # a pipeline-level time zone (DataConfig.timezone) is applied only where the
        # reader gave no offsets.
        notes.append("No `timezone` given: utc_offset_minutes is absent, i.e. 0 (local time unknown).")
    events = io.add_provenance(events, checkins_path)

    items = None
    if venues_path and io.exists(venues_path):
        venues = io.read_delimited(venues_path, sep=",")
        io.check_columns(venues, VENUE_COLUMNS, venues_path, "Venue")
        items = pd.DataFrame(
            {
                schema.ITEM_ID: venues[VENUE_ID],
                schema.TEXT: "",
                schema.CATEGORY: "",
                schema.LATITUDE: venues[schema.LATITUDE],
                schema.LONGITUDE: venues[schema.LONGITUDE],
            }
        )
        items = io.add_provenance(items, venues_path)
        notes.append(f"{len(items)} venues from {venues_path}: location only, no text or category.")
    else:
        notes.append("No venues file: items come from the check-ins alone (no text, category or location).")
    _log(name, notes)
    return RawTables(name=name, events=events, items=items, event_location_is_item_location=True, notes=notes)


def read_foursquare_tsmc(path: str) -> RawTables:
    """Reads a raw TSMC2014 check-in file (e.g. dataset_TSMC2014_NYC.txt).

    Args:
      path: the tab-separated text file (local or gfile; .gz/.bz2 decompressed).
        Bytes that are not valid UTF-8 are read as latin-1 (and counted in notes).

    Returns:
      `RawTables` named "foursquare-tsmc" with events (user_id, item_id,
      timestamp as ISO-8601 or the raw text when unconvertible, event_type
      "checkin", latitude, longitude, utc_offset_minutes as read) and items
      (item_id, text = category = the venue's category name, latitude,
      longitude) taken from each venue's first row.

    Raises:
      ValueError naming the file when it is missing, empty or does not have 8
      tab-separated fields per line.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"`path` must be a non-empty file path. Received: path={path!r}")
    notes: list[str] = []
    raw = _read_tsmc_fields(path, notes)

    timestamps, converted = tsmc_time_to_iso(raw["utc_time"])
    unconverted = int((~converted).sum())
    if unconverted:
        first = int(np.flatnonzero(~converted)[0])
        notes.append(
            f"{unconverted} of {len(raw)} check-in times in {path} are not in the TSMC layout "
            f"'Tue Apr 03 18:00:09 +0000 2012' (first: row {first + 1}, {raw['utc_time'].iloc[first]!r}); "
            "they are kept as raw text for validation to reject."
        )
    events = pd.DataFrame(
        {
            schema.USER_ID: raw[schema.USER_ID],
            schema.ITEM_ID: raw[VENUE_ID],
            schema.TIMESTAMP: timestamps,
            schema.EVENT_TYPE: EVENT_TYPE,
            schema.LATITUDE: raw[schema.LATITUDE],
            schema.LONGITUDE: raw[schema.LONGITUDE],
            schema.UTC_OFFSET: raw[schema.UTC_OFFSET],
        }
    )
    events = io.add_provenance(events, path)

    # One item per venue from its first row; the file repeats venue attributes on every check-in.
    # "|" separates categories in the canonical schema; a name containing it stays one category.
    category = raw["venue_category"].str.replace(schema.CATEGORY_SEPARATOR, "/", regex=False)
    venue_rows = pd.DataFrame(
        {
            schema.ITEM_ID: raw[VENUE_ID],
            schema.TEXT: raw["venue_category"],
            schema.CATEGORY: category,
            schema.LATITUDE: raw[schema.LATITUDE],
            schema.LONGITUDE: raw[schema.LONGITUDE],
            schema.SOURCE_ROW: np.arange(1, len(raw) + 1),
        }
    )
    attributes = [schema.TEXT, schema.LATITUDE, schema.LONGITUDE]
    distinct = venue_rows.drop_duplicates([schema.ITEM_ID, *attributes])
    conflicting = distinct.loc[distinct[schema.ITEM_ID].duplicated(keep=False), schema.ITEM_ID].nunique()
    items = distinct.drop_duplicates(schema.ITEM_ID).reset_index(drop=True)
    if conflicting:
        notes.append(
            f"{conflicting} venues have differing category or coordinates across check-ins; items use each "
            "venue's first row (events keep their own coordinates)."
        )
    items = io.add_provenance(items, path)
    notes.append(f"{len(items)} venues; item text and category are the venue category name.")
    _log("foursquare-tsmc", notes)
    return RawTables(
        name="foursquare-tsmc", events=events, items=items, event_location_is_item_location=True, notes=notes
    )


def tsmc_time_to_iso(times: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Rewrites TSMC times ("Tue Apr 03 18:00:09 +0000 2012") as ISO-8601.

    Args:
      times: [N] raw time strings.

    Returns:
      ([N] strings: "2012-04-03T18:00:09+00:00" where convertible, else the raw
      text unchanged; [N] bool: True where converted). A time converts when it
      has exactly the layout above, is a real calendar date and clock time, its
      weekday matches the date and its offset is within +-23:59.
    """
    text = times.astype(str)
    parts = text.str.strip().str.extract(_TSMC_TIME)
    month = parts["month"].map({m: f"{i + 1:02d}" for i, m in enumerate(_MONTHS)})
    local = parts["year"] + "-" + month + "-" + parts["day"].str.zfill(2) + "T" + parts["clock"]
    parsed = pd.to_datetime(local, format="%Y-%m-%dT%H:%M:%S", errors="coerce")
    weekday = parts["weekday"].map({d: i for i, d in enumerate(_WEEKDAYS)})
    ok = (
        parsed.notna()
        & (parsed.dt.day_of_week == weekday)
        & (pd.to_numeric(parts["hh"], errors="coerce") <= 23)
        & (pd.to_numeric(parts["mm"], errors="coerce") <= 59)
    ).to_numpy(dtype=bool)
    iso = local + parts["sign"] + parts["hh"] + ":" + parts["mm"]
    out = pd.Series(np.where(ok, iso.to_numpy(dtype=object), text.to_numpy(dtype=object)), index=times.index)
    return out.astype(times.dtype if pd.api.types.is_string_dtype(times.dtype) else object), ok


def _read_tsmc_fields(path: str, notes: list[str]) -> pd.DataFrame:
    data = io.read_bytes(path)
    lower = path.lower()
    try:
        if lower.endswith(".gz"):
            data = gzip.decompress(data)
        elif lower.endswith(".bz2"):
            data = bz2.decompress(data)
    except (OSError, EOFError, ValueError) as e:
        raise ValueError(f"Cannot decompress input file {path!r}: {e}") from e
    if not data.strip():
        raise ValueError(f"Input file {path!r} is empty.")
    text, latin1_bytes = decode_utf8_or_latin1(data)
    if latin1_bytes:
        notes.append(f"{latin1_bytes} bytes of {path} are not valid UTF-8 and were read as latin-1.")
    try:
        frame = pd.read_csv(
            std_io.StringIO(text),
            sep="\t",
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            quoting=3,  # QUOTE_NONE: quotes in category names are text
            engine="c",
        )
    except pd.errors.ParserError as e:
        raise ValueError(f"Cannot parse input file {path!r} as tab-separated TSMC2014 check-ins: {e}") from e
    if frame.shape[1] != len(TSMC_FIELDS):
        raise ValueError(
            f"TSMC check-in file {path!r} has {frame.shape[1]} tab-separated fields per line; "
            f"expected {len(TSMC_FIELDS)}: {list(TSMC_FIELDS)}."
        )
    frame.columns = list(TSMC_FIELDS)
    return frame


def decode_utf8_or_latin1(data: bytes) -> tuple[str, int]:
    """Decodes UTF-8, reading each byte that is not valid UTF-8 as latin-1.

    Mixed files occur in the TSMC releases ("Caf\\xe9" beside UTF-8 text).

    Returns:
      (the text, how many bytes were read as latin-1).
    """
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    # surrogateescape maps each undecodable byte b to U+DC00+b, found again in one regex pass.
    text = data.decode("utf-8", errors="surrogateescape")
    count = 0

    def to_latin1(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return chr(ord(match.group()) - 0xDC00)

    return _SURROGATE.sub(to_latin1, text), count


def _is_csv_file(path: str) -> bool:
    lower = path.lower()
    for suffix in (".gz", ".bz2", ".zst"):
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
    if lower.endswith(".csv"):
        return True
    return io.is_local(path) and os.path.isfile(path)


def _unix_seconds(instants: pd.Series) -> np.ndarray:
    """[N] tz-aware datetimes (NaT allowed) -> [N] float seconds, NaN for NaT."""
    epoch = pd.Timestamp(0, tz="UTC")
    return ((instants - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype="float64", na_value=np.nan)


def _log(name: str, notes: list[str]) -> None:
    for note in notes:
        logging.info("%s: %s", name, note)
