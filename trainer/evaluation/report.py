"""metrics.json and the evaluation report (Markdown + PNG plots) a person reads.

metrics.json has exactly this shape (absent values are null, never NaN):
  {"dataset": {name and counts},
   "protocol": "... primary filter: <unfiltered|seen_filtered> ...",
   "primary": "<model name>",
   "models": {"<name>": {"unfiltered": {hr@10, ndcg@10, hr@20, ndcg@20, hr@50, mrr, coverage},
                         "seen_filtered": {...}}},
   "behaviour": {auc, accuracy, precision, recall, f1},
   "slices": {slicing: {slice: {count, metric...}}},
   "train": {epochs, seconds, examples_per_second}}
The primary filter mode is stated inside "protocol" (`protocol_text` writes it,
`primary_filter_of` reads it back), so the top-level keys stay as above.

Figures use `matplotlib.figure.Figure` on the Agg canvas (no pyplot state).
"""

from __future__ import annotations

import io as io_lib
import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trainer.data import io
from trainer.evaluation import evaluator as ev

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
MODEL_METRICS: tuple[str, ...] = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "hr@50", "mrr", "coverage")
BEHAVIOUR_METRICS: tuple[str, ...] = ("auc", "accuracy", "precision", "recall", "f1")
TRAIN_FIELDS: tuple[str, ...] = ("epochs", "seconds", "examples_per_second")
TOP_LEVEL_KEYS: tuple[str, ...] = ("dataset", "protocol", "primary", "models", "behaviour", "slices", "train")
PLOTTED_METRICS: tuple[str, ...] = ("hr@10", "ndcg@10", "hr@50")
_PRIMARY_FILTER = re.compile(r"primary filter: (unfiltered|seen_filtered)")
_DPI = 110
_COLORS = ("#3b6ea5", "#e08a2c", "#5a9e4b", "#b8473d", "#7d5ba6", "#8c6d31", "#5f7f8f", "#c46fa9")

ModelMetrics = Mapping[str, Mapping[str, float | None]]  # filter -> metric -> value


def protocol_text(primary_filter: str, num_items: int, split: str = "test", split_kind: str = "leave-one-out") -> str:
    """The protocol sentence of metrics.json, naming the primary filter mode."""
    if primary_filter not in ev.FILTERS:
        raise ValueError(f"`primary_filter` must be one of {ev.FILTERS}. Received: primary_filter={primary_filter!r}")
    return (
        f"{split_kind} split, {split} targets; all {num_items} catalogue items ranked per target; "
        "rank = other items scoring >= the target (pessimistic ties); HR@k, NDCG@k within k, MRR over the "
        "full ranking; seen_filtered removes every item of the user's earlier events (never the target); "
        f"primary filter: {primary_filter}"
    )


def primary_filter_of(metrics: Mapping[str, Any]) -> str:
    """The primary filter mode named in `metrics["protocol"]` ("unfiltered" if not stated)."""
    found = _PRIMARY_FILTER.search(str(metrics.get("protocol", "")))
    return found.group(1) if found else ev.UNFILTERED


def dataset_summary(manifest: Mapping[str, Any], num_items: int | None = None) -> dict[str, Any]:
    """{"name", "users", "items", "events", "train/validation/test_examples"} from a prepare manifest."""
    counts = manifest.get("counts", {})
    examples = counts.get("examples", {})
    return {
        "name": manifest.get("dataset", ""),
        "users": counts.get("users"),
        "items": num_items if num_items is not None else counts.get("catalogue_items"),
        "events": counts.get("events", {}).get("kept"),
        **{f"{split}_examples": examples.get(split) for split in ("train", "validation", "test")},
    }


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars -> python, NaN/inf -> None, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _model_entry(model: ev.RankingResult | ModelMetrics) -> dict[str, dict[str, float | None]]:
    entry = {}
    for filter_name in ev.FILTERS:
        values = model.metrics(filter_name) if isinstance(model, ev.RankingResult) else model.get(filter_name, {})
        entry[filter_name] = {name: values.get(name) for name in MODEL_METRICS}
    return entry


