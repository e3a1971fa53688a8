"""Vertex-style batch prediction on Beam's DirectRunner: output contract, error accounting, idempotent reruns."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("apache_beam", reason="apache-beam (the pipelines extra) is not installed")

from serving import batch_predict, client, contract  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def instances(exported_job):
    users = batch_predict.nightly_instances(str(exported_job.job), client.DEFAULT_HISTORY_LENGTH)
    return users[:38]


def _lines(pattern):
    out = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            out += [json.loads(line) for line in f if line.strip()]
    return out


def test_results_and_errors_follow_the_vertex_contract(exported_job, instances, tmp_path):
    lines = [json.dumps({**u, "key": f"row-{i}"}) for i, u in enumerate(instances)]
    bad_k = {**instances[0], "k": 0, "key": "bad-k"}
    lines[5] = "{not json"  # 5% corrupt lines, plus one instance the model refuses
    lines[20] = "[1, 2, 3]"
    lines.append(json.dumps(bad_k))
    # JSON of the wrong types: each is one error row naming its field, never a failed job.
    malformed = {
        "history-not-a-list": {"history": "i1"}, "request-not-an-object": {"request": "x"},
        "exclude-not-a-list": {"exclude": 3}, "k-huge": {"k": 1e10}, "k-text": {"k": "ten"},
        "timestamp-huge": {"request": {"timestamp": 1e20}}, "offset-text": {"request": {"utc_offset": "x"}},
        "too-many-exclusions": {"exclude": [f"x{i}" for i in range(client.DEFAULT_EXCLUSION_WIDTH + 1)]},
    }
    lines += [json.dumps({**instances[1], **change, "key": key}) for key, change in malformed.items()]
    # null means "not given": these are fine.
    lines += [json.dumps({**instances[2], "k": None, "exclude": None, "request": None, "key": "nulls"})]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("\n".join(lines[:20]) + "\n")
    (tmp_path / "in" / "b.jsonl").write_text("\n".join(lines[20:]) + "\n")
    out = tmp_path / "out"
    summary = batch_predict.run(str(exported_job.base), str(out), str(tmp_path / "in" / "*.jsonl"), batch_size=8)
    assert summary["inputs"] == len(lines) == summary["results"] + summary["errors"]
    assert summary["errors"] == 3 + len(malformed)
    names = sorted(os.listdir(out))
    assert "prediction.errors_stats-00000-of-00001" in names
    result_files = [n for n in names if n.startswith("prediction.results-")]
    assert result_files and all(n.endswith(f"-of-{len(result_files):05d}") for n in result_files)
    results = _lines(str(out / "prediction.results-*"))
    errors = _lines(str(out / "prediction.errors_stats-*"))
    assert len(results) == summary["results"] and len(errors) == 3 + len(malformed)
    instance_errors = {e["instance"]["key"]: e["error"] for e in errors if isinstance(e["instance"], dict)}
    assert sorted(e["error"].split(":")[0] for e in errors if not isinstance(e["instance"], dict)) == [
        "an instance must be a JSON object, got list", "not JSON"]
    assert instance_errors["bad-k"].startswith("k:")
    for key, field in [("history-not-a-list", "user 0 history"), ("request-not-an-object", "user 0 request"),
                       ("exclude-not-a-list", "user 0 exclude"), ("k-huge", "user 0 k"), ("k-text", "user 0 k"),
                       ("timestamp-huge", "user 0 request.timestamp"), ("offset-text", "user 0 request.utc_offset"),
                       ("too-many-exclusions", "user 0 exclude")]:
        assert instance_errors[key].startswith(field + ":"), (key, instance_errors[key])
    by_key = {r["instance"]["key"]: r for r in results}  # keys pass through
    assert "bad-k" not in by_key and "nulls" in by_key and len(by_key) == len(results)

    # A result is what the model gives that instance in-process.
    loaded = tf.saved_model.load(str(exported_job.version))
    sample = by_key["row-7"]
    inputs = client.recommend_inputs([sample["instance"]])
    expected = loaded.signatures[contract.RECOMMEND](**{k: tf.constant(v) for k, v in inputs.items()})
    assert [i["item_id"] for i in sample["prediction"]["items"]] == [
        i.decode() for i in expected["item_ids"].numpy()[0] if i
    ]
    np.testing.assert_allclose([i["score"] for i in sample["prediction"]["items"]],
                               expected["scores"].numpy()[0][: len(sample["prediction"]["items"])], rtol=1e-5)

    # Rerunning gives the same outputs (up to float noise from other batch sizes) and leaves no stale shards.
    again = batch_predict.run(str(exported_job.base), str(out), str(tmp_path / "in" / "*.jsonl"), batch_size=5)
    assert again["results"] == summary["results"] and again["errors"] == summary["errors"]
    rerun = {r["instance"]["key"]: r for r in _lines(str(out / "prediction.results-*"))}
    assert rerun.keys() == by_key.keys()
    for key, result in by_key.items():
        assert [i["item_id"] for i in rerun[key]["prediction"]["items"]] == [i["item_id"] for i in result["prediction"]["items"]]
        np.testing.assert_allclose([i["score"] for i in rerun[key]["prediction"]["items"]],
                                   [i["score"] for i in result["prediction"]["items"]], rtol=1e-4, atol=1e-5)


def test_tfrecord_examples_in_the_training_layout_are_instances(exported_job, tmp_path):
    data = exported_job.job / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    shards = [str(data / f) for f in manifest["files"]["test"]]
    summary = batch_predict.run(str(exported_job.version), str(tmp_path / "out"), shards[0])
    count = sum(1 for _ in tf.data.TFRecordDataset(shards[:1], compression_type="GZIP"))
    assert summary["inputs"] == count == summary["results"] and summary["errors"] == 0
    first = _lines(str(tmp_path / "out" / "prediction.results-*"))[0]
    assert first["instance"]["history"] and "target_item_id" in first["instance"]
