"""The local TF-Serving-compatible server through the standard tensorflow_serving.apis stubs."""

import contextlib
import json
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import contract, tensors, warmup
from serving.batcher import BatchingOptions
from serving.export import ASSETS_EXTRA
from serving.server import Server

pytestmark = pytest.mark.slow
DTYPES = {sig: {t.name: t.dtype for t in contract.INPUTS[sig]} for sig in contract.SIGNATURES}


@pytest.fixture(scope="module")
def requests_by_signature(exported_job):
    out = {}
    for record in warmup.read(str(exported_job.version / ASSETS_EXTRA / warmup.FILENAME)):
        request = record.predict_log.request
        out[request.model_spec.signature_name] = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    return out


@pytest.fixture(scope="module")
def base(exported_job, tmp_path_factory):
    """A model base path of our own (tests add versions to it)."""
    path = tmp_path_factory.mktemp("base") / "recommender"
    shutil.copytree(exported_job.version, path / "1")
    return path


@pytest.fixture(scope="module")
def server(base):
    server = Server("recommender", str(base), port=0, poll_seconds=0.2).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(server.address)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _request(signature, inputs, name="recommender", dtypes=None):
    return tensors.predict_request(name, signature, inputs, dtypes or DTYPES[signature])


def _outputs(response):
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def test_round_trip_equals_in_process_call(stub, exported_job, requests_by_signature):
    loaded = tf.saved_model.load(str(exported_job.version))
    for signature, inputs in requests_by_signature.items():
        response = stub.Predict(_request(signature, inputs), timeout=30)
        assert response.model_spec.version.value == 1 and response.model_spec.signature_name == signature
        expected = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        got = _outputs(response)
        assert set(got) == set(expected)
        for name, value in expected.items():
            if value.dtype == tf.string or value.dtype == tf.bool:
                np.testing.assert_array_equal(got[name], value.numpy())
            else:
                np.testing.assert_allclose(got[name], value.numpy(), rtol=1e-6, atol=1e-6)


def test_output_filter(stub, requests_by_signature):
    request = _request("serving_default", requests_by_signature["serving_default"])
    request.output_filter.append("item_ids")
    assert set(stub.Predict(request, timeout=30).outputs) == {"item_ids"}


def test_metadata_and_status(server, stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "recommender"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert set(contract.SIGNATURES) <= set(signatures.signature_def)
    assert set(signatures.signature_def["serving_default"].inputs) == set(DTYPES["serving_default"])
    channel = grpc.insecure_channel(server.address)
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "recommender"}), timeout=10
    )
    assert [(s.version, s.state) for s in status.model_version_status][0][1] == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    channel.close()


@pytest.mark.parametrize(
    "mutate, code, text",
    [
        (lambda r: setattr(r.model_spec, "name", "nope"), grpc.StatusCode.NOT_FOUND, "Servable not found"),
        (lambda r: r.model_spec.version.__setattr__("value", 99), grpc.StatusCode.NOT_FOUND, "Specific(recommender, 99)"),
        (lambda r: setattr(r.model_spec, "signature_name", "nope"), grpc.StatusCode.NOT_FOUND, "signature key"),
        (lambda r: r.inputs.pop("k"), grpc.StatusCode.INVALID_ARGUMENT, "missing ['k']"),
        (lambda r: r.inputs["k"].CopyFrom(tf.make_tensor_proto(np.array([5, 5], np.int64))), grpc.StatusCode.INVALID_ARGUMENT,
         "k: expected dtype int32, got int64"),
        (lambda r: r.inputs["k"].CopyFrom(tf.make_tensor_proto(np.array([0, 5], np.int32))), grpc.StatusCode.INVALID_ARGUMENT,
         "k: must be in [1, 20]"),
        (lambda r: r.inputs["user_id"].CopyFrom(tf.make_tensor_proto(np.array([[b"a"]]))), grpc.StatusCode.INVALID_ARGUMENT,
         "user_id: expected a rank-1 tensor"),
    ],
)
def test_errors_are_answered_like_tf_serving(stub, requests_by_signature, mutate, code, text):
    request = _request("serving_default", requests_by_signature["serving_default"])
    mutate(request)
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=30)
    assert error.value.code() == code
    assert text in error.value.details()


_FIELDS = sorted(DTYPES["serving_default"])


@st.composite
def bad_requests(draw):
    """A valid request with one thing broken: dtype, rank, batch size, a value range, or padding order."""
    kind = draw(st.sampled_from(["dtype", "rank", "batch", "k", "diversity", "left_padding", "drop", "extra"]))
    field = draw(st.sampled_from(_FIELDS))
    return kind, field, draw(st.integers(min_value=-5, max_value=5))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=bad_requests())
