"""The data report (`--stage=analyze`): what a person reads before modelling.

`write_report` writes `report.md` (Markdown with PNG figures beside it) and
`summary.json` (the figures behind it, for machines and later comparison) into
one local directory. Sections:

  1. Overview: counts, event types, time span, events per user and per item.
  2. Activity by local hour and weekday.
  3. Gaps between consecutive events of a user.
  4. Where events happen (a density map), or a note that there is no location.
  5. Repeat and return behaviour, with the "user's own frequent items" baseline.
  6. Item association rules and sequential transitions.

Everything is vectorised numpy/pandas/scipy.sparse: a million events take a few
seconds, most of it drawing PNGs.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trainer.analysis import association_rules as rules_lib
from trainer.analysis import plots
from trainer.analysis import time_patterns
from trainer.analysis.event_locations import EventLocations, LocationSource, view_bounds
from trainer.analysis.repeat_behaviour import RepeatBehaviour
from trainer.analysis.user_sequences import UserSequences
from trainer.data import io, schema

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
SUMMARY_KEYS = (
    "dataset",
    "overview",
    "activity",
    "gaps",
    "location",
    "repeats",
    "association_rules",
    "transitions",
    "plots",
)
NO_LOCATION_TEXT = "No location: neither the events nor their items have latitude/longitude."
_COUNT_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
_TEXT_WIDTH = 48


def write_report(
    tables: schema.CanonicalTables,
    output_dir: str,
    *,
    top_rules: int = 20,
    top_transitions: int = 20,
    min_support_users: int = 5,
    max_rule_items: int = 3000,
) -> str:
    """Writes `output_dir/report.md`, its PNG figures and `output_dir/summary.json`.

    Args:
      tables: validated canonical tables (see `trainer.data.schema`).
      output_dir: local directory, created when missing; existing report files
        in it are overwritten.
      top_rules: association rules listed.
      top_transitions: sequential transitions listed.
      min_support_users: users needed with both items of a rule (or with a
        transition) before it is listed; keeps pairs seen once from dominating.
      max_rule_items: rules consider only the items with the most users.

    Returns:
      The path of `report.md`.
    """
    for name, value, minimum in (
        ("top_rules", top_rules, 1),
        ("top_transitions", top_transitions, 1),
        ("min_support_users", min_support_users, 1),
        ("max_rule_items", max_rule_items, 2),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    if not output_dir or "://" in output_dir:
        raise ValueError(
            f"`output_dir` must be a local directory (write remotely by copying it afterwards). "
            f"Received: output_dir={output_dir!r}"
        )
    if tables.events is None or len(tables.events) == 0:
        raise ValueError("`tables.events` is empty; there is nothing to analyse. Check the input filters.")

    start = time.perf_counter()
    os.makedirs(output_dir, exist_ok=True)
    report = _Report(output_dir)
    report.summary["dataset"] = tables.name
    sequences = UserSequences.from_events(tables.events)
    report.timed("overview", lambda: _overview(report, tables, sequences))
    report.timed("activity", lambda: _activity(report, sequences))
    report.timed("gaps", lambda: _gaps(report, sequences))
    report.timed("location", lambda: _location(report, tables))
    report.timed("repeats", lambda: _repeats(report, sequences))
    report.timed(
        "association rules",
        lambda: _associations(
            report,
            tables,
            sequences,
            top_rules=top_rules,
            top_transitions=top_transitions,
            min_support_users=min_support_users,
            max_rule_items=max_rule_items,
        ),
    )
    report.summary["plots"] = dict(report.plot_files)
    report.summary["notes"] = list(tables.notes)

    title = [f"# Data report: {_escape(tables.name)}", ""]
    if tables.notes:
        title += ["Reader notes:", ""] + [f"- {_escape(note)}" for note in tables.notes] + [""]
    report_path = os.path.join(output_dir, REPORT_FILE)
    with open(report_path, "w", encoding="utf-8") as f:
        f.write("\n".join(title + report.lines).rstrip() + "\n")
    with open(os.path.join(output_dir, SUMMARY_FILE), "w", encoding="utf-8") as f:
        json.dump(io.jsonable(report.summary), f, indent=2, allow_nan=False)
        f.write("\n")
    logger.info("Wrote %s (%d events) in %.1f s.", report_path, sequences.num_events, time.perf_counter() - start)
    return report_path


class _Report:
    """Accumulates Markdown lines, summary figures and plot files."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.lines: list[str] = []
        self.summary: dict[str, Any] = {}
        self.plot_files: dict[str, str] = {}

    def timed(self, name: str, build: Callable[[], None]) -> None:
        start = time.perf_counter()
        build()
        logger.info("Report section %s: %.2f s.", name, time.perf_counter() - start)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def plot(self, name: str, caption: str, draw: Callable[[str], None]) -> None:
        """Draws `name`.png with `draw(path)` and embeds it."""
        file_name = f"{name}.png"
        draw(os.path.join(self.output_dir, file_name))
        self.plot_files[name] = file_name
        self.add(f"![{caption}]({file_name})", "")


