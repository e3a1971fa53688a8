"""The canonical schema every input is mapped onto.

Readers (MovieLens, Foursquare, generic event files, the synthetic world) return
`RawTables`: pandas frames whose columns carry the canonical names below, with
values still raw (strings as read, or already-typed numbers), plus two
provenance columns, `_source_file` and `_source_row`, so that every rejected row
can be traced back to the file and record it came from.

`trainer.data.validation` turns `RawTables` into `CanonicalTables`: typed,
validated, de-duplicated, with every rejected row kept and counted.

Canonical events (one row per behaviour event):
  user_id             str, required.
  item_id             str, required.
  timestamp           int64 unix seconds (UTC), required. Raw input may be unix
                      seconds or ISO-8601 with a zone ("2012-04-03T18:00:09Z",
                      "...+02:00"); a naive ISO time is rejected as ambiguous.
  event_type          str, one of the allowed event types; absent -> "interaction".
  value               float64, NaN when absent (e.g. the rating).
  latitude/longitude  float64 WGS84 where the event happened, NaN when absent;
                      both or neither.
  utc_offset_minutes  int32 offset of the place's local time from UTC at the
                      event (e.g. -240 for New York in summer); 0 when unknown.

Canonical items: item_id (str), text (str, "" absent), category (str, several
joined by "|", "" absent), latitude/longitude (float64, NaN absent), price
(float64, NaN absent), plus declared extra feature columns.

Canonical users: user_id plus attribute columns (numeric -> float64, otherwise str).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

USER_ID = "user_id"
ITEM_ID = "item_id"
TIMESTAMP = "timestamp"
EVENT_TYPE = "event_type"
VALUE = "value"
LATITUDE = "latitude"
LONGITUDE = "longitude"
UTC_OFFSET = "utc_offset_minutes"
TEXT = "text"
CATEGORY = "category"
PRICE = "price"

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"  # 1-based record number within its file (header not counted)
PROVENANCE_COLUMNS = (SOURCE_FILE, SOURCE_ROW)

EVENT_COLUMNS = (USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE, VALUE, LATITUDE, LONGITUDE, UTC_OFFSET)
REQUIRED_EVENT_COLUMNS = (USER_ID, ITEM_ID, TIMESTAMP)
ITEM_COLUMNS = (ITEM_ID, TEXT, CATEGORY, LATITUDE, LONGITUDE, PRICE)
REQUIRED_ITEM_COLUMNS = (ITEM_ID,)
REQUIRED_USER_COLUMNS = (USER_ID,)

CATEGORY_SEPARATOR = "|"
DEFAULT_EVENT_TYPE = "interaction"
# Behaviours the product knows; more can be allowed through `DataConfig.extra_event_types`.
KNOWN_EVENT_TYPES = (
    DEFAULT_EVENT_TYPE,
    "view",
    "click",
    "add_to_cart",
    "remove_from_cart",
    "wishlist",
    "purchase",
    "rating",
    "review",
    "like",
    "share",
    "comment",
    "play",
    "watch",
    "read",
    "search",
    "checkin",
)


@dataclasses.dataclass
class RawTables:
    """What a reader returns: canonical column names, raw values, provenance.

    Attributes:
      name: dataset name used in logs and the manifest ("movielens-100k", ...).
      events: the events frame; columns from `EVENT_COLUMNS` (required ones always
        present) plus `_source_file` and `_source_row`.
      items: the item catalogue or None; columns from `ITEM_COLUMNS` plus extras
        and provenance.
      users: user attributes or None; `user_id` plus attribute columns and provenance.
      event_location_is_item_location: True when an event's place IS the item
        (a check-in's place is the venue). Then the place of the target event
        would name the target, so a request's place is taken from the last event
        before it instead.
      notes: human-readable notes a reader wants in the run summary (e.g. how
        many zip codes fell back to a coarse region).
    """

    name: str
    events: pd.DataFrame
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    event_location_is_item_location: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class CanonicalTables:
    """Validated, typed tables (see the module docstring for columns and dtypes).

    `events` keeps `_source_file`/`_source_row` so later filters can still
    report where a row came from; `order` in `events` is the read order used as
    the deterministic tie-break between events of one user at the same second.
    """

    name: str
    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    event_location_is_item_location: bool
    notes: list[str] = dataclasses.field(default_factory=list)


READ_ORDER = "_read_order"  # int64 position of the event in the input as read
