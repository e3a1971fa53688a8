"""Tests for trainer/models/text_pretraining.py: BERT masking and continued MLM pretraining."""

from __future__ import annotations

import logging
import os

import pytest

import trainer  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import numpy as np
import transformers

from tests.models.test_text_tower import VOCAB, real_bert_path, word_embeddings, write_tiny_checkpoint, write_vocab
from trainer.models import text_tower
from trainer.models import text_pretraining
from trainer.models.text_pretraining import IGNORE_LABEL, mask_tokens, pretrain_mlm

transformers.logging.set_verbosity_error()

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = (PAD, UNK, CLS, SEP, MASK)


# mask_tokens ----------------------------------------------------------------------------


def test_mask_tokens_hand_example():
    # Row 0 has 3 candidates (5, 6, 7): round(0.15 * 3) = 0 -> at least 1 is picked.
    # Row 1 has 10: round(1.5) = 2 (numpy rounds half to even). Row 2 has none ([UNK] is special).
    ids = np.array([
        [CLS, 5, 6, 7, SEP, PAD, PAD, PAD, PAD, PAD, PAD, PAD],
        [CLS, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, SEP],
        [CLS, UNK, SEP, PAD, PAD, PAD, PAD, PAD, PAD, PAD, PAD, PAD],
    ])
    mask = (ids != PAD).astype(np.int32)
    inputs, labels = mask_tokens(
        ids, mask, rng=np.random.default_rng(0), mask_rate=0.15, mask_id=MASK, vocab_size=15, special_ids=SPECIAL
    )
    picked = labels != IGNORE_LABEL
    assert picked.sum(axis=1).tolist() == [1, 2, 0]
    np.testing.assert_array_equal(labels[picked], ids[picked])  # labels are the original ids
    np.testing.assert_array_equal(inputs[~picked], ids[~picked])  # the rest is untouched
    assert inputs.dtype == np.int32 and labels.dtype == np.int32


def test_mask_tokens_80_10_10_rule_and_never_special_or_padding():
    rng = np.random.default_rng(1)
    vocab_size = 1000
    ids = rng.integers(5, vocab_size, size=(2000, 40))
    lengths = rng.integers(3, 41, size=2000)
    mask = (np.arange(40) < lengths[:, None]).astype(np.int32)
    ids[:, 0] = CLS
    ids[np.arange(2000), lengths - 1] = SEP
    ids[mask == 0] = PAD

    inputs, labels = mask_tokens(
        ids, mask, rng=np.random.default_rng(2), mask_rate=0.15, mask_id=MASK, vocab_size=vocab_size, special_ids=SPECIAL
    )

    picked = labels != IGNORE_LABEL
    assert not picked[np.isin(ids, SPECIAL)].any()
    candidates = mask.sum(1) - 2
    np.testing.assert_array_equal(picked.sum(1), np.maximum(1, np.round(0.15 * candidates)))
    became_mask = (inputs == MASK)[picked].mean()
    unchanged = (inputs == ids)[picked].mean()
    became_other = 1 - became_mask - unchanged
    assert abs(became_mask - 0.8) < 0.02 and abs(became_other - 0.1) < 0.015 and abs(unchanged - 0.1) < 0.015
    replaced = picked & (inputs != MASK) & (inputs != ids)
    assert not np.isin(inputs[replaced], SPECIAL).any()


def test_mask_tokens_is_seeded():
    ids = np.tile(np.array([[CLS, 5, 6, 7, 8, 9, SEP]]), (4, 1))
    mask = np.ones_like(ids)

    def run(seed):
        return mask_tokens(ids, mask, rng=np.random.default_rng(seed), mask_rate=0.3, mask_id=MASK, vocab_size=15, special_ids=SPECIAL)

    for a, b in zip(run(5), run(5)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="mask_rate=1.5"):
        mask_tokens(ids, mask, rng=np.random.default_rng(0), mask_rate=1.5, mask_id=MASK, vocab_size=15, special_ids=SPECIAL)


# pretrain_mlm ---------------------------------------------------------------------------


def test_tokenize_all_chunks_share_one_width(tmp_path):
    tokenizer = text_tower.BertTokenizerLayer(write_vocab(tmp_path), max_tokens=10, pad_to_max_tokens=True)
    # Chunks of 2: ["red", "red apple"] is 4 wide, ["the green pear", "mug"] 5 wide, ["the"] 3 wide.
    ids, mask = text_pretraining._tokenize_all(tokenizer, ["red", "red apple", "the green pear", "mug", "the"], chunk_size=2)
    np.testing.assert_array_equal(ids, [
        [CLS, 5, SEP, PAD, PAD],
        [CLS, 5, 6, SEP, PAD],
        [CLS, 12, 8, 9, SEP],
        [CLS, 11, SEP, PAD, PAD],
        [CLS, 12, SEP, PAD, PAD],
    ])
    np.testing.assert_array_equal(mask.sum(1), [3, 4, 5, 3, 3])


