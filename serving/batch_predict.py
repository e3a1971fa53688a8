"""Vertex-AI-style batch prediction on Apache Beam.

    python -m serving.batch_predict --model-dir=runs/demo/export/recommender \\
        --input='gs://bucket/instances/*.jsonl' --output-dir=gs://bucket/predictions [--runner=DataflowRunner ...]

Contract (as Vertex AI batch prediction):
  - instances in: JSON lines, one user per line in the client's form
    (`serving.client`: user_id, history, request, k, exclude, diversity; any
    other keys pass through untouched), CSV events (user_id, item_id,
    timestamp, event_type, latitude, longitude, utc_offset; one instance per user),
    or TFRecord files (.tfrecord / .tfrecord.gz) of tf.Examples in the training
    example layout (`trainer.data.example_schema`; the prepared shards are such);
  - `<output-dir>/prediction.results-0000K-of-0000N`: one JSON line per instance,
    {"instance": <as read>, "prediction": {"items": [...]}};
  - `<output-dir>/prediction.errors_stats-00000-of-00001`: every instance that
    failed, {"instance": ..., "error": "..."}; inputs = results + errors, always
    (inputs are counted as read, and the job fails if the written lines fall short);
  - `<output-dir>/prediction.summary.json`: the counts.
`--model-dir` is a version folder or a base path (its latest version). The
model is loaded once per worker (`DoFn.setup`) and called on batches
(`BatchElements`); a batch the model rejects is retried one instance at a time,
so one bad instance fails alone. Reruns replace the previous outputs
(idempotent). Runner flags (`--runner`, `--project`, `--region`, ...) pass to Beam.

`--users-from=<job-dir>` instead of `--input` scores every user of a prepared
dataset (nightly recommendations): each user's latest events up to the
history length, requested at the time of their last event.
"""

from __future__ import annotations

import argparse
import csv
import io as std_io
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from serving import client, contract

log = logging.getLogger(__name__)

RESULTS = "prediction.results"
ERRORS = "prediction.errors_stats"
SUMMARY = "prediction.summary.json"
SHARDS = "-SSSSS-of-NNNNN"
CSV_COLUMNS = ("user_id", "item_id", "timestamp", "event_type", "latitude", "longitude", "utc_offset")


