"""Pure pieces of serving: key index, MMR, batch merge/split, client request building, contract."""

import json
import math
import re

import numpy as np
import pytest
import tensorflow as tf

from serving import batcher, client, contract, export, mmr
from serving.key_index import KeyIndex, assign
from trainer.data import example_schema as es


def test_key_index_lookup_unknown_empty_and_growth():
    index = KeyIndex(np.array(["b", "a", "c"], object), "t")
    assert index.lookup(tf.constant([["a", "x", ""], ["c", "b", "a"]])).numpy().tolist() == [[1, -1, -1], [2, 0, 1]]
    empty = KeyIndex(np.array([], object), "e")
    assert empty.lookup(tf.constant(["a", ""])).numpy().tolist() == [-1, -1]
    assign(index, np.array(["b", "a", "c", "new"], object))
    assert index.lookup(tf.constant(["new", "c"])).numpy().tolist() == [3, 2]


def test_key_index_never_maps_a_colliding_id_to_another_item():
    index = KeyIndex(np.array(["a", "b"], object), "t")
    # Pretend "zzz" shares "a"'s fingerprint: the exact key check still refuses it.
    hashes = index.hashes.numpy()
    fake = tf.strings.to_hash_bucket_fast(tf.constant(["zzz"]), 2**62).numpy()
    index.hashes.assign(np.where(index.rows.numpy() == 0, fake[0], hashes))
    order = np.argsort(index.hashes.numpy())
    index.hashes.assign(index.hashes.numpy()[order])
    index.rows.assign(index.rows.numpy()[order])
    assert index.lookup(tf.constant(["zzz", "b"])).numpy().tolist() == [-1, 1]


def test_mmr_zero_diversity_keeps_score_order_and_full_diversity_spreads():
    # Items 0 and 1 are the same direction; item 2 is orthogonal.
    vectors = tf.constant([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071]]])
    scores = tf.constant([[4.0, 3.0, 2.0, float("-inf")]])
    picks, found = mmr.rerank(scores, vectors, tf.constant([0.0]), tf.constant(3))
    assert picks.numpy().tolist() == [[0, 1, 2]] and found.numpy().all()
    picks, found = mmr.rerank(scores, vectors, tf.constant([0.5]), tf.constant(3))
    # step 2: item 1 -> 0.5*0.5 - 0.5*1 = -0.25; item 2 -> 0 - 0 = 0  => item 2 before item 1
    assert picks.numpy().tolist() == [[0, 2, 1]]
    picks, found = mmr.rerank(scores, vectors, tf.constant([0.5]), tf.constant(4))
    assert found.numpy().tolist() == [[True, True, True, False]]  # the -inf item is never a real pick


def test_batch_merge_pads_with_contract_values_and_split_crops():
    def task(rows, width, k):
        inputs = {
            "history_item_ids": np.full([rows, width], b"x", object),
            "history_latitudes": np.ones([rows, width], np.float32),
            "k": np.full([rows], k, np.int32),
        }
        return batcher._Task(("m", 1, "serving_default"), None, "serving_default", inputs, rows, None)

    tasks = [task(1, 2, 3), task(2, 4, 5)]
    merged = batcher.merge(tasks)
    assert merged["history_item_ids"].tolist() == [[b"x", b"x", b"", b""]] + [[b"x"] * 4] * 2
    assert np.isnan(merged["history_latitudes"][0, 2:]).all() and merged["k"].tolist() == [3, 5, 5]
    outputs = {"item_ids": np.arange(15).reshape(3, 5), "event_type_names": np.zeros([3, 4])}
    first, second = batcher.split(tasks, outputs)
    assert first["item_ids"].tolist() == [[0, 1, 2]]  # its own k = 3
    assert second["item_ids"].shape == (2, 5) and first["event_type_names"].shape == (1, 4)


