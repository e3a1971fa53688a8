"""A tiny prepared synthetic dataset shared by the model tests."""

import pytest

from trainer.config import Config, DataConfig, ExampleConfig, SyntheticConfig
from trainer.data import prepare


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    job = tmp_path_factory.mktemp("tiny_job")
    config = Config(
        job_dir=str(job),
        data=DataConfig(synthetic=SyntheticConfig(num_users=40, num_items=30, num_events=1500, num_regions=3)),
        examples=ExampleConfig(max_history=8),
    )
    return prepare.prepare(config).data_dir
