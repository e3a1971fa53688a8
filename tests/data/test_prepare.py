"""The prepare stage end to end on small hand-written logs."""

import glob
import gzip
import json
import os

import numpy as np
import pandas as pd
import pytest

from trainer.config import Config, DataConfig, DataSource, ExampleConfig, SplitKind
from trainer.data import dataset, prepare

EVENTS = """user_id,item_id,timestamp,event_type,value,latitude,longitude
alice,a,2024-01-01T10:00:00Z,view,,40.7,-74.0
alice,b,2024-01-01T10:05:00Z,click,,40.7,-74.0
alice,c,2024-01-02T10:05:00Z,purchase,19.5,40.71,-74.01
alice,a,2024-01-03T10:05:00Z,view,,40.71,-74.01
bob,a,1704103200,view,,,
bob,b,1704103300,view,,,
bob,c,bad-time,view,,,
bob,d,1704103400,teleport,,,
bob,c,1704103500,view,,95,10
bob,c,1704103600,view,,,
bob,c,1704103600,view,,,
carol,z,1704103600,view,,,
"""
ITEMS = """item_id,text,category,price
a,Red running shoe,shoes|sport,59
b,Blue sock,socks,-1
c,Green hat,hats,12
"""


def _config(tmp_path, **data_kwargs):
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text(ITEMS)
    data = DataConfig(
        source=DataSource.EVENTS, data_path=str(tmp_path / "events.csv"), items_path=str(tmp_path / "items.csv"),
        **data_kwargs,
    )
    return Config(job_dir=str(tmp_path / "job"), data=data, examples=ExampleConfig(max_history=3))


def test_counts_add_up_and_every_reject_is_written(tmp_path):
    result = prepare.prepare(_config(tmp_path, min_user_events=2))
    counts = result.manifest["counts"]["events"]
    assert counts == {"read": 12, "accepted": 8, "rejected": 3, "duplicates": 1, "filtered": 1, "kept": 7}
    rejects = pd.read_csv(tmp_path / "job" / "data" / "rejects" / "events.csv", dtype=str)
    assert len(rejects) == counts["rejected"] + counts["duplicates"] + counts["filtered"]
    assert sorted(rejects["_source_row"].astype(int)) == [7, 8, 9, 11, 12]
    assert rejects.set_index("_source_row").loc["12", "reason"] == "user has 1 events < min_user_events=2"
    items = pd.read_csv(tmp_path / "job" / "data" / "rejects" / "items.csv", dtype=str)
    assert items["reason"].tolist() == ["price is negative: -1.0"]
    # Catalogue: a, c from the file, b (rejected row) re-enters as an item the logs mention.
    assert result.manifest["counts"]["catalogue_items"] == 3


def test_examples_read_back_through_tf_data(tmp_path):
    result = prepare.prepare(_config(tmp_path))
    manifest = result.manifest
    # alice: a b c a -> train b, validation c, test a; bob: a b c -> validation b, test c;
    # carol: one event -> none.
    assert manifest["counts"]["examples"] == {"train": 1, "validation": 2, "test": 2}
    got = {}
    for split in ("train", "validation", "test"):
        for batch in dataset.make_dataset(result.data_dir, split, batch_size=8):
            for user, target, history in zip(
                batch["user_id"].numpy(), batch["target_item_id"].numpy(), batch["history_item_ids"].numpy()
            ):
                got[(split, user.decode())] = (target.decode(), [h.decode() for h in history])
    assert got == {
        ("train", "alice"): ("b", ["a", "", ""]),
        ("validation", "alice"): ("c", ["a", "b", ""]),
        ("test", "alice"): ("a", ["a", "b", "c"]),
        ("validation", "bob"): ("b", ["a", "", ""]),
        ("test", "bob"): ("c", ["a", "b", ""]),
    }
    # Vocabularies come from the training period only: alice's a, b and bob's a.
    vocab = (tmp_path / "job" / "data" / "vocab" / "item_id.txt").read_text().split()
    assert vocab == ["a", "b"]
    items = {b["item_id"].decode(): int(c) for batch in dataset.make_item_dataset(result.data_dir, 10)
             for b, c in [({"item_id": i}, n) for i, n in zip(batch["item_id"].numpy(), batch["train_count"].numpy())]}
    assert items == {"a": 2, "b": 1, "c": 0, "z": 0}
    assert manifest["split"]["kind"] == "leave-one-out"
    assert set(manifest["features"]) >= {"history_item_ids", "request_latitude", "target_value"}


def test_temporal_split_boundaries(tmp_path):
    config = _config(tmp_path)
    config = Config(
        job_dir=config.job_dir, data=config.data,
        examples=ExampleConfig(split=SplitKind.TEMPORAL, validation_start=1704103350, test_start=1704190000),
    )
    manifest = prepare.prepare(config).manifest
    assert manifest["split"]["validation_start"] == "2024-01-01T10:02:30+00:00"
    ranges = manifest["split"]["target_time_ranges"]
    assert ranges["train"]["last"] < manifest["split"]["validation_start"] <= ranges["validation"]["first"]
    assert ranges["test"]["first"] >= manifest["split"]["test_start"]


