"""Tests for the synthetic world: contract, determinism and the learnable patterns.

Every pattern is measured from the tables alone and compared with a chance or
popularity baseline computed here, so switching a behaviour off in the
generator makes its test fail (e.g. without complements the next-session
category is predicted ~0.38 vs popularity ~0.25; with them ~0.65 vs ~0.18).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from trainer.config import SyntheticConfig
from trainer.data import schema
from trainer.data.readers import synthetic

SMALL = SyntheticConfig(num_users=300, num_items=200, num_events=30_000, num_regions=8, seed=3)
DAY = 86_400
SESSION_GAP = 30 * 60  # the usual 30-minute sessionisation


@pytest.fixture(scope="module")
def world() -> synthetic.SyntheticWorld:
    return synthetic.generate_world(SMALL)


@pytest.fixture(scope="module")
def events(world: synthetic.SyntheticWorld) -> pd.DataFrame:
    """Events sorted by (user, time) with the item's category and a session number."""
    items = world.tables.items.set_index(schema.ITEM_ID)
    ev = world.tables.events.sort_values([schema.USER_ID, schema.TIMESTAMP], kind="stable").reset_index(drop=True)
    ev["category"] = items[schema.CATEGORY].reindex(ev[schema.ITEM_ID]).to_numpy()
    new_user = ev[schema.USER_ID].ne(ev[schema.USER_ID].shift())
    ev["session"] = (new_user | (ev[schema.TIMESTAMP].diff() > SESSION_GAP)).cumsum()
    local = pd.to_datetime(ev[schema.TIMESTAMP] + ev[schema.UTC_OFFSET].astype(np.int64) * 60, unit="s")
    ev["hour"] = local.dt.hour
    ev["weekday"] = local.dt.day_of_week
    return ev


def _km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Equirectangular distance in km; exact enough within a metro area."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lat1, lon1, lat2, lon2))
    return 6371.0 * np.hypot((lon2 - lon1) * np.cos((lat1 + lat2) / 2), lat2 - lat1)


def _split_users(user_ids: pd.Series) -> np.ndarray:
    """True for "train" users (even numeric id), False for "test" users."""
    return user_ids.str[1:].astype(int).to_numpy() % 2 == 0


# ----------------------------------------------------------------------------- contract


