"""The prepare stage: raw behaviour logs -> validated tables -> examples on disk.

Writes into `<job_dir>/data/`:
  manifest.json           schema, files, vocabularies, counts, split boundaries
  train|validation|test-*.tfrecord.gz   one tf.train.Example per target event
  items.tfrecord.gz       the catalogue (every known item, with train counts)
  vocab/*.txt             training-period vocabularies (+ *.counts.txt)
  rejects/*.csv           every rejected, duplicate or filtered row + reason
  events.parquet          the validated, kept events (for analysis and baselines)
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import resource
import time
from typing import Any

import numpy as np
import pandas as pd

from trainer.config import Config, DataConfig, SplitKind
from trainer.data import example_schema as es
from trainer.data import examples as ex
from trainer.data import io, pseudonymize, schema, sources, splits, tfrecords, timezones, validation
from trainer.data.dataset import MANIFEST
from trainer.features.vocabulary import Vocabulary

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
EVENTS_FILE = "events.parquet"
ITEMS_FILE = "items" + tfrecords.SUFFIX


@dataclasses.dataclass
class PrepareResult:
    data_dir: str
    manifest: dict[str, Any]
    seconds: float
    tables: schema.CanonicalTables  # the validated tables, for stages run in the same process


def data_dir(job_dir: str) -> str:
    return os.path.join(job_dir, "data")


def canonicalize(
    raw: schema.RawTables, config: DataConfig, pseudonymize_key: bytes | None = None
) -> tuple[schema.CanonicalTables, dict[str, Any], dict[str, pd.DataFrame]]:
    """Validates raw tables; returns (tables, counts, rejects per table).

    Counts satisfy, for events: read = accepted + rejected + duplicates and
    accepted = kept + filtered (minimum-count rules).
    """
    if config.pseudonymize_users:
        if not pseudonymize_key:
            raise ValueError("`pseudonymize_key` is required with pseudonymize_users=True.")
        raw.events[schema.USER_ID] = pseudonymize.pseudonymize(raw.events[schema.USER_ID], pseudonymize_key)
        if raw.users is not None:
            raw.users[schema.USER_ID] = pseudonymize.pseudonymize(raw.users[schema.USER_ID], pseudonymize_key)

    allowed = set(schema.KNOWN_EVENT_TYPES) | set(config.extra_event_types) | {config.default_event_type}
    checked = validation.validate_events(
        raw.events, allowed_event_types=allowed, default_event_type=config.default_event_type
    )
    events = checked.accepted
    notes = list(raw.notes)
    missing_offset = ~events.pop(validation.OFFSET_KNOWN).to_numpy()
    if missing_offset.any():
        if config.timezone:
            events.loc[missing_offset, schema.UTC_OFFSET] = timezones.utc_offset_minutes(
                events.loc[missing_offset, schema.TIMESTAMP].to_numpy(), config.timezone
            )
            notes.append(f"{int(missing_offset.sum())} events without a utc offset took {config.timezone}'s.")
        else:
            notes.append(
                f"{int(missing_offset.sum())} of {len(events)} events have no utc offset and no --timezone was given: "
                "their local time is taken as UTC."
            )
    offsets = events[schema.UTC_OFFSET].to_numpy()
    if len(offsets) and np.all(np.abs(offsets) <= 14) and np.any(offsets != 0):
        log.warning("utc_offset_minutes are all within +-14: are they hours? They are read as minutes.")
        notes.append("utc_offset_minutes are all within +-14 (hours given as minutes?).")
    kept, filtered = validation.filter_min_counts(
        events, min_user_events=config.min_user_events, min_item_events=config.min_item_events
    )
    event_counts = dict(checked.counts, filtered=len(filtered), kept=len(kept))
    event_reasons = dict(checked.reasons)
    if len(filtered):
        kinds = filtered[validation.REASON].str.split(" has ").str[0] + " under the minimum count"
        for kind, count in kinds.value_counts().items():
            event_reasons[str(kind)] = int(count)
    if len(filtered):  # report filtered rows as read, like every other reject
        original = raw.events.iloc[filtered[schema.READ_ORDER].to_numpy()].copy()
        original.insert(0, validation.REASON, filtered[validation.REASON].to_numpy())
        filtered_rows = original
    else:
        filtered_rows = checked.rejected.iloc[:0]
    rejects = {"events": pd.concat([checked.rejected, filtered_rows], ignore_index=True)}
    counts: dict[str, Any] = {"events": event_counts, "event_reject_reasons": event_reasons}

    if raw.items is not None:
        checked_items = validation.validate_items(raw.items)
        items = checked_items.accepted
        counts["item_rows"] = dict(checked_items.counts)
        counts["item_reject_reasons"] = checked_items.reasons
        rejects["items"] = checked_items.rejected
    else:
        items = pd.DataFrame({c: pd.Series(dtype=object) for c in schema.ITEM_COLUMNS})
    # The catalogue holds every item the logs mention too (without text if unknown).
    unknown = np.setdiff1d(kept[schema.ITEM_ID].unique().astype(str), items[schema.ITEM_ID].astype(str).to_numpy())
    if len(unknown):
        extra = pd.DataFrame({schema.ITEM_ID: unknown, schema.TEXT: "", schema.CATEGORY: ""})
        for column in (schema.LATITUDE, schema.LONGITUDE, schema.PRICE):
            extra[column] = np.nan
        items = pd.concat([items, extra], ignore_index=True)
    counts["catalogue_items"] = len(items)
    counts["items_only_in_events"] = len(unknown)
    for name in config.ignore_item_columns:  # an ablation: the model never sees these attributes
        columns = {"text": [schema.TEXT], "category": [schema.CATEGORY], "price": [schema.PRICE],
                   "location": [schema.LATITUDE, schema.LONGITUDE]}[name]
        for column in columns:
            items[column] = "" if column in (schema.TEXT, schema.CATEGORY) else np.nan
        notes.append(f"Item column(s) {columns} ignored (--ignore-item-columns).")

    users = None
    if raw.users is not None:
        checked_users = validation.validate_users(raw.users)
        users = checked_users.accepted
        counts["user_rows"] = dict(checked_users.counts)
        counts["user_reject_reasons"] = checked_users.reasons
        rejects["users"] = checked_users.rejected

    item_place = event_place_is_item_place(kept, items, config.event_place, raw.event_location_is_item_location)
    if item_place and not raw.event_location_is_item_location:
        notes.append("Events happen at their item's place (check-in like): requests take the last place before them.")
    tables = schema.CanonicalTables(
        name=raw.name,
        events=kept,
        items=items,
        users=users,
        event_location_is_item_location=item_place,
        notes=notes,
    )
    return tables, counts, rejects


SAME_PLACE_KM = 0.05
SAME_PLACE_SHARE = 0.8


def event_place_is_item_place(events: pd.DataFrame, items: pd.DataFrame, setting: str, declared: bool) -> bool:
    """Whether an event's place is its item's place (check-ins, venue visits).

    Then the target event's place would name the target, so requests must take
    the last place before it. `setting`: "item" / "user" force it; "auto" takes
    the reader's declaration, else detects it: at least 80% of located events
    within 50 m of their item's own location.
    """
    if setting == "item":
        return True
    if setting == "user":
        return False
    if declared:
        return True
    located = events[[schema.ITEM_ID, schema.LATITUDE, schema.LONGITUDE]].dropna()
    places = items.set_index(schema.ITEM_ID)[[schema.LATITUDE, schema.LONGITUDE]].dropna()
    joined = located.join(places, on=schema.ITEM_ID, rsuffix="_item", how="inner")
    if len(joined) == 0:
        return False
    lat1, lon1 = np.radians(joined[schema.LATITUDE].to_numpy()), np.radians(joined[schema.LONGITUDE].to_numpy())
    lat2 = np.radians(joined[schema.LATITUDE + "_item"].to_numpy())
    lon2 = np.radians(joined[schema.LONGITUDE + "_item"].to_numpy())
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    km = 2 * 6371.0088 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
    share = float(np.mean(km <= SAME_PLACE_KM))
    log.info("%.1f%% of located events are within %.0f m of their item's place.", 100 * share, 1000 * SAME_PLACE_KM)
    return share >= SAME_PLACE_SHARE


def _write_rejects(rejects: dict[str, pd.DataFrame], directory: str) -> dict[str, str]:
    io.makedirs(directory)
    out = {}
    for name, frame in rejects.items():
        path = os.path.join(directory, f"{name}.csv")
        io.write_text(path, frame.to_csv(index=False))
        out[name] = f"rejects/{name}.csv"
    return out


def _split_plan(config: Config, events: pd.DataFrame) -> splits.SplitPlan:
    if config.examples.split == SplitKind.LEAVE_ONE_OUT:
        return splits.SplitPlan(SplitKind.LEAVE_ONE_OUT)
    v, t = splits.resolve_temporal_cutoffs(
        events[schema.TIMESTAMP].to_numpy(), config.examples.validation_start, config.examples.test_start
    )
    return splits.SplitPlan(SplitKind.TEMPORAL, v, t)


def _user_attributes(users: pd.DataFrame | None) -> tuple[dict[str, dict[str, Any]], tuple[str, ...], tuple[str, ...]]:
    if users is None or users.empty:
        return {}, (), ()
    attributes = [c for c in users.columns if c != schema.USER_ID and not c.startswith("_")]
    reserved = {spec.name for spec in es.BASE_FEATURES}
    clashes = [c for c in attributes if es.USER_ATTRIBUTE_PREFIX + c in reserved]
    if clashes:
        raise ValueError(f"User attribute column(s) {clashes} would become reserved feature names; rename them.")
    numeric = tuple(c for c in attributes if pd.api.types.is_float_dtype(users[c].dtype))
    categorical = tuple(c for c in attributes if c not in numeric)
    records = users.set_index(schema.USER_ID)[list(attributes)].to_dict(orient="index")
    return records, numeric, categorical


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc).isoformat()


def write_examples(
    tables: schema.CanonicalTables, config: Config, out_dir: str
) -> tuple[dict[str, Any], np.ndarray, pd.DataFrame, ex.ExampleSpec]:
    """Runs the per-user transform over every user and writes the split shards.

    Returns (summary, periods aligned with the sorted events, sorted events, spec).
    """
    sorted_events = ex.sort_events(tables.events)
    plan = _split_plan(config, sorted_events)
    records, numeric, categorical = _user_attributes(tables.users)
    spec = ex.ExampleSpec(
        plan=plan,
        max_history=config.examples.max_history,
        min_history=config.examples.min_history,
        request_place_from_history=tables.event_location_is_item_location,
        numeric_user_attributes=numeric,
        categorical_user_attributes=categorical,
    )
    specs = spec.feature_specs()
    for name in splits.SPLIT_NAMES:
        tfrecords.clear(out_dir, name)
    if config.examples.runner != "local":
        return _write_examples_beam(sorted_events, plan, spec, records, config, out_dir)
    writers = [
        tfrecords.ShardedWriter(out_dir, name, config.examples.examples_per_shard) for name in splits.SPLIT_NAMES
    ]
    periods = np.empty(len(sorted_events), dtype=np.int8)
    target_ranges = [[None, None] for _ in splits.SPLIT_NAMES]
    num_users = sorted_events[schema.USER_ID].nunique()
    users_with_examples = 0
    position = 0
    started = time.time()
    next_report = started + 10
    for done, user in enumerate(ex.iter_users(sorted_events, records), start=1):
        periods[position : position + len(user)] = splits.event_periods(user.timestamps, plan)
        position += len(user)
        produced = False
        for split, features in ex.user_examples(user, spec):
            writers[split].write(ex.encode_example(features, specs))
            low, high = target_ranges[split]
            ts = features[es.TARGET_TIMESTAMP]
            target_ranges[split] = [ts if low is None else min(low, ts), ts if high is None else max(high, ts)]
            produced = True
        users_with_examples += produced
        now = time.time()
        if now >= next_report:
            written = sum(w.count for w in writers)
            log.info(
                "Examples: %d/%d users (%.0f%%), %d examples, %.0f examples/s",
                done, num_users, 100.0 * done / max(num_users, 1), written, written / (now - started),
            )
            next_report = now + 10
    files = {}
    for name, writer in zip(splits.SPLIT_NAMES, writers):
        writer.close()
        files[name] = [os.path.basename(p) for p in writer.paths]
    summary = {
        "examples": {name: w.count for name, w in zip(splits.SPLIT_NAMES, writers)},
        "users_with_examples": users_with_examples,
        "files": files,
        "target_time_ranges": {
            name: {"first": _iso(low), "last": _iso(high)} for name, (low, high) in zip(splits.SPLIT_NAMES, target_ranges)
        },
    }
    return summary, periods, sorted_events, spec


def _write_examples_beam(sorted_events, plan, spec, records, config: Config, out_dir: str):
    """`write_examples` with the per-user transform on Apache Beam (`config.examples.runner`)."""
    from trainer.data import beam_examples  # pylint: disable=g-import-not-at-top

    periods = np.empty(len(sorted_events), dtype=np.int8)
    position = 0
    for user in ex.iter_users(sorted_events, records):  # cheap: split periods of every event
        periods[position : position + len(user)] = splits.event_periods(user.timestamps, plan)
        position += len(user)
    result = beam_examples.write_examples(
        sorted_events, spec, records, out_dir, config.examples.runner, config.examples.beam_options
    )
    summary = {
        "examples": result["examples"],
        "users_with_examples": result["users_with_examples"],
        "files": result["files"],
        "target_time_ranges": {
            name: {"first": _iso(low), "last": _iso(high)} for name, (low, high) in result["ranges"].items()
        },
    }
    return summary, periods, sorted_events, spec


def _write_items(items: pd.DataFrame, train_counts: pd.Series, path: str) -> None:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    counts = train_counts.reindex(items[schema.ITEM_ID]).fillna(0).astype(np.int64).to_numpy()
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row, count in zip(items.itertuples(index=False), counts):
            example = tf.train.Example()
            f = example.features.feature
            f["item_id"].bytes_list.value.append(str(row.item_id).encode())
            f["text"].bytes_list.value.append(str(row.text).encode())
            f["category"].bytes_list.value.append(str(row.category).encode())
            f["latitude"].float_list.value.append(float(row.latitude))
            f["longitude"].float_list.value.append(float(row.longitude))
            f["price"].float_list.value.append(float(row.price))
            f["train_count"].int64_list.value.append(int(count))
            writer.write(example.SerializeToString())


def _vocabularies(
    sorted_events: pd.DataFrame, periods: np.ndarray, tables: schema.CanonicalTables, spec: ex.ExampleSpec, vocab_dir: str
) -> tuple[dict[str, Any], pd.Series]:
    train = sorted_events[periods == splits.TRAIN]
    out = {}
    item_vocab = Vocabulary.from_values("item_id", train[schema.ITEM_ID])
    out["item_id"] = item_vocab.write(vocab_dir)
    out["user_id"] = Vocabulary.from_values("user_id", train[schema.USER_ID]).write(vocab_dir)
    out["event_type"] = Vocabulary.from_values("event_type", train[schema.EVENT_TYPE]).write(vocab_dir)
    train_items = tables.items[tables.items[schema.ITEM_ID].isin(set(item_vocab.tokens))]
    categories = train_items[schema.CATEGORY].astype(str).str.split(schema.CATEGORY_SEPARATOR).explode().str.strip()
    out["category"] = Vocabulary.from_values("category", categories).write(vocab_dir)
    if tables.users is not None and spec.categorical_user_attributes:
        train_users = tables.users[tables.users[schema.USER_ID].isin(set(train[schema.USER_ID]))]
        for name in spec.categorical_user_attributes:
            out[f"user_{name}"] = Vocabulary.from_values(f"user_{name}", train_users[name].astype(str)).write(vocab_dir)
    train_counts = pd.Series(item_vocab.counts, index=list(item_vocab.tokens), dtype=np.int64)
    return out, train_counts


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prepare(config: Config, pseudonymize_key: bytes | None = None) -> PrepareResult:
    """Runs the whole prepare stage for `config`; returns the manifest."""
    started = time.time()
    out_dir = data_dir(config.job_dir)
    io.makedirs(out_dir)
    log.info("Reading %s ...", config.data.source.value)
    raw = sources.read_source(config.data)
    log.info("Read %d event rows (%.1f s); validating ...", len(raw.events), time.time() - started)
    tables, counts, rejects = canonicalize(raw, config.data, pseudonymize_key)
    del raw
    reject_files = _write_rejects(rejects, os.path.join(out_dir, "rejects"))
    e = counts["events"]
    log.info(
        "Events: read %d = accepted %d + rejected %d + duplicates %d; accepted = kept %d + filtered %d",
        e["read"], e["accepted"], e["rejected"], e["duplicates"], e["kept"], e["filtered"],
    )
    if tables.events.empty:
        raise ValueError(
            f"No usable events in {config.data.data_path or config.data.source.value!r}: all "
            f"{e['read']} rows were rejected or filtered; see {os.path.join(out_dir, 'rejects', 'events.csv')}"
        )
    log.info("Writing examples ...")
    summary, periods, sorted_events, spec = write_examples(tables, config, out_dir)
    vocabularies, train_counts = _vocabularies(sorted_events, periods, tables, spec, os.path.join(out_dir, "vocab"))
    _write_items(tables.items, train_counts, os.path.join(out_dir, ITEMS_FILE))
    stored = sorted_events.drop(columns=[schema.SOURCE_FILE])
    stored["period"] = np.asarray(splits.SPLIT_NAMES, dtype=object)[periods]
    io.write_bytes(os.path.join(out_dir, EVENTS_FILE), stored.to_parquet(index=False))

    plan = spec.plan
    manifest = {
        "format_version": MANIFEST_VERSION,
        "dataset": tables.name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "max_history": spec.max_history,
        "min_history": spec.min_history,
        "request_place": "last_history_place" if spec.request_place_from_history else "target_event_place",
        "event_location_is_item_location": tables.event_location_is_item_location,
        "tie_break": "per user, ascending timestamp; same-second events keep read order (files in the order given)",
        "split": {
            "kind": plan.kind.value,
            "validation_start": _iso(plan.validation_start) if plan.kind == SplitKind.TEMPORAL else None,
            "test_start": _iso(plan.test_start) if plan.kind == SplitKind.TEMPORAL else None,
            "target_time_ranges": summary["target_time_ranges"],
        },
        "features": es.to_manifest(spec.feature_specs(), spec.max_history),
        "user_attributes": {"numeric": list(spec.numeric_user_attributes), "categorical": list(spec.categorical_user_attributes)},
        "feature_config": dataclasses.asdict(config.features),
        "files": dict(summary["files"], items=ITEMS_FILE, events=EVENTS_FILE),
        "vocabularies": vocabularies,
        "counts": dict(
            counts,
            examples=summary["examples"],
            users=int(sorted_events[schema.USER_ID].nunique()),
            users_with_examples=summary["users_with_examples"],
            items_with_events=int(sorted_events[schema.ITEM_ID].nunique()),
        ),
        "rejects": reject_files,
        "notes": tables.notes,
    }
    manifest["seconds"] = round(time.time() - started, 2)
    manifest["peak_memory_mb"] = round(_peak_memory_mb(), 1)
    io.write_text(os.path.join(out_dir, MANIFEST), json.dumps(io.jsonable(manifest), indent=2))
    log.info(
        "Prepared %s in %.1f s: %s examples; manifest %s",
        tables.name, manifest["seconds"], summary["examples"], os.path.join(out_dir, MANIFEST),
    )
    return PrepareResult(out_dir, manifest, manifest["seconds"], tables)
