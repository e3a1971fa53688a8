"""Continued masked-language-model pretraining of the text tower's BERT on catalogue text.

`pretrain_mlm` adapts a BERT checkpoint to the catalogue's own vocabulary and style
before the recommender trains (the `pretrain-text` stage), and writes the adapted
encoder where `text_tower.load_bert` (and so `TextConfig.bert_path`) can load it.
Masking is done in numpy with the BERT rule (`mask_tokens`); the loss is computed
only at the masked positions, so the vocabulary projection runs on ~15% of tokens.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Any, Sequence

import numpy as np
import tensorflow as tf
import transformers

from trainer.models import text_tower

log = logging.getLogger(__name__)

HELDOUT_FRACTION = 0.1  # share of texts held out to measure MLM loss/accuracy before and after
IGNORE_LABEL = -100  # label of positions that are not predicted
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")


def mask_tokens(
    token_ids: np.ndarray,
    padding_mask: np.ndarray,
    *,
    rng: np.random.Generator,
    mask_rate: float,
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """BERT masking: picks tokens to predict and corrupts them by the 80/10/10 rule.

    In each row, max(1, round(mask_rate * n)) of its n candidate tokens (real tokens
    that are not special: [PAD]/[UNK]/[CLS]/[SEP]/[MASK]) are picked uniformly without
    replacement (none if n = 0). A picked token becomes [MASK] with p=0.8, a random
    non-special token with p=0.1, and stays itself with p=0.1.

    Args:
      token_ids: [B, L] int, from `BertTokenizerLayer`.
      padding_mask: [B, L] int/bool; nonzero = real token.
      rng: the random generator (masks differ per call: dynamic masking).
      mask_rate: share of candidate tokens to predict, in (0, 1).
      mask_id: id of [MASK].
      vocab_size: number of ids random replacements are drawn from (special ids excluded).
      special_ids: ids that are never picked nor drawn.

    Returns:
      (input_ids [B, L] int32, labels [B, L] int32): labels hold the original id at
      picked positions and IGNORE_LABEL (-100) elsewhere.
    """
    if not 0 < mask_rate < 1:
        raise ValueError(f"`mask_rate` must be in (0, 1). Received: mask_rate={mask_rate}")
    token_ids = np.asarray(token_ids)
    special = np.asarray(sorted(set(special_ids) | {mask_id}), np.int64)
    candidates = (np.asarray(padding_mask) != 0) & ~np.isin(token_ids, special)  # [B, L]
    num_candidates = candidates.sum(axis=1)  # [B]
    num_picked = np.where(num_candidates > 0, np.maximum(1, np.round(mask_rate * num_candidates)), 0)
    # A random priority per candidate; the num_picked smallest of each row are picked.
    priority = np.where(candidates, rng.random(token_ids.shape), np.inf)
    rank = np.argsort(np.argsort(priority, axis=1), axis=1)  # [B, L] rank of each position in its row
    picked = rank < num_picked[:, None]

    action = rng.random(token_ids.shape)
    to_mask = picked & (action < 0.8)
    to_random = picked & (action >= 0.8) & (action < 0.9)
    ordinary_ids = np.setdiff1d(np.arange(vocab_size), special)
    random_ids = rng.choice(ordinary_ids, size=token_ids.shape)
    input_ids = np.where(to_mask, mask_id, np.where(to_random, random_ids, token_ids)).astype(np.int32)
    labels = np.where(picked, token_ids, IGNORE_LABEL).astype(np.int32)
    return input_ids, labels


def _tokenize_all(
    tokenizer: text_tower.BertTokenizerLayer, texts: Sequence[str], chunk_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """All texts -> (token_ids [N, L] int32, padding_mask [N, L] int32), L = the longest row.

    `tokenizer` must pad to `max_tokens` so that chunks share one width.
    """
    ids, masks = [], []
    for start in range(0, len(texts), chunk_size):
        out = tokenizer(tf.constant(list(texts[start : start + chunk_size]), tf.string))
        ids.append(out["token_ids"].numpy())
        masks.append(out["padding_mask"].numpy())
    token_ids, padding_mask = np.concatenate(ids), np.concatenate(masks)
    length = int(padding_mask.sum(axis=1).max())
    return token_ids[:, :length], padding_mask[:, :length]


def _masked_lm_sums(
    model: transformers.TFBertForMaskedLM,
    input_ids: tf.Tensor,
    padding_mask: tf.Tensor,
    labels: tf.Tensor,
    training: bool,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(summed cross-entropy, correct predictions, predicted tokens) over the picked positions.

    The vocabulary projection runs only on the picked positions ([M, H] -> [M, V])
    instead of on all [B, L] positions, as TFBertForMaskedLM.call would.
    """
    hidden = model.bert(
        input_ids=input_ids,
        attention_mask=padding_mask,
        token_type_ids=tf.zeros_like(input_ids),
        training=training,
    ).last_hidden_state  # [B, L, H]
    picked = labels != IGNORE_LABEL  # [B, L]
    targets = tf.boolean_mask(labels, picked)  # [M]
    logits = model.mlm(sequence_output=tf.boolean_mask(hidden, picked)[tf.newaxis])[0]  # [M, V]
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)  # [M]
    correct = tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32) == targets, tf.float32)
    return tf.reduce_sum(cross_entropy), tf.reduce_sum(correct), tf.cast(tf.size(targets), tf.float32)