def test_same_config_gives_identical_frames():
    config = SyntheticConfig(num_users=50, num_items=60, num_events=3000, num_regions=3, seed=11)
    a, b = synthetic.generate(config), synthetic.generate(config)
    for name in ("events", "items", "users"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    other = synthetic.generate(SyntheticConfig(num_users=50, num_items=60, num_events=3000, num_regions=3, seed=12))
    assert not a.events[schema.TIMESTAMP].equals(other.events[schema.TIMESTAMP])


def test_events_follow_the_canonical_schema(world):
    tables = world.tables
    ev = tables.events
    assert tables.name == "synthetic"
    assert tables.event_location_is_item_location is False
    assert set(ev.columns) == set(schema.EVENT_COLUMNS) | set(schema.PROVENANCE_COLUMNS)
    assert ev[schema.TIMESTAMP].dtype == np.int64
    assert ev[schema.UTC_OFFSET].dtype == np.int32
    for column in (schema.VALUE, schema.LATITUDE, schema.LONGITUDE):
        assert ev[column].dtype == np.float64, column
    assert set(ev[schema.EVENT_TYPE]) == {"view", "click", "add_to_cart", "purchase"}
    assert set(ev[schema.EVENT_TYPE]) <= set(schema.KNOWN_EVENT_TYPES)
    assert (ev[schema.SOURCE_FILE] == "synthetic").all()
    np.testing.assert_array_equal(ev[schema.SOURCE_ROW].to_numpy(), np.arange(1, len(ev) + 1))
    assert ev[schema.USER_ID].str.fullmatch(r"u\d{5}").all()
    assert ev[schema.ITEM_ID].str.fullmatch(r"i\d{5}").all()
    assert set(ev[schema.USER_ID]) <= set(tables.users[schema.USER_ID])
    assert set(ev[schema.ITEM_ID]) <= set(tables.items[schema.ITEM_ID])
    # One fixed zone; places inside a metro area around Bogotá (4.65 N, 74.09 W).
    assert (ev[schema.UTC_OFFSET] == -300).all()
    assert ev[schema.LATITUDE].between(4.65 - 0.5, 4.65 + 0.5).all()
    assert ev[schema.LONGITUDE].between(-74.09 - 0.5, -74.09 + 0.5).all()
    # 90-180 days of log, ending before 2024-07-01T05:00:00Z.
    span_days = (ev[schema.TIMESTAMP].max() - ev[schema.TIMESTAMP].min()) / DAY
    assert 90 <= span_days <= 180
    assert ev[schema.TIMESTAMP].max() < 1_719_810_000


def test_value_is_the_price_paid_on_purchases_only(world):
    ev = world.tables.events
    price = world.tables.items.set_index(schema.ITEM_ID)[schema.PRICE]
    purchase = ev[schema.EVENT_TYPE] == "purchase"
    assert ev.loc[~purchase, schema.VALUE].isna().all()
    np.testing.assert_allclose(
        ev.loc[purchase, schema.VALUE].to_numpy(), price.reindex(ev.loc[purchase, schema.ITEM_ID]).to_numpy()
    )


def test_items_and_users_tables(world):
    items, users = world.tables.items, world.tables.users
    assert list(items.columns[: len(schema.ITEM_COLUMNS)]) == list(schema.ITEM_COLUMNS)
    assert len(items) == SMALL.num_items and items[schema.ITEM_ID].is_unique
    assert (items[schema.TEXT].str.split().str.len() >= 10).all()
    assert items[schema.CATEGORY].str.fullmatch(r"[a-z]+\|[a-z]+").all()
    assert (items[schema.PRICE] > 0).all()
    assert items[[schema.LATITUDE, schema.LONGITUDE]].notna().all().all()
    assert (items[schema.SOURCE_FILE] == "synthetic").all()
    assert len(users) == SMALL.num_users and users[schema.USER_ID].is_unique
    assert {"age", "segment", "home_region", "work_region"} <= set(users.columns)
    assert users["age"].between(18, 80).all()
    assert (users["home_region"] != "").all()
    assert users["home_region"].nunique() > 1


@pytest.mark.parametrize(
    "config",
    [
        SyntheticConfig(num_users=40, num_items=30, num_events=2_000, num_regions=2, seed=1),
        SMALL,
        SyntheticConfig(num_users=20, num_items=100, num_events=50_000, num_regions=4, seed=2),
        SyntheticConfig(),
    ],
    ids=["2k", "30k", "50k-few-users", "default"],
)
def test_event_count_is_near_the_target(config):
    n = len(synthetic.generate(config).events)
    assert abs(n - config.num_events) <= 0.1 * config.num_events, n


def test_bad_arguments_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="num_events"):
        synthetic.generate(SyntheticConfig(num_events=synthetic.MAX_EVENTS + 1))
    with pytest.raises(ValueError, match="config"):
        synthetic.generate({"num_events": 10})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- funnel


def test_every_purchase_follows_a_view_of_the_same_item_by_the_same_user(events):
    key = [schema.USER_ID, schema.ITEM_ID]
    first_view = events[events[schema.EVENT_TYPE] == "view"].groupby(key)[schema.TIMESTAMP].min()
    purchases = events[events[schema.EVENT_TYPE] == "purchase"]
    assert len(purchases) > 100
    viewed_at = first_view.reindex(pd.MultiIndex.from_frame(purchases[key])).to_numpy()
    assert (viewed_at < purchases[schema.TIMESTAMP].to_numpy()).all()  # NaN (never viewed) fails too


def test_funnel_narrows(events):
    counts = events[schema.EVENT_TYPE].value_counts()
    assert counts["view"] > 2 * counts["click"] > 0
    assert counts["click"] > 2 * counts["add_to_cart"] > 0
    assert counts["add_to_cart"] > counts["purchase"] > 0.02 * counts["view"]


# ----------------------------------------------------------------------------- patterns


def test_users_interact_with_items_near_where_they_are(world):
    ev = world.tables.events
    items = world.tables.items.set_index(schema.ITEM_ID)
    item_lat = items[schema.LATITUDE].reindex(ev[schema.ITEM_ID]).to_numpy()
    item_lon = items[schema.LONGITUDE].reindex(ev[schema.ITEM_ID]).to_numpy()
    near = _km(ev[schema.LATITUDE], ev[schema.LONGITUDE], item_lat, item_lon) < 2.5
    # Chance: the same events paired with items of other events.
    perm = np.random.default_rng(0).permutation(len(ev))
    near_by_chance = _km(ev[schema.LATITUDE], ev[schema.LONGITUDE], item_lat[perm], item_lon[perm]) < 2.5
    assert near.mean() > 0.5, near.mean()
    assert near.mean() > 3 * near_by_chance.mean(), (near.mean(), near_by_chance.mean())