def test_fuzzed_bad_requests_are_invalid_argument_and_the_server_lives(stub, requests_by_signature, bad):
    kind, field, number = bad
    inputs = {k: np.array(v) for k, v in requests_by_signature["serving_default"].items()}
    request = _request("serving_default", inputs)
    value = inputs[field]
    if kind == "dtype":
        wrong = np.zeros(value.shape, np.float64) if value.dtype == object else value.astype(object).astype(str).astype(object)
        request.inputs[field].CopyFrom(tf.make_tensor_proto(wrong))
    elif kind == "rank":
        request.inputs[field].CopyFrom(tf.make_tensor_proto(value[..., None]))
    elif kind == "batch":
        request.inputs[field].CopyFrom(tf.make_tensor_proto(np.concatenate([value, value[:1]], axis=0)))
    elif kind == "k":
        request.inputs["k"].CopyFrom(tf.make_tensor_proto(np.full(inputs["k"].shape, 21 + abs(number) if number >= 0 else number, np.int32)))
    elif kind == "diversity":
        request.inputs["diversity"].CopyFrom(tf.make_tensor_proto(np.full(inputs["diversity"].shape, 1.5 + abs(number) if number >= 0 else -0.5 + number, np.float32)))
    elif kind == "left_padding":
        history = inputs["history_item_ids"].copy()
        history[0] = np.concatenate([[b""], history[0][:-1]])
        request.inputs["history_item_ids"].CopyFrom(tf.make_tensor_proto(history))
    elif kind == "drop":
        request.inputs.pop(field)
    else:
        request.inputs["surprise"].CopyFrom(tf.make_tensor_proto(np.array([1], np.int32)))
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (kind, field, error.value.details())
    # The server is still healthy.
    assert stub.Predict(_request("serving_default", requests_by_signature["serving_default"]), timeout=30).outputs


def test_new_version_is_picked_up_mid_traffic_without_failures(server, stub, base, requests_by_signature):
    request = _request("serving_default", requests_by_signature["serving_default"])
    failures, versions, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                versions.append(stub.Predict(request, timeout=30).model_spec.version.value)
            except grpc.RpcError as e:  # collected: the test asserts there are none
                failures.append(e)

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    staging = base / ".staging-2"
    shutil.copytree(base / "1", staging)
    staging.rename(base / "2")  # how export publishes a version
    deadline = time.time() + 120
    while time.time() < deadline and (not versions or versions[-1] != 2):
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert not failures
    assert versions[0] == 1 and versions[-1] == 2
    assert server.manager.current.version == 2


@contextlib.contextmanager
def _batching_server(exported_job, timeout_micros):
    """(server, stub) of a server batching with one thread and `timeout_micros`; stopped afterwards."""
    server = Server("recommender", str(exported_job.base), port=0, poll_seconds=0,
                    batching=BatchingOptions(max_batch_size=64, batch_timeout_micros=timeout_micros,
                                             num_batch_threads=1)).start()
    channel = grpc.insecure_channel(server.address)
    try:
        yield server, prediction_service_pb2_grpc.PredictionServiceStub(channel)
    finally:
        channel.close()
        server.stop()


