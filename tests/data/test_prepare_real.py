"""Preparing the real datasets in ../shared/data (skipped when absent)."""

import pytest

from tests.conftest import shared_dataset
from trainer.config import Config, DataConfig, DataSource
from trainer.data import dataset, prepare


@pytest.mark.slow
def test_prepare_movielens_100k(tmp_path):
    path = shared_dataset("movielens-100k")
    config = Config(job_dir=str(tmp_path), data=DataConfig(source=DataSource.MOVIELENS_100K, data_path=str(path)))
    manifest = prepare.prepare(config).manifest
    counts = manifest["counts"]
    assert counts["events"] == {"read": 100000, "accepted": 100000, "rejected": 0, "duplicates": 0, "filtered": 0,
                                "kept": 100000}
    # Leave-one-out: every user's first rating has no history; 943 test + 943 validation targets.
    assert counts["examples"] == {"train": 100000 - 3 * 943, "validation": 943, "test": 943}
    assert counts["catalogue_items"] == 1682
    assert manifest["request_place"] == "target_event_place"
    assert "age" in manifest["user_attributes"]["numeric"]
    batch = next(iter(dataset.make_dataset(str(tmp_path / "data"), "test", batch_size=943)))
    assert batch["target_event_type"].numpy()[0] == b"rating"
    assert batch["history_item_ids"].shape == (943, 50)


@pytest.mark.slow
def test_prepare_foursquare_nyc(tmp_path):
    path = shared_dataset("foursquare-nyc")
    config = Config(
        job_dir=str(tmp_path),
        data=DataConfig(source=DataSource.FOURSQUARE_CSV, data_path=str(path), timezone="America/New_York"),
    )
    manifest = prepare.prepare(config).manifest
    counts = manifest["counts"]
    # The data README: 147,938 check-ins of which 458 are exact duplicates.
    assert counts["events"]["read"] == 147938 and counts["events"]["duplicates"] == 458
    assert counts["events"]["kept"] == 147480
    assert counts["examples"]["test"] == counts["examples"]["validation"] == 1083
    assert manifest["request_place"] == "last_history_place"
    batch = next(iter(dataset.make_dataset(str(tmp_path / "data"), "test", batch_size=64)))
    offsets = set(batch["request_utc_offset"].numpy().tolist())
    assert offsets <= {-240, -300} and offsets
