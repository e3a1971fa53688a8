"""The per-user transform (`examples.user_examples`) as an Apache Beam pipeline.

`prepare` uses it when `--runner` names a Beam runner (DirectRunner here;
DataflowRunner, FlinkRunner, SparkRunner with their own `--beam-option`s):
events are keyed by user, grouped, put in time order (ties by read order, as
`examples.sort_events` does), turned into examples and written as the same
GZIP TFRecord shards `<split>-0000K-of-0000N.tfrecord.gz` the local path
writes. Counts and target-time ranges come back as Beam metrics. Reading and
validating the input stays single-process (pandas); the example generation,
the part that grows with history length, is what runs distributed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trainer.data import example_schema as es
from trainer.data import examples as ex
from trainer.data import schema, splits

log = logging.getLogger(__name__)

COLUMNS = (schema.ITEM_ID, schema.EVENT_TYPE, schema.TIMESTAMP, schema.UTC_OFFSET, schema.VALUE, schema.LATITUDE,
           schema.LONGITUDE, schema.READ_ORDER)
NAMESPACE = "prepare"


def _user_events(user_id: str, rows: Iterable[tuple], attributes: dict[str, Any]) -> ex.UserEvents:
    ordered = sorted(rows, key=lambda r: (r[2], r[7]))  # (timestamp, read order)
    column = lambda i, dtype: np.array([r[i] for r in ordered], dtype=dtype)  # noqa: E731
    return ex.UserEvents(
        user_id=user_id,
        item_ids=column(0, object),
        event_types=column(1, object),
        timestamps=column(2, np.int64),
        utc_offsets=column(3, np.int64),
        values=column(4, np.float64),
        latitudes=column(5, np.float64),
        longitudes=column(6, np.float64),
        attributes=attributes,
    )


class UserToExamples:
    """(user_id, rows) -> tagged (split name, serialized tf.Example); records metrics."""

    def __init__(self, spec: ex.ExampleSpec, attributes: dict[str, dict[str, Any]]):
        self.spec = spec
        self.attributes = attributes

    def __call__(self, element: tuple[str, Iterable[tuple]]):
        import apache_beam as beam  # pylint: disable=g-import-not-at-top
        from apache_beam.metrics import Metrics  # pylint: disable=g-import-not-at-top

        user_id, rows = element
        user = _user_events(user_id, rows, self.attributes.get(user_id, {}))
        specs = self.spec.feature_specs()
        produced = False
        for split, features in ex.user_examples(user, self.spec):
            name = splits.SPLIT_NAMES[split]
            Metrics.counter(NAMESPACE, f"examples_{name}").inc()
            Metrics.distribution(NAMESPACE, f"target_time_{name}").update(int(features[es.TARGET_TIMESTAMP]))
            produced = True
            yield beam.pvalue.TaggedOutput(name, ex.encode_example(features, specs))
        if produced:
            Metrics.counter(NAMESPACE, "users_with_examples").inc()


def write_examples(
    sorted_events: pd.DataFrame,
    spec: ex.ExampleSpec,
    attributes: dict[str, dict[str, Any]],
    out_dir: str,
    runner: str,
    beam_options: Sequence[str] = (),
) -> dict[str, Any]:
    """Runs the transform on Beam; returns counts, file names and target-time ranges per split."""
    import apache_beam as beam  # pylint: disable=g-import-not-at-top
    from apache_beam.metrics.metric import MetricsFilter  # pylint: disable=g-import-not-at-top
    from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top

    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from trainer.data import tfrecords  # pylint: disable=g-import-not-at-top

    rows = list(zip(sorted_events[schema.USER_ID].astype(str), zip(*(sorted_events[c].tolist() for c in COLUMNS))))
    options = PipelineOptions([f"--runner={runner}", *beam_options])
    pipeline = beam.Pipeline(options=options)
    tagged = (
        pipeline
        | "Events" >> beam.Create(rows)
        | "By user" >> beam.GroupByKey()
        | "Examples" >> beam.FlatMap(UserToExamples(spec, attributes)).with_outputs(*splits.SPLIT_NAMES)
    )
    for name in splits.SPLIT_NAMES:
        _ = tagged[name] | f"Write {name}" >> beam.io.WriteToTFRecord(
            os.path.join(out_dir, name), file_name_suffix=tfrecords.SUFFIX, shard_name_template="-SSSSS-of-NNNNN",
            compression_type=beam.io.filesystem.CompressionTypes.GZIP,
        )
    result = pipeline.run()
    result.wait_until_finish()
    metrics = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    counters = {m.key.metric.name: m.committed for m in metrics["counters"]}
    distributions = {m.key.metric.name: m.committed for m in metrics["distributions"]}
    files, examples, ranges = {}, {}, {}
    for name in splits.SPLIT_NAMES:
        found = sorted(os.path.basename(p) for p in tf.io.gfile.glob(os.path.join(out_dir, f"{name}-*-of-*{tfrecords.SUFFIX}")))
        examples[name] = int(counters.get(f"examples_{name}", 0))
        if not examples[name]:
            for path in found:  # Beam writes one empty shard for an empty split; the local path writes none
                tf.io.gfile.remove(os.path.join(out_dir, path))
            found = []
        files[name] = found
        dist = distributions.get(f"target_time_{name}")
        ranges[name] = (dist.min, dist.max) if dist is not None and dist.count else (None, None)
    log.info("Beam (%s) wrote %s examples", runner, examples)
    return {"examples": examples, "users_with_examples": int(counters.get("users_with_examples", 0)),
            "files": files, "ranges": ranges}