def build_metrics(
    *,
    dataset: Mapping[str, Any],
    protocol: str,
    primary: str,
    models: Mapping[str, ev.RankingResult | ModelMetrics],
    behaviour: Mapping[str, float] | None = None,
    slices: Mapping[str, Any] | None = None,
    train: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The metrics.json document (see the module docstring); the primary model first."""
    if primary not in models:
        raise ValueError(f"`primary` must name one of the models {list(models)}. Received: primary={primary!r}")
    ordered = [primary] + [name for name in models if name != primary]
    document = {
        "dataset": dict(dataset),
        "protocol": protocol,
        "primary": primary,
        "models": {name: _model_entry(models[name]) for name in ordered},
        "behaviour": {name: (behaviour or {}).get(name) for name in BEHAVIOUR_METRICS},
        "slices": dict(slices or {}),
        "train": {name: (train or {}).get(name) for name in TRAIN_FIELDS},
    }
    return _clean(document)


def write_metrics_json(
    path: str,
    *,
    dataset: Mapping[str, Any],
    protocol: str,
    primary: str,
    models: Mapping[str, ev.RankingResult | ModelMetrics],
    behaviour: Mapping[str, float] | None = None,
    slices: Mapping[str, Any] | None = None,
    train: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Writes metrics.json to `path` (a file, or a directory to put metrics.json in); returns the document.

    Args:
      dataset: dataset name and counts (`dataset_summary`).
      protocol: `protocol_text(...)`, which names the primary filter mode.
      primary: the model the report is about; a key of `models`.
      models: name -> RankingResult, or {"unfiltered": {...}, "seen_filtered": {...}}.
      behaviour: `metrics.binary_metrics` of the behaviour head (None: nulls).
      slices: `slices.slice_metrics` of the primary model.
      train: {"epochs", "seconds", "examples_per_second"} (None: nulls).
    """
    document = build_metrics(
        dataset=dataset, protocol=protocol, primary=primary, models=models,
        behaviour=behaviour, slices=slices, train=train,
    )
    if not path.endswith(".json"):
        path = os.path.join(path, METRICS_FILE)
    io.makedirs(os.path.dirname(path) or ".")
    io.write_text(path, json.dumps(document, indent=2, allow_nan=False))
    log.info("Wrote %s", path)
    return document


# --- Figures -------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str) -> None:
    buffer = io_lib.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    io.write_bytes(path, buffer.getvalue())


def _value(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def plot_models(path: str, metrics: Mapping[str, Any], filter_name: str) -> None:
    """Grouped bars: per metric in `PLOTTED_METRICS`, one bar per model (primary first)."""
    models = list(metrics["models"])
    figure = _figure(max(7.5, 3.0 + 0.45 * len(models) * len(PLOTTED_METRICS)), 3.8)
    ax = figure.add_subplot()
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(PLOTTED_METRICS))
    for i, name in enumerate(models):
        values = [_value(metrics["models"][name][filter_name].get(m)) for m in PLOTTED_METRICS]
        bars = ax.bar(
            x + (i - (len(models) - 1) / 2) * width, values, width, label=name, color=_COLORS[i % len(_COLORS)],
            edgecolor="black" if name == metrics["primary"] else "none", linewidth=1.2,
        )
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, [m.upper() for m in PLOTTED_METRICS])
    ax.set_ylabel("score")
    figure.suptitle(f"{metrics['primary']} vs baselines ({filter_name}, {metrics['dataset'].get('name', '')})")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_ylim(0, max(0.05, 1.18 * np.nanmax([
        _value(metrics["models"][n][filter_name].get(m)) for n in models for m in PLOTTED_METRICS
    ] + [0.0])))
    _save(figure, path)


def plot_training(path: str, history: Mapping[str, Sequence[float]]) -> None:
    """Left: every "*loss*" curve per epoch; right: the other curves (e.g. val_ndcg@10)."""
    losses = {k: v for k, v in history.items() if "loss" in k and len(v)}
    others = {k: v for k, v in history.items() if "loss" not in k and len(v)}
    panels = [p for p in ((losses, "loss"), (others, "validation metric")) if p[0]]
    figure = _figure(5.0 * max(len(panels), 1), 3.4)
    for i, (curves, ylabel) in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), i + 1)
        for j, (name, values) in enumerate(curves.items()):
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, marker="o", markersize=3, label=name, color=_COLORS[j % len(_COLORS)])
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(figure, path)


def plot_slices(path: str, slices: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str = "hr@10") -> None:
    """One panel per slicing: bars of `metric` per slice, annotated with the example count."""
    slicings = [name for name, groups in slices.items() if groups]
    figure = _figure(4.2 * max(len(slicings), 1), 3.6)
    for i, slicing in enumerate(slicings):
        groups = slices[slicing]
        labels = list(groups)
        values = [_value(groups[g].get(metric)) for g in labels]
        values = [v if np.isfinite(v) else 0.0 for v in values]  # an empty slice shows as n=0
        ax = figure.add_subplot(1, len(slicings), i + 1)
        bars = ax.bar(np.arange(len(labels)), values, color=_COLORS[i % len(_COLORS)])
        ax.bar_label(bars, labels=[f"n={groups[g]['count']}" for g in labels], fontsize=7, padding=1)
        crowded = len(labels) > 4
        ax.set_xticks(
            np.arange(len(labels)), labels, rotation=35 if crowded else 0, ha="right" if crowded else "center", fontsize=8
        )
        ax.set_title(slicing.replace("_", " "))
        ax.set_ylabel(metric.upper())
        ax.set_ylim(0, max(0.05, 1.2 * max(values, default=0.0)))
    _save(figure, path)


