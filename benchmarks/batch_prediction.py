"""Batch prediction throughput: `serving.batch_predict` on Beam's DirectRunner vs a
plain in-process loop over the same SavedModel, same instances, same batch size,
side by side in one run (aim: Beam >= 0.7x the loop).

Usage: python benchmarks/batch_prediction.py [--job-dir DIR] [--copies 5] [--batch-size 64]
Without --job-dir it trains a 1-epoch model on the embedded synthetic world and
exports it. The instances are every user of the prepared data (`--copies` times).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trainer  # noqa: E402,F401  (Keras 2 before TensorFlow)
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401

from serving import batch_predict, client, contract  # noqa: E402
from serving.servable import versions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job-dir", default="")
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    job_dir = pathlib.Path(args.job_dir or tempfile.mkdtemp(prefix="batch-bench-"))
    base = job_dir / "export" / "recommender"
    if not versions(str(base)):
        subprocess.run([sys.executable, "-m", "trainer.task", "--stage=all", f"--job-dir={job_dir}", "--epochs=1",
                        "--baselines="], cwd=ROOT, check=True)
    users = batch_predict.nightly_instances(str(job_dir), client.DEFAULT_HISTORY_LENGTH) * args.copies
    work = pathlib.Path(tempfile.mkdtemp(prefix="batch-bench-io-"))
    instances = work / "instances.jsonl"
    instances.write_text("\n".join(json.dumps(u) for u in users) + "\n")
    print(f"{len(users)} instances, batch size {args.batch_size}", flush=True)

    started = time.perf_counter()
    model = tf.saved_model.load(str(base / str(versions(str(base))[-1])))
    function = model.signatures[contract.RECOMMEND]
    parsed = [json.loads(line) for line in instances.read_text().splitlines()]
    count = 0
    with open(work / "loop.jsonl", "w") as out:
        for start in range(0, len(parsed), args.batch_size):
            part = parsed[start : start + args.batch_size]
            inputs = client.recommend_inputs(part)
            outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
            for instance, items in zip(part, client.recommendations({k: v.numpy() for k, v in outputs.items()})):
                out.write(json.dumps({"instance": instance, "prediction": {"items": items}}, sort_keys=True) + "\n")
                count += 1
    loop_seconds = time.perf_counter() - started
    loop_rate = count / loop_seconds

    summary = batch_predict.run(str(base), str(work / "beam"), str(instances), batch_size=args.batch_size,
                                beam_args=["--runner=DirectRunner"])
    beam_rate = summary["inputs"] / summary["seconds"]
    print(f"in-process loop: {count} instances in {loop_seconds:.1f} s = {loop_rate:.0f}/s (model load included)")
    print(f"Beam DirectRunner: {summary['inputs']} instances ({summary['errors']} errors) in {summary['seconds']:.1f} s = "
          f"{beam_rate:.0f}/s (pipeline start and model load included)")
    print(f"Beam / loop = {beam_rate / loop_rate:.2f}x (aim >= 0.7x)")


if __name__ == "__main__":
    main()