def test_commuters_are_at_work_in_office_hours_and_at_home_in_the_evening(world, events):
    office = events[(events["weekday"] < 5) & events["hour"].between(10, 15)]
    evening = events[(events["hour"] >= 19) | (events["hour"] < 5)]
    place = office.groupby(schema.USER_ID)[[schema.LATITUDE, schema.LONGITUDE]].median().join(
        evening.groupby(schema.USER_ID)[[schema.LATITUDE, schema.LONGITUDE]].median(),
        how="inner",
        lsuffix="_office",
        rsuffix="_evening",
    )
    moved = pd.Series(
        _km(place["latitude_office"], place["longitude_office"], place["latitude_evening"],
            place["longitude_evening"]),
        index=place.index,
    )
    users = world.tables.users.set_index(schema.USER_ID).reindex(moved.index)
    commuter = (users["work_region"] != "") & (users["work_region"] != users["home_region"])
    stays = users["work_region"] == ""
    assert commuter.sum() > 30 and stays.sum() > 30
    assert (moved[commuter] > 3.0).mean() > 0.8
    assert (moved[stays] < 1.5).mean() > 0.8


def test_next_session_category_after_a_purchase_beats_popularity(events):
    # Pairs (category last purchased in a session, category the next session starts with).
    bought = events[events[schema.EVENT_TYPE] == "purchase"].groupby("session")["category"].last()
    starts = events.groupby("session")[[schema.USER_ID, "category"]].first()
    previous = starts.shift()
    pairs = pd.DataFrame(
        {
            "user": starts[schema.USER_ID],
            "prev": bought.reindex(starts.index - 1).to_numpy(),
            "next": starts["category"],
        }
    )
    pairs = pairs[pairs["prev"].notna() & (previous[schema.USER_ID] == starts[schema.USER_ID])]
    train = _split_users(pairs["user"])
    fit, held_out = pairs[train], pairs[~train]
    assert len(held_out) > 300
    # Count-based predictor: most frequent next category after each category.
    transition = fit.groupby("prev")["next"].agg(lambda s: s.value_counts().index[0])
    most_popular = fit["next"].value_counts().index[0]
    markov = (held_out["prev"].map(transition) == held_out["next"]).mean()
    popularity = (held_out["next"] == most_popular).mean()
    assert markov > 2 * popularity and markov > popularity + 0.25, (markov, popularity)


def test_sessions_browse_similar_items(events):
    views = events[events[schema.EVENT_TYPE] == "view"]
    same_session = views["session"].eq(views["session"].shift())
    same_category = views["category"].eq(views["category"].shift())[same_session].mean()
    chance = (views["category"].value_counts(normalize=True) ** 2).sum()
    assert same_category > 0.6 and same_category > 3 * chance, (same_category, chance)


def test_consumables_are_bought_again_after_days_not_seconds(events):
    purchases = events[events[schema.EVENT_TYPE] == "purchase"]
    key = [schema.USER_ID, schema.ITEM_ID]
    repeat = purchases.duplicated(key)
    assert repeat.mean() > 0.15, repeat.mean()
    gaps_days = purchases.groupby(key)[schema.TIMESTAMP].diff().dropna() / DAY
    assert gaps_days.median() > 5, gaps_days.median()
    # Restocking is a grocery habit rather than a gadget one.
    repeated = purchases.loc[repeat, "category"].str.split("|").str[0].value_counts(normalize=True)
    assert repeated.get("grocery", 0.0) > repeated.get("electronics", 0.0)


