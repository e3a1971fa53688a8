"""Sharded, GZIP-compressed TFRecord files.

Shards are written under temporary names and renamed to
`<prefix>-00000-of-00003.tfrecord.gz` when the writer closes, so a reader
listing the folder never sees a half-written set.
"""

from __future__ import annotations

import os

import tensorflow as tf

SUFFIX = ".tfrecord.gz"


class ShardedWriter:
    """Writes serialized records, starting a new shard every `records_per_shard`.

    Use as a context manager; `paths` holds the final shard paths after close.
    """

    def __init__(self, directory: str, prefix: str, records_per_shard: int):
        if records_per_shard < 1:
            raise ValueError(f"`records_per_shard` must be >= 1. Received: records_per_shard={records_per_shard}")
        self.directory = directory
        self.prefix = prefix
        self.records_per_shard = records_per_shard
        self.count = 0
        self.paths: list[str] = []
        self._temporary: list[str] = []
        self._writer: tf.io.TFRecordWriter | None = None
        self._in_shard = 0
        tf.io.gfile.makedirs(directory)

    def _open_shard(self) -> None:
        path = os.path.join(self.directory, f".{self.prefix}-{len(self._temporary):05d}.tmp")
        self._temporary.append(path)
        self._writer = tf.io.TFRecordWriter(path, options="GZIP")
        self._in_shard = 0

    def write(self, record: bytes) -> None:
        if self._writer is None or self._in_shard >= self.records_per_shard:
            if self._writer is not None:
                self._writer.close()
            self._open_shard()
        self._writer.write(record)
        self._in_shard += 1
        self.count += 1

    def close(self) -> list[str]:
        if self._writer is None:  # no records: still write one empty shard so readers find the split
            self._open_shard()
        self._writer.close()
        self._writer = None
        total = len(self._temporary)
        for index, temporary in enumerate(self._temporary):
            final = os.path.join(self.directory, f"{self.prefix}-{index:05d}-of-{total:05d}{SUFFIX}")
            tf.io.gfile.rename(temporary, final, overwrite=True)
            self.paths.append(final)
        return self.paths

    def __enter__(self) -> "ShardedWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._writer is not None:
            self._writer.close()


def clear(directory: str, prefix: str) -> None:
    """Removes earlier shards of `prefix` so a rerun does not mix old and new files."""
    if not tf.io.gfile.exists(directory):
        return
    for name in tf.io.gfile.listdir(directory):
        if name.startswith(f"{prefix}-") or name.startswith(f".{prefix}-"):
            tf.io.gfile.remove(os.path.join(directory, name))