def test_rank_outputs_are_cropped_to_each_requests_own_candidates():
    def task(width):
        inputs = {"candidate_item_ids": np.full([1, width], b"c", object)}
        return batcher._Task(("m", 1, "rank"), None, "rank", inputs, 1, None)

    tasks = [task(2), task(5)]
    assert batcher.merge(tasks)["candidate_item_ids"].tolist()[0] == [b"c", b"c", b"", b"", b""]
    outputs = {"scores": np.zeros([2, 5]), "known": np.ones([2, 5], bool), "event_type_names": np.zeros([2, 3]),
               "event_type_probabilities": np.zeros([2, 5, 3]), "predicted_rating": np.zeros([2, 5])}
    first, second = batcher.split(tasks, outputs)
    assert {name: value.shape for name, value in first.items()} == {
        "scores": (1, 2), "known": (1, 2), "event_type_names": (1, 3), "event_type_probabilities": (1, 2, 3),
        "predicted_rating": (1, 2)}
    assert second["event_type_probabilities"].shape == (1, 5, 3) and second["predicted_rating"].shape == (1, 5)


def test_client_builds_right_padded_requests_from_json():
    users = [
        {
            "user_id": "u1",
            "history": [
                {"item_id": "b", "timestamp": "2024-05-01T08:30:00-04:00", "event_type": "click"},
                {"item_id": "a", "timestamp": 1714500000, "latitude": 40.7, "longitude": -73.9, "utc_offset": -240},
            ],
            "k": 3,
            "exclude": ["z"],
        },
        {"user_id": "u2", "history": [], "request": {"timestamp": 1714600000, "latitude": 1.5}},
    ]
    inputs = client.recommend_inputs(users, k=10, shape=client.RequestShape(history_length=3, exclusion_width=2), now=1714650000)
    assert inputs["history_item_ids"].tolist() == [["a", "b", ""], ["", "", ""]]  # sorted by time, right padded
    assert inputs["history_timestamps"].tolist() == [[1714500000, 1714566600, 0], [0, 0, 0]]
    assert inputs["history_utc_offsets"].tolist() == [[-240, -240, 0], [0, 0, 0]]
    assert inputs["history_event_types"][0].tolist() == ["", "click", ""]
    assert inputs["history_latitudes"][0, 0] == pytest.approx(40.7) and math.isnan(inputs["history_latitudes"][0, 1])
    # The request defaults to now at the last event's place and offset.
    assert inputs["request_timestamp"].tolist() == [1714650000, 1714600000]
    assert inputs["request_utc_offset"].tolist() == [-240, 0]
    assert math.isnan(inputs["request_latitude"][0]) and inputs["request_latitude"][1] == 1.5
    assert inputs["k"].tolist() == [3, 10] and inputs["exclusions"].tolist() == [["z", ""], ["", ""]]
    assert set(inputs) == {t.name for t in contract.INPUTS[contract.RECOMMEND]}
    with pytest.raises(ValueError, match=r"user 0 history\[0\].timestamp"):
        client.query_inputs([{"history": [{"item_id": "a", "timestamp": "yesterday"}]}])
    with pytest.raises(ValueError, match=r"history\[0\]: needs an item_id"):
        client.query_inputs([{"history": [{"timestamp": 1}]}])


def test_client_null_means_not_given_and_wrong_types_name_the_field():
    event = {"item_id": "a", "timestamp": 1714500000, "latitude": 40.7, "longitude": -73.9, "event_type": None}
    users = [{"user_id": None, "history": [event], "request": {"timestamp": 1714600000, "latitude": None},
              "k": np.int64(4), "exclude": ["z", None], "diversity": None}]
    inputs = client.recommend_inputs(users, k=10, diversity=0.3, shape=client.RequestShape(history_length=2, exclusion_width=3))
    assert inputs["user_id"].tolist() == [""] and inputs["history_event_types"].tolist() == [["", ""]]
    # No place given (null): where the user last was.
    assert inputs["request_latitude"][0] == pytest.approx(40.7) and inputs["request_longitude"][0] == pytest.approx(-73.9)
    assert inputs["k"].tolist() == [4] and inputs["exclusions"].tolist() == [["z", "", ""]]
    assert inputs["diversity"][0] == pytest.approx(0.3)
    for change, field in [({"history": "a"}, "user 0 history"), ({"request": "now"}, "user 0 request"),
                          ({"k": "ten"}, "user 0 k"), ({"k": 2.5}, "user 0 k"), ({"k": 2**40}, "user 0 k"),
                          ({"exclude": "z"}, "user 0 exclude"), ({"exclude": ["x"] * 4}, "user 0 exclude"),
                          ({"request": {"timestamp": 1e30}}, "user 0 request.timestamp"),
                          ({"request": {"utc_offset": 5000}}, "user 0 request.utc_offset")]:
        with pytest.raises(ValueError, match=re.escape(field) + ":"):
            client.recommend_inputs([{**users[0], **change}], shape=client.RequestShape(exclusion_width=3))
    with pytest.raises(ValueError, match="at least one user"):
        client.recommend_inputs([])