def test_users_keep_their_daily_rhythm(events):
    # Each user's session start hours (8 three-hour bins): sessions 0, 2, 4, ...
    # fit a smoothed personal profile that must predict sessions 1, 3, 5, ...
    # better than everybody's profile does.
    starts = events[events["session"].ne(events["session"].shift())]
    hour_bin = (starts["hour"] // 3).to_numpy()
    fit = starts.groupby(schema.USER_ID).cumcount().to_numpy() % 2 == 0
    overall = np.bincount(hour_bin[fit], minlength=8) / fit.sum()
    counts = pd.crosstab(starts[schema.USER_ID][fit], hour_bin[fit]).reindex(columns=range(8), fill_value=0)
    prior = 4.0  # pseudo-sessions of the overall profile
    personal = (counts.to_numpy() + prior * overall) / (counts.to_numpy().sum(axis=1, keepdims=True) + prior)
    rows = counts.index.get_indexer(starts[schema.USER_ID][~fit])
    known = rows >= 0
    own_loglik = np.log(personal[rows[known], hour_bin[~fit][known]]).mean()
    global_loglik = np.log(overall[hour_bin[~fit][known]]).mean()
    assert known.sum() > 1000
    assert own_loglik > global_loglik + 0.08, (own_loglik, global_loglik)
    # Weekdays start early (05-08 local, before work); weekends do not.
    early = starts["hour"].between(5, 8)
    weekend = (starts["weekday"] >= 5).to_numpy()
    weekday_early, weekend_early = early[~weekend].mean(), early[weekend].mean()
    assert weekday_early > max(2 * weekend_early, weekend_early + 0.05), (weekday_early, weekend_early)


def test_text_is_more_alike_within_a_category(world):
    items = world.tables.items
    words = [set(re.findall(r"[a-z]+", t.lower())) for t in items[schema.TEXT]]
    category = items[schema.CATEGORY].to_numpy()
    rng = np.random.default_rng(0)
    a, b = rng.integers(len(items), size=(2, 4000))
    jaccard = np.array([len(words[i] & words[j]) / len(words[i] | words[j]) for i, j in zip(a, b, strict=True)])
    same = (category[a] == category[b]) & (a != b)
    assert same.sum() > 100
    assert jaccard[same].mean() > jaccard[category[a] != category[b]].mean() + 0.2


def test_late_items_have_no_events_before_launch_and_some_are_cold_at_test_time(world):
    ev = world.tables.events
    item_ids = world.tables.items[schema.ITEM_ID]
    launch = pd.Series(world.item_launch, index=item_ids.to_numpy())
    start = ev[schema.TIMESTAMP].min()
    late = launch > start + 10 * DAY
    assert late.mean() > 0.1
    assert (ev[schema.TIMESTAMP].to_numpy() >= launch.reindex(ev[schema.ITEM_ID]).to_numpy()).all()
    first_seen = ev.groupby(schema.ITEM_ID)[schema.TIMESTAMP].min()
    # Late items are sold once launched, and some first appear in the last 10% of the log.
    assert first_seen.index.isin(launch.index[late]).sum() > 0.8 * late.sum()
    test_start = ev[schema.TIMESTAMP].quantile(0.9)
    assert (first_seen >= test_start).sum() >= 1


def test_series_readers_buy_the_next_volume(world):
    ev = world.tables.events
    purchases = ev[ev[schema.EVENT_TYPE] == "purchase"]
    item_index = pd.Series(np.arange(SMALL.num_items), index=world.tables.items[schema.ITEM_ID].to_numpy())
    item = item_index.reindex(purchases[schema.ITEM_ID]).to_numpy()
    user = purchases[schema.USER_ID].to_numpy()
    time = purchases[schema.TIMESTAMP].to_numpy()
    first_bought = {}
    for u, i, t in zip(user, item, time, strict=True):
        first_bought.setdefault((u, i), t)
    category = world.tables.items[schema.CATEGORY].to_numpy()
    rng = np.random.default_rng(0)
    follows, baseline, n = 0, 0, 0
    for u, i, t in zip(user, item, time, strict=True):
        nxt = world.item_next_in_series[i]
        if nxt < 0:
            continue
        # Baseline: an item of the same category outside this series' later volumes.
        later = [i]
        while later[-1] >= 0:
            later.append(world.item_next_in_series[later[-1]])
        others = np.flatnonzero(category == category[i])
        others = others[~np.isin(others, later)]
        if not len(others):
            continue
        other = rng.choice(others)
        n += 1
        follows += first_bought.get((u, nxt), -1) > t
        baseline += first_bought.get((u, other), -1) > t
    assert n >= 20
    assert follows / n > 0.3 and follows > 5 * max(baseline, 1), (follows, baseline, n)
