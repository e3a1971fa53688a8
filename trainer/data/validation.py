"""Raw tables -> typed canonical tables, with every rejected row kept and counted.

Nothing is dropped silently: a row that fails a check goes to the rejects with
its original values and the reason(s); exact duplicate events are removed and
recorded too. `ValidationResult.counts` always satisfies
`read == accepted + rejected + duplicates` per table (checked here).

All checks are vectorised: a million events validate in seconds.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from trainer.data import schema

log = logging.getLogger(__name__)

MIN_TIMESTAMP = 0  # 1970-01-01
MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01: later values are usually milliseconds
MAX_UTC_OFFSET_MINUTES = 14 * 60
REASON = "reason"
DUPLICATE_EVENT = "duplicate of an earlier event (all fields equal)"
OFFSET_KNOWN = "_offset_known"  # accepted events: False where the input gave no utc offset (0 assumed)

_ZONE_SUFFIX = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


@dataclasses.dataclass
class ValidationResult:
    """Accepted rows, rejected rows (original values + `reason`) and the counts."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, int]
    reasons: dict[str, int]


class _Reasons:
    """Per-row rejection reasons, built from vectorised masks.

    `add(mask, text, detail)` gives every masked row `text`, followed by
    `detail[row]` (its offending value) when `detail` is given; texts are built
    for masked rows only, so clean columns cost nothing.
    """

    def __init__(self, n: int):
        self.n = n
        self.parts: list[tuple[np.ndarray, str, np.ndarray | None]] = []

    def add(self, mask: np.ndarray | pd.Series, text: str, detail: object = None) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.parts.append((mask, text, None if detail is None else np.asarray(detail, dtype=object)))

    def any(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, _, _ in self.parts:
            out |= mask
        return out

    def counts(self) -> dict[str, int]:
        """Rows per reason kind (a row with two problems counts under both)."""
        out: dict[str, int] = {}
        for mask, text, _ in self.parts:
            out[text] = out.get(text, 0) + int(mask.sum())
        return out

    def texts(self) -> np.ndarray:
        out = np.full(self.n, "", dtype=object)
        for mask, text, detail in self.parts:
            for i in np.flatnonzero(mask):
                message = text if detail is None else f"{text}: {detail[i]}"
                out[i] = message if not out[i] else f"{out[i]}; {message}"
        return out


def _as_text(series: pd.Series) -> pd.Series:
    """Strings as read, stripped; typed numbers become their text, NaN -> ""."""
    if pd.api.types.is_numeric_dtype(series.dtype):
        # Integral floats (ids in a nullable Parquet/JSON column: 17.0) read as "17".
        values = series.to_numpy(dtype=np.float64) if pd.api.types.is_float_dtype(series.dtype) else None
        if values is not None and np.all(np.isnan(values) | (values == np.round(values))):
            text = pd.Series([str(int(v)) if v == v else "" for v in values], index=series.index, dtype=object)
            return text
        text = series.astype(str)
        return text.where(series.notna(), "")
    return series.astype(str).str.strip()


def _quoted(series: pd.Series, mask: np.ndarray) -> np.ndarray:
    values = series.to_numpy(dtype=object)
    out = np.full(len(values), "", dtype=object)
    out[mask] = [repr(str(v))[:80] for v in values[mask]]
    return out


def _parse_float(series: pd.Series, field: str, reasons: _Reasons, *, required: bool = False) -> np.ndarray:
    """float64 values; "" -> NaN (absent); literal NaN/inf and junk are rejected."""
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64)
        absent = np.isnan(values) & series.isna().to_numpy()
        bad = ~np.isfinite(values) & ~absent
        reasons.add(bad, f"{field} is not finite", values)
        if required:
            reasons.add(absent, f"missing {field}")
        return np.where(bad, np.nan, values)
    text = _as_text(series)
    absent = (text == "").to_numpy()
    values = pd.to_numeric(text.where(~absent, None), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    lower = text.str.lower()
    nan_text = lower.isin(["nan", "+nan", "-nan", "na", "n/a", "null", "none"]).to_numpy()
    inf_text = np.isinf(values)
    junk = np.isnan(values) & ~absent & ~nan_text
    reasons.add(nan_text, f"{field} is NaN")
    reasons.add(inf_text, f"{field} is infinite")
    reasons.add(junk, f"{field} is not a number", _quoted(text, junk))
    if required:
        reasons.add(absent, f"missing {field}")
    values[nan_text | inf_text | junk] = np.nan
    return values


def parse_timestamps(series: pd.Series, reasons: _Reasons, field: str = schema.TIMESTAMP) -> np.ndarray:
    """int64 unix seconds from unix seconds (int/float text) or zoned ISO-8601."""
    n = len(series)
    out = np.zeros(n, dtype=np.int64)
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64)
        missing = np.isnan(values)
        reasons.add(missing, f"missing {field}")
        finite = np.where(missing, 0, values)
        out = np.floor(finite).astype(np.int64)
    else:
        text = _as_text(series)
        missing = (text == "").to_numpy()
        reasons.add(missing, f"missing {field}")
        numeric = text.str.match(_NUMBER).to_numpy() & ~missing
        if numeric.any():
            values = pd.to_numeric(text[numeric], errors="coerce").to_numpy(dtype=np.float64)
            out[numeric] = np.floor(np.clip(values, -1e15, 1e15)).astype(np.int64)
        iso = ~numeric & ~missing
        if iso.any():
            iso_text = text[iso]
            zoned = iso_text.str.contains(_ZONE_SUFFIX, regex=True).to_numpy()
            parsed = pd.to_datetime(iso_text, utc=True, format="ISO8601", errors="coerce")
            ok = parsed.notna().to_numpy()
            iso_idx = np.flatnonzero(iso)
            unparsable = np.zeros(n, dtype=bool)
            unparsable[iso_idx[~ok]] = True
            naive = np.zeros(n, dtype=bool)
            naive[iso_idx[ok & ~zoned]] = True
            reasons.add(unparsable, f"unparsable {field}", _quoted(text, unparsable))
            reasons.add(
                naive,
                f"{field} has no time zone (add Z or +hh:mm, or give unix seconds)", _quoted(text, naive),
            )
            good = iso_idx[ok & zoned]
            epoch = pd.Timestamp(0, tz="UTC")
            out[good] = ((parsed[ok & zoned] - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
    out_of_range = ~missing & ((out < MIN_TIMESTAMP) | (out >= MAX_TIMESTAMP))
    reasons.add(
        out_of_range,
        f"{field} out of range 1970..2100 (milliseconds instead of seconds?)", out,
    )
    return out


def _reject_frame(raw: pd.DataFrame, mask: np.ndarray, texts: np.ndarray) -> pd.DataFrame:
    frame = raw.loc[mask].copy()
    frame.insert(0, REASON, texts[mask] if len(texts) == len(mask) else texts)
    return frame


def _check_location(lat: np.ndarray, lon: np.ndarray, reasons: _Reasons) -> None:
    has_lat, has_lon = ~np.isnan(lat), ~np.isnan(lon)
    reasons.add(has_lat & ~has_lon, "latitude given without longitude")
    reasons.add(has_lon & ~has_lat, "longitude given without latitude")
    bad_lat = has_lat & (np.abs(np.nan_to_num(lat)) > 90)
    bad_lon = has_lon & (np.abs(np.nan_to_num(lon)) > 180)
    reasons.add(bad_lat, "latitude out of range [-90, 90]", lat)
    reasons.add(bad_lon, "longitude out of range [-180, 180]", lon)


def _optional(raw: pd.DataFrame, column: str) -> pd.Series:
    if column in raw.columns:
        return raw[column]
    return pd.Series([""] * len(raw), index=raw.index, dtype=object)


def validate_events(
    raw: pd.DataFrame,
    *,
    allowed_event_types: Iterable[str],
    default_event_type: str = schema.DEFAULT_EVENT_TYPE,
) -> ValidationResult:
    """Validates and types raw events; rejects bad rows and exact duplicates.

    Args:
      raw: canonical column names (see `schema`), raw or typed values, with
        `_source_file`/`_source_row` provenance.
      allowed_event_types: accepted `event_type` values (lower-cased compare).
      default_event_type: used where `event_type` is absent or empty.

    Returns:
      accepted events with `schema.EVENT_COLUMNS` typed, provenance, and
      `_read_order` (position in `raw`); rejects with `reason` first and the
      original values; counts read/accepted/rejected/duplicates.
    """
    for column in schema.PROVENANCE_COLUMNS:
        if column not in raw.columns:
            raise ValueError(f"`raw` events need provenance column {column!r}; use io.add_provenance().")
    raw = raw.reset_index(drop=True)
    n = len(raw)
    reasons = _Reasons(n)

    user = _as_text(raw[schema.USER_ID])
    item = _as_text(raw[schema.ITEM_ID])
    reasons.add((user == "").to_numpy(), "missing user_id")
    reasons.add((item == "").to_numpy(), "missing item_id")
    timestamps = parse_timestamps(raw[schema.TIMESTAMP], reasons)

    allowed = {t.strip().lower() for t in allowed_event_types}
    event_type = _as_text(_optional(raw, schema.EVENT_TYPE)).str.lower()
    event_type = event_type.where(event_type != "", default_event_type.lower())
    unknown = ~event_type.isin(allowed).to_numpy()
    reasons.add(unknown, "unknown event_type", _quoted(event_type, unknown))

    value = _parse_float(_optional(raw, schema.VALUE), schema.VALUE, reasons)
    lat = _parse_float(_optional(raw, schema.LATITUDE), schema.LATITUDE, reasons)
    lon = _parse_float(_optional(raw, schema.LONGITUDE), schema.LONGITUDE, reasons)
    _check_location(lat, lon, reasons)
    offset = _parse_float(_optional(raw, schema.UTC_OFFSET), schema.UTC_OFFSET, reasons)
    bad_offset = np.abs(np.nan_to_num(offset)) > MAX_UTC_OFFSET_MINUTES
    reasons.add(bad_offset, "utc_offset_minutes out of range [-840, 840]", offset)

    bad = reasons.any()
    rejected = _reject_frame(raw, bad, reasons.texts())
    good = ~bad
    accepted = pd.DataFrame(
        {
            schema.USER_ID: user[good].to_numpy(dtype=object),
            schema.ITEM_ID: item[good].to_numpy(dtype=object),
            schema.TIMESTAMP: timestamps[good],
            schema.EVENT_TYPE: event_type[good].to_numpy(dtype=object),
            schema.VALUE: value[good],
            schema.LATITUDE: lat[good],
            schema.LONGITUDE: lon[good],
            schema.UTC_OFFSET: np.nan_to_num(offset[good]).astype(np.int32),
            OFFSET_KNOWN: ~np.isnan(offset[good]),
            schema.SOURCE_FILE: raw[schema.SOURCE_FILE].to_numpy(dtype=object)[good],
            schema.SOURCE_ROW: raw[schema.SOURCE_ROW].to_numpy()[good].astype(np.int64),
            schema.READ_ORDER: np.flatnonzero(good).astype(np.int64),
        }
    )

    # Exact duplicates (every canonical field equal) keep their first occurrence.
    duplicated = accepted.duplicated(subset=list(schema.EVENT_COLUMNS), keep="first").to_numpy()
    duplicates = pd.DataFrame()
    if duplicated.any():
        first = accepted[~duplicated].reset_index().set_index(list(schema.EVENT_COLUMNS))["index"]
        keys = pd.MultiIndex.from_frame(accepted.loc[duplicated, list(schema.EVENT_COLUMNS)])
        first_pos = first.reindex(keys).to_numpy()
        first_rows = accepted[schema.SOURCE_ROW].to_numpy()[first_pos]
        dup_raw = raw.iloc[accepted.loc[duplicated, schema.READ_ORDER].to_numpy()].copy()
        dup_raw.insert(0, REASON, [f"{DUPLICATE_EVENT}: row {r}" for r in first_rows])
        duplicates = dup_raw
        accepted = accepted[~duplicated].reset_index(drop=True)

    counts = {
        "read": n,
        "accepted": len(accepted),
        "rejected": len(rejected),
        "duplicates": len(duplicates),
    }
    _check_accounting(counts, "events")
    all_rejects = pd.concat([rejected, duplicates], ignore_index=True) if len(duplicates) else rejected
    kinds = reasons.counts()
    if len(duplicates):
        kinds[DUPLICATE_EVENT] = len(duplicates)
    return ValidationResult(accepted, all_rejects, counts, kinds)


def _check_accounting(counts: dict[str, int], what: str) -> None:
    if counts["read"] != counts["accepted"] + counts["rejected"] + counts.get("duplicates", 0):
        raise RuntimeError(f"Row accounting broken for {what}: {counts}")  # a bug, never user input


def _first_occurrence_reject(ids: pd.Series, raw: pd.DataFrame, reasons: _Reasons, field: str) -> None:
    """Rejects repeated ids, naming the row of their first occurrence."""
    first = ~ids.duplicated(keep="first").to_numpy()
    dup = ~first & (ids != "").to_numpy()
    if dup.any():
        first_row = dict(zip(ids[first].tolist(), raw[schema.SOURCE_ROW].to_numpy()[first].tolist()))
        rows = ids.map(first_row).to_numpy(dtype=object)
        reasons.add(dup, f"duplicate {field}, first at row", rows)


def validate_items(raw: pd.DataFrame, extra_columns: Iterable[str] = ()) -> ValidationResult:
    """Validates an item catalogue; a repeated item_id keeps its first row."""
    raw = raw.reset_index(drop=True)
    n = len(raw)
    reasons = _Reasons(n)
    item = _as_text(raw[schema.ITEM_ID])
    reasons.add((item == "").to_numpy(), "missing item_id")
    _first_occurrence_reject(item, raw, reasons, schema.ITEM_ID)
    lat = _parse_float(_optional(raw, schema.LATITUDE), schema.LATITUDE, reasons)
    lon = _parse_float(_optional(raw, schema.LONGITUDE), schema.LONGITUDE, reasons)
    _check_location(lat, lon, reasons)
    price = _parse_float(_optional(raw, schema.PRICE), schema.PRICE, reasons)
    negative = np.nan_to_num(price) < 0
    reasons.add(negative, "price is negative", price)
    bad = reasons.any()
    good = ~bad
    columns = {
        schema.ITEM_ID: item[good].to_numpy(dtype=object),
        schema.TEXT: _as_text(_optional(raw, schema.TEXT))[good].to_numpy(dtype=object),
        schema.CATEGORY: _as_text(_optional(raw, schema.CATEGORY))[good].to_numpy(dtype=object),
        schema.LATITUDE: lat[good],
        schema.LONGITUDE: lon[good],
        schema.PRICE: price[good],
    }
    for column in extra_columns:
        if column not in raw.columns:
            raise ValueError(f"Declared item feature column {column!r} is not in the items table.")
        columns[column] = _as_text(raw[column])[good].to_numpy(dtype=object)
    accepted = pd.DataFrame(columns)
    rejected = _reject_frame(raw, bad, reasons.texts())
    counts = {"read": n, "accepted": len(accepted), "rejected": len(rejected)}
    _check_accounting(counts, "items")
    return ValidationResult(accepted, rejected, counts, reasons.counts())


def validate_users(raw: pd.DataFrame) -> ValidationResult:
    """Validates user attributes: numeric columns become float64, others str."""
    raw = raw.reset_index(drop=True)
    n = len(raw)
    reasons = _Reasons(n)
    user = _as_text(raw[schema.USER_ID])
    reasons.add((user == "").to_numpy(), "missing user_id")
    _first_occurrence_reject(user, raw, reasons, schema.USER_ID)
    attributes = [c for c in raw.columns if c != schema.USER_ID and not c.startswith("_")]
    typed: dict[str, np.ndarray] = {}
    for column in attributes:
        text = _as_text(raw[column])
        present = text != ""
        numeric = pd.to_numeric(text[present], errors="coerce")
        if len(numeric) and numeric.notna().all() and np.isfinite(numeric.to_numpy(dtype=float)).all():
            typed[column] = pd.to_numeric(text.where(present, None), errors="coerce").to_numpy(dtype=np.float64)
        else:
            typed[column] = text.to_numpy(dtype=object)
    bad = reasons.any()
    good = ~bad
    accepted = pd.DataFrame({schema.USER_ID: user[good].to_numpy(dtype=object)})
    for column, values in typed.items():
        accepted[column] = values[good]
    rejected = _reject_frame(raw, bad, reasons.texts())
    counts = {"read": n, "accepted": len(accepted), "rejected": len(rejected)}
    _check_accounting(counts, "users")
    return ValidationResult(accepted, rejected, counts, reasons.counts())


def filter_min_counts(
    events: pd.DataFrame, *, min_user_events: int, min_item_events: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Repeatedly removes users/items under the minimum counts (a k-core).

    Returns (kept, filtered) where `filtered` has a `reason` column naming the
    rule and the count at the time of removal.
    """
    if min_user_events < 1 or min_item_events < 1:
        raise ValueError(
            "`min_user_events` and `min_item_events` must be >= 1. Received: "
            f"min_user_events={min_user_events}, min_item_events={min_item_events}"
        )
    kept = events
    removed: list[pd.DataFrame] = []
    rules = ((schema.ITEM_ID, "item", "min_item_events", min_item_events),
             (schema.USER_ID, "user", "min_user_events", min_user_events))
    changed = True
    while changed:  # removing items can push users under their minimum, and back
        changed = False
        for column, what, name, minimum in rules:
            counts = kept.groupby(column)[column].transform("size").to_numpy()
            drop = counts < minimum
            if drop.any():
                out = kept[drop].copy()
                out.insert(0, REASON, [f"{what} has {c} events < {name}={minimum}" for c in counts[drop]])
                removed.append(out)
                kept = kept[~drop]
                changed = True
    filtered = pd.concat(removed, ignore_index=True) if removed else kept.iloc[:0].assign(**{REASON: []})
    return kept.reset_index(drop=True), filtered
