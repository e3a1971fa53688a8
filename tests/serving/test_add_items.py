"""New items after training become recommendable in a new version, without retraining."""

import csv
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from serving import add_items
from serving.export import ASSETS_EXTRA, SERVING_CONFIG
from serving.servable import WARMUP_PATH

pytestmark = pytest.mark.slow


def test_add_items_writes_a_version_that_serves_them(exported_job, tmp_path):
    base = tmp_path / "recommender"
    shutil.copytree(exported_job.version, base / "1")
    old = tf.saved_model.load(str(base / "1"))
    served = [v.decode() for v in old.catalogue.index.keys.numpy()]
    items = tmp_path / "new.jsonl"
    rows = [
        {"item_id": "new-1", "text": "A brand new coffee grinder", "category": "grocery|coffee", "latitude": 40.7,
         "longitude": -73.9, "price": 30},
        {"item_id": "", "text": "no id"},
        {"item_id": "new-2", "text": "Thing", "price": "cheap"},
        {"item_id": served[0], "text": "already there"},
        {"item_id": "new-3", "text": "Garden hose"},
        {"item_id": "new-3", "text": "Garden hose again"},
    ]
    items.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    summary = add_items.add_items(str(base), str(items))
    assert summary["version"] == 2 and summary["added"] == 2
    assert summary["read"] == 7 == summary["added"] + summary["rejected"]
    with open(summary["rejects"]) as f:
        reasons = [r["reason"] for r in csv.DictReader(f)]
    assert len(reasons) == 5
    assert any("item_id: missing" in r for r in reasons) and any("price: not a number" in r for r in reasons)
    assert any("already served" in r for r in reasons) and any("repeated in the file" in r for r in reasons)
    assert any("not JSON" in r for r in reasons)
    assert (base / "2" / WARMUP_PATH).exists()
    config = json.loads((base / "2" / ASSETS_EXTRA / SERVING_CONFIG).read_text())
    assert config["items"] == len(served) + 2 and config["based_on_version"] == 1

    new = tf.saved_model.load(str(base / "2"))
    assert [v.decode() for v in new.catalogue.index.keys.numpy()][-2:] == ["new-1", "new-3"]
    query = dict(
        user_id=tf.constant(["someone"]), history_item_ids=tf.constant([["new-1", served[1]]]),
        history_timestamps=tf.constant([[1714570000, 1714571000]], tf.int64), history_event_types=tf.constant([["view", "view"]]),
        history_utc_offsets=tf.zeros([1, 2], tf.int64), history_latitudes=tf.fill([1, 2], np.nan),
        history_longitudes=tf.fill([1, 2], np.nan), request_timestamp=tf.constant([1714572000], tf.int64),
        request_utc_offset=tf.constant([0], tf.int64), request_latitude=tf.constant([np.nan]), request_longitude=tf.constant([np.nan]),
    )
    ranked = new.signatures["rank"](candidate_item_ids=tf.constant([["new-1", "new-3", "unknown"]]), **query)
    assert ranked["known"].numpy().tolist() == [[True, True, False]]
    assert np.isfinite(ranked["scores"].numpy()[0, :2]).all()
    # The old version does not know them.
    assert old.signatures["rank"](candidate_item_ids=tf.constant([["new-1"]]), **query)["known"].numpy().tolist() == [[False]]
    # The stored vector is what embed_items gives for the item.
    vector = new.signatures["embed_items"](
        item_id=tf.constant(["new-1"]), text=tf.constant(["A brand new coffee grinder"]), category=tf.constant(["grocery|coffee"]),
        latitude=tf.constant([40.7]), longitude=tf.constant([-73.9]), price=tf.constant([30.0]),
    )["item_vectors"].numpy()
    np.testing.assert_allclose(new.catalogue.vectors.numpy()[len(served)], vector[0], atol=1e-6)
    # A new item in the history is now known to the model (a repeat can point at it).
    everything = new.signatures["retrieve"](k=tf.constant([4]), exclusions=tf.constant([served[2:]]), **query)
    returned = dict(zip([v.decode() for v in everything["item_ids"].numpy()[0]], everything["from_history"].numpy()[0]))
    assert returned["new-1"] and not returned["new-3"]


def test_add_items_refuses_a_file_with_nothing_to_add(exported_job, tmp_path):
    base = tmp_path / "recommender"
    shutil.copytree(exported_job.version, base / "1")
    items = tmp_path / "bad.csv"
    items.write_text("item_id,text\n,nothing\n")
    with pytest.raises(ValueError, match="No item of"):
        add_items.add_items(str(base), str(items))
    assert sorted(p.name for p in base.iterdir() if p.is_dir()) == ["1"]
