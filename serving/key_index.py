"""String id -> row lookup that lives in variables, so a SavedModel's catalogue
can grow after training (items added without retraining) and stays TF-core only.

The ids' 62-bit fingerprints (`tf.strings.to_hash_bucket_fast`) are kept sorted
with their rows; a lookup is a binary search (`tf.searchsorted`) plus an exact
string comparison, so a fingerprint collision can only make an id "unknown",
never map it to another item.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

HASH_BUCKETS = 2**62


def fingerprints(ids: np.ndarray | tf.Tensor) -> np.ndarray:
    """[N] int64 fingerprints of string ids, exactly as the graph computes them."""
    return tf.strings.to_hash_bucket_fast(tf.constant(np.asarray(ids, dtype=object).astype(str)), HASH_BUCKETS).numpy()


def sorted_fingerprints(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([N] sorted int64 fingerprints, [N] int64 rows into `ids`)."""
    hashes = fingerprints(ids) if len(ids) else np.zeros([0], np.int64)
    order = np.argsort(hashes, kind="stable").astype(np.int64)
    return hashes[order], order


class KeyIndex(tf.Module):
    """Rows of string ids in a table that may be replaced (`assign`) after saving.

    Variables (first dimension free, so a loaded model can grow them):
      keys [N] string, hashes [N] int64 sorted, rows [N] int64 (row of each hash).
    """

    def __init__(self, ids: np.ndarray, name: str):
        super().__init__(name=name)
        ids = np.asarray(ids, dtype=object).astype(str)
        hashes, rows = sorted_fingerprints(ids)
        self.keys = tf.Variable(tf.constant(ids, tf.string), shape=tf.TensorShape([None]), trainable=False, name="keys")
        self.hashes = tf.Variable(hashes, shape=tf.TensorShape([None]), trainable=False, name="hashes")
        self.rows = tf.Variable(rows, shape=tf.TensorShape([None]), trainable=False, name="rows")

    def lookup(self, ids: tf.Tensor) -> tf.Tensor:
        """int64 row of each id (any shape, string); -1 for "" and ids not in the table.

        O(len(ids) * log N): nothing here copies or scans the table.
        """
        flat = tf.reshape(ids, [-1])
        size = tf.size(self.hashes, out_type=tf.int64)

        def search():
            hashes = tf.strings.to_hash_bucket_fast(flat, HASH_BUCKETS)
            position = tf.searchsorted(self.hashes, hashes, side="left", out_type=tf.int64)
            safe = tf.minimum(position, size - 1)
            row = tf.gather(self.rows, safe)
            found = tf.logical_and(tf.equal(tf.gather(self.hashes, safe), hashes), tf.not_equal(flat, ""))
            found = tf.logical_and(found, tf.equal(tf.gather(self.keys, row), flat))  # exact id, not just its hash
            return tf.where(found, row, tf.constant(-1, tf.int64))

        rows = tf.cond(size > 0, search, lambda: tf.fill(tf.shape(flat, out_type=tf.int64), tf.constant(-1, tf.int64)))
        return tf.reshape(rows, tf.shape(ids, out_type=tf.int64))


def assign(index: tf.Module, ids: np.ndarray) -> None:
    """Replaces a (possibly loaded) KeyIndex's ids with `ids` (rows = positions in `ids`)."""
    ids = np.asarray(ids, dtype=object).astype(str)
    hashes, rows = sorted_fingerprints(ids)
    index.keys.assign(tf.constant(ids, tf.string))
    index.hashes.assign(hashes)
    index.rows.assign(rows)
