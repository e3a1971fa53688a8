"""Training throughput: 2 workers (MultiWorkerMirroredStrategy over localhost, from
TF_CONFIG) vs 1 worker, same prepared data, same global batch, one run.

Usage: python benchmarks/multi_worker.py [--epochs 2] [--work-dir DIR] [-- extra trainer flags]
Both workers share this machine, so on a 2-core box they split the same cores:
the ratio measures the cost of the collective all-reduce here, not the speed-up
a cluster of separate machines would get.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ["--synthetic-users=2000", "--synthetic-items=1500", "--synthetic-events=100000", "--text-mode=off", "--baselines="]


def _ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def train(job: pathlib.Path, flags: list[str], workers: int) -> float:
    """Examples/s of the training epochs (from the chief's training.json)."""
    for name in ("model", "checkpoints", "logs"):
        shutil.rmtree(job / name, ignore_errors=True)
    command = [sys.executable, "-m", "trainer.task", "--stage=train", f"--job-dir={job}", *flags]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "CLUSTER_SPEC")}
    started = time.time()
    if workers == 1:
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        cluster = {"worker": [f"localhost:{p}" for p in _ports(workers)]}
        processes = [
            subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(env, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})))
            for i in range(workers)
        ]
        if any(p.wait() != 0 for p in processes):
            raise RuntimeError("a worker failed")
    wall = time.time() - started
    training = json.loads((job / "model" / "training.json").read_text())
    manifest = json.loads((job / "data" / "manifest.json").read_text())
    examples = manifest["counts"]["examples"]["train"] * training["epochs"]
    rate = examples / training["seconds"]
    print(f"{workers} worker(s): {training['epochs']} epochs, {training['seconds']:.0f} s training "
          f"({wall:.0f} s wall with start-up) = {rate:.0f} examples/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--work-dir", default="")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    job = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="multi-worker-")) / "job"
    flags = [*DATA, f"--epochs={args.epochs}", "--patience=100", *args.extra]
    subprocess.run([sys.executable, "-m", "trainer.task", "--stage=prepare", f"--job-dir={job}", *flags], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    one = train(job, flags, 1)
    two = train(job, flags, 2)
    print(f"2 workers / 1 worker = {two / one:.2f}x on {os.cpu_count()} cores (both workers on this machine)")


if __name__ == "__main__":
    main()