def test_client_rank_inputs_have_one_candidate_width_and_name_bad_users():
    users = [{"user_id": "u1", "history": [{"item_id": "a", "timestamp": 1714500000}], "candidates": ["c", None, "d"]},
             {"user_id": "u2", "candidates": ["e"]}]
    inputs = client.rank_inputs(users, client.RequestShape(history_length=2, candidate_width=3), now=1714650000)
    assert inputs["candidate_item_ids"].tolist() == [["c", "d", ""], ["e", "", ""]]  # nulls dropped, "" padded
    assert inputs["history_item_ids"].tolist() == [["a", ""], ["", ""]]
    assert set(inputs) == {t.name for t in contract.INPUTS[contract.RANK]}
    for change, text in [({"candidates": ["x"] * 4}, "user 1 candidates: 4 items, more than the request's width 3 "
                                                     "(raise candidate_width"),
                         ({"candidates": []}, "user 1 candidates: none given"),
                         ({"candidates": None}, "user 1 candidates: none given"),
                         ({"candidates": ["", None]}, "user 1 candidates: none given"),
                         ({"candidates": "x"}, "user 1 candidates: expected a list"),
                         ({"candidates": ["x", {"id": "y"}]}, "user 1 candidates[1]: expected an item id"),
                         ({"candidates": [True]}, "user 1 candidates[0]: expected an item id")]:
        with pytest.raises(ValueError, match=re.escape(text)):
            client.rank_inputs([users[0], {**users[1], **change}], client.RequestShape(candidate_width=3))
    # Whole numbers are ids too, as in histories.
    assert client.rank_inputs([{"candidates": [7, np.int64(8)]}], now=0)["candidate_item_ids"][0, :3].tolist() == ["7", "8", ""]
    with pytest.raises(ValueError, match=re.escape("`candidate_width` must be >= 1. Received: candidate_width=0")):
        client.RequestShape(candidate_width=0)


def test_client_rankings_sort_known_candidates_by_score_and_put_unknown_ids_last():
    ids = np.array([["a", "nope", "b", "c", ""], ["d", "", "", "", ""]], object)
    scores = np.array([[-2.0, -np.inf, -0.5, -2.0, -np.inf], [-1.0, -np.inf, -np.inf, -np.inf, -np.inf]], np.float32)
    known = np.array([[True, False, True, True, False], [True, False, False, False, False]])
    # As the contract has it: NaN behaviour at padding and unknown ids.
    probabilities = np.where(known[..., None], np.full([2, 5, 2], 0.5), np.nan).astype(np.float32)
    probabilities[0, 2] = [0.25, 0.75]
    outputs = {"scores": scores, "known": known, "event_type_probabilities": probabilities,
               "event_type_names": np.array([[b"click", b"purchase"]] * 2, object),
               "predicted_rating": np.where(known, 3.5, np.nan).astype(np.float32)}
    ranked = client.rankings(outputs, ids)
    json.dumps(ranked, allow_nan=False)  # no NaN or infinity reaches the JSON answer
    # Best first; the tie (a, c at -2) keeps the request's order; the unknown id last; padding dropped.
    assert [e["item_id"] for e in ranked[0]] == ["b", "a", "c", "nope"]
    assert [e["score"] for e in ranked[0]] == [-0.5, -2.0, -2.0, None]
    assert [e["known"] for e in ranked[0]] == [True, True, True, False]
    assert ranked[0][0]["behaviour"] == {"click": 0.25, "purchase": 0.75} and ranked[0][0]["predicted_rating"] == 3.5
    assert ranked[0][3] == {"item_id": "nope", "score": None, "known": False}
    assert [e["item_id"] for e in ranked[1]] == ["d"]


