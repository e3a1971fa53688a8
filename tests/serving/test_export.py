"""The exported SavedModel: same outputs as the in-memory model, TF-core + TF-Text
only, loadable without this project, warmup records, atomic versions, request checks."""

import json
import re
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from serving import contract, warmup
from serving.export import ASSETS_EXTRA, MODELS_CONFIG, SERVING_CONFIG, build_module
from serving.module import ServingSettings
from trainer import experiment, task
from trainer.data import dataset, prepare
from trainer.models.recommender import PAD_ROWS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def in_memory(exported_job):
    config = exported_job.config()
    context = experiment.load_context(config)
    model = experiment.load_trained(config, context)
    batch = next(iter(dataset.make_dataset(prepare.data_dir(str(exported_job.job)), "test", 16)))
    return model, context, batch


@pytest.fixture(scope="module")
def loaded(exported_job):
    return tf.saved_model.load(str(exported_job.version))


def _query(batch):
    return {t.name: batch[t.name] for t in contract.QUERY_INPUTS}


def test_exported_outputs_equal_in_memory_outputs(in_memory, loaded, exported_job):
    model, context, batch = in_memory
    settings = json.loads((exported_job.version / ASSETS_EXTRA / SERVING_CONFIG).read_text())["settings"]
    query = _query(batch)
    rows = len(query["user_id"])
    expected = model.score_catalogue(batch).numpy()  # [B, N] log P, catalogue order
    if settings["exclude_history"]:
        out = model.forward(batch)
        expected = np.where(model.history_item_mask(out.history_index).numpy(), -np.inf, expected)
    index = {item: i for i, item in enumerate(context.catalogue.ids)}

    k = 7
    got = loaded.signatures["retrieve"](k=tf.fill([rows], k), exclusions=tf.fill([rows, 1], ""), **query)
    best = -np.sort(-expected, axis=1)[:, :k]
    np.testing.assert_allclose(got["scores"].numpy(), best, rtol=1e-5, atol=1e-5)
    for row in range(rows):  # each returned id carries the in-memory score of that item
        ids = [i.decode() for i in got["item_ids"].numpy()[row]]
        np.testing.assert_allclose([expected[row, index[i]] for i in ids], got["scores"].numpy()[row], rtol=1e-5, atol=1e-5)

    # rank: every catalogue item as a candidate -> the whole score row.
    candidates = np.tile(context.catalogue.ids.astype(str), (rows, 1))
    ranked = loaded.signatures["rank"](candidate_item_ids=tf.constant(candidates), **query)
    np.testing.assert_allclose(np.where(np.isinf(expected), -1e30, expected),
                               np.where(np.isinf(ranked["scores"].numpy()), -1e30, ranked["scores"].numpy()), rtol=1e-5, atol=1e-4)
    assert ranked["known"].numpy().all()

    # behaviour heads on the recommended items
    recommended = loaded.signatures["serving_default"](
        k=tf.fill([rows], k), exclusions=tf.fill([rows, 1], ""), diversity=tf.zeros([rows]), **query
    )
    item_rows = np.vectorize(index.get)(recommended["item_ids"].numpy().astype(str)) + PAD_ROWS
    out = model.forward(batch)
    behaviour = model.behaviour_of_candidates(out, batch, tf.constant(item_rows, tf.int64))
    np.testing.assert_allclose(
        recommended["event_type_probabilities"].numpy(), tf.nn.softmax(behaviour["event_type_logits"]).numpy(), atol=1e-5
    )
    assert [n.decode() for n in recommended["event_type_names"].numpy()[0]] == list(
        json.loads((exported_job.version / ASSETS_EXTRA / SERVING_CONFIG).read_text())["event_types"]
    )

    # embed_query = the query tower; embed_items = the candidate tower with BERT run in graph
    np.testing.assert_allclose(loaded.signatures["embed_query"](**query)["query_vectors"].numpy(), out.query.numpy(), atol=1e-5)
    cat = context.catalogue
    items = loaded.signatures["embed_items"](
        item_id=tf.constant(cat.ids.astype(str)), text=tf.constant(cat.texts.astype(str)),
        category=tf.constant(cat.categories.astype(str)), latitude=tf.constant(cat.latitudes),
        longitude=tf.constant(cat.longitudes), price=tf.constant(cat.prices),
    )["item_vectors"].numpy()
    np.testing.assert_allclose(items, model.catalogue_vectors().numpy(), atol=1e-4)


