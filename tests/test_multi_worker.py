"""Two worker processes on localhost train one model with MultiWorkerMirroredStrategy
(from TF_CONFIG); only the chief evaluates and exports, and its export serves."""

import json
import os
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

from trainer import task

pytestmark = pytest.mark.slow
FLAGS = ["--synthetic-users=80", "--synthetic-items=40", "--synthetic-events=4000", "--epochs=2", "--batch-size=64",
         "--embedding-dim=8", "--gru-units=8", "--baselines=popularity", "--text-mode=off"]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(job, flags, tmp_path, tag):
    """Two `trainer.task` workers on localhost (TF_CONFIG), logging to <tag><index>.log."""
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    started = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        log = open(tmp_path / f"{tag}{index}.log", "w")
        started.append((subprocess.Popen([sys.executable, "-m", "trainer.task", f"--job-dir={job}", *flags],
                                         env=env, stdout=log, stderr=subprocess.STDOUT), log))
    return started


def _wait(workers, timeout=900):
    """Exit codes of the workers (killed if still running after `timeout`)."""
    codes = []
    for process, log in workers:
        try:
            codes.append(process.wait(timeout=timeout))
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    return codes


def test_two_workers_train_and_only_the_chief_exports(tmp_path):
    job = tmp_path / "job"
    assert task.main(["--stage=prepare", f"--job-dir={job}", *FLAGS], {}) == 0
    codes = _wait(_start_workers(job, ["--stage=all", *FLAGS], tmp_path, "worker"))
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + "\n-----\n" + logs[1][-3000:]
    assert "2 replicas" in logs[0] and "2 replicas" in logs[1]  # one model, trained by both
    assert "the chief evaluates and exports" in logs[1]
    training = json.loads((job / "model" / "training.json").read_text())
    assert training["epochs"] >= 1
    assert (job / "metrics.json").exists()
    version = job / "export" / "recommender" / "1"
    assert (version / "saved_model.pb").exists() and not (job / "export" / "recommender" / "2").exists()
    model = tf.saved_model.load(str(version))
    out = model.signatures["embed_query"](
        user_id=tf.constant(["u"]), history_item_ids=tf.constant([["i00001"]]), history_timestamps=tf.constant([[1]], tf.int64),
        history_event_types=tf.constant([["view"]]), history_utc_offsets=tf.constant([[0]], tf.int64),
        history_latitudes=tf.constant([[float("nan")]]), history_longitudes=tf.constant([[float("nan")]]),
        request_timestamp=tf.constant([2], tf.int64), request_utc_offset=tf.constant([0], tf.int64),
        request_latitude=tf.constant([float("nan")]), request_longitude=tf.constant([float("nan")]),
    )
    assert out["query_vectors"].shape == (1, 8)


def test_cluster_comes_from_tf_config_or_vertex_cluster_spec():
    tf_config = {"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}}
    config = task.distribution_from_env({"TF_CONFIG": json.dumps(tf_config)})
    assert config.multi_worker and not config.is_chief and config.cluster == tf_config["cluster"]
    vertex = {"cluster": {"workerpool0": ["a:1"], "workerpool1": ["b:2", "c:3"]}, "task": {"type": "workerpool0", "index": 0}}
    config = task.distribution_from_env({"CLUSTER_SPEC": json.dumps(vertex)})
    assert config.cluster == {"chief": ["a:1"], "worker": ["b:2", "c:3"]} and config.is_chief
    assert not task.distribution_from_env({}).multi_worker
    with pytest.raises(ValueError, match="TF_CONFIG"):
        task.distribution_from_env({"TF_CONFIG": "{nope"})
    with pytest.raises(ValueError, match="not in the cluster"):
        task.distribution_from_env({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}})})


def test_a_run_resumes_after_a_worker_is_killed(tmp_path):
    import time

    job = tmp_path / "job"
    flags = [f for f in FLAGS if not f.startswith("--epochs")] + ["--epochs=6", "--patience=100"]
    assert task.main(["--stage=prepare", f"--job-dir={job}", *flags], {}) == 0
    workers = _start_workers(job, ["--stage=train", *flags], tmp_path, "first")
    progress = job / "checkpoints" / "progress.json"
    deadline = time.time() + 600
    while time.time() < deadline and not (progress.exists() and json.loads(progress.read_text() or "{}").get("history")):
        time.sleep(0.2)
    workers[1][0].kill()  # a worker dies after the first epoch
    time.sleep(5)
    for process, log in workers:
        if process.poll() is None:
            process.kill()  # the chief cannot go on alone; the cluster manager would restart it
        process.wait()
        log.close()
    done_before = len(json.loads(progress.read_text())["history"]["val_ndcg@10"])
    assert 1 <= done_before < 6, (tmp_path / "first0.log").read_text()[-3000:]
    assert (job / "checkpoints" / "backup").exists()  # BackupAndRestore's state survived the kill
    codes = _wait(_start_workers(job, ["--stage=train", *flags], tmp_path, "second"))
    chief_log = (tmp_path / "second0.log").read_text()
    assert codes == [0, 0], chief_log[-3000:]
    assert "Resuming: best validation NDCG@10" in chief_log
    training = json.loads((job / "model" / "training.json").read_text())
    assert training["epochs"] == 6  # the epochs before the kill were not trained again
    backup = job / "checkpoints" / "backup"
    assert not backup.exists() or not any(backup.iterdir())  # a finished run leaves no backup to resume from
