"""A tiny trained and exported job shared by the serving tests (built once per session)."""

import dataclasses
import pathlib

import pytest

from tests.models.test_text_tower import write_tiny_checkpoint
from trainer import task

MODEL_NAME = "recommender"


@dataclasses.dataclass(frozen=True)
class ExportedJob:
    job: pathlib.Path
    argv: tuple[str, ...]

    @property
    def base(self) -> pathlib.Path:
        return self.job / "export" / MODEL_NAME

    @property
    def version(self) -> pathlib.Path:
        return self.base / "1"

    def config(self):
        args = task.build_parser().parse_args(list(self.argv))
        return task.config_from_args(args, {})


@pytest.fixture(scope="session")
def exported_job(tmp_path_factory) -> ExportedJob:
    root = tmp_path_factory.mktemp("serving")
    bert = write_tiny_checkpoint(root / "bert")
    argv = (
        f"--job-dir={root / 'job'}", "--synthetic-users=60", "--synthetic-items=40", "--synthetic-events=3000",
        "--epochs=1", "--batch-size=64", f"--bert-path={bert}", "--max-tokens=16", "--embedding-dim=8",
        "--gru-units=8", "--baselines=", "--max-k=20", "--mmr-pool=30",
    )
    assert task.main(["--stage=all", *argv], {}) == 0
    return ExportedJob(root / "job", argv)