def test_recommend_padding_explanations_and_mmr(loaded, in_memory):
    _, _, batch = in_memory
    query = _query(batch)
    rows = len(query["user_id"])
    k = np.array([3] + [5] * (rows - 1), np.int32)
    plain = loaded.signatures["serving_default"](k=k, exclusions=tf.fill([rows, 1], ""), diversity=tf.zeros([rows]), **query)
    ids = plain["item_ids"].numpy()
    assert ids.shape == (rows, 5)
    assert (ids[0, 3:] == b"").all() and np.isneginf(plain["scores"].numpy()[0, 3:]).all()  # row 0 asked for 3
    behaviour = plain["event_type_probabilities"].numpy()
    assert np.isnan(behaviour[0, 3:]).all() and np.isfinite(behaviour[0, :3]).all() and np.isfinite(behaviour[1:]).all()
    history = query["history_item_ids"].numpy()
    position = plain["because_position"].numpy()
    because = plain["because_item_id"].numpy()
    for row in range(rows):
        for col in range(k[row]):
            if position[row, col] >= 0:
                assert because[row, col] == history[row, position[row, col]]
            if plain["from_history"].numpy()[row, col]:  # a return is explained by the item itself
                assert because[row, col] == ids[row, col]
    # Exclusions are honoured.
    excluded = loaded.signatures["serving_default"](
        k=k, exclusions=tf.constant(ids[:, :2]), diversity=tf.zeros([rows]), **query
    )["item_ids"].numpy()
    for row in range(rows):
        assert not set(excluded[row]) & set(ids[row, :2]) - {b""}
    # Full diversity changes the list but keeps items from the same pool, each once.
    diverse = loaded.signatures["serving_default"](k=k, exclusions=tf.fill([rows, 1], ""), diversity=tf.ones([rows]), **query)
    diverse_ids = diverse["item_ids"].numpy()
    for row in range(rows):
        real = [i for i in diverse_ids[row] if i]
        assert len(real) == len(set(real)) == k[row]


def test_diverse_lists_never_repeat_an_item_when_few_are_left(loaded, in_memory):
    # Everything but two items excluded, k=5: MMR runs out of candidates after two
    # picks; the rest of the row must be padding, never the best item again.
    model, _, batch = in_memory
    query = _query(batch)
    rows = len(query["user_id"])
    catalogue = [i.decode() for i in model.catalogue_ids.numpy()]
    keep = catalogue[:2]
    exclusions = tf.constant([catalogue[2:]] * rows)
    for diversity in (0.5, 0.0):
        out = loaded.signatures["serving_default"](
            k=tf.fill([rows], 5), exclusions=exclusions, diversity=tf.fill([rows], diversity), **query)
        ids, scores = out["item_ids"].numpy(), out["scores"].numpy()
        for row in range(rows):
            real = [i.decode() for i in ids[row] if i]
            assert len(real) == len(set(real)) and set(real) <= set(keep), (diversity, ids[row])
            assert (ids[row, len(real):] == b"").all() and np.isneginf(scores[row, len(real):]).all()
        if diversity:
            diverse_rows = ids
    np.testing.assert_array_equal(diverse_rows, ids)  # with 2 items left diversity cannot reorder to a different set


