"""The Beam path of the per-user transform gives exactly the local path's examples and manifest."""

import json

import pytest
import tensorflow as tf

pytest.importorskip("apache_beam", reason="apache-beam is not installed")

from trainer.config import Config, DataConfig, ExampleConfig, SplitKind, SyntheticConfig  # noqa: E402
from trainer.data import prepare  # noqa: E402

pytestmark = pytest.mark.slow


def _records(data_dir, files):
    paths = [f"{data_dir}/{f}" for f in files]
    return sorted(r.numpy() for r in tf.data.TFRecordDataset(paths, compression_type="GZIP")) if paths else []


def _without_volatile(manifest):
    manifest = json.loads(json.dumps(manifest))
    manifest.pop("files")
    for key in ("timings", "seconds", "peak_memory_mb", "created"):
        manifest.pop(key, None)
    manifest["config"].pop("job_dir")  # the two runs' own folders and runners
    manifest["config"]["examples"].pop("runner")
    return manifest


@pytest.mark.parametrize("split", [SplitKind.LEAVE_ONE_OUT, SplitKind.TEMPORAL])
def test_beam_and_local_paths_write_identical_examples(tmp_path, split):
    data = DataConfig(synthetic=SyntheticConfig(num_users=50, num_items=40, num_events=2500))
    local = prepare.prepare(Config(job_dir=str(tmp_path / "local"), data=data, examples=ExampleConfig(max_history=7, split=split)))
    beam = prepare.prepare(Config(job_dir=str(tmp_path / "beam"), data=data,
                                  examples=ExampleConfig(max_history=7, split=split, runner="DirectRunner")))
    for name in ("train", "validation", "test"):
        ours = _records(local.data_dir, local.manifest["files"][name])
        theirs = _records(beam.data_dir, beam.manifest["files"][name])
        assert ours and ours == theirs  # the same serialized tf.Examples
    assert _without_volatile(local.manifest) == _without_volatile(beam.manifest)
