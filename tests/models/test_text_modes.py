"""Text tower modes inside the model: frozen cache, fine-tuning, off."""

import numpy as np
import pytest
import tensorflow as tf

from tests.models.test_text_tower import write_tiny_checkpoint
from trainer import text_vectors as text_vectors_lib
from trainer import training
from trainer.config import Config, ModelConfig, RetrievalMode, TextConfig, TextMode
from trainer.data import dataset
from trainer.models import text_tower
from trainer.models.catalogue import Catalogue

SMALL = ModelConfig(embedding_dim=8, id_embedding_dim=8, gru_units=(8,), retrieval=RetrievalMode.IN_BATCH)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("bert"))


def test_frozen_vectors_are_computed_once_and_cached(tiny_data_dir, tiny_bert, tmp_path, monkeypatch):
    texts = Catalogue.load(tiny_data_dir).texts
    config = TextConfig(mode=TextMode.FROZEN, bert_path=tiny_bert, max_tokens=16)
    first = text_vectors_lib.catalogue_text_vectors(config, texts, str(tmp_path))
    assert first.shape == (len(texts), 8)
    monkeypatch.setattr(text_tower, "encode_texts", lambda *a, **k: pytest.fail("BERT ran again"))
    np.testing.assert_array_equal(text_vectors_lib.catalogue_text_vectors(config, texts, str(tmp_path)), first)
    assert text_vectors_lib.catalogue_text_vectors(TextConfig(mode=TextMode.OFF), texts, str(tmp_path)) is None
    assert text_vectors_lib.catalogue_text_vectors(config, np.array(["", " "]), str(tmp_path)) is None


def test_finetuning_trains_only_the_top_layers_and_refreshes_the_table(tiny_data_dir, tiny_bert, tmp_path):
    texts = Catalogue.load(tiny_data_dir).texts
    text_config = TextConfig(mode=TextMode.FINETUNE, bert_path=tiny_bert, max_tokens=16, finetune_layers=1)
    vectors = text_vectors_lib.catalogue_text_vectors(text_config, texts, str(tmp_path))
    config = Config(job_dir=str(tmp_path), text=text_config, model=SMALL)
    model = training.build_model(config, tiny_data_dir, vectors)
    assert model.text_encoder is not None
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    batch = next(iter(dataset.make_dataset(tiny_data_dir, "train", 32)))
    model.compute_loss(batch)
    bert_vars = {v.name: v.numpy().copy() for v in model.text_encoder.bert.variables}
    model.fit(dataset.make_dataset(tiny_data_dir, "train", 32).take(2), epochs=1, verbose=0)
    changed = {name for name, before in bert_vars.items()
               if not np.array_equal(before, next(v for v in model.text_encoder.bert.variables if v.name == name).numpy())}
    assert changed and all("layer_._1/" in name for name in changed), sorted(changed)
    before = model.text_table.numpy().copy()
    model.refresh_text_vectors()
    assert not np.allclose(before, model.text_table.numpy())


def test_finetuning_needs_in_batch_retrieval(tiny_data_dir, tiny_bert, tmp_path):
    texts = Catalogue.load(tiny_data_dir).texts
    text_config = TextConfig(mode=TextMode.FINETUNE, bert_path=tiny_bert, max_tokens=16)
    vectors = text_vectors_lib.catalogue_text_vectors(text_config, texts, str(tmp_path))
    config = Config(text=text_config, model=ModelConfig(embedding_dim=8, gru_units=(8,), retrieval=RetrievalMode.FULL))
    with pytest.raises(ValueError, match="retrieval=in-batch"):
        training.build_model(config, tiny_data_dir, vectors)


def test_items_without_text_read_as_no_text_in_every_mode(tiny_data_dir, tiny_bert, tmp_path):
    """Empty or whitespace-only text is a zero text vector in the frozen cache, in the
    fine-tuned table and in the re-encoded positives alike (what serving's embed_items gives)."""
    from trainer.models.recommender import PAD_ROWS

    texts = Catalogue.load(tiny_data_dir).texts.astype(object).copy()
    texts[0], texts[1] = "", " \t"
    frozen = text_vectors_lib.catalogue_text_vectors(
        TextConfig(mode=TextMode.FROZEN, bert_path=tiny_bert, max_tokens=16), texts, str(tmp_path / "frozen"))
    assert not frozen[:2].any() and np.abs(frozen[2:]).sum(axis=1).min() > 0

    text_config = TextConfig(mode=TextMode.FINETUNE, bert_path=tiny_bert, max_tokens=16, finetune_layers=1)
    vectors = text_vectors_lib.catalogue_text_vectors(text_config, texts, str(tmp_path / "finetune"))
    model = training.build_model(Config(job_dir=str(tmp_path), text=text_config, model=SMALL), tiny_data_dir, vectors)
    model.catalogue_texts = tf.constant(list(texts))
    model.refresh_text_vectors()
    table = model.text_table.numpy()
    assert not table[:2].any() and np.abs(table[2:]).sum(axis=1).min() > 0
    catalogue = model.catalogue_vectors()
    positives = model.positive_vectors(tf.constant([0, 1, 2]) + PAD_ROWS, catalogue, training=False)
    np.testing.assert_allclose(positives.numpy(), catalogue.numpy()[:3], atol=1e-5)