def _batches(num_rows: int, batch_size: int, order: np.ndarray | None = None):
    order = np.arange(num_rows) if order is None else order
    for start in range(0, num_rows, batch_size):
        yield order[start : start + batch_size]


def pretrain_mlm(
    texts: Sequence[str],
    bert_path: str,
    output_dir: str,
    *,
    epochs: int,
    batch_size: int,
    mask_rate: float = 0.15,
    seed: int = 0,
    max_tokens: int = 64,
    learning_rate: float = 1e-4,
    lowercase: bool = True,
) -> dict[str, Any]:
    """Continues masked-language-model pretraining of a BERT on the catalogue's texts.

    A `TFBertForMaskedLM` is initialised from the checkpoint at `bert_path`. Its output
    projection is tied to the word embeddings, but the head's transform (dense +
    LayerNorm) and output bias come from the checkpoint only if it has them:
    all-MiniLM-L6-v2 (a sentence-embedding model) ships no MLM head, so for it the head
    starts fresh (logged) and the "before" numbers measure an untrained head, not the
    encoder's knowledge.

    A seeded 10% of the texts (at least one) is held out; its masking is drawn once,
    so the before/after numbers score the same positions. Training texts are re-masked
    every epoch (dynamic masking). Adam with global gradient-norm clipping 1.0.

    The adapted encoder (embeddings + transformer layers; the pooler as in the original
    checkpoint) is written to `output_dir` as a TFBertModel (`model.safetensors`,
    `config.json`) plus the checkpoint's tokenizer files, so `load_bert(output_dir)`
    and `TextConfig(bert_path=output_dir)` load it. The MLM head is not written.

    Args:
      texts: the catalogue's item texts (N >= 2).
      bert_path: local BERT checkpoint folder with vocab.txt (see `load_bert`).
      output_dir: where the adapted checkpoint goes; must differ from `bert_path`.
      epochs: passes over the training texts.
      batch_size: texts per step.
      mask_rate: share of each text's tokens to predict.
      seed: seeds the split, the masks, the batch order, the fresh head and dropout, through
        `tf.keras.utils.set_random_seed` (so it also sets the global Python/numpy/TF seeds).
      max_tokens: texts are truncated to this many ids incl. [CLS]/[SEP].
      learning_rate: Adam learning rate.
      lowercase: the checkpoint's tokenizer lower-cases (uncased models).

    Returns:
      A dict: heldout_loss_before/after (mean cross-entropy per masked token, nats),
      heldout_accuracy_before/after (top-1 on masked tokens), heldout_masked_tokens,
      num_train_texts, num_heldout_texts, new_head_weights (names initialised fresh),
      history (per epoch: epoch, train_loss, heldout_loss, heldout_accuracy, seconds),
      seconds (total), output_dir.
    """
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"`texts` must be a sequence of strings, not one string. Received: texts={texts[:40]!r}")
    texts = list(texts)
    if len(texts) < 2:
        raise ValueError(f"`texts` needs at least 2 texts (train + held out). Received: len(texts)={len(texts)}")
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1. Received: epochs={epochs}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    if not 0 < mask_rate < 1:
        raise ValueError(f"`mask_rate` must be in (0, 1). Received: mask_rate={mask_rate}")
    if learning_rate <= 0:
        raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={learning_rate}")
    if not output_dir:
        raise ValueError(f"`output_dir` must be set. Received: output_dir={output_dir!r}")
    if os.path.isdir(bert_path) and os.path.isdir(output_dir) and os.path.samefile(bert_path, output_dir):
        raise ValueError(f"`output_dir` must differ from `bert_path`. Received: output_dir={output_dir!r}")
    if not os.path.isdir(bert_path):
        raise ValueError(f"`bert_path` must be a local BERT checkpoint folder. Received: bert_path={bert_path!r}")

    started = time.monotonic()
    rng = np.random.default_rng(seed)
    tf.keras.utils.set_random_seed(seed)  # python, numpy and TF: the fresh head and dropout too
    tokenizer = text_tower.BertTokenizerLayer(
        os.path.join(bert_path, "vocab.txt"), max_tokens=max_tokens, lowercase=lowercase, pad_to_max_tokens=True
    )
    if tokenizer.mask_id is None:
        raise ValueError(f"`bert_path` vocab.txt has no [MASK] token. Received: bert_path={bert_path!r}")

    order = rng.permutation(len(texts))
    num_heldout = max(1, int(round(HELDOUT_FRACTION * len(texts))))
    heldout_rows, train_rows = order[:num_heldout], order[num_heldout:]
    token_ids, padding_mask = _tokenize_all(tokenizer, texts)  # [N, L]

    model, new_head_weights = _load_masked_lm(bert_path)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(
            f"`bert_path` vocab.txt has {tokenizer.vocab_size} tokens but the model only "
            f"{model.config.vocab_size} embeddings. Received: bert_path={bert_path!r}"
        )

    def masked(rows: np.ndarray, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return mask_tokens(
            token_ids[rows], padding_mask[rows], rng=generator, mask_rate=mask_rate,
            mask_id=tokenizer.mask_id, vocab_size=tokenizer.vocab_size, special_ids=tokenizer.special_ids,
        )

    heldout_inputs, heldout_labels = masked(heldout_rows, np.random.default_rng([seed, 1]))
    heldout_padding = padding_mask[heldout_rows]

    specs = [tf.TensorSpec([None, None], tf.int32)] * 3

    @tf.function(input_signature=specs)
    def eval_step(input_ids, mask, labels):
        return _masked_lm_sums(model, input_ids, mask, labels, training=False)

    optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=1.0)

    @tf.function(input_signature=specs)
    def train_step(input_ids, mask, labels):
        with tf.GradientTape() as tape:
            loss_sum, _, count = _masked_lm_sums(model, input_ids, mask, labels, training=True)
            loss = loss_sum / tf.maximum(count, 1.0)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss_sum, count

    def evaluate() -> tuple[float, float, int]:
        loss_sum = correct = count = 0.0
        for rows in _batches(len(heldout_rows), batch_size):
            sums = eval_step(heldout_inputs[rows], heldout_padding[rows], heldout_labels[rows])
            loss_sum, correct, count = loss_sum + float(sums[0]), correct + float(sums[1]), count + float(sums[2])
        return loss_sum / max(count, 1.0), correct / max(count, 1.0), int(count)

    loss_before, accuracy_before, heldout_tokens = evaluate()
    log.info(
        "MLM before: held-out loss %.4f, accuracy %.4f over %d masked tokens of %d texts (%d train texts).",
        loss_before, accuracy_before, heldout_tokens, len(heldout_rows), len(train_rows),
    )
    history = []
    for epoch in range(1, epochs + 1):
        epoch_start = time.monotonic()
        train_inputs, train_labels = masked(train_rows, rng)  # dynamic masking: new masks every epoch
        train_padding = padding_mask[train_rows]
        loss_sum = count = 0.0
        for rows in _batches(len(train_rows), batch_size, rng.permutation(len(train_rows))):
            sums = train_step(train_inputs[rows], train_padding[rows], train_labels[rows])
            loss_sum, count = loss_sum + float(sums[0]), count + float(sums[1])
        heldout_loss, heldout_accuracy, _ = evaluate()
        history.append({
            "epoch": epoch,
            "train_loss": loss_sum / max(count, 1.0),
            "heldout_loss": heldout_loss,
            "heldout_accuracy": heldout_accuracy,
            "seconds": time.monotonic() - epoch_start,
        })
        log.info(
            "MLM epoch %d/%d: train loss %.4f, held-out loss %.4f, accuracy %.4f (%.1fs)",
            epoch, epochs, history[-1]["train_loss"], heldout_loss, heldout_accuracy, history[-1]["seconds"],
        )

    _save_encoder(model, bert_path, output_dir)
    result = {
        "heldout_loss_before": loss_before,
        "heldout_accuracy_before": accuracy_before,
        "heldout_loss_after": history[-1]["heldout_loss"],
        "heldout_accuracy_after": history[-1]["heldout_accuracy"],
        "heldout_masked_tokens": heldout_tokens,
        "num_train_texts": int(len(train_rows)),
        "num_heldout_texts": int(len(heldout_rows)),
        "new_head_weights": new_head_weights,
        "history": history,
        "seconds": time.monotonic() - started,
        "output_dir": output_dir,
    }
    log.info(
        "MLM done in %.1fs: held-out loss %.4f -> %.4f, accuracy %.4f -> %.4f; encoder written to %s",
        result["seconds"], loss_before, result["heldout_loss_after"], accuracy_before,
        result["heldout_accuracy_after"], output_dir,
    )
    return result