# --- formatting --------------------------------------------------------------


def _escape(text: Any) -> str:
    """Table-safe Markdown text: one line, pipes escaped."""
    return str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def _short(text: str, width: int = _TEXT_WIDTH) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _percent(share: float) -> str:
    return "n/a" if share is None or math.isnan(share) else f"{100 * share:.1f}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_escape(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _utc(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(int(seconds), tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _quantile_rows(quantiles: pd.DataFrame) -> list[list[str]]:
    return [
        [f"p{100 * q:g}", _number(s), _number(m), _number(h), _number(d)]
        for q, s, m, h, d in quantiles[["quantile", "seconds", "minutes", "hours", "days"]].itertuples(index=False)
    ]


def _distribution(values: np.ndarray) -> dict[str, float]:
    """Mean, min, quantiles and max of a non-empty array."""
    values = np.asarray(values, dtype=np.float64)
    result = {"mean": float(values.mean()), "min": float(values.min())}
    for q, v in zip(_COUNT_QUANTILES, np.quantile(values, _COUNT_QUANTILES)):
        result[f"p{100 * q:g}"] = float(v)
    result["max"] = float(values.max())
    return result


def _item_labels(items: pd.DataFrame | None) -> tuple[str, pd.Series] | None:
    """(column header, id -> text) from item text, else category; None when neither exists."""
    if items is None or schema.ITEM_ID not in items.columns:
        return None
    for column in (schema.TEXT, schema.CATEGORY):
        if column in items.columns:
            values = items[column].astype(str).fillna("")
            if (values.str.strip() != "").any():
                labels = pd.Series(values.to_numpy(), index=items[schema.ITEM_ID].astype(str).to_numpy())
                return column, labels[~labels.index.duplicated(keep="first")]
    return None


def _label(labels: pd.Series, item_ids: Sequence[str]) -> list[str]:
    return [_short(t) for t in labels.reindex(list(item_ids)).fillna("").tolist()]


# --- sections ----------------------------------------------------------------


def _overview(report: _Report, tables: schema.CanonicalTables, sequences: UserSequences) -> None:
    events = tables.events
    n = sequences.num_events
    per_user = sequences.events_per_user()
    per_item = np.bincount(sequences.item_codes, minlength=sequences.num_items)
    first, last = int(sequences.timestamps.min()), int(sequences.timestamps.max())
    span_days = (last - first) / time_patterns.SECONDS_PER_DAY
    if schema.EVENT_TYPE in events.columns:
        type_counts = events[schema.EVENT_TYPE].astype(str).value_counts()
    else:
        type_counts = pd.Series({schema.DEFAULT_EVENT_TYPE: n})
    # Popularity concentration: share of events on the most popular 1% / 10% of items.
    cumulative = np.cumsum(np.sort(per_item)[::-1])
    top_shares = {
        f"top_{p}pct_items_event_share": float(cumulative[max(1, math.ceil(p / 100 * cumulative.size)) - 1] / n)
        for p in (1, 10)
    }
    catalogue = 0 if tables.items is None else len(tables.items)
    users_table = tables.users
    user_attributes = (
        [] if users_table is None else [c for c in users_table.columns if c != schema.USER_ID and not c.startswith("_")]
    )
    report.summary["overview"] = {
        "events": n,
        "users": sequences.num_users,
        "items": sequences.num_items,
        "catalogue_items": catalogue,
        "event_types": {str(t): {"count": int(c), "share": c / n} for t, c in type_counts.items()},
        "first_event_utc": _utc(first),
        "last_event_utc": _utc(last),
        "first_timestamp": first,
        "last_timestamp": last,
        "span_days": span_days,
        "events_per_user": _distribution(per_user),
        "events_per_item": _distribution(per_item),
        **top_shares,
        "user_attribute_columns": user_attributes,
        "users_with_attributes": 0 if users_table is None else len(users_table),
    }
    report.add(
        "## 1. Overview",
        "",
        *_table(
            ["what", "value"],
            [
                ["events", _number(n)],
                ["users", _number(sequences.num_users)],
                ["items with events", _number(sequences.num_items)],
                ["items in the catalogue", _number(catalogue)],
                ["event types", _number(len(type_counts))],
                ["first event", _utc(first)],
                ["last event", _utc(last)],
                ["time span", f"{span_days:,.1f} days"],
                ["events on the top 1% / 10% of items", f"{_percent(top_shares['top_1pct_items_event_share'])} / "
                 f"{_percent(top_shares['top_10pct_items_event_share'])}"],
                [
                    "user attributes",
                    "none"
                    if not user_attributes
                    else f"{len(users_table):,} users: {', '.join(user_attributes)}",
                ],
            ],
        ),
        "Event types:",
        "",
        *_table(["event type", "events", "share"], [[t, _number(c), _percent(c / n)] for t, c in type_counts.items()]),
        "Events per user and per item:",
        "",
        *_table(
            ["", "mean", "min", *[f"p{100 * q:g}" for q in _COUNT_QUANTILES], "max"],
            [
                [label, *[_number(v) for v in _distribution(values).values()]]
                for label, values in (("events per user", per_user), ("events per item", per_item))
            ],
        ),
    )
    report.plot(
        "events_per_user",
        "Events per user",
        lambda path: plots.count_histogram(
            path, per_user, title="Events per user", xlabel="events of a user", ylabel="users"
        ),
    )
    days, day_counts = time_patterns.events_per_day(sequences.timestamps)
    report.plot(
        "events_per_day",
        "Events per day",
        lambda path: plots.daily_timeline(path, days, day_counts, title="Events per day (UTC)"),
    )


