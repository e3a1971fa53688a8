"""The entry point: flags and Vertex environment -> Config, and the CLI contract."""

import json

from trainer import task
from trainer.config import DataSource, SplitKind, Stage


def _config(argv, environ=None):
    return task.config_from_args(task.build_parser().parse_args(argv), environ or {})


def test_flags_become_config():
    config = _config([
        "--stage=prepare", "--data=events", "--data-path=gs://b/e-*.csv", "--job-dir=/tmp/j",
        "--column-map=user_id=uid,item_id=sku", "--column-map=timestamp=ts", "--split=temporal",
        "--validation-start=2024-01-01T00:00:00Z", "--test-start=1704153600", "--extra-event-types=bookmark,save",
        "--max-history=7",
    ])
    assert config.stage == Stage.PREPARE and config.data.source == DataSource.EVENTS
    assert config.data.column_map == {"user_id": "uid", "item_id": "sku", "timestamp": "ts"}
    assert config.examples.split == SplitKind.TEMPORAL
    assert (config.examples.validation_start, config.examples.test_start) == (1704067200, 1704153600)
    assert config.data.extra_event_types == ("bookmark", "save")
    assert config.examples.max_history == 7


def test_loss_weight_flags_reach_the_model_config():
    config = _config(["--retrieval-weight=0.5", "--repeat-weight=2", "--behaviour-weight=0"])
    assert (config.model.retrieval_weight, config.model.repeat_weight, config.model.behaviour_weight) == (0.5, 2.0, 0.0)


def test_vertex_environment_is_honoured_when_flags_are_absent():
    env = {
        "AIP_MODEL_DIR": "gs://bucket/run7/model/",
        "AIP_CHECKPOINT_DIR": "gs://bucket/run7/checkpoints/",
        "AIP_TENSORBOARD_LOG_DIR": "gs://bucket/tb/run7",
    }
    config = _config([], env)
    assert config.job_dir == "gs://bucket/run7"
    assert config.resolved_model_dir() == "gs://bucket/run7/model/"
    assert config.resolved_checkpoint_dir() == "gs://bucket/run7/checkpoints/"
    assert config.resolved_tensorboard_dir() == "gs://bucket/tb/run7"
    # Flags win over the environment.
    assert _config(["--job-dir=/tmp/x", "--model-dir=/tmp/m"], env).resolved_model_dir() == "/tmp/m"
    assert _config([]).job_dir == "runs/default"


def test_bad_input_exits_2_naming_the_file(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text("user;item;timestamp\nu;a;1\n")
    code = task.main(["--stage=prepare", "--data=events", f"--data-path={path}", f"--job-dir={tmp_path / 'j'}"], {})
    assert code == 2
    err = capsys.readouterr().err
    assert str(path) in err and "delimiter" in err


def test_pseudonymize_needs_a_key(tmp_path, capsys):
    code = task.main(["--stage=prepare", "--pseudonymize-users", f"--job-dir={tmp_path}"], {})
    assert code == 2 and "PSEUDONYMIZE_KEY" in capsys.readouterr().err


def test_prepare_through_the_cli(tmp_path, capsys):
    (tmp_path / "e.jsonl").write_text(
        "".join(json.dumps({"u": "x", "i": f"i{k}", "t": 1700000000 + k}) + "\n" for k in range(4))
    )
    code = task.main([
        "--stage=prepare", "--data=events", f"--data-path={tmp_path / 'e.jsonl'}", f"--job-dir={tmp_path / 'j'}",
        "--column-map=user_id=u,item_id=i,timestamp=t",
    ], {})
    assert code == 0
    out = capsys.readouterr().out
    assert "manifest:" in out and str(tmp_path / "j" / "data" / "manifest.json") in out
    manifest = json.loads((tmp_path / "j" / "data" / "manifest.json").read_text())
    assert manifest["counts"]["examples"] == {"train": 1, "validation": 1, "test": 1}


def test_bad_time_flag_exits_2(tmp_path, capsys):
    code = task.main(["--stage=prepare", "--split=temporal", "--validation-start=2024-01-01T00:00:00",
                      f"--job-dir={tmp_path}"], {})
    assert code == 2 and "needs a zone" in capsys.readouterr().err