def test_contract_query_inputs_are_the_training_example_features():
    training = {f.name: f for f in es.BASE_FEATURES}
    for tensor in contract.QUERY_INPUTS:  # same name, dtype and layout as the training examples
        spec = training[tensor.name]
        assert tensor.dtype.name == spec.dtype and (len(tensor.shape) == 2) == spec.sequence
    text = contract.describe()
    for signature in contract.SIGNATURES:
        assert f"`{signature}`" in text
        assert set(contract.input_specs(signature)) == {t.name for t in contract.INPUTS[signature]}
    with pytest.raises(ValueError, match="signature"):
        contract.input_specs("nope")


def test_graph_errors_reduce_to_the_contract_message():
    text = ("Graph execution error:\n\nDetected at node x\nassertion failed: [k: must be in [1, 20]] "
            "[Condition x >= y did not hold element-wise:] [x (k:0) = ] [0]\n\t [[{{node assert}}]]")
    assert contract.error_message(text) == "k: must be in [1, 20]"
    assert contract.error_message("\n  something else\nmore") == "something else"
    # Not an assertion (text as TensorFlow 2.21 raises it): the line saying what failed, not the preamble.
    other = ('Graph execution error:\n\nDetected at node GatherV2 defined at (most recent call last):\n'
             '  File "<string>", line 8, in <module>\n\n  File "<string>", line 6, in f\n\n'
             'indices[0] = 5 is not in [0, 3)\n\t [[{{node GatherV2}}]] [Op:__inference_f_8]')
    assert contract.error_message(other) == "indices[0] = 5 is not in [0, 3)"


def _tiny_module():
    module = tf.Module()
    module.weight = tf.Variable(2.0)
    module.double = tf.function(lambda x: x * module.weight, input_signature=[tf.TensorSpec([], tf.float32)])
    return module


def test_a_version_on_an_object_store_is_copied_whole_with_saved_model_pb_last(monkeypatch):
    # ram:// stands in for gs://: no atomic folder rename (its rename even drops the files).
    # (An extra file outside assets.extra: ram:// lists "assets.extra" under "assets" as a prefix.)
    base = "ram://publish-ok/recommender"
    copied = []
    real_copy = tf.io.gfile.copy
    monkeypatch.setattr(tf.io.gfile, "copy", lambda src, dst, *a, **kw: (copied.append(dst), real_copy(src, dst, *a, **kw)))
    module = _tiny_module()
    path = export.save_version(module, {"serving_default": module.double}, base, 1, {"notes/note.txt": b"hi"})
    assert path == base + "/1"
    assert tf.io.gfile.listdir(base) == ["1"]  # the staging folder is gone
    names = sorted(d[len(path):] for d in copied)
    assert names == sorted(["/saved_model.pb", "/fingerprint.pb", "/notes/note.txt",
                            "/variables/variables.index", "/variables/variables.data-00000-of-00001"])
    assert copied[-1] == path + "/saved_model.pb"
    assert tf.saved_model.load(path).double(tf.constant(3.0)).numpy() == 6.0


def test_a_copy_that_fails_part_way_leaves_no_version_and_no_staging(monkeypatch):
    base = "ram://publish-fails/recommender"
    calls = []

    def failing_copy(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 2:
            raise tf.errors.UnavailableError(None, None, "connection reset")
        tf.io.gfile.GFile(dst, "wb").write(tf.io.gfile.GFile(src, "rb").read())

    monkeypatch.setattr(tf.io.gfile, "copy", failing_copy)
    module = _tiny_module()
    with pytest.raises(tf.errors.UnavailableError, match="connection reset"):
        export.save_version(module, {"serving_default": module.double}, base, 1)
    assert tf.io.gfile.listdir(base) == []