def _activity(report: _Report, sequences: UserSequences) -> None:
    counts = time_patterns.activity_counts(sequences)
    peak_hour = int(np.argmax(counts.by_hour))
    peak_day = time_patterns.WEEKDAY_NAMES[int(np.argmax(counts.by_weekday))]
    report.summary["activity"] = {
        "share_with_utc_offset": counts.share_with_offset,
        "by_hour": counts.by_hour,
        "by_weekday": dict(zip(time_patterns.WEEKDAY_NAMES, counts.by_weekday)),
        "by_weekday_hour": counts.by_weekday_hour,
        "peak_hour": peak_hour,
        "peak_weekday": peak_day,
    }
    if counts.share_with_offset == 0:
        clock = "No event has a UTC offset, so hours and weekdays below are UTC (or the data's own clock)."
    else:
        clock = (
            f"Local time = UTC + offset; {_percent(counts.share_with_offset)} of events have a non-zero offset "
            "(the rest are taken as UTC)."
        )
    report.add(
        "## 2. Activity by local hour and weekday",
        "",
        clock,
        f"Busiest local hour: {peak_hour}:00-{peak_hour}:59; busiest weekday: {peak_day}.",
        "",
    )
    hour_labels = [str(h) for h in range(24)]
    report.plot(
        "activity_by_hour",
        "Events by local hour",
        lambda path: plots.bar_chart(
            path, counts.by_hour, hour_labels, title="Events by local hour of day", xlabel="local hour of day"
        ),
    )
    report.plot(
        "activity_by_weekday",
        "Events by local weekday",
        lambda path: plots.bar_chart(
            path,
            counts.by_weekday,
            time_patterns.WEEKDAY_NAMES,
            title="Events by local weekday",
            xlabel="local weekday",
        ),
    )
    report.plot(
        "activity_weekday_hour",
        "Events by local weekday and hour",
        lambda path: plots.weekday_hour_heatmap(
            path, counts.by_weekday_hour, title="Events by local weekday and hour of day"
        ),
    )


