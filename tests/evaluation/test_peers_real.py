"""popularity and repeat_frequency on the real datasets against ../shared/benchmarks/peers.json.

Our ranks count ties against the model; the peers break ties by item index, so
ours may only be lower, and by little (ties among equally popular items).
"""

import json

import pytest

from tests.conftest import SHARED_DATA, shared_dataset
from trainer.config import Config, DataConfig, DataSource
from trainer.data import prepare
from trainer.evaluation import baselines

PEERS = SHARED_DATA.parent / "benchmarks" / "peers.json"
COMPARED = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr")


def prepared(tmp_path, name, source, timezone=""):
    path = shared_dataset(name)
    if not PEERS.exists():
        pytest.skip(f"peer figures not found at {PEERS}")
    config = Config(job_dir=str(tmp_path), data=DataConfig(source=source, data_path=str(path), timezone=timezone))
    return prepare.prepare(config).data_dir


def check_against_peers(results, peers):
    for name in ("popularity", "repeat_frequency"):
        for filter_name in ("unfiltered", "seen_filtered"):
            ours = results[name].metrics(filter_name)
            for metric in COMPARED:
                theirs = peers[name][filter_name][metric]
                assert ours[metric] <= theirs + 1e-4, (name, filter_name, metric, ours[metric], theirs)
                assert ours[metric] == pytest.approx(theirs, abs=0.005), (name, filter_name, metric)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,source,timezone",
    [
        ("movielens-100k", DataSource.MOVIELENS_100K, ""),
        ("foursquare-nyc", DataSource.FOURSQUARE_CSV, "America/New_York"),
    ],
)
def test_simple_baselines_match_peers(tmp_path, name, source, timezone):
    data_dir = prepared(tmp_path, name, source, timezone)
    results = baselines.evaluate_baselines(data_dir, ("popularity", "repeat_frequency"))
    check_against_peers(results, json.loads(PEERS.read_text())[name])
