"""Reading input tables from local or `tf.io.gfile` paths (gs://, ...).

Everything is read as strings (no type guessing, empty cells stay "") so that
validation can tell an absent optional value ("") from a bad one ("NaN", "abc")
and report the original text. Errors name the file and what is wrong.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trainer.data import schema

FORMATS = ("csv", "tsv", "parquet", "jsonl")


def _gfile():
    # Imported lazily: TensorFlow takes seconds to import and plain local reads
    # do not need it.
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    return tf.io.gfile


def is_local(path: str) -> bool:
    return "://" not in path


def exists(path: str) -> bool:
    return os.path.exists(path) if is_local(path) else _gfile().exists(path)


def read_bytes(path: str) -> bytes:
    """Whole file as bytes; raises ValueError naming the path when unreadable."""
    if is_local(path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise ValueError(f"Cannot read input file {path!r}: {e}") from e
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except tf.errors.OpError as e:
        raise ValueError(f"Cannot read input file {path!r}: {e.message}") from e


def write_bytes(path: str, data: bytes) -> None:
    """Writes a whole file (local or gfile), creating its folder.

    Readers see the old file or the new one, never a part: a local file is
    written beside and renamed over the old one (object stores such as GCS
    publish an object only when it is closed).
    """
    if is_local(path):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        partial = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}-{threading.get_ident()}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(data)
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):  # the write failed
                os.remove(partial)
        return
    gfile = _gfile()
    gfile.makedirs(os.path.dirname(path))
    with gfile.GFile(path, "wb") as f:
        f.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def makedirs(path: str) -> None:
    if is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        _gfile().makedirs(path)


def detect_format(path: str) -> str:
    """File format from the extension (.csv, .tsv/.tab/.txt, .parquet/.pq, .jsonl/.json/.ndjson)."""
    name = path.lower()
    for suffix in (".gz", ".bz2", ".zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    ext = os.path.splitext(name)[1]
    if ext == ".csv":
        return "csv"
    if ext in (".tsv", ".tab", ".txt"):
        return "tsv"
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise ValueError(
        f"Cannot tell the format of input file {path!r} from its extension {ext!r}; "
        f"use one of .csv, .tsv, .parquet, .jsonl or pass the format explicitly (one of {FORMATS})."
    )


def _compression(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith(".gz"):
        return "gzip"
    if lower.endswith(".bz2"):
        return "bz2"
    if lower.endswith(".zst"):
        return "zstd"
    return None


def read_delimited(
    path: str,
    *,
    sep: str,
    header: bool = True,
    names: list[str] | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """A delimited text file as a frame of strings ("" for empty cells).

    Args:
      path: local or gfile path; .gz/.bz2/.zst are decompressed.
      sep: the single-character delimiter.
      header: whether the first line names the columns.
      names: column names when `header` is False.
      encoding: text encoding ("latin-1" for MovieLens' u.item).

    Raises:
      ValueError naming the file when it is unreadable, empty or malformed.
    """
    data = read_bytes(path)
    if not data.strip():
        raise ValueError(f"Input file {path!r} is empty.")
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            header=0 if header else None,
            names=names,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding=encoding,
            compression=_compression(path),
            quoting=3 if sep == "\t" else 0,  # QUOTE_NONE for TSV: quotes are text there
            engine="c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as e:
        raise ValueError(f"Cannot parse input file {path!r} as {sep!r}-delimited text: {e}") from e
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_table(path: str, fmt: str | None = None, *, delimiter: str | None = None) -> pd.DataFrame:
    """A CSV / TSV / Parquet / JSONL table as a frame with string values.

    Parquet and JSONL values are converted to strings the same way CSV text would
    read (missing -> ""), so validation sees one representation.
    """
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"`fmt` must be one of {FORMATS}. Received: fmt={fmt!r} for {path!r}")
    if fmt in ("csv", "tsv"):
        sep = delimiter or ("," if fmt == "csv" else "\t")
        return read_delimited(path, sep=sep)
    data = read_bytes(path)
    if not data.strip():
        raise ValueError(f"Input file {path!r} is empty.")
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as e:  # pyarrow raises its own error types
            raise ValueError(f"Cannot read input file {path!r} as Parquet: {e}") from e
    else:
        records = []
        text = data.decode("utf-8", errors="replace")
        bad = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append((line_number, line, f"invalid JSON: {e.msg}"))
                continue
            if not isinstance(record, dict):
                bad.append((line_number, line, "line is not a JSON object"))
                continue
            record[schema.SOURCE_ROW] = line_number
            records.append(record)
        if not records:
            raise ValueError(f"Input file {path!r} has no JSON object lines.")
        frame = pd.DataFrame.from_records(records)
        rows = frame.pop(schema.SOURCE_ROW)
        frame = _to_strings(frame)
        frame[schema.SOURCE_ROW] = rows.to_numpy()
        if bad:
            frame.attrs["unparsable_lines"] = bad
        return frame
    return _to_strings(frame)


def _text(value: object, integral: bool) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if integral and isinstance(value, float):
        return str(int(value))
    return str(value)


def _to_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed columns as the text a CSV would hold. A float column whose values are all
    whole numbers (ids in a nullable Parquet/JSON column: 17.0) reads "17", not "17.0"."""
    out = {}
    for column in frame.columns:
        values = frame[column].tolist()
        floats = [v for v in values if isinstance(v, float) and v == v]
        integral = bool(floats) and all(v == int(v) for v in floats)
        out[str(column)] = [_text(v, integral) for v in values]
    return pd.DataFrame(out, index=frame.index)


def add_provenance(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    """Adds `_source_file` and a 1-based `_source_row` (unless the reader set one)."""
    frame = frame.copy()
    frame[schema.SOURCE_FILE] = path
    if schema.SOURCE_ROW not in frame.columns:
        frame[schema.SOURCE_ROW] = range(1, len(frame) + 1)
    return frame


def check_columns(frame: pd.DataFrame, required: tuple[str, ...], path: str, what: str) -> None:
    """Raises ValueError naming the file when required columns are missing.

    A single-column frame whose header contains another delimiter is reported as
    a delimiter problem, the usual cause.
    """
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    found = [c for c in frame.columns if not c.startswith("_")]
    hint = ""
    if len(found) == 1:
        for candidate in (";", "\t", "|", ","):
            if candidate in found[0]:
                hint = f" The header looks {candidate!r}-delimited: is the delimiter right?"
                break
    raise ValueError(
        f"{what} file {path!r} is missing required column(s) {missing}; found columns {found}. "
        f"Map your column names with --column-map (e.g. --column-map=user_id=uid).{hint}"
    )


def jsonable(value: Any) -> Any:
    """Plain JSON values, recursively: numpy scalars/arrays -> python, NaN/inf -> None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
