"""train_and_evaluate: the model and its baselines on one split, in one run.

`train` fits the joint model on `<job_dir>/data` (prepared first) and saves its
weights; `evaluate` ranks every test target against the whole catalogue for the
model and every baseline, scores the behaviour heads, slices the results and
writes `<job_dir>/metrics.json` and `<job_dir>/report/report.md`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import time
from typing import Any

import numpy as np
import tensorflow as tf

from trainer import text_vectors as text_vectors_lib
from trainer import training
from trainer.config import Config
from trainer.data import dataset
from trainer.data import example_schema as es
from trainer.data import io, prepare
from trainer.evaluation import baselines as baselines_lib
from trainer.evaluation import evaluator as ev
from trainer.evaluation import metrics as metrics_lib
from trainer.evaluation import report as report_lib
from trainer.evaluation import slices as slices_lib
from trainer.models import labels
from trainer.models.catalogue import Catalogue
from trainer.models.recommender import Recommender

log = logging.getLogger(__name__)
MODEL_NAME = "st_gru_bert"
EVAL_BATCH = 256
# Funnel order: the later a behaviour, the more it is worth predicting.
FUNNEL = ("view", "click", "add_to_cart", "purchase")


@dataclasses.dataclass
class Context:
    """What training and evaluation share for one prepared dataset."""

    data_dir: str
    manifest: dict[str, Any]
    catalogue: Catalogue
    text_vectors: np.ndarray | None
    seen: ev.SeenItems
    events: Any
    primary_filter: str


def load_context(config: Config) -> Context:
    data_dir = prepare.data_dir(config.job_dir)
    manifest = dataset.read_manifest(data_dir)
    catalogue = Catalogue.load(data_dir)
    # Only the chief writes the shared cache (other workers of a cluster encode for themselves).
    cache_dir = config.resolved_model_dir() if config.distribution.is_chief else tempfile.mkdtemp(prefix="worker-text-")
    vectors = text_vectors_lib.catalogue_text_vectors(config.text, catalogue.texts, cache_dir)
    events = ev.load_events(data_dir)
    seen = ev.SeenItems.from_events(events, catalogue.ids)
    validation = dataset.make_dataset(data_dir, "validation", EVAL_BATCH)
    primary = ev.resolve_primary_filter(
        config.evaluation.primary_filter, ev.repeat_share(validation, catalogue.ids, seen)
    )
    log.info("Primary evaluation mode: %s", primary)
    return Context(data_dir, manifest, catalogue, vectors, seen, events, primary)


def score_fn(model: Recommender):
    """batch -> [B, N] numpy scores; the catalogue's vectors are computed once per scorer."""
    catalogue = model.catalogue_vectors(training=False)
    score = tf.function(lambda batch: model.score_catalogue(batch, catalogue), reduce_retracing=True)
    return lambda batch: score(batch).numpy()


def train(config: Config, context: Context, strategy=None) -> training.TrainResult:
    """Trains the joint model with early stopping on validation NDCG@10 (primary filter)."""
    validation = [b for b in dataset.make_dataset(context.data_dir, "validation", EVAL_BATCH)]

    def validation_ndcg(model: Recommender) -> float:
        result = ev.evaluate_ranking(
            score_fn(model), validation, context.catalogue.ids, context.seen, name="validation"
        )
        return result.metrics(context.primary_filter)["ndcg@10"]

    return training.train(
        config, context.data_dir, lambda: training.build_model(config, context.data_dir, context.text_vectors),
        validation_ndcg,
        strategy,
    )


def load_trained(config: Config, context: Context) -> Recommender:
    """The model exactly as `train` left it: rebuilt from the config saved with its weights.

    Model, feature and text settings come from `<model_dir>/config.json`, not from the
    current flags, so evaluating never pairs weights with a different architecture.
    """
    model_dir = config.resolved_model_dir()
    path = os.path.join(model_dir, training.WEIGHTS, "model")
    config_path = os.path.join(model_dir, training.CONFIG_FILE)
    if not io.exists(path + ".index") or not io.exists(config_path):
        raise ValueError(f"No trained model in {model_dir!r}: run --stage=train first.")
    trained = Config.from_json(io.read_bytes(config_path).decode("utf-8"))
    vectors = context.text_vectors
    if (trained.model, trained.features, trained.text) != (config.model, config.features, config.text):
        log.warning("Evaluating with the model/feature/text settings the weights were trained with (%s).", config_path)
        if trained.text != config.text:  # the text vectors must come from the trained text settings too
            vectors = text_vectors_lib.catalogue_text_vectors(trained.text, context.catalogue.texts, model_dir)
    model = training.build_model(trained, context.data_dir, vectors)
    model.compute_loss(next(iter(dataset.make_dataset(context.data_dir, "train", 8))))
    # The optimizer slots saved with the weights are not needed to predict.
    model.load_weights(path).assert_existing_objects_matched().expect_partial()
    return model


