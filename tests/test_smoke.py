"""Smoke: synthetic data -> prepare -> analyse -> train one epoch -> evaluate, through the CLI."""

import json

import numpy as np

from tests.models.test_text_tower import write_tiny_checkpoint
from trainer import task, text_vectors
from trainer.config import TextConfig
from trainer.data import prepare
from trainer.models.catalogue import Catalogue


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
    # Keys alone prove nothing (the report fills absent ones with null): the values must have been measured.
    behaviour = metrics["behaviour"]
    assert all(isinstance(behaviour[k], float) and 0.0 <= behaviour[k] <= 1.0
               for k in ("auc", "accuracy", "precision", "recall", "f1")), behaviour
    assert behaviour["count"] > 0
    train = metrics["train"]
    assert train["epochs"] == 1 and train["seconds"] > 0 and train["examples_per_second"] > 0, train
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


def test_pretrain_text_stage_adapts_the_checkpoint_that_training_then_uses(tmp_path, capsys):
    bert = write_tiny_checkpoint(tmp_path / "bert")
    job = tmp_path / "job"
    common = [f"--job-dir={job}", "--max-tokens=16", "--embedding-dim=8", "--gru-units=8"]
    assert task.main(["--stage=prepare", "--synthetic-users=30", "--synthetic-items=40", "--synthetic-events=1200",
                      *common], {}) == 0
    assert task.main(["--stage=pretrain-text", f"--bert-path={bert}", "--pretrain-epochs=1", *common], {}) == 0
    summary = json.loads((job / "text_pretraining.json").read_text())
    assert summary["num_train_texts"] + summary["num_heldout_texts"] >= 30
    assert all(summary[k] > 0 for k in ("heldout_loss_before", "heldout_loss_after", "heldout_masked_tokens"))
    adapted = job / "text_pretrained"
    assert all((adapted / name).is_file() for name in ("config.json", "vocab.txt", "model.safetensors"))
    assert "text_pretrained" in capsys.readouterr().out

    assert task.main(["--stage=train", "--epochs=1", "--batch-size=64", f"--bert-path={adapted}", *common], {}) == 0
    assert json.loads((job / "model" / "config.json").read_text())["text"]["bert_path"] == str(adapted)
    # The cached text vectors are the adapted encoder's, not the original's.
    texts = Catalogue.load(prepare.data_dir(str(job))).texts
    cached = np.load(job / "model" / "text_vectors.npy")
    original = text_vectors.catalogue_text_vectors(TextConfig(bert_path=bert, max_tokens=16), texts, str(tmp_path / "o"))
    assert cached.shape == original.shape and not np.allclose(cached, original, atol=1e-4)
