"""New items after training: embed them with a version's own `embed_items`
signature and write the next version, in which they are recommendable
(retrieval, ranking, history lookups) — no retraining.

    python -m serving.add_items --model-base-path=runs/default/export/recommender \\
        --items=new_items.jsonl

Items: JSON lines or CSV with item_id (required), text, category ("|"-joined),
latitude, longitude, price. Rows that cannot be added (no id, an id already
served or repeated in the file, a value that is not a number) are written with
the reason to `--rejects` (default <model-base-path>/add_items_rejects-<version>.csv);
read = added + rejected, always.
"""

from __future__ import annotations

import argparse
import csv
import io as std_io
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

import tensorflow_text  # noqa: F401  pylint: disable=unused-import (the tokenizer's ops)

from serving import contract
from serving.export import ASSETS_EXTRA, SERVING_CONFIG, next_version, save_version
from serving.key_index import assign
from serving.servable import WARMUP_PATH, versions
from trainer.data import io

log = logging.getLogger(__name__)
FIELDS = ("item_id", "text", "category", "latitude", "longitude", "price")
NUMBERS = ("latitude", "longitude", "price")


def read_items(path: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines or CSV file as dicts (each with its 1-based "_row")."""
    text = io.read_bytes(path).decode("utf-8")
    rows: list[dict[str, Any]] = []
    if path.endswith((".jsonl", ".json")):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                rows.append({"_row": number, "_error": f"not JSON: {e}"})
                continue
            rows.append({"_row": number, **value} if isinstance(value, dict) else {"_row": number, "_error": "not a JSON object"})
    else:
        for number, row in enumerate(csv.DictReader(std_io.StringIO(text)), 2):
            rows.append({"_row": number, **row})
    return rows


def _number(value: Any) -> float:
    if value is None or value == "":
        return math.nan
    number = float(value)
    if math.isinf(number):
        raise ValueError("infinite")
    return number


def validate(rows: list[dict[str, Any]], served: set[str]) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """(accepted items as embed_items inputs, rejected rows with "reason")."""
    accepted: dict[str, list] = {f: [] for f in FIELDS}
    rejected = []
    seen: set[str] = set()
    for row in rows:
        reasons = [row["_error"]] if "_error" in row else []
        item = str(row.get("item_id", "") or "").strip()
        if not reasons and not item:
            reasons.append("item_id: missing")
        elif item in served:
            reasons.append(f"item_id: {item!r} is already served")
        elif item in seen:
            reasons.append(f"item_id: {item!r} repeated in the file")
        values = {}
        for name in NUMBERS:
            try:
                values[name] = _number(row.get(name))
            except (TypeError, ValueError):
                reasons.append(f"{name}: not a number: {row.get(name)!r}")
        if reasons:
            rejected.append({**{k: v for k, v in row.items() if k != "_error"}, "reason": "; ".join(reasons)})
            continue
        seen.add(item)
        accepted["item_id"].append(item)
        accepted["text"].append(str(row.get("text", "") or ""))
        accepted["category"].append(str(row.get("category", "") or ""))
        for name in NUMBERS:
            accepted[name].append(values[name])
    arrays = {name: np.array(values, object) for name, values in accepted.items() if name not in NUMBERS}
    arrays.update({name: np.array(accepted[name], np.float32) for name in NUMBERS})
    return arrays, rejected


def add_items(model_base_path: str, items_path: str, version: int = 0, rejects_path: str = "", batch_size: int = 256) -> dict[str, Any]:
    """Writes the next version with the items of `items_path` added; returns a summary."""
    started = time.time()
    found = versions(model_base_path)
    if not found:
        raise ValueError(f"No model version in model_base_path={model_base_path!r}")
    source = os.path.join(model_base_path, str(found[-1]))
    model = tf.saved_model.load(source)
    catalogue = model.catalogue
    served_ids = [v.decode("utf-8") for v in catalogue.index.keys.numpy()]
    rows = read_items(items_path)
    items, rejected = validate(rows, set(served_ids))
    count = len(items["item_id"])
    version = version or next_version(model_base_path)
    rejects_path = rejects_path or os.path.join(model_base_path, f"add_items_rejects-{version}.csv")
    if rejected:
        columns = sorted({k for r in rejected for k in r} - {"reason", "_row"})
        buffer = std_io.StringIO()
        writer = csv.DictWriter(buffer, ["_row", *columns, "reason"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rejected)
        io.write_text(rejects_path, buffer.getvalue())
        log.warning("%d of %d item rows rejected; reasons in %s", len(rejected), len(rows), rejects_path)
    if count == 0:
        raise ValueError(f"No item of {items_path!r} can be added ({len(rejected)} rejected; see {rejects_path})")
    embed = model.signatures[contract.EMBED_ITEMS]
    vectors = []
    for start in range(0, count, batch_size):
        part = {name: tf.constant(values[start : start + batch_size]) for name, values in items.items()}
        vectors.append(embed(**part)["item_vectors"].numpy())
        log.info("Embedded %d/%d new items", min(start + batch_size, count), count)
    assign(catalogue.index, np.array(served_ids + list(items["item_id"]), object))
    catalogue.vectors.assign(np.concatenate([catalogue.vectors.numpy(), *vectors], axis=0))
    catalogue.latitudes.assign(np.concatenate([catalogue.latitudes.numpy(), items["latitude"]]))
    catalogue.longitudes.assign(np.concatenate([catalogue.longitudes.numpy(), items["longitude"]]))
    extra = {}
    for name in (WARMUP_PATH, os.path.join(ASSETS_EXTRA, SERVING_CONFIG)):
        if io.exists(os.path.join(source, name)):
            extra[name] = io.read_bytes(os.path.join(source, name))
    config = json.loads(extra.get(os.path.join(ASSETS_EXTRA, SERVING_CONFIG), b"{}"))
    config.update(version=version, items=len(served_ids) + count, added_items=count, based_on_version=found[-1])
    extra[os.path.join(ASSETS_EXTRA, SERVING_CONFIG)] = json.dumps(config, indent=2, sort_keys=True).encode("utf-8")
    signatures = {key: model.signatures[key] for key in contract.SIGNATURES}
    path = save_version(model, signatures, model_base_path, version, extra_files=extra)
    summary = {"version": version, "path": path, "read": len(rows), "added": count, "rejected": len(rejected),
               "items": len(served_ids) + count, "seconds": round(time.time() - started, 1)}
    if rejected:
        summary["rejects"] = rejects_path
    log.info("Added %d items (%d rejected) as version %d: %s", count, len(rejected), version, path)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", required=True, help="<export-dir>/<model-name>")
    parser.add_argument("--items", required=True, help="JSON lines (.jsonl) or CSV of new items")
    parser.add_argument("--version", type=int, default=0, help="0 = next free version")
    parser.add_argument("--rejects", default="", help="CSV of rows that could not be added")
    args = parser.parse_args(argv)
    try:
        summary = add_items(args.model_base_path, args.items, args.version, args.rejects)
    except ValueError as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
