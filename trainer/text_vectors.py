"""Frozen-mode item text vectors: BERT runs once per catalogue item, cached.

The cache (`<model_dir>/text_vectors.npy` + a JSON fingerprint of the
checkpoint, tokenizer settings and texts) is reused whenever the fingerprint
matches, so BERT never runs per training example and reruns skip it.
"""

from __future__ import annotations

import hashlib
import io as std_io
import json
import logging
import os
import time

import numpy as np

from trainer.config import TextConfig, TextMode
from trainer.data import io

log = logging.getLogger(__name__)
VECTORS = "text_vectors.npy"
FINGERPRINT = "text_vectors.json"


def _checkpoint_files(bert_path: str) -> list[list[object]]:
    """(name, size, mtime) of the checkpoint's files: a rewritten checkpoint at the same path is a new one."""
    if "://" in bert_path or not os.path.isdir(bert_path):
        return []
    return [
        [name, os.path.getsize(os.path.join(bert_path, name)), int(os.path.getmtime(os.path.join(bert_path, name)))]
        for name in sorted(os.listdir(bert_path))
        if os.path.isfile(os.path.join(bert_path, name))
    ]


def fingerprint(config: TextConfig, bert_path: str, texts: np.ndarray) -> dict[str, object]:
    digest = hashlib.sha256("\x1e".join(map(str, texts)).encode("utf-8")).hexdigest()
    return {
        "bert_path": os.path.abspath(bert_path) if "://" not in bert_path else bert_path,
        "checkpoint_files": _checkpoint_files(bert_path),
        "max_tokens": config.max_tokens,
        "lowercase": config.lowercase,
        "texts_sha256": digest,
        "count": int(len(texts)),
    }


def frozen_text_config(config: TextConfig) -> TextConfig:
    """The frozen encoder's settings for `config`: its checkpoint (default: the packaged one) and tokenizer."""
    from trainer.models import text_tower  # pylint: disable=g-import-not-at-top

    return TextConfig(mode=TextMode.FROZEN, bert_path=config.bert_path or text_tower.default_bert_path(),
                      max_tokens=config.max_tokens, lowercase=config.lowercase)


def catalogue_text_vectors(config: TextConfig, texts: np.ndarray, cache_dir: str) -> np.ndarray | None:
    """[N, H] float32 text vectors of the catalogue texts (zeros for items without text),
    or None when text is off or no item has text."""
    if config.mode == TextMode.OFF:
        return None
    from trainer.models.candidate_tower import has_text, zero_without_text  # pylint: disable=g-import-not-at-top

    texts = np.asarray([str(t) for t in texts], dtype=object)
    if not has_text(texts).numpy().any():
        log.info("No item has text: the text tower is skipped for this catalogue.")
        return None
    # pylint: disable=g-import-not-at-top
    from trainer.models import text_tower

    frozen = frozen_text_config(config)
    expected = fingerprint(config, frozen.bert_path, texts)
    vectors_path, fingerprint_path = os.path.join(cache_dir, VECTORS), os.path.join(cache_dir, FINGERPRINT)
    if io.exists(vectors_path) and io.exists(fingerprint_path):
        if json.loads(io.read_bytes(fingerprint_path).decode("utf-8")) == expected:
            log.info("Reusing cached text vectors %s", vectors_path)
            return np.load(std_io.BytesIO(io.read_bytes(vectors_path)))
    started = time.time()
    encoder = text_tower.TextEncoder(frozen)
    vectors = text_tower.encode_texts(encoder, list(texts))
    # No text is no information: a zero vector, not BERT's vector of an empty string.
    vectors = zero_without_text(texts, vectors).numpy()
    buffer = std_io.BytesIO()
    np.save(buffer, vectors)
    io.write_bytes(vectors_path, buffer.getvalue())
    io.write_text(fingerprint_path, json.dumps(expected, indent=2))
    log.info("Encoded %d item texts with BERT in %.1f s (cached in %s)", len(texts), time.time() - started, cache_dir)
    return vectors