def behaviour_metrics(model: Recommender, config: Config, context: Context) -> dict[str, Any]:
    """AUC/accuracy/precision/recall/F1 of the behaviour head on the test targets.

    Positive = the deepest funnel behaviour in the data (e.g. purchase) when the
    head predicts event types; else a value >= `rating_threshold` (a liked film).
    """
    if model.behaviour_head is None:
        return {"note": "no behaviour head: the data has one event type and no values"}
    types = list(model.event_type_lookup.get_vocabulary()[2:])
    positive_type = next((t for t in reversed(FUNNEL) if t in types), types[-1] if types else "")
    truths, scores = [], []
    catalogue = model.catalogue_vectors(training=False)
    for batch in dataset.make_dataset(context.data_dir, "test", EVAL_BATCH):
        out = model.forward(batch, catalogue=catalogue)
        predicted = model.behaviour(out, batch, model.catalogue_lookup(batch[es.TARGET_ITEM_ID]))
        if "event_type_logits" in predicted:
            probabilities = tf.nn.softmax(predicted["event_type_logits"]).numpy()
            scores.append(probabilities[:, types.index(positive_type)])
            truths.append(batch[es.TARGET_EVENT_TYPE].numpy() == positive_type.encode())
        else:
            value = batch[es.TARGET_VALUE].numpy()
            known = ~np.isnan(value) & (batch[es.TARGET_EVENT_TYPE].numpy() == labels.RATING.encode())
            threshold = config.model.rating_threshold
            # Predicted value -> probability of "liked" by a logistic around the threshold.
            scores.append(1.0 / (1.0 + np.exp(-(predicted["value"].numpy()[known] - threshold + 0.5) * 2.0)))
            truths.append(value[known] >= threshold)
    labels_all, scores_all = np.concatenate(truths), np.concatenate(scores)
    if len(labels_all) == 0:
        return {"note": "no test target carries a behaviour label (e.g. no rating values)"}
    out = metrics_lib.binary_metrics(labels_all.astype(np.int64), scores_all)
    out["positive"] = positive_type if model.behaviour_head.event_type_output is not None else f"value >= {config.model.rating_threshold}"
    out["count"] = int(len(labels_all))
    out["positive_share"] = float(labels_all.mean()) if len(labels_all) else float("nan")
    return out


def evaluate(config: Config, context: Context, model: Recommender, train_result: training.TrainResult | None) -> dict[str, Any]:
    """Ranks the test split for the model and the baselines; writes metrics.json and the report."""
    started = time.time()
    test = dataset.make_dataset(context.data_dir, "test", EVAL_BATCH)
    model_result = ev.evaluate_ranking(score_fn(model), test, context.catalogue.ids, context.seen, name=MODEL_NAME)
    results = {MODEL_NAME: model_result}
    results.update(
        baselines_lib.evaluate_baselines(
            context.data_dir, config.evaluation.baselines, seen=context.seen, events=context.events,
            primary_filter=context.primary_filter, seed=config.seed,
        )
    )
    eval_catalogue = ev.load_catalogue(context.data_dir)
    coarse = float(context.manifest["feature_config"]["coarse_cell_degrees"])
    slices = {
        name: slices_lib.result_slices(result, context.primary_filter, eval_catalogue, coarse)
        for name, result in results.items()
    }
    history = train_result.history if train_result else _saved_history(config)
    to_best = train_result.seconds_to_best_epoch if train_result else history.get("seconds_to_best_epoch")
    train_summary = {
        "epochs": train_result.epochs if train_result else history.get("epochs"),
        "best_epoch": train_result.best_epoch if train_result else history.get("best_epoch"),
        "seconds": round(train_result.seconds, 1) if train_result else history.get("seconds"),
        "examples_per_second": round(train_result.examples_per_second, 1) if train_result else None,
        "seconds_to_best_epoch": None if to_best is None else round(to_best, 1),
    }
    metrics = report_lib.build_metrics(
        dataset=context.manifest,
        primary=MODEL_NAME,
        primary_filter=context.primary_filter,
        results=results,
        behaviour=behaviour_metrics(model, config, context),
        slices=slices,
        train=train_summary,
    )
    metrics_path = os.path.join(config.job_dir, "metrics.json")
    report_lib.write_metrics_json(metrics_path, metrics)
    report_path = report_lib.write_report(
        os.path.join(config.job_dir, "report"), metrics, (train_result.history if train_result else history.get("history"))
    )
    log.info("Evaluation done in %.0f s: %s, %s", time.time() - started, metrics_path, report_path)
    return {"metrics": metrics_path, "report": report_path}


def _saved_history(config: Config) -> dict[str, Any]:
    path = os.path.join(config.resolved_model_dir(), "training.json")
    return json.loads(io.read_bytes(path).decode("utf-8")) if io.exists(path) else {}