# --- Markdown --------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) if not isinstance(v, str) else v for v in row) + " |" for row in rows]
    return lines


def _model_table(metrics: Mapping[str, Any], filter_name: str) -> list[str]:
    rows = []
    for name, entry in metrics["models"].items():
        label = f"**{name}**" if name == metrics["primary"] else name
        rows.append([label] + [entry[filter_name].get(m) for m in MODEL_METRICS])
    return _table(["model"] + [m.upper() if m != "coverage" else "coverage@10" for m in MODEL_METRICS], rows)


def _comparison(metrics: Mapping[str, Any], filter_name: str) -> str:
    primary = metrics["primary"]
    baselines = [n for n in metrics["models"] if n != primary]
    if not baselines:
        return ""
    value = metrics["models"][primary][filter_name].get("ndcg@10")
    best = max(baselines, key=lambda n: _value(metrics["models"][n][filter_name].get("ndcg@10")))
    reference = metrics["models"][best][filter_name].get("ndcg@10")
    if value is None or reference is None:
        return ""
    change = f"{100.0 * (value / reference - 1.0):+.1f}%" if reference else "n/a"
    return (
        f"NDCG@10 ({filter_name}): {primary} {value:.4f} vs the best baseline, {best}, "
        f"{reference:.4f} ({change})."
    )


def write_report(path_dir: str, metrics: Mapping[str, Any], history: Mapping[str, Sequence[float]] | None = None) -> str:
    """Writes report.md with models.png, training.png (if `history`) and slices.png into `path_dir`.

    Args:
      path_dir: output directory (created; local or any tf.io.gfile path).
      metrics: the metrics.json document (`build_metrics` / `write_metrics_json`).
      history: per-epoch curves, e.g. {"loss": [...], "val_ndcg@10": [...]}.

    Returns:
      The path of report.md.
    """
    missing = [key for key in TOP_LEVEL_KEYS if key not in metrics]
    if missing:
        raise ValueError(f"`metrics` lacks {missing}: pass the document `write_metrics_json` returns.")
    io.makedirs(path_dir)
    primary_filter = primary_filter_of(metrics)
    other_filter = ev.SEEN_FILTERED if primary_filter == ev.UNFILTERED else ev.UNFILTERED
    dataset = metrics["dataset"]
    lines = [f"# Evaluation: {metrics['primary']} on {dataset.get('name') or 'the dataset'}", ""]
    lines += [f"Protocol: {metrics['protocol']}.", ""]
    lines += ["## Data", ""]
    lines += _table(["what", "count"], [[str(k), v] for k, v in dataset.items() if k != "name"]) + [""]

    lines += [f"## Models ({primary_filter}, the primary filter)", ""]
    lines += _model_table(metrics, primary_filter) + [""]
    comparison = _comparison(metrics, primary_filter)
    if comparison:
        lines += [comparison, ""]
    plot_models(os.path.join(path_dir, "models.png"), metrics, primary_filter)
    lines += ["![models](models.png)", ""]
    lines += [f"### {other_filter}", ""]
    lines += _model_table(metrics, other_filter) + [""]

    lines += ["## Training", ""]
    train = metrics["train"]
    if any(v is not None for v in train.values()):
        lines += _table(list(TRAIN_FIELDS), [[train[k] for k in TRAIN_FIELDS]]) + [""]
    if history and any(len(v) for v in history.values()):
        plot_training(os.path.join(path_dir, "training.png"), history)
        lines += ["![training curves](training.png)", ""]
    elif not any(v is not None for v in train.values()):
        lines += ["No training information.", ""]

    behaviour = metrics["behaviour"]
    if any(v is not None for v in behaviour.values()):
        lines += ["## Behaviour head", ""]
        lines += _table([m.upper() if m == "auc" else m for m in BEHAVIOUR_METRICS],
                        [[behaviour[m] for m in BEHAVIOUR_METRICS]]) + [""]

    slices = metrics["slices"]
    if slices:
        lines += [f"## Slices ({metrics['primary']}, {primary_filter})", ""]
        for slicing, groups in slices.items():
            lines += [f"### {slicing.replace('_', ' ')}", ""]
            lines += _table(
                ["slice", "count", "HR@10", "NDCG@10", "MRR"],
                [[g, s.get("count"), s.get("hr@10"), s.get("ndcg@10"), s.get("mrr")] for g, s in groups.items()],
            ) + [""]
        plot_slices(os.path.join(path_dir, "slices.png"), slices)
        lines += [
            "Cold items had no training-period events; time of day is the request's local time; regions are "
            "coarse geo cells of the request place, named by their south-west corner (lat,lon).",
            "",
            "![slices](slices.png)",
            "",
        ]

    path = os.path.join(path_dir, REPORT_FILE)
    io.write_text(path, "\n".join(lines))
    log.info("Wrote %s", path)
    return path