def resolve_model_dir(model_dir: str) -> str:
    """A version folder as given, or the latest version under a base path."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from serving.servable import versions  # pylint: disable=g-import-not-at-top

    if tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    found = versions(model_dir)
    if not found:
        raise ValueError(f"No SavedModel in --model-dir={model_dir!r} (a version folder or a base path of versions)")
    return os.path.join(model_dir, str(found[-1]))


def parse_json_line(element: tuple[str, str]) -> dict[str, Any]:
    """(file, line) -> {"raw": line, "instance": dict} or {"raw": line, "error": reason}."""
    source, line = element
    try:
        instance = json.loads(line)
    except json.JSONDecodeError as e:
        return {"raw": line, "source": source, "error": f"not JSON: {e}"}
    if not isinstance(instance, dict):
        return {"raw": line, "source": source, "error": f"an instance must be a JSON object, got {type(instance).__name__}"}
    return {"raw": line, "source": source, "instance": instance}


def csv_users(path: str) -> list[dict[str, Any]]:
    """One instance per user from a CSV of events; bad rows become error records."""
    from trainer.data import io  # pylint: disable=g-import-not-at-top

    text = io.read_bytes(path).decode("utf-8")
    reader = csv.DictReader(std_io.StringIO(text))
    missing = sorted({"user_id", "item_id", "timestamp"} - set(reader.fieldnames or []))
    if missing:
        raise ValueError(f"{path}: CSV instances need columns user_id, item_id, timestamp; missing {missing}")
    users: dict[str, list[dict[str, Any]]] = {}
    records: list[dict[str, Any]] = []
    for number, row in enumerate(reader, 2):
        if not row.get("user_id"):
            records.append({"raw": json.dumps(row), "source": f"{path}:{number}", "error": "user_id: missing"})
            continue
        event: dict[str, Any] = {"item_id": row["item_id"], "timestamp": _number_or_text(row["timestamp"])}
        for name in ("event_type", "latitude", "longitude", "utc_offset"):
            if row.get(name) not in (None, ""):
                event[name] = row[name] if name == "event_type" else _number_or_text(row[name])
        users.setdefault(row["user_id"], []).append(event)
    for user, events in users.items():
        instance = {"user_id": user, "history": events}
        records.append({"raw": json.dumps(instance), "source": path, "instance": instance})
    return records


def _number_or_text(value: str) -> Any:
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def example_instance(element: tuple[str, bytes]) -> dict[str, Any]:
    """(file, serialized tf.Example in the training layout) -> a parsed record like `parse_json_line`'s."""
    from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top

    from trainer.data import example_schema as es  # pylint: disable=g-import-not-at-top

    source, serialized = element
    try:
        feature = example_pb2.Example.FromString(serialized).features.feature
    except Exception as e:  # a corrupt record is an error row, not a crash  pylint: disable=broad-except
        return {"raw": repr(serialized[:200]), "source": source, "error": f"not a tf.Example: {e}"}

    def values(name):
        f = feature[name]
        return list(f.bytes_list.value) or list(f.int64_list.value) or list(f.float_list.value)

    if not values(es.HISTORY_ITEM_IDS) and not values(es.USER_ID):
        return {"raw": repr(serialized[:200]), "source": source,
                "error": f"not a training-layout example: no {es.USER_ID} / {es.HISTORY_ITEM_IDS}"}
    text = lambda name: [v.decode("utf-8") for v in feature[name].bytes_list.value]  # noqa: E731
    items, types = text(es.HISTORY_ITEM_IDS), text(es.HISTORY_EVENT_TYPES)
    stamps, offsets = list(feature[es.HISTORY_TIMESTAMPS].int64_list.value), list(feature[es.HISTORY_UTC_OFFSETS].int64_list.value)
    lats, lons = list(feature[es.HISTORY_LATITUDES].float_list.value), list(feature[es.HISTORY_LONGITUDES].float_list.value)
    nan_none = lambda v: None if v is None or v != v else float(v)  # noqa: E731  (0.0 is a place)
    history = [
        {"item_id": items[i], "timestamp": int(stamps[i]), "event_type": types[i] if i < len(types) else "",
         "utc_offset": int(offsets[i]) if i < len(offsets) else 0,
         "latitude": nan_none(lats[i]) if i < len(lats) else None, "longitude": nan_none(lons[i]) if i < len(lons) else None}
        for i in range(len(items)) if items[i]
    ]
    scalar = lambda name, kind: (list(getattr(feature[name], kind).value) or [None])[0]  # noqa: E731
    instance = {
        "user_id": (text(es.USER_ID) or [""])[0],
        "history": history,
        "request": {"timestamp": scalar(es.REQUEST_TIMESTAMP, "int64_list"),
                    "utc_offset": scalar(es.REQUEST_UTC_OFFSET, "int64_list"),
                    "latitude": nan_none(scalar(es.REQUEST_LATITUDE, "float_list")),
                    "longitude": nan_none(scalar(es.REQUEST_LONGITUDE, "float_list"))},
    }
    if instance["request"]["timestamp"] is None:
        del instance["request"]["timestamp"]
    if feature[es.TARGET_ITEM_ID].bytes_list.value:  # evaluation data: keep the truth beside the prediction
        instance["target_item_id"] = text(es.TARGET_ITEM_ID)[0]
    return {"raw": "", "source": source, "instance": instance}


