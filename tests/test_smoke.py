"""Smoke: synthetic data -> prepare -> analyse -> train one epoch -> evaluate, through the CLI."""

import json

from tests.models.test_text_tower import write_tiny_checkpoint
from trainer import task


def test_all_stages_write_metrics_and_report(tmp_path, capsys):
    bert = write_tiny_checkpoint(tmp_path / "bert")
    job = tmp_path / "job"
    code = task.main([
        "--stage=all", f"--job-dir={job}", "--synthetic-users=60", "--synthetic-items=40", "--synthetic-events=3000",
        "--epochs=1", "--batch-size=64", f"--bert-path={bert}", "--max-tokens=16", "--embedding-dim=8", "--gru-units=8",
    ], {})
    assert code == 0
    out = capsys.readouterr().out
    assert "metrics:" in out and "report:" in out
    metrics = json.loads((job / "metrics.json").read_text())
    assert set(metrics) == {"dataset", "protocol", "primary", "models", "behaviour", "slices", "train"}
    assert set(metrics["models"]) == {"st_gru_bert", "popularity", "repeat_frequency", "cooccurrence", "tfrs_two_tower_ids"}
    for model in metrics["models"].values():
        for mode in ("unfiltered", "seen_filtered"):
            assert set(model[mode]) == {"hr@10", "ndcg@10", "hr@20", "ndcg@20", "hr@50", "mrr", "coverage"}
            assert all(0.0 <= v <= 1.0 for v in model[mode].values())
    assert {"auc", "accuracy", "precision", "recall", "f1"} <= set(metrics["behaviour"])
    assert {"epochs", "seconds", "examples_per_second"} <= set(metrics["train"]) and metrics["train"]["epochs"] == 1
    assert {"item", "time_of_day", "region"} <= set(metrics["slices"]["st_gru_bert"])
    report = (job / "report" / "report.md").read_text()
    for figure in ("models.png", "training.png", "slices.png"):
        assert figure in report and (job / "report" / figure).exists()
    # Text vectors were computed once and cached; the weights were saved for --stage=evaluate.
    assert (job / "model" / "text_vectors.npy").exists() and (job / "model" / "weights" / "model.index").exists()
    code = task.main(["--stage=evaluate", f"--job-dir={job}", f"--bert-path={bert}", "--max-tokens=16",
                      "--embedding-dim=8", "--gru-units=8", "--baselines=popularity"], {})
    assert code == 0
    again = json.loads((job / "metrics.json").read_text())
    assert again["models"]["st_gru_bert"] == metrics["models"]["st_gru_bert"]
    # Flags that differ from training (text off here) never change the evaluated model.
    code = task.main(["--stage=evaluate", f"--job-dir={job}", "--text-mode=off", "--baselines=popularity"], {})
    assert code == 0
    assert json.loads((job / "metrics.json").read_text())["models"]["st_gru_bert"] == metrics["models"]["st_gru_bert"]
