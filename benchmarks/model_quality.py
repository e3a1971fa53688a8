"""Model quality against the peers in ../shared/benchmarks/PEERS.md, and the cold-item gain of text.

Runs the real CLI (`python -m trainer.task --stage=all`) in subprocesses and
prints, side by side from the same runs:
  1. MovieLens-100K (seen items removed) and Foursquare NYC (unfiltered):
     the model's HR@10 / NDCG@10 against the best peer, as ratios (target >= 1.10),
     plus our own baselines and the training time to the best epoch;
  2. cold items: HR@50 on the cold-item slice of the synthetic world with the text
     tower on vs off (target >= 3x), also split into targets the user already had
     in the history (the repeat head scores those from the history) and targets
     the user meets for the first time ("cold_new": only side information helps),
     with all item attributes and with text as the only one.

Usage: python benchmarks/model_quality.py [--only movielens|foursquare|cold] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from trainer.evaluation.report import primary_filter_of  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PEERS = SHARED / "benchmarks" / "peers.json"
DATASETS = {
    "movielens": dict(
        name="movielens-100k", mode="seen_filtered",
        flags=["--data=movielens-100k", f"--data-path={SHARED / 'data' / 'movielens-100k'}"],
    ),
    "foursquare": dict(
        name="foursquare-nyc", mode="unfiltered",
        flags=["--data=foursquare-csv", f"--data-path={SHARED / 'data' / 'foursquare-nyc'}",
               # People return to places months apart; the model peaks within a few epochs.
               "--timezone=America/New_York", "--max-history=100", "--epochs=8", "--patience=2"],
    ),
}


def run_job(job_dir: pathlib.Path, flags: list[str]) -> tuple[dict, float]:
    started = time.time()
    command = [sys.executable, "-m", "trainer.task", "--stage=all", f"--job-dir={job_dir}", *flags]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)
    return json.loads((job_dir / "metrics.json").read_text()), time.time() - started


def quality(key: str, work: pathlib.Path, extra: list[str]) -> None:
    spec = DATASETS[key]
    if not (SHARED / "data").exists():
        print(f"skip {key}: ../shared/data is absent")
        return
    metrics, seconds = run_job(work / key, spec["flags"] + extra)
    peers = json.loads(PEERS.read_text())[spec["name"]]
    mode = spec["mode"]
    train = metrics["train"]
    print(f"\n== {spec['name']} ({mode}); whole run {seconds:.0f} s; training {train}")
    if train.get("seconds_to_best_epoch") is not None:
        print(f"best epoch {train['best_epoch']} reached after {train['seconds_to_best_epoch'] / 60:.1f} min "
              "of training + validation (MovieLens target < 10 min)")
    print(f"{'model':28s} {'HR@10':>8s} {'NDCG@10':>8s} {'HR@20':>8s} {'NDCG@20':>8s} {'MRR':>8s}")
    rows = [(name, m[mode]) for name, m in metrics["models"].items()]
    rows += [(f"peer:{name}", p[mode]) for name, p in peers.items()]
    for name, m in rows:
        print(f"{name:28s} " + " ".join(f"{m.get(k, float('nan')):8.4f}" for k in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")))
    ours = metrics["models"][metrics["primary"]][mode]
    for metric in ("hr@10", "ndcg@10"):
        best_name, best = max(((n, p[mode][metric]) for n, p in peers.items()), key=lambda x: x[1])
        print(f"{metric}: model {ours[metric]:.4f} / best peer {best_name} {best:.4f} = {ours[metric] / best:.3f}x (target >= 1.10)")
    items = metrics["slices"][metrics["primary"]]["item"]
    print(f"cold-item test targets (no training events) under this protocol: {items['cold']['count']} of "
          f"{items['cold']['count'] + items['warm']['count']} (the cold-item target is measured on a temporal split)")


TEXT_ONLY = "--ignore-item-columns=category,location,price"


def cold_runs(work: pathlib.Path, runs: list[tuple[str, list[str]]], extra: list[str]) -> dict[str, dict[str, float]]:
    """Runs each (name, flags) job; prints and returns HR@50 of the cold slices per run."""
    hr: dict[str, dict[str, float]] = {}
    for mode, flags in runs:
        metrics, seconds = run_job(work / f"cold-{mode.replace('+', '-').replace(' ', '-')}", [*flags, "--baselines=", *extra])
        model_slices = metrics["slices"][metrics["primary"]]
        groups = {"cold": model_slices["item"]["cold"], "cold_new": model_slices["item_user"]["cold_new"],
                  "cold_repeat": model_slices["item_user"]["cold_repeat"]}
        overall = metrics["models"][metrics["primary"]][primary_filter_of(metrics)]
        hr[mode] = {name: group.get("hr@50") or 0.0 for name, group in groups.items()}
        print(f"text {mode}: " + "; ".join(f"{name} n={g['count']} HR@50 {hr[mode][name]:.4f}" for name, g in groups.items())
              + f"; all HR@10 {overall['hr@10']:.4f} NDCG@10 {overall['ndcg@10']:.4f} HR@50 {overall['hr@50']:.4f}"
              f" ({seconds:.0f} s)", flush=True)
    return hr


def print_ratios(hr: dict[str, dict[str, float]], on: str, off: str, label: str) -> None:
    for name in ("cold", "cold_new"):
        ratio = hr[on][name] / hr[off][name] if hr[off][name] else float("inf")
        # HR@50 is at most 1, so no text tower can take the ratio above 1 / (text off's HR@50).
        ceiling = 1.0 / hr[off][name] if hr[off][name] else float("inf")
        print(f"{label}: {name} HR@50, text on / off = {ratio:.2f}x (target >= 3; at most {ceiling:.2f}x here)")


def cold(work: pathlib.Path, extra: list[str]) -> None:
    """Cold-item HR@50 with text on / off, and with text pretrained on the catalogue (MLM).

    A temporal split (last 10% of time is test) so that items launched late are
    really cold: no training-period event at all (under leave-one-out almost every
    item has a training event: the `quality` runs print how many cold targets
    that protocol leaves). Twice: with every item attribute
    (category, store place, price and text), and with text as the only item
    attribute (news / video catalogues), where only the text tower can tell a new
    item from another.
    """
    extra = ["--split=temporal", *extra]
    pretrain_job = work / "cold-pretrained"
    prep = [sys.executable, "-m", "trainer.task", f"--job-dir={pretrain_job}", *extra]
    subprocess.run(prep[:3] + ["--stage=prepare"] + prep[3:], cwd=ROOT, check=True)
    subprocess.run(prep[:3] + ["--stage=pretrain-text"] + prep[3:], cwd=ROOT, check=True)
    mlm = json.loads((pretrain_job / "text_pretraining.json").read_text())
    print(f"MLM on the catalogue text: held-out loss {mlm['heldout_loss_before']:.3f} -> {mlm['heldout_loss_after']:.3f}, "
          f"accuracy {mlm['heldout_accuracy_before']:.3f} -> {mlm['heldout_accuracy_after']:.3f} ({mlm['seconds']:.0f} s)")
    hr = cold_runs(work, [
        ("frozen", ["--text-mode=frozen"]),
        ("off", ["--text-mode=off"]),
        ("frozen+pretrained", ["--text-mode=frozen", f"--bert-path={pretrain_job / 'text_pretrained'}"]),
        ("frozen text-only", ["--text-mode=frozen", TEXT_ONLY]),
        ("off text-only", ["--text-mode=off", TEXT_ONLY]),
    ], extra)
    print_ratios(hr, "frozen", "off", "all item attributes")
    print_ratios(hr, "frozen+pretrained", "off", "all item attributes, MLM-pretrained text")
    print_ratios(hr, "frozen text-only", "off text-only", "text the only item attribute")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["movielens", "foursquare", "cold"], action="append")
    parser.add_argument("--work-dir", default="")
    parser.add_argument("extra", nargs="*", help="extra trainer flags, after --")
    args = parser.parse_args()
    work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="model-quality-"))
    print(f"work dir: {work}; cores: {os.cpu_count()}")
    for key in args.only or ["movielens", "foursquare", "cold"]:
        if key == "cold":
            cold(work, args.extra)
        else:
            quality(key, work, args.extra)


if __name__ == "__main__":
    main()