def test_each_row_diversifies_within_its_own_pool(in_memory, exported_job):
    # mmr_pool=2: a row asking for k=2 chooses from its own best 2 items, whatever
    # its batch neighbours ask; a neighbour's k=10 must not widen that row's pool.
    model, context, batch = in_memory
    module = build_module(model, exported_job.config(), context.data_dir, ServingSettings(max_k=20, mmr_pool=2), context.catalogue)
    query = _query(batch)
    rows = len(query["user_id"])
    best = module.retrieve({**query, "k": tf.fill([rows], 2), "exclusions": tf.fill([rows, 1], "")})["item_ids"].numpy()
    k = np.array([2] + [10] * (rows - 1), np.int32)
    diverse = module.serving_default(
        {**query, "k": tf.constant(k), "exclusions": tf.fill([rows, 1], ""), "diversity": tf.ones([rows])})["item_ids"].numpy()
    assert set(diverse[0, :2]) == set(best[0]) and (diverse[0, 2:] == b"").all()
    for row in range(1, rows):  # the wider rows still get k distinct items
        assert len(set(diverse[row])) == 10 and b"" not in set(diverse[row])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.update(k=tf.zeros_like(r["k"])), "k: must be in [1, 20]"),
        (lambda r: r.update(k=tf.fill(tf.shape(r["k"]), 21)), "k: must be in [1, 20]"),
        (lambda r: r.update(diversity=tf.fill(tf.shape(r["diversity"]), 1.5)), "diversity: must be in [0, 1]"),
        (lambda r: r.update(history_timestamps=r["history_timestamps"][:, :-1]), "history_timestamps: shape must equal"),
        (lambda r: r.update(request_timestamp=r["request_timestamp"][:-1]), "request_timestamp: must have one value per user_id"),
        (lambda r: r.update(request_timestamp=-tf.ones_like(r["request_timestamp"])), "request_timestamp: must be >= 0"),
        (lambda r: r.update(history_item_ids=tf.concat([tf.fill([tf.shape(r["k"])[0], 1], ""), r["history_item_ids"]], 1),
                            **{n: tf.concat([r[n][:, :1], r[n]], 1) for n in ("history_timestamps", "history_event_types",
                               "history_utc_offsets", "history_latitudes", "history_longitudes")}),
         "history_item_ids: padding (empty ids) must come after"),
        (lambda r: r.update({name: value[:0] for name, value in r.items()}), "user_id: a request needs at least one user"),
    ],
)
def test_bad_requests_name_the_input(loaded, in_memory, change, message):
    _, _, batch = in_memory
    request = dict(_query(batch))
    rows = len(request["user_id"])
    request.update(k=tf.fill([rows], 5), exclusions=tf.fill([rows, 1], ""), diversity=tf.zeros([rows]))
    change(request)
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        loaded.signatures["serving_default"](**request)


def test_fresh_process_with_only_tensorflow_and_text_calls_every_signature(exported_job, tmp_path):
    arrays = {}
    for record in warmup.read(str(exported_job.version / ASSETS_EXTRA / warmup.FILENAME)):
        request = record.predict_log.request
        for name, proto in request.inputs.items():
            arrays[f"{request.model_spec.signature_name}/{name}"] = tf.make_ndarray(proto)
    np.savez(tmp_path / "requests.npz", **arrays)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # noqa
        model = tf.saved_model.load({str(exported_job.version)!r})
        arrays = np.load({str(tmp_path / 'requests.npz')!r}, allow_pickle=True)
        requests = {{}}
        for key in arrays.files:
            sig, name = key.split("/")
            requests.setdefault(sig, {{}})[name] = tf.constant(arrays[key])
        shapes = {{sig: {{k: list(v.shape) for k, v in model.signatures[sig](**args).items()}} for sig, args in requests.items()}}
        foreign = sorted(m for m in sys.modules if m.split(".")[0] in ("trainer", "serving", "transformers", "tensorflow_recommenders"))
        print(json.dumps({{"shapes": shapes, "foreign": foreign}}))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["foreign"] == []
    assert set(report["shapes"]) == set(contract.SIGNATURES)
    rows = len(arrays["serving_default/user_id"])
    assert report["shapes"]["serving_default"]["item_ids"][0] == rows
    assert report["shapes"]["embed_items"]["item_vectors"] == [len(arrays["embed_items/item_id"]), 8]