# A corpus the tiny model can learn: "red" goes with "apple", "green" with "pear".
TOY_TEXTS = ["red apple, red apples.", "green pear, green pears.", "the red apple.", "the green pear.", "coffee mug."] * 12


def test_pretrain_mlm_learns_and_writes_a_loadable_encoder(tmp_path, caplog):
    bert_path = write_tiny_checkpoint(tmp_path / "bert", seed=4)
    output_dir = str(tmp_path / "adapted")

    with caplog.at_level(logging.INFO, logger="trainer.models.text_pretraining"):
        result = pretrain_mlm(
            TOY_TEXTS, bert_path, output_dir, epochs=8, batch_size=8, seed=0, max_tokens=16, learning_rate=5e-3
        )

    assert result["num_heldout_texts"] == 6 and result["num_train_texts"] == 54  # 10% of 60 held out
    assert result["heldout_masked_tokens"] >= 6  # at least one per held-out text
    assert result["heldout_loss_after"] < result["heldout_loss_before"] - 0.5
    assert len(result["history"]) == 8 and result["history"][-1]["heldout_loss"] == result["heldout_loss_after"]
    # A TFBertModel checkpoint has no MLM head: its weights start fresh and are reported.
    assert any("transform" in name for name in result["new_head_weights"])
    assert "MLM epoch 8/8" in caplog.text and "no MLM head" in caplog.text

    for name in ("vocab.txt", "config.json", "model.safetensors"):
        assert os.path.isfile(os.path.join(output_dir, name))
    original, adapted = text_tower.load_bert(bert_path), text_tower.load_bert(output_dir)
    assert not np.allclose(word_embeddings(adapted), word_embeddings(original))  # trained
    np.testing.assert_array_equal(adapted.bert.pooler.dense.kernel.numpy(), original.bert.pooler.dense.kernel.numpy())
    assert text_tower.read_vocab(os.path.join(output_dir, "vocab.txt")) == VOCAB


def test_pretrain_mlm_keeps_an_existing_head(tmp_path):
    bert_path = write_tiny_checkpoint(tmp_path / "bert", model_class=transformers.TFBertForMaskedLM)
    result = pretrain_mlm(TOY_TEXTS[:20], bert_path, str(tmp_path / "out"), epochs=1, batch_size=8, max_tokens=16)
    assert result["new_head_weights"] == []
    assert np.isfinite(result["heldout_loss_before"]) and 0 <= result["heldout_accuracy_after"] <= 1


def test_pretrain_mlm_is_reproducible_with_a_seed(tmp_path):
    bert_path = write_tiny_checkpoint(tmp_path / "bert")

    def run(name):
        result = pretrain_mlm(TOY_TEXTS[:20], bert_path, str(tmp_path / name), epochs=1, batch_size=8, seed=3, max_tokens=16)
        return result["heldout_loss_before"], result["heldout_loss_after"]

    assert run("a") == run("b")  # the fresh head and dropout are seeded too


def test_pretrain_mlm_validates_arguments(tmp_path):
    bert_path = write_tiny_checkpoint(tmp_path / "bert")
    out = str(tmp_path / "out")
    kwargs = dict(epochs=1, batch_size=4)
    with pytest.raises(ValueError, match="epochs=0"):
        pretrain_mlm(TOY_TEXTS, bert_path, out, epochs=0, batch_size=4)
    with pytest.raises(ValueError, match="batch_size=0"):
        pretrain_mlm(TOY_TEXTS, bert_path, out, epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="one string"):
        pretrain_mlm("red apple", bert_path, out, **kwargs)
    with pytest.raises(ValueError, match="len\\(texts\\)=1"):
        pretrain_mlm(["red apple"], bert_path, out, **kwargs)
    with pytest.raises(ValueError, match="mask_rate=0"):
        pretrain_mlm(TOY_TEXTS, bert_path, out, mask_rate=0, **kwargs)
    with pytest.raises(ValueError, match="output_dir"):
        pretrain_mlm(TOY_TEXTS, bert_path, bert_path, **kwargs)
    with pytest.raises(ValueError, match="bert_path="):
        pretrain_mlm(TOY_TEXTS, str(tmp_path / "absent"), out, **kwargs)
    write_vocab(tmp_path / "bert", [t for t in VOCAB if t != "[MASK]"])
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        pretrain_mlm(TOY_TEXTS, bert_path, out, **kwargs)


@pytest.mark.slow
def test_pretrain_mlm_on_the_real_minilm(tmp_path):
    bert_path = real_bert_path()
    from trainer.config import SyntheticConfig
    from trainer.data.readers import synthetic

    texts = list(synthetic.generate(SyntheticConfig()).items["text"][:80])
    result = pretrain_mlm(texts, bert_path, str(tmp_path / "out"), epochs=1, batch_size=16, max_tokens=64)
    assert result["num_heldout_texts"] == 8
    assert np.isfinite(result["heldout_loss_after"])
    assert text_tower.load_bert(str(tmp_path / "out")).config.hidden_size == 384
