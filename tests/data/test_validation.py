"""Validation: typed values, reasons naming field and value, and row accounting."""

import numpy as np
import pandas as pd
import pytest

from trainer.data import io, pseudonymize, schema, validation


def _raw(rows, columns=("user_id", "item_id", "timestamp", "event_type", "value", "latitude", "longitude")):
    frame = pd.DataFrame([dict(zip(columns, r)) for r in rows], columns=list(columns)).fillna("")
    return io.add_provenance(frame, "events.csv")


def _validate(raw):
    return validation.validate_events(raw, allowed_event_types=schema.KNOWN_EVENT_TYPES)


def test_each_bad_row_is_rejected_with_its_reason_and_value():
    raw = _raw([
        ("u1", "a", "1700000000", "view", "", "40.5", "-73.9"),   # 1 ok
        ("", "a", "1700000000", "view", "", "", ""),              # 2 missing user
        ("u1", "", "1700000000", "view", "", "", ""),             # 3 missing item
        ("u1", "a", "yesterday", "view", "", "", ""),             # 4 bad time
        ("u1", "a", "2024-01-01T10:00:00", "view", "", "", ""),   # 5 naive time
        ("u1", "a", "1700000000000", "view", "", "", ""),         # 6 milliseconds
        ("u1", "a", "1700000000", "teleport", "", "", ""),        # 7 unknown type
        ("u1", "a", "1700000000", "view", "NaN", "", ""),         # 8 NaN value
        ("u1", "a", "1700000000", "view", "", "91", "0"),         # 9 lat range
        ("u1", "a", "1700000000", "view", "", "10", "-181"),      # 10 lon range
        ("u1", "a", "1700000000", "view", "", "10", ""),          # 11 half a place
        ("u1", "a", "1700000000", "view", "abc", "", ""),         # 12 junk value
    ])
    result = _validate(raw)
    by_row = dict(zip(result.rejected["_source_row"], result.rejected["reason"]))
    assert by_row[2] == "missing user_id"
    assert by_row[3] == "missing item_id"
    assert by_row[4] == "unparsable timestamp: 'yesterday'"
    assert by_row[5].startswith("timestamp has no time zone") and "'2024-01-01T10:00:00'" in by_row[5]
    assert "1700000000000" in by_row[6] and "milliseconds" in by_row[6]
    assert by_row[7] == "unknown event_type: 'teleport'"
    assert by_row[8] == "value is NaN"
    assert by_row[9] == "latitude out of range [-90, 90]: 91.0"
    assert by_row[10] == "longitude out of range [-180, 180]: -181.0"
    assert by_row[11] == "latitude given without longitude"
    assert by_row[12] == "value is not a number: 'abc'"
    assert result.accepted["_source_row"].tolist() == [1]
    assert result.counts == {"read": 12, "accepted": 1, "rejected": 11, "duplicates": 0}
    # The original text is kept in the rejects.
    assert result.rejected.set_index("_source_row").loc[4, "timestamp"] == "yesterday"


def test_timestamps_parse_to_hand_checked_unix_seconds():
    raw = _raw([
        ("u", "a", "2012-04-03T18:00:09Z", "", "", "", ""),
        ("u", "b", "2012-04-03T14:00:09-04:00", "", "", "", ""),
        ("u", "c", "1333476009", "", "", "", ""),
        ("u", "d", "1333476009.9", "", "", "", ""),
    ])
    result = _validate(raw)
    # 2012-04-03 18:00:09 UTC = 15433 days * 86400 + 64809 s = 1333476009.
    assert result.accepted["timestamp"].tolist() == [1333476009] * 4
    assert result.accepted["event_type"].tolist() == ["interaction"] * 4


def test_multiple_problems_are_all_named():
    result = _validate(_raw([("", "a", "junk", "teleport", "", "", "")]))
    assert result.rejected["reason"].iloc[0] == (
        "missing user_id; unparsable timestamp: 'junk'; unknown event_type: 'teleport'"
    )
    assert result.reasons == {"missing user_id": 1, "unparsable timestamp": 1, "unknown event_type": 1}


def test_duplicates_are_removed_counted_and_point_to_the_first():
    raw = _raw([
        ("u", "a", "100", "view", "", "", ""),
        ("u", "a", "100", "view", "", "", ""),
        ("u", "a", "100", "click", "", "", ""),
        ("u", "a", "100", "view", "", "", ""),
    ])
    result = _validate(raw)
    assert result.counts == {"read": 4, "accepted": 2, "rejected": 0, "duplicates": 2}
    assert result.rejected["reason"].str.endswith("row 1").all()
    assert result.accepted["_read_order"].tolist() == [0, 2]


def test_typed_columns_are_accepted():
    raw = io.add_provenance(
        pd.DataFrame({
            "user_id": ["u1", "u2"], "item_id": ["a", "b"],
            "timestamp": np.array([1_700_000_000, 1_700_000_100], dtype=np.int64),
            "value": [np.nan, 2.5], "latitude": [1.0, np.nan], "longitude": [2.0, np.nan],
            "utc_offset_minutes": np.array([60, -300], dtype=np.int32),
        }),
        "synthetic",
    )
    result = _validate(raw)
    assert result.counts["accepted"] == 2
    assert result.accepted["utc_offset_minutes"].tolist() == [60, -300]
    assert np.isnan(result.accepted["value"].iloc[0]) and result.accepted["value"].iloc[1] == 2.5


def test_items_and_users():
    items = io.add_provenance(pd.DataFrame({
        "item_id": ["a", "b", "a", ""], "text": ["A", "B", "A2", "x"], "price": ["1.5", "-2", "", ""],
    }), "items.csv")
    checked = validation.validate_items(items)
    assert checked.accepted["item_id"].tolist() == ["a"]
    reasons = dict(zip(checked.rejected["_source_row"], checked.rejected["reason"]))
    assert reasons == {2: "price is negative: -2.0", 3: "duplicate item_id, first at row: 1", 4: "missing item_id"}
    users = io.add_provenance(pd.DataFrame({"user_id": ["u1", "u2"], "age": ["31", ""], "job": ["x", "y"]}), "users.csv")
    checked = validation.validate_users(users)
    assert checked.accepted["age"].dtype == np.float64 and np.isnan(checked.accepted["age"].iloc[1])
    assert checked.accepted["job"].tolist() == ["x", "y"]


def test_min_count_filter_is_a_k_core_and_names_the_rule():
    events = pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u2", "u3"],
        "item_id": ["a", "b", "c", "a", "b", "a"],
    })
    kept, filtered = validation.filter_min_counts(events, min_user_events=2, min_item_events=2)
    # c (1 event) goes first; then u3 (1 event) goes; a is left with 2, b with 2.
    assert sorted(zip(kept["user_id"], kept["item_id"])) == [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b")]
    assert sorted(filtered["reason"]) == [
        "item has 1 events < min_item_events=2", "user has 1 events < min_user_events=2"]
    assert len(kept) + len(filtered) == len(events)


def test_pseudonyms_are_keyed_stable_and_keep_missing():
    ids = pd.Series(["alice", "bob", "alice", ""])
    first = pseudonymize.pseudonymize(ids, b"k1")
    assert first[0] == first[2] != first[1]
    assert first[3] == ""
    assert "alice" not in "".join(first)
    assert pseudonymize.pseudonymize(ids, b"k2")[0] != first[0]
    with pytest.raises(ValueError, match="key"):
        pseudonymize.pseudonymize(ids, b"")
