"""The per-user transform: hand-checked examples and the no-leakage property."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.config import SplitKind
from trainer.data import example_schema as es
from trainer.data import examples as ex
from trainer.data import splits

NAN = math.nan


def _user(timestamps, items=None, lat=None, lon=None):
    n = len(timestamps)
    items = items or [f"i{k}" for k in range(n)]
    return ex.UserEvents(
        user_id="u",
        item_ids=np.asarray(items, dtype=object),
        event_types=np.asarray(["view"] * n, dtype=object),
        timestamps=np.asarray(timestamps, dtype=np.int64),
        utc_offsets=np.zeros(n, dtype=np.int64),
        values=np.full(n, NAN),
        latitudes=np.asarray(lat if lat is not None else [NAN] * n, dtype=np.float64),
        longitudes=np.asarray(lon if lon is not None else [NAN] * n, dtype=np.float64),
    )


LOO = splits.SplitPlan(SplitKind.LEAVE_ONE_OUT)


def test_leave_one_out_by_hand():
    user = _user([10, 20, 30, 40, 50])
    out = list(ex.user_examples(user, ex.ExampleSpec(plan=LOO, max_history=2)))
    # Targets i1..i4 (i0 has no history). i4 test, i3 validation, i1/i2 train.
    assert [(s, f[es.TARGET_ITEM_ID], list(f[es.HISTORY_ITEM_IDS])) for s, f in out] == [
        (splits.TRAIN, "i1", ["i0"]),
        (splits.TRAIN, "i2", ["i0", "i1"]),
        (splits.VALIDATION, "i3", ["i1", "i2"]),
        (splits.TEST, "i4", ["i2", "i3"]),
    ]


def test_temporal_split_by_hand():
    plan = splits.SplitPlan(SplitKind.TEMPORAL, validation_start=30, test_start=45)
    user = _user([10, 20, 30, 40, 50])
    out = [(s, f[es.TARGET_TIMESTAMP]) for s, f in ex.user_examples(user, ex.ExampleSpec(plan=plan))]
    assert out == [(splits.TRAIN, 20), (splits.VALIDATION, 30), (splits.VALIDATION, 40), (splits.TEST, 50)]


def test_short_users():
    assert splits.event_periods(np.array([5]), LOO).tolist() == [splits.TEST]
    assert splits.event_periods(np.array([5, 6]), LOO).tolist() == [splits.VALIDATION, splits.TEST]
    # One event: no history, no example. Two: only the test target has history.
    assert list(ex.user_examples(_user([5]), ex.ExampleSpec(plan=LOO))) == []
    assert [s for s, _ in ex.user_examples(_user([5, 6]), ex.ExampleSpec(plan=LOO))] == [splits.TEST]


def test_request_place_rules():
    user = _user([1, 2, 3], lat=[1.0, NAN, 3.0], lon=[10.0, NAN, 30.0])
    by_target = {f[es.TARGET_ITEM_ID]: f for _, f in ex.user_examples(user, ex.ExampleSpec(plan=LOO))}
    # Commerce: the request happens where the target event happens...
    assert (by_target["i2"][es.REQUEST_LATITUDE], by_target["i2"][es.REQUEST_LONGITUDE]) == (3.0, 30.0)
    # ... unless unknown there: then the last known place before it.
    assert (by_target["i1"][es.REQUEST_LATITUDE], by_target["i1"][es.REQUEST_LONGITUDE]) == (1.0, 10.0)
    # Check-ins: the target's place is the venue itself, so never use it.
    spec = ex.ExampleSpec(plan=LOO, request_place_from_history=True)
    by_target = {f[es.TARGET_ITEM_ID]: f for _, f in ex.user_examples(user, spec)}
    assert (by_target["i2"][es.REQUEST_LATITUDE], by_target["i2"][es.REQUEST_LONGITUDE]) == (1.0, 10.0)


def test_sort_breaks_ties_by_read_order():
    events = pd.DataFrame({
        "user_id": ["b", "a", "a", "a"], "timestamp": [1, 5, 5, 3], "_read_order": [0, 1, 2, 3],
        "item_id": ["x", "first", "second", "early"],
    })
    assert ex.sort_events(events)["item_id"].tolist() == ["early", "first", "second", "x"]


def test_encode_decode_round_trip():
    spec = ex.ExampleSpec(plan=LOO, numeric_user_attributes=("age",), categorical_user_attributes=("job",))
    user = _user([1, 2, 3], lat=[1.5, NAN, 3.0], lon=[10.0, NAN, 30.0])
    user.attributes = {"age": 31.0, "job": "writer"}
    _, features = list(ex.user_examples(user, spec))[-1]
    decoded = ex.decode_example(ex.encode_example(features, spec.feature_specs()), spec.feature_specs())
    assert decoded[es.HISTORY_ITEM_IDS].tolist() == ["i0", "i1"]
    assert decoded[es.HISTORY_TIMESTAMPS].tolist() == [1, 2]
    np.testing.assert_array_equal(decoded[es.HISTORY_LATITUDES], np.float32([1.5, NAN]))
    assert decoded["user_age"] == 31.0 and decoded["user_job"] == "writer"


@st.composite
def _event_logs(draw):
    n = draw(st.integers(1, 40))
    # Few distinct times so that same-second ties are common.
    times = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    users = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    return pd.DataFrame({
        "user_id": users, "item_id": [f"e{k}" for k in range(n)], "timestamp": times,
        "_read_order": np.arange(n), "event_type": "view", "value": NAN, "latitude": NAN,
        "longitude": NAN, "utc_offset_minutes": 0,
    })


@settings(max_examples=150, deadline=None)
@given(_event_logs(), st.integers(1, 5), st.sampled_from(["loo", "temporal"]), st.integers(0, 2))
def test_no_example_sees_an_event_at_or_after_its_target(events, max_history, split, min_history):
    """Property: history = exactly the latest events before the target in
    (time, read order), never one later, and never the target itself."""
    plan = LOO if split == "loo" else splits.SplitPlan(SplitKind.TEMPORAL, validation_start=6, test_start=11)
    spec = ex.ExampleSpec(plan=plan, max_history=max(max_history, min_history), min_history=min_history)
    order = {i: (t, r) for i, t, r in zip(events["item_id"], events["timestamp"], events["_read_order"])}
    seen_targets = []
    for user in ex.iter_users(ex.sort_events(events)):
        for split_id, f in ex.user_examples(user, spec):
            target = f[es.TARGET_ITEM_ID]
            seen_targets.append(target)
            history = list(f[es.HISTORY_ITEM_IDS])
            assert target not in history
            assert all(order[h] < order[target] for h in history)
            assert all(t <= f[es.TARGET_TIMESTAMP] for t in f[es.HISTORY_TIMESTAMPS])
            earlier = sorted(
                (order[e], e) for e in events.loc[events.user_id == user.user_id, "item_id"] if order[e] < order[target]
            )
            assert history == [e for _, e in earlier][-spec.max_history:]
            assert len(earlier) >= spec.min_history
            if split == "temporal":
                expected = 0 if f[es.TARGET_TIMESTAMP] < 6 else (1 if f[es.TARGET_TIMESTAMP] < 11 else 2)
                assert split_id == expected
    # Every event with enough earlier events is a target exactly once.
    ranks = events.assign(rank=events.sort_values(["timestamp", "_read_order"]).groupby("user_id").cumcount())
    assert sorted(seen_targets) == sorted(ranks.loc[ranks["rank"] >= min_history, "item_id"])