def test_graph_uses_only_tf_core_and_tf_text_ops(exported_job):
    script = textwrap.dedent(f"""
        import json
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2
        from tensorflow.python.framework import op_def_registry
        saved = saved_model_pb2.SavedModel.FromString(open({str(exported_job.version / 'saved_model.pb')!r}, "rb").read())
        graph = saved.meta_graphs[0].graph_def
        ops = {{n.op for n in graph.node}}
        for f in graph.library.function:
            ops |= {{n.op for n in f.node_def}}
        functions = {{f.signature.name for f in graph.library.function}}
        ops -= functions
        not_core = sorted(op for op in ops if op_def_registry.get(op) is None)
        import tensorflow_text  # noqa
        unknown = sorted(op for op in not_core if op_def_registry.get(op) is None)
        print(json.dumps({{"not_core": not_core, "unknown": unknown, "count": len(ops)}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["unknown"] == []  # every op is TF core or registered by tensorflow_text
    assert report["not_core"], "the in-graph WordPiece tokenizer should need TF Text ops"
    assert report["count"] > 50


def test_warmup_file_parses_into_prediction_logs(exported_job):
    records = warmup.read(str(exported_job.version / ASSETS_EXTRA / warmup.FILENAME))
    assert sorted(r.predict_log.request.model_spec.signature_name for r in records) == sorted(contract.SIGNATURES)
    for record in records:
        request = record.predict_log.request
        assert request.model_spec.name == "recommender"
        expected = {t.name for t in contract.INPUTS[request.model_spec.signature_name]}
        assert set(request.inputs) == expected


def test_versions_are_atomic_and_numbered(exported_job):
    base = exported_job.base
    assert task.main(["--stage=export", *exported_job.argv], {}) == 0
    versions = sorted(p.name for p in base.iterdir() if not p.name.endswith(".csv"))
    assert "1" in versions and "2" in versions
    assert not [p for p in versions if p.startswith(".staging")]  # nothing half-written left behind
    config = (exported_job.job / "export" / MODELS_CONFIG).read_text()
    assert 'name: "recommender"' in config and 'base_path: "/models/recommender"' in config
    # An existing version is never overwritten.
    assert task.main(["--stage=export", *exported_job.argv, "--export-version=1"], {}) == 2
    assert not [p for p in base.iterdir() if p.name.startswith(".staging")]


def test_a_model_trained_on_ratings_serves_predicted_ratings(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["user_id,item_id,timestamp,event_type,value"]
    for user in range(30):
        for step, item in enumerate(rng.choice(40, size=12, replace=False)):
            rows.append(f"u{user},i{item},{1700000000 + user * 1000 + step * 60},rating,{rng.integers(1, 6)}")
    (tmp_path / "events.csv").write_text("\n".join(rows) + "\n")
    job = tmp_path / "job"
    argv = [f"--job-dir={job}", "--data=events", f"--data-path={tmp_path / 'events.csv'}", "--text-mode=off",
            "--epochs=1", "--batch-size=32", "--embedding-dim=8", "--gru-units=8", "--baselines=", "--max-k=5"]
    assert task.main(["--stage=all", *argv], {}) == 0
    version = job / "export" / "recommender" / "1"
    config = json.loads((version / ASSETS_EXTRA / SERVING_CONFIG).read_text())
    assert "predicted_rating" in config["signatures"]["serving_default"]
    assert config["settings"]["exclude_history"] is True  # films-like data: seen items are filtered
    loaded = tf.saved_model.load(str(version))
    arrays = {}
    for record in warmup.read(str(version / ASSETS_EXTRA / warmup.FILENAME)):
        if record.predict_log.request.model_spec.signature_name == contract.RECOMMEND:
            arrays = {k: tf.make_ndarray(v) for k, v in record.predict_log.request.inputs.items()}
    request = {k: tf.constant(v) for k, v in arrays.items()}
    out = loaded.signatures[contract.RECOMMEND](**request)
    ratings = out["predicted_rating"].numpy()
    assert ratings.shape == out["item_ids"].shape and np.isfinite(ratings).all()
    history = set(arrays["history_item_ids"][0].tolist()) - {b""}
    assert not history & set(out["item_ids"].numpy()[0].tolist())  # history excluded for this model
