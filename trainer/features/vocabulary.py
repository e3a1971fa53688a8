"""Vocabularies of string ids with out-of-vocabulary (OOV) handling.

A vocabulary is built from training-period counts only (no statistics from
validation or test events), ordered by count descending then token, and written
as two parallel text files: `<name>.txt` (one token per line, what
`tf.keras.layers.StringLookup` reads) and `<name>.counts.txt`.

Lookup convention (`lookup_layer`): index 0 = padding ("" mask token),
1..num_oov = hashed OOV buckets for unseen ids, then the vocabulary.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import pandas as pd

from trainer.data import io


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    name: str
    tokens: tuple[str, ...]
    counts: tuple[int, ...]

    def __post_init__(self):
        if len(self.tokens) != len(self.counts):
            raise ValueError(f"Vocabulary {self.name!r}: {len(self.tokens)} tokens but {len(self.counts)} counts.")
        bad = [t for t in self.tokens if t == "" or "\n" in t or "\r" in t]
        if bad:
            raise ValueError(f"Vocabulary {self.name!r} has tokens that cannot be written one per line: {bad[:5]!r}")

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def from_values(cls, name: str, values: Iterable[str], min_count: int = 1, max_size: int = 0) -> "Vocabulary":
        """Counts `values` (empty strings ignored); keeps tokens seen >= min_count, the top max_size (0 = all)."""
        if min_count < 1:
            raise ValueError(f"`min_count` must be >= 1. Received: min_count={min_count}")
        series = pd.Series(list(values) if not isinstance(values, pd.Series) else values, dtype=object)
        series = series[series != ""]
        counts = series.value_counts()
        frame = pd.DataFrame({"token": counts.index.astype(str), "count": counts.to_numpy()})
        frame = frame[frame["count"] >= min_count].sort_values(["count", "token"], ascending=[False, True])
        if max_size:
            frame = frame.head(max_size)
        return cls(name, tuple(frame["token"].tolist()), tuple(int(c) for c in frame["count"].tolist()))

    def write(self, directory: str) -> dict[str, object]:
        """Writes `<name>.txt` and `<name>.counts.txt`; returns the manifest entry (relative paths)."""
        io.makedirs(directory)
        io.write_text(os.path.join(directory, f"{self.name}.txt"), "".join(f"{t}\n" for t in self.tokens))
        io.write_text(os.path.join(directory, f"{self.name}.counts.txt"), "".join(f"{c}\n" for c in self.counts))
        folder = os.path.basename(directory.rstrip("/"))
        return {
            "path": f"{folder}/{self.name}.txt",
            "counts_path": f"{folder}/{self.name}.counts.txt",
            "size": len(self.tokens),
            "total_count": int(sum(self.counts)),
        }

    @classmethod
    def read(cls, directory: str, name: str) -> "Vocabulary":
        # split("\n"), not splitlines(): tokens may hold other line-break characters.
        tokens = io.read_bytes(os.path.join(directory, f"{name}.txt")).decode("utf-8").split("\n")[:-1]
        counts = io.read_bytes(os.path.join(directory, f"{name}.counts.txt")).decode("utf-8").split("\n")[:-1]
        return cls(name, tuple(tokens), tuple(int(c) for c in counts))


def lookup_layer(vocabulary: Vocabulary, num_oov_indices: int = 1):
    """A `tf.keras.layers.StringLookup`: "" -> 0, unseen -> 1..num_oov, known -> after."""
    if num_oov_indices < 1:
        raise ValueError(f"`num_oov_indices` must be >= 1. Received: num_oov_indices={num_oov_indices}")
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    return tf.keras.layers.StringLookup(
        vocabulary=list(vocabulary.tokens), num_oov_indices=num_oov_indices, mask_token="", name=f"{vocabulary.name}_lookup"
    )
