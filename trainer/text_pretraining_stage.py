"""`--stage=pretrain-text`: continued MLM pretraining of the BERT on the catalogue text.

Writes the adapted checkpoint to `<job_dir>/text_pretrained/` (use it with
`--bert-path=<job_dir>/text_pretrained`) and the before/after held-out MLM
figures to `<job_dir>/text_pretraining.json`.
"""

from __future__ import annotations

import json
import logging
import os

from trainer.config import Config
from trainer.data import io, prepare
from trainer.models.catalogue import Catalogue

log = logging.getLogger(__name__)
OUTPUT = "text_pretrained"


def run(config: Config, epochs: int) -> dict[str, str]:
    # pylint: disable=g-import-not-at-top
    from trainer.models import text_pretraining, text_tower

    catalogue = Catalogue.load(prepare.data_dir(config.job_dir))
    texts = [str(t) for t in catalogue.texts if str(t).strip()]
    if len(texts) < 2:
        raise ValueError(f"The catalogue has {len(texts)} item texts: MLM pretraining needs at least 2.")
    output_dir = os.path.join(config.job_dir, OUTPUT)
    result = text_pretraining.pretrain_mlm(
        texts,
        config.text.bert_path or text_tower.default_bert_path(),
        output_dir,
        epochs=epochs,
        batch_size=32,
        seed=config.seed,
        max_tokens=config.text.max_tokens,
        lowercase=config.text.lowercase,
    )
    summary_path = os.path.join(config.job_dir, "text_pretraining.json")
    io.write_text(summary_path, json.dumps(result, indent=2, default=str))
    log.info(
        "MLM on %d catalogue texts: held-out loss %.3f -> %.3f, accuracy %.3f -> %.3f",
        len(texts), result["heldout_loss_before"], result["heldout_loss_after"],
        result["heldout_accuracy_before"], result["heldout_accuracy_after"],
    )
    return {"text_pretrained": output_dir, "text_pretraining": summary_path}