def _load_masked_lm(bert_path: str) -> tuple[transformers.TFBertForMaskedLM, list[str]]:
    """(TFBertForMaskedLM from a local checkpoint, names of head weights that start fresh).

    The encoder must load; the head may start fresh.
    """
    with tf.name_scope(""):  # Root scope: weights are matched by variable name (see load_bert).
        model, info = transformers.TFBertForMaskedLM.from_pretrained(
            bert_path, local_files_only=True, output_loading_info=True
        )
    missing = list(info["missing_keys"])
    new_head = [name for name in missing if "cls" in name or "mlm" in name]
    missing_encoder = [name for name in missing if name not in new_head]
    if missing_encoder:
        raise ValueError(
            f"The checkpoint at bert_path={bert_path!r} did not provide {len(missing_encoder)} BERT weight(s), "
            f"e.g. {missing_encoder[:3]}; refusing to pretrain a randomly initialised encoder."
        )
    if new_head:
        log.warning(
            "The checkpoint at %s has no MLM head: %d head weight(s) start fresh (%s); the output projection "
            "is tied to the pretrained word embeddings.", bert_path, len(new_head), ", ".join(new_head),
        )
    return model, new_head


def _save_encoder(model: transformers.TFBertForMaskedLM, bert_path: str, output_dir: str) -> None:
    """Writes the adapted encoder as a TFBertModel checkpoint + the tokenizer files."""
    encoder = text_tower.load_bert(bert_path)  # The original pooler (the MLM model has none).
    encoder.bert.embeddings.set_weights(model.bert.embeddings.get_weights())
    encoder.bert.encoder.set_weights(model.bert.encoder.get_weights())
    os.makedirs(output_dir, exist_ok=True)
    encoder.save_pretrained(output_dir, safe_serialization=True)
    for name in TOKENIZER_FILES:
        source = os.path.join(bert_path, name)
        if os.path.isfile(source):
            shutil.copyfile(source, os.path.join(output_dir, name))
    log.info("Wrote the continued-pretrained encoder (no MLM head) to %s.", output_dir)
