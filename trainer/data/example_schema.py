"""The training-example contract, written once: names, dtypes, shapes, padding.

The writer (`examples.encode_example`), the manifest and the `tf.data` reader
(`dataset.make_dataset`) all take the feature list from here.

One example = one target event of one user:
  history_*   [T] (T <= max_history in the file; [B, max_history] after
              batching): the user's last events before the target, oldest first,
              most recent at index length-1; after batching, padded at the END
              with the feature's padding value ("" / 0 / NaN). A history
              position is real iff `history_item_ids != ""`.
  target_*    []: the event to predict.
  request_*   []: the context of the request: its time (= the target's time)
              and the place the user is known to be at (the target event's place,
              or the last known place before it when the event's place is the
              item's own place, e.g. check-ins).
  user_*      []: user attributes (declared per dataset in the manifest).

Locations are WGS84 degrees, NaN when unknown. Timestamps are int64 unix
seconds (UTC); `*_utc_offsets` are minutes to add for local time.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

STRING, INT64, FLOAT32 = "string", "int64", "float32"
PADDING = {STRING: "", INT64: 0, FLOAT32: math.nan}


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    name: str
    dtype: str  # STRING / INT64 / FLOAT32
    sequence: bool  # True: history feature of variable length [T]
    description: str

    @property
    def padding(self):
        return PADDING[self.dtype]

    @property
    def numpy_dtype(self):
        return {STRING: object, INT64: np.int64, FLOAT32: np.float32}[self.dtype]


HISTORY_ITEM_IDS = "history_item_ids"
HISTORY_EVENT_TYPES = "history_event_types"
HISTORY_TIMESTAMPS = "history_timestamps"
HISTORY_UTC_OFFSETS = "history_utc_offsets"
HISTORY_LATITUDES = "history_latitudes"
HISTORY_LONGITUDES = "history_longitudes"
HISTORY_VALUES = "history_values"
USER_ID = "user_id"
TARGET_ITEM_ID = "target_item_id"
TARGET_EVENT_TYPE = "target_event_type"
TARGET_VALUE = "target_value"
TARGET_TIMESTAMP = "target_timestamp"
TARGET_UTC_OFFSET = "target_utc_offset"
TARGET_LATITUDE = "target_latitude"
TARGET_LONGITUDE = "target_longitude"
REQUEST_TIMESTAMP = "request_timestamp"
REQUEST_UTC_OFFSET = "request_utc_offset"
REQUEST_LATITUDE = "request_latitude"
REQUEST_LONGITUDE = "request_longitude"
USER_ATTRIBUTE_PREFIX = "user_"

BASE_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(USER_ID, STRING, False, "user id (pseudonym when pseudonymised)"),
    FeatureSpec(HISTORY_ITEM_IDS, STRING, True, "item ids of the history; '' = padding"),
    FeatureSpec(HISTORY_EVENT_TYPES, STRING, True, "event types of the history"),
    FeatureSpec(HISTORY_TIMESTAMPS, INT64, True, "unix seconds of the history events"),
    FeatureSpec(HISTORY_UTC_OFFSETS, INT64, True, "local-time offsets (minutes) of the history events"),
    FeatureSpec(HISTORY_LATITUDES, FLOAT32, True, "where each history event happened; NaN unknown"),
    FeatureSpec(HISTORY_LONGITUDES, FLOAT32, True, "where each history event happened; NaN unknown"),
    FeatureSpec(HISTORY_VALUES, FLOAT32, True, "event values (e.g. ratings); NaN absent"),
    FeatureSpec(TARGET_ITEM_ID, STRING, False, "the item of the next event"),
    FeatureSpec(TARGET_EVENT_TYPE, STRING, False, "the behaviour of the next event"),
    FeatureSpec(TARGET_VALUE, FLOAT32, False, "the value of the next event (rating); NaN absent"),
    FeatureSpec(TARGET_TIMESTAMP, INT64, False, "unix seconds of the next event"),
    FeatureSpec(TARGET_UTC_OFFSET, INT64, False, "local-time offset of the next event"),
    FeatureSpec(TARGET_LATITUDE, FLOAT32, False, "place of the next event; NaN unknown"),
    FeatureSpec(TARGET_LONGITUDE, FLOAT32, False, "place of the next event; NaN unknown"),
    FeatureSpec(REQUEST_TIMESTAMP, INT64, False, "request time (= target time)"),
    FeatureSpec(REQUEST_UTC_OFFSET, INT64, False, "request local-time offset"),
    FeatureSpec(REQUEST_LATITUDE, FLOAT32, False, "where the user is at the request; NaN unknown"),
    FeatureSpec(REQUEST_LONGITUDE, FLOAT32, False, "where the user is at the request; NaN unknown"),
)


def user_attribute_features(numeric: list[str], categorical: list[str]) -> tuple[FeatureSpec, ...]:
    """Specs for user attributes: numeric -> float32 (NaN missing), others string ("" missing)."""
    specs = [FeatureSpec(USER_ATTRIBUTE_PREFIX + n, FLOAT32, False, f"user attribute {n!r}") for n in numeric]
    specs += [FeatureSpec(USER_ATTRIBUTE_PREFIX + c, STRING, False, f"user attribute {c!r}") for c in categorical]
    return tuple(specs)


def to_manifest(specs: tuple[FeatureSpec, ...], max_history: int) -> dict[str, dict[str, object]]:
    """The feature table as written to the manifest (shape after batching)."""
    out = {}
    for spec in specs:
        shape = ["B", max_history] if spec.sequence else ["B"]
        padding = spec.padding
        out[spec.name] = {
            "dtype": spec.dtype,
            "shape": shape,
            "padding": "NaN" if isinstance(padding, float) and math.isnan(padding) else padding,
            "description": spec.description,
        }
    return out


def from_manifest(features: dict[str, dict[str, object]]) -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(name, str(f["dtype"]), len(f["shape"]) == 2, str(f["description"])) for name, f in features.items()
    )
