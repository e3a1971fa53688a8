"""Every baseline on a small synthetic prepare, checked against pandas references."""

import time

import numpy as np
import pandas as pd
import pytest

import trainer  # noqa: F401
from trainer.config import Config, DataConfig, SyntheticConfig
from trainer.data import dataset as data_lib
from trainer.data.prepare import prepare
from trainer.evaluation import baselines, evaluator, report, slices


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    job = tmp_path_factory.mktemp("job")
    config = Config(job_dir=str(job), data=DataConfig(synthetic=SyntheticConfig(num_users=60, num_items=40, num_events=3000)))
    return prepare(config).data_dir


def reference_ranks(data_dir):
    """Per test user: (popularity, repeat_frequency) ranks, unfiltered and seen-filtered, from the raw tables."""
    events = pd.read_parquet(f"{data_dir}/events.parquet")
    events = events.sort_values(["user_id", "timestamp", "_read_order"], kind="mergesort")
    items = evaluator.load_catalogue(data_dir).ids.tolist()
    pop = events[events["period"] == "train"]["item_id"].value_counts().reindex(items, fill_value=0).to_numpy(float)
    out = {}
    for user, rows in events.groupby("user_id", sort=False):
        if rows["period"].iloc[-1] != "test":
            continue
        target = items.index(rows["item_id"].iloc[-1])
        earlier = rows["item_id"].iloc[:-1].value_counts().reindex(items, fill_value=0).to_numpy(float)
        ranks = {}
        for name, score in (("popularity", pop), ("repeat_frequency", earlier * (pop.max() + 1) + pop)):
            ahead = score >= score[target]
            ahead[target] = False
            ranks[name, "unfiltered"] = int(ahead.sum())
            ranks[name, "seen_filtered"] = int((ahead & (earlier == 0)).sum())
        out[user] = ranks
    return out


def test_baselines_end_to_end(prepared, tmp_path):
    started = time.time()
    grid = [
        baselines.CooccurrenceParams(window=1, history=1, popularity_weight=1e-3),
        baselines.CooccurrenceParams(window=3, symmetric=True, history=5, decay=0.7, popularity_weight=1e-3),
    ]
    results = baselines.evaluate_baselines(prepared, baselines.BASELINES, tuning_grid=grid, two_tower_epochs=2, batch_size=64)
    assert list(results) == list(baselines.BASELINES)
    manifest = data_lib.read_manifest(prepared)
    num_test = manifest["counts"]["examples"]["test"]
    catalogue = evaluator.load_catalogue(prepared)
    for result in results.values():
        assert result.num_examples == num_test
        assert result.num_items == len(catalogue)
        for filter_name in evaluator.FILTERS:
            values = result.metrics(filter_name)
            assert 0.0 <= values["hr@10"] <= values["hr@20"] <= values["hr@50"] <= 1.0
            assert 0.0 < values["coverage"] <= 1.0

    # Popularity and repeat_frequency ranks equal an independent pandas computation.
    expected = reference_ranks(prepared)
    users = results["popularity"].fields["user_id"]
    for name in ("popularity", "repeat_frequency"):
        for filter_name in evaluator.FILTERS:
            got = results[name].ranks[filter_name]
            want = np.array([expected[u][name, filter_name] for u in users])
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {filter_name}")

    # The primary filter, slices, metrics.json and the report.
    primary_filter = evaluator.resolve_primary_filter("auto", results["popularity"].repeat_share)
    cut = manifest["feature_config"]["coarse_cell_degrees"]
    sliced = {name: slices.result_slices(r, primary_filter, catalogue, cut) for name, r in results.items()}
    assert sum(s["count"] for s in sliced["cooccurrence"]["time_of_day"].values()) == num_test
    assert sum(s["count"] for s in sliced["cooccurrence"]["item"].values()) == num_test
    metrics = report.build_metrics(
        dataset=manifest, primary="cooccurrence", primary_filter=primary_filter, results=results, slices=sliced
    )
    written = report.write_metrics_json(str(tmp_path / "eval"), metrics)
    assert set(written["models"]) == set(baselines.BASELINES)
    assert written["dataset"]["items"] == len(catalogue) and written["dataset"]["test_examples"] == num_test
    path = report.write_report(str(tmp_path / "eval"), written, {"loss": [2.0, 1.0], "val_ndcg@10": [0.1, 0.2]})
    for name in ("metrics.json", "models.png", "training.png", "slices.png"):
        assert (tmp_path / "eval" / name).exists()
    assert "cooccurrence" in open(path).read()
    assert time.time() - started < 120
