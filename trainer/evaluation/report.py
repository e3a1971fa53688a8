"""metrics.json and the evaluation report (Markdown + PNG plots) a person reads.

metrics.json has exactly these top-level keys (absent values are null, never NaN):
  {"dataset": {"name", "split", "users", "items", "events", "*_examples"},
   "protocol": "... primary filter: <unfiltered|seen_filtered>",
   "primary": "<model name>",
   "models": {"<name>": {"unfiltered": {hr@10, ndcg@10, hr@20, ndcg@20, hr@50, mrr, coverage},
                         "seen_filtered": {...}}, ...},          (the primary first)
   "behaviour": {auc, accuracy, precision, recall, f1, [descriptive extras]},
   "slices": {"<model name>": {slicing: {slice: {count, metric...}}}},
   "train": {epochs, seconds, examples_per_second, [extras: best_epoch, seconds_to_best_epoch]}}
The primary filter mode is stated inside "protocol" (`protocol_text` writes it,
`primary_filter_of` reads it back), so the top-level keys stay as above.
`build_metrics` assembles the document, `write_metrics_json` writes it and
`write_report` turns it into report.md with models.png, training.png, slices.png.

Figures use `matplotlib.figure.Figure` on the Agg canvas (no pyplot state).
"""

from __future__ import annotations

import io as io_lib
import json
import logging
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


def protocol_text(
    primary_filter: str, num_items: int | None, split: str = "test", split_kind: str = "leave-one-out"
) -> str:
    """The protocol sentence of metrics.json, naming the primary filter mode."""
    if primary_filter not in ev.FILTERS:
        raise ValueError(f"`primary_filter` must be one of {ev.FILTERS}. Received: primary_filter={primary_filter!r}")
    items = f"all {num_items} catalogue items" if num_items else "every catalogue item"
    return (
        f"{split_kind} split, {split} targets; {items} ranked per target; "
        "rank = other items scoring >= the target (pessimistic ties); HR@k, NDCG@k within k, MRR over the "
        "full ranking; seen_filtered removes every item of the user's earlier events (never the target); "
        f"primary filter: {primary_filter}"
    )


def primary_filter_of(metrics: Mapping[str, Any]) -> str:
    """The primary filter mode named in `metrics["protocol"]` ("unfiltered" if not stated)."""
    found = _PRIMARY_FILTER.search(str(metrics.get("protocol", "")))
    return found.group(1) if found else ev.UNFILTERED


def dataset_summary(manifest: Mapping[str, Any], num_items: int | None = None) -> dict[str, Any]:
    """{"name", "split", "users", "items", "events", "train/validation/test_examples"} from a prepare manifest."""
    counts = manifest.get("counts", {})
    examples = counts.get("examples", {})
    return {
        "name": manifest.get("dataset", ""),
        "split": manifest.get("split", {}).get("kind", ""),
        "users": counts.get("users"),
        "items": num_items if num_items is not None else counts.get("catalogue_items"),
        "events": counts.get("events", {}).get("kept"),
        **{f"{split}_examples": examples.get(split) for split in ("train", "validation", "test")},
    }


def _model_entry(model: ev.RankingResult | ModelMetrics) -> dict[str, dict[str, float | None]]:
    entry = {}
    for filter_name in ev.FILTERS:
        values = model.metrics(filter_name) if isinstance(model, ev.RankingResult) else model.get(filter_name, {})
        entry[filter_name] = {name: values.get(name) for name in MODEL_METRICS}
    return entry


def _with_required(values: Mapping[str, Any] | None, required: Sequence[str]) -> dict[str, Any]:
    """The required keys first (null when absent), then any extra descriptive keys."""
    values = dict(values or {})
    return {**{name: values.pop(name, None) for name in required}, **values}