def _gaps(report: _Report, sequences: UserSequences) -> None:
    gaps = time_patterns.consecutive_gaps(sequences)
    quantiles = time_patterns.duration_quantiles(gaps)
    thresholds = {"1min": 60, "30min": 1800, "1d": 86_400, "7d": 7 * 86_400}
    below = {k: float(np.mean(gaps < v)) if gaps.size else float("nan") for k, v in thresholds.items()}
    report.summary["gaps"] = {
        "count": int(gaps.size),
        "zero_count": int(np.count_nonzero(gaps == 0)),
        "share_below": below,
        "quantiles": quantiles.to_dict(orient="records"),
    }
    report.add("## 3. Gaps between consecutive events of a user", "")
    if gaps.size == 0:
        report.add("No user has two events, so there are no gaps.", "")
        return
    report.add(
        f"{gaps.size:,} gaps; {np.count_nonzero(gaps == 0):,} are 0 s (events at the same second). "
        f"Shorter than 1 min: {_percent(below['1min'])}; than 30 min: {_percent(below['30min'])}; "
        f"than 1 day: {_percent(below['1d'])}; than 7 days: {_percent(below['7d'])}.",
        "",
        *_table(["quantile", "seconds", "minutes", "hours", "days"], _quantile_rows(quantiles)),
    )
    report.plot(
        "gaps",
        "Gaps between consecutive events",
        lambda path: plots.duration_histogram(
            path, gaps, title="Gap to the user's previous event", xlabel="gap"
        ),
    )


def _location(report: _Report, tables: schema.CanonicalTables) -> None:
    locations = EventLocations.from_tables(tables.events, tables.items)
    summary: dict[str, Any] = {"source": locations.source.value, "share_located": locations.share_located}
    report.add("## 4. Where events happen", "")
    if locations.source == LocationSource.NONE:
        report.summary["location"] = summary
        report.add(NO_LOCATION_TEXT, "")
        return
    if locations.source == LocationSource.EVENTS:
        origin = f"{_percent(locations.share_located)} of events carry their own latitude/longitude."
        if tables.event_location_is_item_location:
            origin += " Here an event's place is its item's place (e.g. a check-in's venue)."
    else:
        origin = (
            "Events carry no location; the map places each event at its item's location "
            f"({_percent(locations.share_located)} of events have an item with one)."
        )
    bounds = view_bounds(locations.latitude, locations.longitude)
    lon_min, lon_max, lat_min, lat_max = bounds
    inside = (
        (locations.longitude >= lon_min)
        & (locations.longitude <= lon_max)
        & (locations.latitude >= lat_min)
        & (locations.latitude <= lat_max)
    )
    places = pd.DataFrame({"lat": np.round(locations.latitude, 4), "lon": np.round(locations.longitude, 4)})
    summary.update(
        {
            "located_events": int(locations.latitude.size),
            "distinct_places_1e-4deg": int(len(places.drop_duplicates())),
            "map_bounds": {"lon_min": lon_min, "lon_max": lon_max, "lat_min": lat_min, "lat_max": lat_max},
            "share_inside_map": float(inside.mean()),
            "latitude_range": [float(locations.latitude.min()), float(locations.latitude.max())],
            "longitude_range": [float(locations.longitude.min()), float(locations.longitude.max())],
        }
    )
    report.summary["location"] = summary
    report.add(
        origin,
        f"The map shows the central 99% of located events ({_percent(float(inside.mean()))} fall inside "
        f"lon {lon_min:.3f}..{lon_max:.3f}, lat {lat_min:.3f}..{lat_max:.3f}); "
        f"all coordinates span lat {summary['latitude_range'][0]:.3f}..{summary['latitude_range'][1]:.3f}, "
        f"lon {summary['longitude_range'][0]:.3f}..{summary['longitude_range'][1]:.3f}.",
        "",
    )
    report.plot(
        "location_density",
        "Event density map",
        lambda path: plots.density_map(
            path,
            locations.latitude,
            locations.longitude,
            bounds,
            title="Where events happen ("
            + ("event coordinates)" if locations.source == LocationSource.EVENTS else "their items' coordinates)"),
        ),
    )


