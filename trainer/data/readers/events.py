"""Generic behaviour logs: events (+ optional items and users) in CSV, TSV,
Parquet or JSONL, local or on any `tf.io.gfile` path, with column names mapped
onto the canonical schema.
"""

from __future__ import annotations

import logging

import pandas as pd

from trainer.data import io, schema

log = logging.getLogger(__name__)


def expand_paths(pattern: str) -> list[str]:
    """A path, a comma-separated list, or a glob (local or gfile) -> sorted paths."""
    paths: list[str] = []
    for part in [p.strip() for p in pattern.split(",") if p.strip()]:
        if any(ch in part for ch in "*?["):
            import tensorflow as tf  # pylint: disable=g-import-not-at-top

            matches = sorted(tf.io.gfile.glob(part))
            if not matches:
                raise ValueError(f"No input files match {part!r}.")
            paths.extend(matches)
        else:
            if not io.exists(part):
                raise ValueError(f"Input file {part!r} does not exist.")
            paths.append(part)
    if not paths:
        raise ValueError(f"No input path given. Received: {pattern!r}")
    return paths


def _rename(frame: pd.DataFrame, column_map: dict[str, str], path: str) -> pd.DataFrame:
    """Renames input columns to canonical names (`column_map[canonical] = input_name`)."""
    renames = {}
    for canonical, source in column_map.items():
        if source in frame.columns:
            renames[source] = canonical
    return frame.rename(columns=renames)


def read_table_files(
    pattern: str,
    required: tuple[str, ...],
    what: str,
    *,
    column_map: dict[str, str] | None = None,
    delimiter: str = "",
) -> pd.DataFrame:
    """Reads and concatenates every file of `pattern` with provenance columns.

    Each file must have the required canonical columns (after mapping); an
    unusable file raises ValueError naming it. Lines of a JSONL file that are not
    JSON objects are kept as rows with their raw text so validation rejects them.
    """
    frames = []
    for path in expand_paths(pattern):
        frame = io.read_table(path, delimiter=delimiter or None)
        bad_lines = frame.attrs.pop("unparsable_lines", [])
        frame = _rename(frame, column_map or {}, path)
        io.check_columns(frame, required, path, what)
        frame = io.add_provenance(frame, path)
        if bad_lines:
            # Keep unparsable JSON lines as rows with empty fields: validation
            # rejects them for their missing ids, and the raw line is kept.
            broken = pd.DataFrame(
                {
                    schema.SOURCE_FILE: path,
                    schema.SOURCE_ROW: [line for line, _, _ in bad_lines],
                    "_raw_line": [text for _, text, _ in bad_lines],
                }
            )
            frame = pd.concat([frame, broken], ignore_index=True).fillna("")
            frame = frame.sort_values(schema.SOURCE_ROW, kind="mergesort").reset_index(drop=True)
        log.info("Read %d %s rows from %s", len(frame), what.lower(), path)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_events_files(
    events_path: str,
    items_path: str = "",
    users_path: str = "",
    *,
    column_map: dict[str, str] | None = None,
    delimiter: str = "",
) -> schema.RawTables:
    """Reads generic event/item/user files into `RawTables` (values as strings)."""
    events = read_table_files(
        events_path, schema.REQUIRED_EVENT_COLUMNS, "Events", column_map=column_map, delimiter=delimiter
    )
    items = (
        read_table_files(items_path, schema.REQUIRED_ITEM_COLUMNS, "Items", column_map=column_map, delimiter=delimiter)
        if items_path
        else None
    )
    users = (
        read_table_files(users_path, schema.REQUIRED_USER_COLUMNS, "Users", column_map=column_map, delimiter=delimiter)
        if users_path
        else None
    )
    return schema.RawTables(name="events", events=events, items=items, users=users)