def build_metrics(
    *,
    dataset: Mapping[str, Any],
    primary: str,
    primary_filter: str,
    results: Mapping[str, ev.RankingResult | ModelMetrics],
    behaviour: Mapping[str, Any] | None = None,
    slices: Mapping[str, Mapping[str, Any]] | None = None,
    train: Mapping[str, Any] | None = None,
    protocol: str | None = None,
) -> dict[str, Any]:
    """The metrics.json document (see the module docstring), JSON-safe.

    Args:
      dataset: a prepare manifest (summarised by `dataset_summary`) or a dict of
        the dataset's name and counts.
      primary: the model the report is about; a key of `results`.
      primary_filter: "unfiltered" or "seen_filtered" (`evaluator.resolve_primary_filter`).
      results: model name -> RankingResult, or {"unfiltered": {...}, "seen_filtered": {...}};
        written primary first.
      behaviour: `metrics.binary_metrics` of the behaviour head, optionally with
        descriptive extras (e.g. "positive", "count"); None: nulls.
      slices: model name -> `slices.slice_metrics` (the report shows the primary's).
      train: {"epochs", "seconds", "examples_per_second"} plus extras (e.g.
        "best_epoch"); None: nulls.
      protocol: the protocol sentence; default `protocol_text(primary_filter, N)`.
    """
    if primary not in results:
        raise ValueError(f"`primary` must name one of the results {list(results)}. Received: primary={primary!r}")
    if primary_filter not in ev.FILTERS:
        raise ValueError(f"`primary_filter` must be one of {ev.FILTERS}. Received: primary_filter={primary_filter!r}")
    unknown = sorted(set(slices or {}) - set(results))
    if unknown:
        raise ValueError(f"`slices` must be keyed by model name {list(results)}. Received unknown keys: {unknown}")
    first = results[primary]
    num_items = first.num_items if isinstance(first, ev.RankingResult) else None
    summary = dataset_summary(dataset, num_items) if "features" in dataset and "counts" in dataset else dict(dataset)
    if protocol is None:
        split_kind = summary.get("split") or "leave-one-out"
        protocol = protocol_text(primary_filter, summary.get("items") or num_items, split_kind=split_kind)
    elif _PRIMARY_FILTER.search(protocol) is None:
        protocol = f"{protocol.rstrip('. ')}; primary filter: {primary_filter}"
    elif primary_filter_of({"protocol": protocol}) != primary_filter:
        raise ValueError(f"`protocol` names another primary filter than primary_filter={primary_filter!r}: {protocol!r}")
    ordered = [primary] + [name for name in results if name != primary]
    document = {
        "dataset": summary,
        "protocol": protocol,
        "primary": primary,
        "models": {name: _model_entry(results[name]) for name in ordered},
        "behaviour": _with_required(behaviour, BEHAVIOUR_METRICS),
        "slices": {name: dict(slices[name]) for name in ordered if slices and name in slices},
        "train": _with_required(train, TRAIN_FIELDS),
    }
    return io.jsonable(document)


def write_metrics_json(path: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Writes the `build_metrics` document to `path` (a .json file, or a directory for metrics.json).

    Returns the document as written (strict JSON: NaN became null). Raises
    ValueError when `metrics` lacks a top-level key of `TOP_LEVEL_KEYS`.
    """
    keys = list(metrics)
    if sorted(keys) != sorted(TOP_LEVEL_KEYS):
        raise ValueError(
            f"`metrics` must have exactly the keys {list(TOP_LEVEL_KEYS)} (use `build_metrics`). Received: {keys}"
        )
    document = io.jsonable({key: metrics[key] for key in TOP_LEVEL_KEYS})
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


def plot_slices(
    path: str, slices: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]], metric: str = "hr@10"
) -> None:
    """One row per slicing: per slice, one bar per model (`slices`: model -> slicing -> slice -> stats)."""
    models = list(slices)
    primary = slices[models[0]]
    slicings = [name for name, groups in primary.items() if groups]
    figure = _figure(10.0, 3.0 * max(len(slicings), 1))
    width = 0.8 / max(len(models), 1)
    for i, slicing in enumerate(slicings):
        labels = list(primary[slicing])
        ax = figure.add_subplot(len(slicings), 1, i + 1)
        x = np.arange(len(labels))
        for j, model in enumerate(models):
            groups = slices[model].get(slicing, {})
            values = [_value(groups.get(g, {}).get(metric)) for g in labels]
            values = [v if np.isfinite(v) else 0.0 for v in values]  # an empty slice shows as 0
            ax.bar(x + (j - (len(models) - 1) / 2) * width, values, width, label=model,
                   color=_COLORS[j % len(_COLORS)], edgecolor="black" if j == 0 else "none", linewidth=0.8)
        ax.set_xticks(x, [f"{g}\nn={primary[slicing][g]['count']}" for g in labels], fontsize=8)
        ax.set_title(slicing.replace("_", " "), fontsize=10)
        ax.set_ylabel(metric.upper())
        if i == 0:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
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


def _slice_section(metrics: Mapping[str, Any], primary_filter: str) -> list[str]:
    slices = metrics["slices"]
    models = list(slices)
    primary = models[0]
    lines = [f"## Slices ({primary_filter}; HR@10 per model, NDCG@10 and MRR of {primary})", ""]
    for slicing, groups in slices[primary].items():
        lines += [f"### {slicing.replace('_', ' ')}", ""]
        header = ["slice", "count"] + [f"{m} HR@10" for m in models] + [f"{primary} NDCG@10", f"{primary} MRR"]
        rows = []
        for label, stats in groups.items():
            hr = [slices[m].get(slicing, {}).get(label, {}).get("hr@10") for m in models]
            rows.append([label, stats.get("count")] + hr + [stats.get("ndcg@10"), stats.get("mrr")])
        lines += _table(header, rows) + [""]
    return lines


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
        lines += _slice_section(metrics, primary_filter)
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