def test_pseudonymised_ids_reach_no_artefact(tmp_path):
    config = _config(tmp_path, pseudonymize_users=True)
    prepare.prepare(config, pseudonymize_key=b"secret")
    for path in glob.glob(str(tmp_path / "job" / "**" / "*"), recursive=True):
        if os.path.isdir(path):
            continue
        data = open(path, "rb").read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        if path.endswith(".parquet"):
            data = pd.read_parquet(path).to_csv().encode()
        for name in (b"alice", b"bob", b"carol", b"secret"):
            assert name not in data, (path, name)


def test_unusable_inputs_raise_naming_the_file(tmp_path):
    (tmp_path / "events.csv").write_text("user_id,item_id\nu,a\n")
    config = Config(job_dir=str(tmp_path / "job"),
                    data=DataConfig(source=DataSource.EVENTS, data_path=str(tmp_path / "events.csv")))
    with pytest.raises(ValueError, match=r"events\.csv.*\['timestamp'\]"):
        prepare.prepare(config)
    (tmp_path / "events.csv").write_text("user_id,item_id,timestamp\nu,a,never\n")
    with pytest.raises(ValueError, match=r"No usable events.*all 1 rows.*rejects"):
        prepare.prepare(config)


def test_manifest_is_json_with_relative_files(tmp_path):
    result = prepare.prepare(_config(tmp_path))
    manifest = json.loads((tmp_path / "job" / "data" / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(result.manifest))
    for split in ("train", "validation", "test"):
        for name in manifest["files"][split]:
            assert (tmp_path / "job" / "data" / name).exists()
    assert manifest["vocabularies"]["item_id"]["path"] == "vocab/item_id.txt"
    assert np.isfinite(manifest["seconds"])


def test_check_in_like_logs_are_detected_and_never_leak_the_target_place(tmp_path):
    # Every event happens at its venue: the request place must be the previous venue, not the target's.
    (tmp_path / "e.csv").write_text(
        "user_id,item_id,timestamp,latitude,longitude\n"
        "u,v1,100,40.0,-73.0\nu,v2,200,41.0,-74.0\nu,v3,300,42.0,-75.0\n"
    )
    (tmp_path / "i.csv").write_text("item_id,latitude,longitude\nv1,40.0,-73.0\nv2,41.0,-74.0\nv3,42.0,-75.0\n")
    data = DataConfig(source=DataSource.EVENTS, data_path=str(tmp_path / "e.csv"), items_path=str(tmp_path / "i.csv"))
    result = prepare.prepare(Config(job_dir=str(tmp_path / "job"), data=data))
    assert result.manifest["request_place"] == "last_history_place"
    test = next(iter(dataset.make_dataset(result.data_dir, "test", 4)))
    assert test["target_item_id"].numpy().tolist() == [b"v3"]
    assert float(test["request_latitude"].numpy()[0]) == 41.0
    forced = DataConfig(source=DataSource.EVENTS, data_path=str(tmp_path / "e.csv"),
                        items_path=str(tmp_path / "i.csv"), event_place="user")
    assert prepare.prepare(Config(job_dir=str(tmp_path / "j2"), data=forced)).manifest["request_place"] == "target_event_place"


def test_missing_offsets_take_the_time_zone_and_are_noted(tmp_path):
    (tmp_path / "e.csv").write_text(
        "user_id,item_id,timestamp,utc_offset_minutes\n"
        "u,a,2012-07-01T12:00:00Z,\nu,b,2012-07-02T12:00:00Z,60\nu,c,2012-12-02T12:00:00Z,\n"
    )
    data = DataConfig(source=DataSource.EVENTS, data_path=str(tmp_path / "e.csv"), timezone="America/New_York")
    result = prepare.prepare(Config(job_dir=str(tmp_path / "job"), data=data))
    events = pd.read_parquet(os.path.join(result.data_dir, "events.parquet"))
    # Summer New York is -240, December -300; the given +60 stays.
    assert events.sort_values("timestamp")["utc_offset_minutes"].tolist() == [-240, 60, -300]
    assert any("2 events without a utc offset took America/New_York" in n for n in result.manifest["notes"])


def test_integral_float_ids_join_their_items(tmp_path):
    pd.DataFrame({"user_id": [1.0, 1.0, 1.0], "item_id": [7.0, 8.0, None], "timestamp": [1, 2, 3]}).to_parquet(
        tmp_path / "e.parquet")
    (tmp_path / "i.csv").write_text("item_id,text\n7,Seven\n8,Eight\n")
    data = DataConfig(source=DataSource.EVENTS, data_path=str(tmp_path / "e.parquet"), items_path=str(tmp_path / "i.csv"))
    result = prepare.prepare(Config(job_dir=str(tmp_path / "job"), data=data))
    assert result.manifest["counts"]["catalogue_items"] == 2  # "7" and "8", not "7.0"
    assert result.manifest["counts"]["events"]["rejected"] == 1  # the missing item id


def test_ignored_item_columns_never_reach_the_catalogue(tmp_path):
    from trainer.models.catalogue import Catalogue

    result = prepare.prepare(_config(tmp_path, ignore_item_columns=("category", "price")))
    catalogue = Catalogue.load(result.data_dir)
    assert set(catalogue.categories) == {""} and np.isnan(catalogue.prices).all()
    assert "Red running shoe" in set(catalogue.texts)  # text kept
    assert any("ignored" in note for note in result.manifest["notes"])
    with pytest.raises(ValueError, match="ignore_item_columns"):
        DataConfig(ignore_item_columns=("colour",))
