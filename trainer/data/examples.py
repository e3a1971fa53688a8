"""The per-user transform: one user's sorted events -> that user's examples.

`user_examples` is a pure function of one user's time-sorted events and a
frozen `ExampleSpec`: no global state, no I/O. The local preparation path and a
distributed runner (Beam: group by user, sort, apply) call the same function,
so both give identical examples.

Event order within a user: ascending timestamp; events at the same second keep
the order they were read in (file order, files in the order given). This is a
stable sort, deterministic for a given input.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from trainer.data import example_schema as es
from trainer.data import schema, splits


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
    """Everything the per-user transform needs besides the events."""

    plan: splits.SplitPlan
    max_history: int = 50
    min_history: int = 1
    # True when an event's place is the item's place (check-ins): the request
    # place is then the last known place before the target, not the target's.
    request_place_from_history: bool = False
    numeric_user_attributes: tuple[str, ...] = ()
    categorical_user_attributes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.max_history < 1:
            raise ValueError(f"`max_history` must be >= 1. Received: max_history={self.max_history}")
        if not 0 <= self.min_history <= self.max_history:
            raise ValueError(
                f"`min_history` must be in [0, max_history={self.max_history}]. Received: min_history={self.min_history}"
            )

    def feature_specs(self) -> tuple[es.FeatureSpec, ...]:
        return es.BASE_FEATURES + es.user_attribute_features(
            list(self.numeric_user_attributes), list(self.categorical_user_attributes)
        )


@dataclasses.dataclass
class UserEvents:
    """One user's events in time order (see the module docstring for ties).

    All arrays are [n]: item_ids/event_types object (str); timestamps int64 unix
    seconds; utc_offsets int64 minutes; values/latitudes/longitudes float64 (NaN
    absent). `attributes` maps attribute name -> value (float or str).
    """

    user_id: str
    item_ids: np.ndarray
    event_types: np.ndarray
    timestamps: np.ndarray
    utc_offsets: np.ndarray
    values: np.ndarray
    latitudes: np.ndarray
    longitudes: np.ndarray
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)


def sort_events(events: pd.DataFrame) -> pd.DataFrame:
    """All events sorted by (user_id, timestamp, read order): a stable time sort per user."""
    return events.sort_values(
        [schema.USER_ID, schema.TIMESTAMP, schema.READ_ORDER], kind="mergesort"
    ).reset_index(drop=True)


def iter_users(
    sorted_events: pd.DataFrame, attributes: dict[str, dict[str, Any]] | None = None
) -> Iterator[UserEvents]:
    """Yields `UserEvents` per user from the output of `sort_events`."""
    users = sorted_events[schema.USER_ID].to_numpy(dtype=object)
    if len(users) == 0:
        return
    boundaries = np.flatnonzero(users[1:] != users[:-1]) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(users)]])
    columns = {
        "item_ids": sorted_events[schema.ITEM_ID].to_numpy(dtype=object),
        "event_types": sorted_events[schema.EVENT_TYPE].to_numpy(dtype=object),
        "timestamps": sorted_events[schema.TIMESTAMP].to_numpy(dtype=np.int64),
        "utc_offsets": sorted_events[schema.UTC_OFFSET].to_numpy(dtype=np.int64),
        "values": sorted_events[schema.VALUE].to_numpy(dtype=np.float64),
        "latitudes": sorted_events[schema.LATITUDE].to_numpy(dtype=np.float64),
        "longitudes": sorted_events[schema.LONGITUDE].to_numpy(dtype=np.float64),
    }
    attributes = attributes or {}
    for start, end in zip(starts.tolist(), ends.tolist()):
        user_id = users[start]
        yield UserEvents(
            user_id=user_id,
            attributes=attributes.get(user_id, {}),
            **{name: values[start:end] for name, values in columns.items()},
        )


def _last_known_place(latitudes: np.ndarray, longitudes: np.ndarray, end: int) -> tuple[float, float]:
    """The place of the latest event before index `end` that has one, else NaN."""
    known = np.flatnonzero(~np.isnan(latitudes[:end]))
    if len(known) == 0:
        return math.nan, math.nan
    last = known[-1]
    return float(latitudes[last]), float(longitudes[last])


def user_examples(user: UserEvents, spec: ExampleSpec) -> Iterator[tuple[int, dict[str, Any]]]:
    """The examples of one user: (split, features) per target event.

    Args:
      user: the user's events in time order.
      spec: split plan, history length and request-place rule.

    Yields:
      (split, features): split is `splits.TRAIN/VALIDATION/TEST`; features maps
      every name in `spec.feature_specs()` to a python scalar or a [L] numpy
      array (L <= max_history; history of events strictly before the target in
      the sorted order, so never a later one).
    """
    periods = splits.event_periods(user.timestamps, spec.plan)
    attributes = {}
    for name in spec.numeric_user_attributes:
        value = user.attributes.get(name, math.nan)
        attributes[es.USER_ATTRIBUTE_PREFIX + name] = math.nan if value is None else float(value)
    for name in spec.categorical_user_attributes:
        value = user.attributes.get(name, "")
        attributes[es.USER_ATTRIBUTE_PREFIX + name] = "" if value is None else str(value)
    for i in range(spec.min_history, len(user)):
        start = max(0, i - spec.max_history)
        if spec.request_place_from_history or math.isnan(user.latitudes[i]):
            request_lat, request_lon = _last_known_place(user.latitudes, user.longitudes, i)
        else:
            request_lat, request_lon = float(user.latitudes[i]), float(user.longitudes[i])
        features = {
            es.USER_ID: user.user_id,
            es.HISTORY_ITEM_IDS: user.item_ids[start:i],
            es.HISTORY_EVENT_TYPES: user.event_types[start:i],
            es.HISTORY_TIMESTAMPS: user.timestamps[start:i],
            es.HISTORY_UTC_OFFSETS: user.utc_offsets[start:i],
            es.HISTORY_LATITUDES: user.latitudes[start:i],
            es.HISTORY_LONGITUDES: user.longitudes[start:i],
            es.HISTORY_VALUES: user.values[start:i],
            es.TARGET_ITEM_ID: user.item_ids[i],
            es.TARGET_EVENT_TYPE: user.event_types[i],
            es.TARGET_VALUE: float(user.values[i]),
            es.TARGET_TIMESTAMP: int(user.timestamps[i]),
            es.TARGET_UTC_OFFSET: int(user.utc_offsets[i]),
            es.TARGET_LATITUDE: float(user.latitudes[i]),
            es.TARGET_LONGITUDE: float(user.longitudes[i]),
            es.REQUEST_TIMESTAMP: int(user.timestamps[i]),
            es.REQUEST_UTC_OFFSET: int(user.utc_offsets[i]),
            es.REQUEST_LATITUDE: request_lat,
            es.REQUEST_LONGITUDE: request_lon,
            **attributes,
        }
        yield int(periods[i]), features


def encode_example(features: dict[str, Any], specs: tuple[es.FeatureSpec, ...]) -> bytes:
    """Serialises one example's features as a `tf.train.Example`."""
    from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top

    example = example_pb2.Example()
    feature_map = example.features.feature
    for spec in specs:
        value = features[spec.name]
        if not spec.sequence:
            value = [value]
        if spec.dtype == es.STRING:
            feature_map[spec.name].bytes_list.value.extend([str(v).encode("utf-8") for v in value])
        elif spec.dtype == es.INT64:
            feature_map[spec.name].int64_list.value.extend([int(v) for v in value])
        else:
            feature_map[spec.name].float_list.value.extend([float(v) for v in value])
    return example.SerializeToString()


def decode_example(serialized: bytes, specs: tuple[es.FeatureSpec, ...]) -> dict[str, Any]:
    """Inverse of `encode_example` (numpy arrays for history, scalars otherwise)."""
    from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top

    example = example_pb2.Example.FromString(serialized)
    out: dict[str, Any] = {}
    for spec in specs:
        feature = example.features.feature[spec.name]
        if spec.dtype == es.STRING:
            values = [v.decode("utf-8") for v in feature.bytes_list.value]
        elif spec.dtype == es.INT64:
            values = list(feature.int64_list.value)
        else:
            values = list(feature.float_list.value)
        out[spec.name] = np.asarray(values, dtype=spec.numpy_dtype) if spec.sequence else values[0]
    return out