def _repeats(report: _Report, sequences: UserSequences) -> None:
    repeats = RepeatBehaviour.compute(sequences)
    quantiles = time_patterns.duration_quantiles(repeats.return_gaps)
    report.summary["repeats"] = {
        "repeat_event_share": repeats.repeat_event_share,
        "users_with_history": repeats.users_with_history,
        "last_event_repeat_share": repeats.last_event_repeat_share,
        "frequent_items_baseline_hit_rate": {f"at_{k}": v for k, v in repeats.baseline_hit_rates.items()},
        "return_gap_count": int(repeats.return_gaps.size),
        "return_gap_quantiles": quantiles.to_dict(orient="records"),
    }
    hits = "; ".join(f"top {k}: {_percent(v)}" for k, v in repeats.baseline_hit_rates.items())
    report.add(
        "## 5. Repeat and return behaviour",
        "",
        *_table(
            ["what", "value"],
            [
                ["events whose item the user had before", _percent(repeats.repeat_event_share)],
                ["users with >= 2 events", _number(repeats.users_with_history)],
                ["of those, last event is a repeat", _percent(repeats.last_event_repeat_share)],
                ["of those, last item in the user's own most frequent earlier items", hits],
            ],
        ),
        "The last row is the hit rate of the baseline \"recommend the user's own most frequent items\" "
        "(ties: most recent first) on each user's last event; a model has to beat it. "
        "When most last events are repeats this baseline is strong, as on check-in data.",
        "",
    )
    if repeats.return_gaps.size == 0:
        report.add("No user returned to an item, so there is no return time.", "")
        return
    report.add(
        f"Time from a user's previous event on an item to the return (returns: {repeats.return_gaps.size:,}):",
        "",
        *_table(["quantile", "seconds", "minutes", "hours", "days"], _quantile_rows(quantiles)),
    )
    report.plot(
        "return_times",
        "Time until return to the same item",
        lambda path: plots.duration_histogram(
            path, repeats.return_gaps, title="Time until the user returns to the same item", xlabel="time to return"
        ),
    )


def _associations(
    report: _Report,
    tables: schema.CanonicalTables,
    sequences: UserSequences,
    *,
    top_rules: int,
    top_transitions: int,
    min_support_users: int,
    max_rule_items: int,
) -> None:
    rules = rules_lib.association_rules(
        sequences, min_support_users=min_support_users, max_items=max_rule_items, top_k=top_rules
    )
    transitions = rules_lib.sequential_transitions(
        sequences, min_support_users=min_support_users, top_k=top_transitions
    )
    labels = _item_labels(tables.items)
    rule_records = rules.to_dict(orient="records")
    transition_records = transitions.to_dict(orient="records")
    if labels is not None:
        column, texts = labels
        for record in rule_records:
            record[f"antecedent_{column}"], record[f"consequent_{column}"] = _label(
                texts, [record["antecedent"], record["consequent"]]
            )
        for record in transition_records:
            record[f"source_{column}"], record[f"target_{column}"] = _label(texts, [record["source"], record["target"]])
    report.summary["association_rules"] = {
        "min_support_users": min_support_users,
        "max_items": max_rule_items,
        "rules": rule_records,
    }
    report.summary["transitions"] = {"min_support_users": min_support_users, "transitions": transition_records}

    report.add(
        "## 6. Item associations",
        "",
        f"### Association rules A -> B (per-user item sets, >= {min_support_users} users with both, "
        f"the {max_rule_items:,} items with most users)",
        "",
        "support = share of users with A and B; confidence = P(B | A); lift = confidence / P(B) "
        "(1 = independent). Sorted by lift.",
        "",
    )
    text_headers = [] if labels is None else [f"A {labels[0]}", f"B {labels[0]}"]
    if rules.empty:
        report.add(f"No item pair is shared by {min_support_users} or more users.", "")
    else:
        rows = []
        for record in rule_records:
            texts = [] if labels is None else [record[f"antecedent_{labels[0]}"], record[f"consequent_{labels[0]}"]]
            rows.append(
                [
                    record["antecedent"],
                    record["consequent"],
                    *texts,
                    _number(record["pair_users"]),
                    _number(record["antecedent_users"]),
                    _number(record["consequent_users"]),
                    f"{record['support']:.3g}",
                    f"{record['confidence']:.3f}",
                    f"{record['lift']:.2f}",
                ]
            )
        report.add(
            *_table(
                ["A", "B", *text_headers, "users A & B", "users A", "users B", "support", "confidence", "lift"], rows
            )
        )
    report.add(
        f"### Sequential transitions A then B (consecutive events of a user, A != B, >= {min_support_users} users)",
        "",
        "confidence = count(A then B) / count(A then anything, repeats included). Sorted by count.",
        "",
    )
    if transitions.empty:
        report.add(f"No transition between two different items is made by {min_support_users} or more users.", "")
        return
    rows = []
    for record in transition_records:
        texts = [] if labels is None else [record[f"source_{labels[0]}"], record[f"target_{labels[0]}"]]
        rows.append(
            [
                record["source"],
                record["target"],
                *texts,
                _number(record["count"]),
                _number(record["users"]),
                _number(record["source_transitions"]),
                f"{record['confidence']:.3f}",
            ]
        )
    report.add(*_table(["A", "B", *text_headers, "count", "users", "transitions out of A", "confidence"], rows))
