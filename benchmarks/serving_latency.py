"""Serving latency and throughput, measured side by side in one run:

  1. `serving_default` at batch 1: p50 / p99 over gRPC (our TF-Serving-compatible
     server) vs the same signature called in-process; the p50 ratio is the server's
     overhead (aim <= 1.2x).
  2. Throughput (requests/s) at concurrency 1, 4 and 16, server-side batching on vs off.
  3. `retrieve` latency at batch 1 as the catalogue grows 10K -> 100K -> 1M items,
     next to the memory-bandwidth floor: bytes of item vectors read / measured
     read bandwidth (aim within 2x).

Usage: python benchmarks/serving_latency.py [--job-dir DIR] [--requests 300] [--seconds 8]
Without --job-dir it trains a 1-epoch model on the embedded synthetic world and
exports it (a few minutes). Prints a table; writes serving_latency.json and .png
into the job directory.
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
import threading
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trainer  # noqa: E402,F401  (Keras 2 before TensorFlow)
import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from serving import contract, tensors  # noqa: E402
from serving.key_index import assign  # noqa: E402
from serving.servable import WARMUP_PATH, versions  # noqa: E402
from trainer.data import dataset, prepare  # noqa: E402

DTYPES = {t.name: t.dtype for t in contract.INPUTS[contract.RECOMMEND]}


def ensure_export(job_dir: pathlib.Path) -> pathlib.Path:
    base = job_dir / "export" / "recommender"
    if not versions(str(base)):
        command = [sys.executable, "-m", "trainer.task", "--stage=all", f"--job-dir={job_dir}", "--epochs=1", "--baselines="]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
    return base


def single_requests(job_dir: pathlib.Path, count: int) -> list[dict[str, np.ndarray]]:
    """`count` batch-1 recommend requests from the test split (k=10, no exclusions, no MMR)."""
    out = []
    for batch in dataset.make_dataset(prepare.data_dir(str(job_dir)), "test", 1):
        query = {t.name: batch[t.name].numpy() for t in contract.QUERY_INPUTS}
        out.append({**query, "k": np.array([10], np.int32), "exclusions": np.full([1, 1], "", object),
                    "diversity": np.zeros([1], np.float32)})
        if len(out) == count:
            break
    return out


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def in_process_latency(function, requests) -> dict[str, float]:
    for r in requests[:20]:
        function(**{k: tf.constant(v) for k, v in r.items()})
    times = []
    for r in requests:
        started = time.perf_counter()
        out = function(**{k: tf.constant(v) for k, v in r.items()})
        _ = out["item_ids"].numpy()
        times.append(time.perf_counter() - started)
    return percentiles(times)


def grpc_latency(stub, requests) -> dict[str, float]:
    protos = [tensors.predict_request("recommender", contract.RECOMMEND, r, DTYPES) for r in requests]
    for p in protos[:20]:
        stub.Predict(p, timeout=60)
    times = []
    for p in protos:
        started = time.perf_counter()
        response = stub.Predict(p, timeout=60)
        _ = tf.make_ndarray(response.outputs["item_ids"])
        times.append(time.perf_counter() - started)
    return percentiles(times)


def throughput(address: str, requests, concurrency: int, seconds: float) -> float:
    protos = [tensors.predict_request("recommender", contract.RECOMMEND, r, DTYPES) for r in requests]
    done = []
    stop = threading.Event()

    def worker(offset: int):
        channel = grpc.insecure_channel(address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        i, count = offset, 0
        while not stop.is_set():
            stub.Predict(protos[i % len(protos)], timeout=120)
            i += concurrency
            count += 1
        done.append(count)
        channel.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - started)


class ServerProcess:
    """`python -m serving.server` in its own process (as in production: no GIL shared with the client)."""

    def __init__(self, base: pathlib.Path, *flags: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        command = [sys.executable, "-m", "serving.server", "--model-name=recommender", f"--model-base-path={base}",
                   f"--port={port}", "--file-system-poll-wait-seconds=0", *flags]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in self.process.stdout:
            if line.startswith("Serving"):
                break
        else:
            raise RuntimeError(f"server did not start: {command}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def scan_latency(model, sizes_done: int, repeats: int = 30) -> float:
    """p50 ms of the catalogue scan alone: one query vector x all item vectors -> top 10."""
    vectors = model.catalogue.vectors
    query = tf.math.l2_normalize(tf.random.normal([1, int(vectors.shape[1])]), axis=-1)
    scan = tf.function(lambda q: tf.math.top_k(tf.matmul(q, vectors, transpose_b=True), 10).indices)
    scan(query).numpy()
    times = sorted(_timed(lambda: scan(query).numpy()) for _ in range(repeats))
    return times[len(times) // 2] * 1000


def read_bandwidth_gbs(megabytes: int = 512) -> float:
    """Best of 5 reads of a large float32 array (tf.reduce_sum streams it once)."""
    data = tf.random.uniform([megabytes * 1024 * 1024 // 4])
    total = tf.function(lambda x: tf.reduce_sum(x))
    total(data)
    best = min(_timed(lambda: total(data).numpy()) for _ in range(5))
    return megabytes * 1024 * 1024 / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def catalogue_scaling(version: pathlib.Path, request, sizes, bandwidth_gbs: float, repeats: int = 30) -> list[dict[str, float]]:
    """`retrieve` at batch 1 on a loaded version whose catalogue is replaced by N random unit vectors."""
    model = tf.saved_model.load(str(version))
    catalogue = model.catalogue
    dim = int(catalogue.vectors.shape[1])
    retrieve = model.signatures[contract.RETRIEVE]
    inputs = {k: tf.constant(v) for k, v in request.items() if k != "diversity"}
    rng = np.random.default_rng(0)
    rows = []
    for size in sizes:
        vectors = rng.standard_normal([size, dim]).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = np.array([f"x{i}" for i in range(size)], object)
        assign(catalogue.index, ids)
        catalogue.vectors.assign(vectors)
        catalogue.latitudes.assign(np.full([size], np.nan, np.float32))
        catalogue.longitudes.assign(np.full([size], np.nan, np.float32))
        for _ in range(3):
            retrieve(**inputs)["item_ids"].numpy()
        times = sorted(_timed(lambda: retrieve(**inputs)["item_ids"].numpy()) for _ in range(repeats))
        floor_ms = size * dim * 4 / (bandwidth_gbs * 1e9) * 1000
        p50 = times[len(times) // 2] * 1000
        scan = scan_latency(model, size, repeats)
        rows.append({"items": size, "p50_ms": p50, "scan_p50_ms": scan, "floor_ms": floor_ms, "ratio": p50 / floor_ms,
                     "scan_ratio": scan / floor_ms})
        print(f"  {size:>9,d} items: retrieve signature p50 {p50:8.2f} ms ({p50 / floor_ms:6.2f}x) | catalogue scan "
              f"p50 {scan:8.2f} ms ({scan / floor_ms:6.2f}x) | floor {floor_ms:7.2f} ms", flush=True)
    return rows


def plot(results: dict, path: pathlib.Path) -> None:
    import matplotlib  # pylint: disable=g-import-not-at-top

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for mode in ("off", "on"):
        points = results["throughput"][mode]
        axes[0].plot(list(map(int, points)), list(points.values()), marker="o", label=f"batching {mode}")
    axes[0].set(xlabel="concurrent clients", ylabel="requests / s", title="serving_default throughput (batch 1)")
    axes[0].legend()
    scaling = results["catalogue_scaling"]
    sizes = [r["items"] for r in scaling]
    axes[1].loglog(sizes, [r["p50_ms"] for r in scaling], marker="o", label="retrieve signature p50")
    axes[1].loglog(sizes, [r["scan_p50_ms"] for r in scaling], marker="s", label="catalogue scan p50")
    axes[1].loglog(sizes, [r["floor_ms"] for r in scaling], linestyle="--", label="bandwidth floor")
    axes[1].set(xlabel="catalogue items", ylabel="ms", title="retrieval latency vs catalogue size")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job-dir", default="")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    job_dir = pathlib.Path(args.job_dir or tempfile.mkdtemp(prefix="serving-bench-"))
    base = ensure_export(job_dir)
    version = base / str(versions(str(base))[-1])
    requests = single_requests(job_dir, args.requests)
    results: dict = {"version": str(version), "requests": len(requests)}

    # A private copy of the version: the scaling test rewrites a loaded copy's catalogue in memory only.
    work = pathlib.Path(tempfile.mkdtemp(prefix="serving-base-"))
    shutil.copytree(version, work / "recommender" / "1")
    assert (work / "recommender" / "1" / WARMUP_PATH).exists()

    print("1. serving_default, batch 1", flush=True)
    loaded = tf.saved_model.load(str(version))
    results["in_process"] = in_process_latency(loaded.signatures[contract.RECOMMEND], requests)
    server = ServerProcess(work / "recommender")
    channel = grpc.insecure_channel(server.address)
    results["grpc"] = grpc_latency(prediction_service_pb2_grpc.PredictionServiceStub(channel), requests)
    channel.close()
    ratio = results["grpc"]["p50_ms"] / results["in_process"]["p50_ms"]
    results["grpc_over_in_process_p50"] = ratio
    print(f"  in-process p50 {results['in_process']['p50_ms']:.2f} ms p99 {results['in_process']['p99_ms']:.2f} ms | "
          f"gRPC p50 {results['grpc']['p50_ms']:.2f} ms p99 {results['grpc']['p99_ms']:.2f} ms | ratio {ratio:.2f}x (aim <= 1.2x)")

    print("2. throughput, requests/s", flush=True)
    results["throughput"] = {"off": {}, "on": {}}
    for concurrency in (1, 4, 16):
        results["throughput"]["off"][str(concurrency)] = throughput(server.address, requests, concurrency, args.seconds)
    server.stop()
    batched = ServerProcess(work / "recommender", "--enable-batching", "--max-batch-size=32", "--batch-timeout-micros=2000",
                            "--num-batch-threads=2")
    for concurrency in (1, 4, 16):
        results["throughput"]["on"][str(concurrency)] = throughput(batched.address, requests, concurrency, args.seconds)
    batched.stop()
    for concurrency in ("1", "4", "16"):
        off, on = results["throughput"]["off"][concurrency], results["throughput"]["on"][concurrency]
        print(f"  concurrency {concurrency:>2s}: batching off {off:7.1f}/s | on {on:7.1f}/s | on/off {on / off:.2f}x")

    print("3. retrieval vs catalogue size", flush=True)
    bandwidth = read_bandwidth_gbs()
    results["read_bandwidth_gbs"] = bandwidth
    print(f"  measured read bandwidth {bandwidth:.1f} GB/s")
    results["catalogue_scaling"] = catalogue_scaling(
        work / "recommender" / "1", requests[0], [int(s) for s in args.sizes.split(",")], bandwidth
    )
    shutil.rmtree(work, ignore_errors=True)
    (job_dir / "serving_latency.json").write_text(json.dumps(results, indent=2))
    plot(results, job_dir / "serving_latency.png")
    print(f"wrote {job_dir / 'serving_latency.json'} and serving_latency.png; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
