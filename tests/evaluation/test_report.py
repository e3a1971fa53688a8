"""metrics.json shape and the Markdown report with its plots."""

import json
import math

import pytest

import trainer  # noqa: F401
from trainer.evaluation import report

MODEL = {"hr@10": 0.2, "ndcg@10": 0.1, "hr@20": 0.3, "ndcg@20": 0.12, "hr@50": 0.5, "mrr": 0.09, "coverage": 0.4}
SLICES = {"time_of_day": {"night": {"count": 2, "hr@10": 0.5}, "morning": {"count": 0, "hr@10": None}}}


def build(primary_filter="seen_filtered", **overrides):
    parts = dict(
        dataset={"name": "tiny", "users": 3, "items": 5},
        primary="model",
        primary_filter=primary_filter,
        results={
            "popularity": {"unfiltered": dict(MODEL, mrr=math.nan), "seen_filtered": MODEL},
            "model": {"unfiltered": MODEL, "seen_filtered": dict(MODEL, **{"hr@10": 0.25})},
        },
        behaviour={"auc": 0.7, "accuracy": 0.6, "precision": 0.5, "recall": 0.4, "f1": 0.44, "positive": "purchase"},
        slices={"model": SLICES, "popularity": SLICES},
        train={"epochs": 3, "seconds": 12.5, "examples_per_second": 800.0, "best_epoch": 2},
    )
    parts.update(overrides)
    return report.build_metrics(**parts)


def test_metrics_json_has_exactly_the_documented_shape(tmp_path):
    written = report.write_metrics_json(str(tmp_path / "metrics.json"), build())
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == written
    assert list(on_disk) == ["dataset", "protocol", "primary", "models", "behaviour", "slices", "train"]
    assert on_disk["primary"] == "model"
    assert list(on_disk["models"]) == ["model", "popularity"]  # the primary first
    for entry in on_disk["models"].values():
        assert list(entry) == ["unfiltered", "seen_filtered"]
        for values in entry.values():
            assert list(values) == ["hr@10", "ndcg@10", "hr@20", "ndcg@20", "hr@50", "mrr", "coverage"]
    assert on_disk["models"]["popularity"]["unfiltered"]["mrr"] is None  # NaN -> null, strict JSON
    assert list(on_disk["behaviour"])[:5] == ["auc", "accuracy", "precision", "recall", "f1"]
    assert list(on_disk["train"])[:3] == ["epochs", "seconds", "examples_per_second"]
    assert list(on_disk["slices"]) == ["model", "popularity"]
    assert report.primary_filter_of(on_disk) == "seen_filtered"
    assert "all 5 catalogue items" in on_disk["protocol"]


def test_missing_parts_are_null_not_absent(tmp_path):
    written = report.write_metrics_json(
        str(tmp_path),  # a directory: metrics.json inside
        report.build_metrics(dataset={}, primary="m", primary_filter="unfiltered", results={"m": {"unfiltered": MODEL}}),
    )
    assert (tmp_path / "metrics.json").exists()
    assert written["behaviour"] == {k: None for k in ("auc", "accuracy", "precision", "recall", "f1")}
    assert written["train"] == {"epochs": None, "seconds": None, "examples_per_second": None}
    assert written["models"]["m"]["seen_filtered"]["hr@10"] is None
    assert written["slices"] == {}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="primary"):
        build(primary="absent")
    with pytest.raises(ValueError, match="primary_filter"):
        build(primary_filter="both")
    with pytest.raises(ValueError, match="slices"):
        build(slices={"time_of_day": {}})  # must be keyed by model
    with pytest.raises(ValueError, match="keys"):
        report.write_metrics_json("/tmp/unused.json", {"models": {}})


def test_report_files_exist(tmp_path):
    path = report.write_report(str(tmp_path / "report"), build(), {"loss": [3.0, 2.0, 1.5], "val_ndcg@10": [0.1, 0.2, 0.25]})
    text = open(path).read()
    for name in ("models.png", "training.png", "slices.png"):
        assert (tmp_path / "report" / name).stat().st_size > 1000
        assert f"({name})" in text
    assert "seen_filtered, the primary filter" in text
    assert "| **model** | 0.2500 |" in text  # the primary model's seen_filtered HR@10


def test_report_without_history_or_slices(tmp_path):
    report.write_report(str(tmp_path / "r"), build(slices=None), None)
    assert not (tmp_path / "r" / "training.png").exists()
    assert not (tmp_path / "r" / "slices.png").exists()
    assert (tmp_path / "r" / "report.md").exists() and (tmp_path / "r" / "models.png").exists()
