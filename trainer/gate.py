"""`--stage=gate`: the trained model must beat popularity and co-occurrence on the
validation split (NDCG@10 in the primary filter mode), or the run stops and says why.

Validation, not test: the decision to ship must not look at the test split.
Co-occurrence is tuned on validation too, which only makes the gate stricter.
Writes `<job-dir>/gate.json`.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from trainer.config import Config
from trainer.data import dataset, io

log = logging.getLogger(__name__)

GATE_BASELINES = ("popularity", "cooccurrence")
METRIC = "ndcg@10"
GATE_FILE = "gate.json"


class GateFailed(RuntimeError):
    """The model did not beat a required baseline on validation."""


def run(config: Config, context=None, model=None) -> dict[str, Any]:
    """Evaluates model and baselines on validation; writes gate.json; raises GateFailed if it loses."""
    # pylint: disable=g-import-not-at-top
    from trainer import experiment
    from trainer.evaluation import baselines as baselines_lib
    from trainer.evaluation import evaluator as ev

    context = context or experiment.load_context(config)
    model = model or experiment.load_trained(config, context)
    validation = dataset.make_dataset(context.data_dir, "validation", experiment.EVAL_BATCH)
    mode = context.primary_filter
    scores = {
        experiment.MODEL_NAME: ev.evaluate_ranking(
            experiment.score_fn(model), validation, context.catalogue.ids, context.seen, name=experiment.MODEL_NAME
        ).metrics(mode)[METRIC]
    }
    results = baselines_lib.evaluate_baselines(
        context.data_dir, GATE_BASELINES, split="validation", seen=context.seen, events=context.events,
        primary_filter=mode, seed=config.seed,
    )
    scores.update({name: result.metrics(mode)[METRIC] for name, result in results.items()})
    losing = [name for name in GATE_BASELINES if scores[experiment.MODEL_NAME] <= scores[name]]
    verdict = {
        "passed": not losing,
        "metric": METRIC,
        "mode": mode,
        "split": "validation",
        "scores": scores,
        "reason": (
            f"{experiment.MODEL_NAME} {METRIC} {scores[experiment.MODEL_NAME]:.4f} does not beat "
            + ", ".join(f"{name} {scores[name]:.4f}" for name in losing)
            + f" on validation ({mode})"
            if losing else f"{experiment.MODEL_NAME} beats {', '.join(GATE_BASELINES)} on validation {METRIC} ({mode})"
        ),
    }
    path = os.path.join(config.job_dir, GATE_FILE)
    io.write_text(path, json.dumps(verdict, indent=2))
    log.info("Gate: %s", verdict["reason"])
    if losing:
        raise GateFailed(verdict["reason"])
    return {"gate": path}