def test_batching_gives_each_request_its_own_answer(exported_job, requests_by_signature):
    """Concurrent requests of different history lengths and k, merged server-side, equal unbatched answers."""
    base_inputs = requests_by_signature["serving_default"]
    variants = []
    for i, width in enumerate((3, 6, 9, 12)):
        inputs = {k: np.array(v) for k, v in base_inputs.items()}
        inputs = {k: (v[:, :width] if k.startswith("history_") else v) for k, v in inputs.items()}
        inputs["k"] = np.full(inputs["k"].shape, 2 + i, np.int32)
        variants.append(inputs)
    loaded = tf.saved_model.load(str(exported_job.version))
    expected = [loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()}) for x in variants]
    with _batching_server(exported_job, 200_000) as (server, stub):
        futures = [stub.Predict.future(_request("serving_default", x), timeout=60) for x in variants * 2]
        results = [_outputs(f.result()) for f in futures]
        assert server.batcher.requests == len(futures) and server.batcher.batches < len(futures)  # some were merged
    for i, got in enumerate(results):
        want = expected[i % len(variants)]
        assert got["item_ids"].shape == want["item_ids"].shape
        np.testing.assert_array_equal(got["item_ids"], want["item_ids"].numpy())
        np.testing.assert_allclose(got["scores"], want["scores"].numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(got["because_position"], want["because_position"].numpy())


def test_batching_refuses_inputs_whose_rows_disagree(exported_job, requests_by_signature):
    # Merged requests are split back by rows, so a request whose inputs disagree on B could
    # pair with another malformed one and be answered with a neighbour's rows: refused up front.
    bad = {k: np.array(v) for k, v in requests_by_signature["serving_default"].items()}
    bad["k"] = np.concatenate([bad["k"], bad["k"][:1]])
    with _batching_server(exported_job, 1000) as (server, stub):
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(_request("serving_default", bad), timeout=60)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "first dimension is the batch" in error.value.details() and "'k'" in error.value.details()
        assert server.batcher.requests == 0


def test_server_refuses_a_base_path_without_versions(tmp_path):
    with pytest.raises(ValueError, match="No model version"):
        Server("recommender", str(tmp_path), port=0)


def test_predict_request_names_inputs_that_do_not_convert():
    with pytest.raises(ValueError, match="'k'"):
        tensors.predict_request("m", "serving_default", {"k": [["x"]]}, DTYPES["serving_default"])
    assert isinstance(_request("embed_query", {"user_id": ["u"]}), predict_pb2.PredictRequest)


def test_request_waiting_past_its_deadline_is_deadline_exceeded(exported_job, requests_by_signature):
    # A batch timeout far longer than the client's deadline: the request cannot run in time.
    with _batching_server(exported_job, 3_000_000) as (server, stub):
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(_request("serving_default", requests_by_signature["serving_default"]), timeout=0.5)
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The server still answers requests with time to spare.
        assert stub.Predict(_request("serving_default", requests_by_signature["serving_default"]), timeout=60).outputs
        assert server.batcher.requests == 1  # the expired request was cancelled server-side, never run


def test_client_cli_prints_recommendations_with_explanations(server, tmp_path, capsys, requests_by_signature):
    from serving import client

    history = [h.decode() for h in requests_by_signature["serving_default"]["history_item_ids"][0] if h]
    user = {"user_id": "someone", "history": [{"item_id": item, "timestamp": 1714570000 + 60 * i, "event_type": "view"}
                                              for i, item in enumerate(history)], "k": 4}
    (tmp_path / "user.json").write_text(json.dumps(user))
    code = client.main([f"--server={server.address}", f"--input={tmp_path / 'user.json'}", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    items = printed[0]["items"]
    assert len(items) == 4 and all("because" in item and "behaviour" in item for item in items)
    assert all(item["because"]["item_id"] in history for item in items)
    assert client.main([f"--server={server.address}", f"--input={tmp_path / 'user.json'}"]) == 0
    assert "1. " in capsys.readouterr().out
    (tmp_path / "bad.json").write_text(json.dumps({"history": [{"item_id": "a", "timestamp": "soon"}]}))
    assert client.main([f"--server={server.address}", f"--input={tmp_path / 'bad.json'}"]) == 2


def test_client_rank_orders_each_users_candidates_by_the_rank_signature(server, exported_job, tmp_path, capsys,
                                                                        requests_by_signature):
    from serving import client

    loaded = tf.saved_model.load(str(exported_job.version))
    query = {k: tf.constant(v[:1]) for k, v in requests_by_signature["rank"].items() if k != "candidate_item_ids"}
    some = loaded.signatures["retrieve"](k=tf.constant([10]), exclusions=tf.constant([[""]]), **query)["item_ids"]
    catalogue = sorted(i.decode() for i in some.numpy()[0])  # ten catalogue items, in no particular order
    history = [{"item_id": catalogue[0], "timestamp": 1714570000, "event_type": "view"}]
    users = [{"user_id": "u1", "history": history, "candidates": catalogue[:5] + ["not-an-item"]},
             {"user_id": "u2", "history": history, "candidates": catalogue[5:7]}]
    shape = client.RequestShape(candidate_width=8)
    inputs = client.rank_inputs(users, shape)
    # The in-process rank signature on the same padded inputs is the reference.
    expected = loaded.signatures["rank"](**{k: tf.constant(v) for k, v in inputs.items()})
    remote = client.Client(server.address, "recommender")
    try:
        ranked = remote.rank(users, shape)
    finally:
        remote.close()
    for row, user in enumerate(users):
        got = ranked[row]
        assert sorted(e["item_id"] for e in got) == sorted(user["candidates"])
        known = [e for e in got if e["known"]]
        assert len(known) == len(user["candidates"]) - (row == 0)  # every catalogue item is known
        reference = {c: float(s) for c, s, k in zip(user["candidates"], expected["scores"].numpy()[row],
                                                     expected["known"].numpy()[row]) if k}
        assert [e["item_id"] for e in known] == sorted(reference, key=lambda c: -reference[c])
        np.testing.assert_allclose([e["score"] for e in known], [reference[e["item_id"]] for e in known], rtol=1e-5)
    assert ranked[0][-1] == {"item_id": "not-an-item", "score": None, "known": False}
    (tmp_path / "users.json").write_text(json.dumps(users))
    assert client.main([f"--server={server.address}", f"--input={tmp_path / 'users.json'}", "--rank", "--json",
                        "--candidate-width=8"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [[e["item_id"] for e in p["items"]] for p in printed] == [[e["item_id"] for e in r] for r in ranked]
    assert client.main([f"--server={server.address}", f"--input={tmp_path / 'users.json'}", "--rank"]) == 0
    assert "not in the served catalogue" in capsys.readouterr().out
    # A width smaller than a user's candidate list is refused before anything is sent.
    assert client.main([f"--server={server.address}", f"--input={tmp_path / 'users.json'}", "--rank",
                        "--candidate-width=4"]) == 2
    assert "user 0 candidates: 6 items" in capsys.readouterr().err