class Predict(beam.DoFn):
    """Batches of parsed records -> result records (main output) and error records ("errors")."""

    def __init__(self, model_dir: str, signature: str, shape: client.RequestShape, k: int, diversity: float):
        self.model_dir = model_dir
        self.signature = signature
        self.shape = shape
        self.k = k
        self.diversity = diversity
        self._function = None

    def setup(self):
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        import tensorflow_text  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import

        started = time.time()
        self._tf = tf
        self._function = tf.saved_model.load(self.model_dir).signatures[self.signature]
        log.info("Loaded %s (%s) in %.1f s", self.model_dir, self.signature, time.time() - started)

    def _run(self, instances: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        if self.signature == contract.RECOMMEND:
            inputs = client.recommend_inputs(instances, self.k, self.diversity, self.shape)
        else:
            inputs = client.query_inputs(instances, self.shape)
            if self.signature == contract.RETRIEVE:
                full = client.recommend_inputs(instances, self.k, 0.0, self.shape)
                inputs.update(k=full["k"], exclusions=full["exclusions"])
        outputs = self._function(**{name: self._tf.constant(value) for name, value in inputs.items()})
        return client.recommendations({name: value.numpy() for name, value in outputs.items()})

    def process(self, batch: Sequence[dict[str, Any]]) -> Iterable[Any]:
        good = [r for r in batch if "instance" in r]
        for record in batch:
            if "error" in record:
                yield beam.pvalue.TaggedOutput("errors", record)
        if not good:
            return
        # What a bad instance raises: the client's checks (ValueError) and the model's
        # request checks. Anything else is a fault of the job, not of one instance: it fails the job.
        instance_errors = (ValueError, self._tf.errors.InvalidArgumentError)
        try:
            predictions = self._run([r["instance"] for r in good])
            pairs = list(zip(good, predictions))
        except instance_errors:
            # One bad instance must not fail its neighbours: retry each alone.
            pairs = []
            for record in good:
                try:
                    pairs.append((record, self._run([record["instance"]])[0]))
                except instance_errors as e:
                    message = getattr(e, "message", None) or str(e)
                    yield beam.pvalue.TaggedOutput("errors", {**record, "error": contract.error_message(message)})
        for record, items in pairs:
            yield {"instance": record["instance"], "prediction": {"items": items}}


def error_line(record: dict[str, Any]) -> str:
    instance = record.get("instance")
    if instance is None:
        instance = record["raw"]
    return json.dumps({"instance": instance, "error": record["error"], "source": record.get("source", "")}, sort_keys=True)


def clear_outputs(output_dir: str) -> None:
    """Removes a previous run's prediction.* files, so a rerun leaves exactly its own."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if tf.io.gfile.exists(output_dir):
        for name in tf.io.gfile.listdir(output_dir):
            if name.startswith(("prediction.results", "prediction.errors_stats", SUMMARY)):
                tf.io.gfile.remove(os.path.join(output_dir, name))


def count_lines(pattern: str) -> int:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    total = 0
    for path in tf.io.gfile.glob(pattern):
        with tf.io.gfile.GFile(path) as f:
            total += sum(1 for line in f if line.strip())
    return total


def nightly_instances(job_dir: str, history_length: int) -> list[dict[str, Any]]:
    """Every user of a prepared dataset with their latest events (request at their last event)."""
    from trainer.data import prepare  # pylint: disable=g-import-not-at-top
    from trainer.evaluation import evaluator as ev  # pylint: disable=g-import-not-at-top

    events = ev.load_events(prepare.data_dir(job_dir))
    instances = []
    for user, group in events.groupby("user_id", sort=True):
        group = group.sort_values("timestamp", kind="stable").tail(history_length)
        history = [
            {"item_id": str(r.item_id), "timestamp": int(r.timestamp), "event_type": str(r.event_type),
             "latitude": None if r.latitude != r.latitude else float(r.latitude),
             "longitude": None if r.longitude != r.longitude else float(r.longitude),
             "utc_offset": int(r.utc_offset_minutes)}
            for r in group.itertuples()
        ]
        last = history[-1]
        instances.append({"user_id": str(user), "history": history,
                          "request": {"timestamp": last["timestamp"], "utc_offset": last["utc_offset"]}})
    return instances


def run(
    model_dir: str,
    output_dir: str,
    input_pattern: str = "",
    users_from: str = "",
    signature: str = contract.RECOMMEND,
    k: int = 10,
    diversity: float = 0.0,
    batch_size: int = 64,
    shape: client.RequestShape = client.RequestShape(),
    beam_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Runs the batch prediction pipeline; returns the counts (inputs = results + errors)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if bool(input_pattern) == bool(users_from):
        raise ValueError("Give exactly one of --input (instances) and --users-from (a prepared job dir).")
    if signature not in (contract.RECOMMEND, contract.RETRIEVE):
        raise ValueError(f"`signature` must be {contract.RECOMMEND} or {contract.RETRIEVE}. Received: {signature!r}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    started = time.time()
    version = resolve_model_dir(model_dir)
    clear_outputs(output_dir)
    tf.io.gfile.makedirs(output_dir)
    files = tf.io.gfile.glob(input_pattern) if input_pattern else []
    if input_pattern and not files:
        raise ValueError(f"--input={input_pattern!r} matches no file")
    tfrecord_files = [p for p in files if p.endswith((".tfrecord", ".tfrecord.gz"))]
    csv_files = [p for p in files if p.endswith(".csv")]
    json_files = [p for p in files if p not in tfrecord_files and p not in csv_files]
    options = PipelineOptions(list(beam_args))
    pipeline = beam.Pipeline(options=options)
    parts = []
    if json_files:
        lines = (
            pipeline
            | "JSON files" >> beam.Create(json_files)
            | "Read lines" >> beam.FlatMap(lambda path: [(path, line) for line in _lines(path)])
        )
        parts.append(lines | "Parse JSON" >> beam.Map(parse_json_line))
    if tfrecord_files:
        parts.append(
            pipeline
            | "TFRecord files" >> beam.Create(tfrecord_files)
            | "Read records" >> beam.FlatMap(lambda path: [(path, r) for r in _records(path)])
            | "Parse examples" >> beam.Map(example_instance)
        )
    if csv_files:
        parts.append(pipeline | "CSV files" >> beam.Create(csv_files) | "Users from CSV" >> beam.FlatMap(csv_users))
    if users_from:
        users = nightly_instances(users_from, shape.history_length)
        parts.append(pipeline | "Users" >> beam.Create(
            [{"raw": json.dumps(u), "source": users_from, "instance": u} for u in users]
        ))
    records = parts[0] if len(parts) == 1 else tuple(parts) | beam.Flatten()
    outputs = (
        records
        | "Count inputs" >> beam.Map(_count_input)
        | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch_size)
        | "Predict" >> beam.ParDo(Predict(version, signature, shape, k, diversity)).with_outputs("errors", main="results")
    )
    _ = (outputs.results | "Results JSON" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
         | "Write results" >> beam.io.WriteToText(os.path.join(output_dir, RESULTS), shard_name_template=SHARDS))
    _ = (outputs.errors | "Errors JSON" >> beam.Map(error_line)
         | "Write errors" >> beam.io.WriteToText(os.path.join(output_dir, ERRORS), shard_name_template=SHARDS,
                                                 num_shards=1))
    result = pipeline.run()
    result.wait_until_finish()
    inputs = _counter(result, INPUTS_COUNTER)
    results = count_lines(os.path.join(output_dir, RESULTS + "-*"))
    errors = count_lines(os.path.join(output_dir, ERRORS + "-*"))
    summary = {"model": version, "signature": signature, "inputs": inputs, "results": results, "errors": errors,
               "seconds": round(time.time() - started, 1)}
    with tf.io.gfile.GFile(os.path.join(output_dir, SUMMARY), "w") as f:
        f.write(json.dumps(summary, indent=2))
    if inputs != results + errors:
        raise RuntimeError(f"Batch prediction lost instances: {inputs} read but {results} results + {errors} errors "
                           f"written to {output_dir}")
    log.info("Batch prediction: %d inputs = %d results + %d errors in %.1f s", inputs, results, errors,
             summary["seconds"])
    return summary


INPUTS_COUNTER = "inputs"


def _count_input(record: dict[str, Any]) -> dict[str, Any]:
    """Counts every record read (parsed or not), independently of what is written."""
    beam.metrics.Metrics.counter(__name__, INPUTS_COUNTER).inc()
    return record


def _counter(result: Any, name: str) -> int:
    """A counter's committed value (attempted where the runner does not commit metrics)."""
    from apache_beam.metrics.metric import MetricsFilter  # pylint: disable=g-import-not-at-top

    counters = result.metrics().query(MetricsFilter().with_namespace(__name__).with_name(name))["counters"]
    return sum(int(c.committed if c.committed is not None else c.attempted or 0) for c in counters)


def _records(path: str) -> list[bytes]:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    compression = "GZIP" if path.endswith(".gz") else ""
    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)]


def _lines(path: str) -> list[str]:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    with tf.io.gfile.GFile(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="a SavedModel version folder or a base path of versions")
    parser.add_argument("--input", default="", help="instances: JSONL (or CSV events) file(s), path or glob")
    parser.add_argument("--users-from", default="", help="a prepared job dir: score every user (nightly)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--signature", default=contract.RECOMMEND, choices=[contract.RECOMMEND, contract.RETRIEVE])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--diversity", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--history-length", type=int, default=client.DEFAULT_HISTORY_LENGTH)
    parser.add_argument("--exclusion-width", type=int, default=client.DEFAULT_EXCLUSION_WIDTH,
                        help="instances may exclude up to this many items")
    args, beam_args = parser.parse_known_args(argv)
    try:
        shape = client.RequestShape(history_length=args.history_length, exclusion_width=args.exclusion_width)
        summary = run(args.model_dir, args.output_dir, args.input, args.users_from, args.signature, args.k,
                      args.diversity, args.batch_size, shape, beam_args)
    except ValueError as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
