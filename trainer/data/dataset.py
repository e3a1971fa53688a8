"""`tf.data` pipelines over the prepared TFRecords, driven by the manifest."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from trainer.data import example_schema as es
from trainer.data import io

MANIFEST = "manifest.json"
SPLITS = ("train", "validation", "test")


def read_manifest(data_dir: str) -> dict[str, Any]:
    """The manifest written by the prepare stage in `data_dir`."""
    path = os.path.join(data_dir, MANIFEST)
    if not io.exists(path):
        raise ValueError(f"No {MANIFEST} in {data_dir!r}: run `python -m trainer.task --stage=prepare` first.")
    return json.loads(io.read_bytes(path).decode("utf-8"))


def _tf_dtype(dtype: str) -> tf.DType:
    return {es.STRING: tf.string, es.INT64: tf.int64, es.FLOAT32: tf.float32}[dtype]


def parse_function(specs: tuple[es.FeatureSpec, ...], max_history: int):
    """Parses a [B] batch of serialized examples into dense tensors.

    History features become [B, max_history], real events first, padded at the
    end with the spec's padding value; scalars become [B].
    """
    feature_spec = {}
    for spec in specs:
        if spec.sequence:
            feature_spec[spec.name] = tf.io.VarLenFeature(_tf_dtype(spec.dtype))
        else:
            feature_spec[spec.name] = tf.io.FixedLenFeature([], _tf_dtype(spec.dtype))

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, feature_spec)
        out = {}
        for spec in specs:
            value = parsed[spec.name]
            if spec.sequence:
                batch = tf.shape(serialized, out_type=tf.int64)[0]
                value = tf.sparse.reset_shape(value, tf.stack([batch, tf.constant(max_history, tf.int64)]))
                value = tf.sparse.to_dense(value, default_value=tf.constant(spec.padding, _tf_dtype(spec.dtype)))
            out[spec.name] = value
        return out

    return parse


def make_dataset(
    data_dir: str,
    split: str,
    batch_size: int,
    *,
    shuffle_buffer: int = 0,
    seed: int | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of parsed examples of one split (dicts of dense tensors, see `parse_function`)."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    manifest = read_manifest(data_dir)
    specs = es.from_manifest(manifest["features"])
    files = [os.path.join(data_dir, f) for f in manifest["files"][split]]
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(parse_function(specs, int(manifest["max_history"])), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


ITEM_FEATURES = {
    "item_id": tf.io.FixedLenFeature([], tf.string),
    "text": tf.io.FixedLenFeature([], tf.string),
    "category": tf.io.FixedLenFeature([], tf.string),
    "latitude": tf.io.FixedLenFeature([], tf.float32),
    "longitude": tf.io.FixedLenFeature([], tf.float32),
    "price": tf.io.FixedLenFeature([], tf.float32),
    "train_count": tf.io.FixedLenFeature([], tf.int64),
}


def make_item_dataset(data_dir: str, batch_size: int) -> tf.data.Dataset:
    """Batches of the item catalogue: item_id, text, category ("|"-joined), latitude,
    longitude, price (NaN unknown) and train_count (training-period events), each [B]."""
    manifest = read_manifest(data_dir)
    dataset = tf.data.TFRecordDataset(os.path.join(data_dir, manifest["files"]["items"]), compression_type="GZIP")
    return dataset.batch(batch_size).map(lambda s: tf.io.parse_example(s, ITEM_FEATURES))
