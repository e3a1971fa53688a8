"""Builds and trains the joint model: checkpoints every epoch, resumes after a
kill, stops early on validation NDCG@10, logs to TensorBoard, shows progress.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
import numpy as np
import pandas as pd
import tensorflow as tf

from trainer.config import Config, TextMode
from trainer.data import dataset, io
from trainer.models.catalogue import Catalogue, Vocabularies
from trainer.models.recommender import Recommender

log = logging.getLogger(__name__)
VALIDATION_METRIC = "val_ndcg@10"
WEIGHTS = "weights"


@dataclasses.dataclass
class TrainResult:
    model: Recommender
    history: dict[str, list[float]]
    epochs: int
    best_epoch: int
    seconds: float
    examples_per_second: float


def choose_strategy() -> tf.distribute.Strategy:
    """The distribution strategy for this machine: several GPUs -> Mirrored; else the default."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def has_target_values(data_dir: str) -> bool:
    """Whether training targets carry values worth regressing (ratings)."""
    events = pd.read_parquet(os.path.join(data_dir, "events.parquet"), columns=["event_type", "value", "period"])
    train = events[events["period"] == "train"]
    return bool((train["event_type"] == "rating").any() and train["value"].notna().any())


def build_model(config: Config, data_dir: str, text_vectors: np.ndarray | None) -> Recommender:
    """The model for the prepared data in `data_dir` (normalisation adapted on training data).

    With text mode FINETUNE (and text vectors present), the model carries a
    `TextEncoder` whose top `finetune_layers` layers train.
    """
    manifest = dataset.read_manifest(data_dir)
    catalogue = Catalogue.load(data_dir)
    vocabularies = Vocabularies.load(data_dir, manifest)
    encoder = None
    if config.text.mode == TextMode.FINETUNE and text_vectors is not None:
        from trainer.models import text_tower  # pylint: disable=g-import-not-at-top

        encoder = text_tower.TextEncoder(config.text)
    model = Recommender(
        catalogue,
        vocabularies,
        tuple(manifest["user_attributes"]["numeric"]),
        config.model,
        config.features,
        text_vectors=text_vectors,
        predict_value=has_target_values(data_dir),
        text_encoder=encoder,
    )
    normalization = model.query_tower.numeric_normalization
    if normalization is not None:
        sample = dataset.make_dataset(data_dir, "train", 1024).take(20)
        normalization.adapt(sample.map(lambda b: model.query_tower.numeric_matrix(b)[0]))
    return model


class ValidationCallback(tf.keras.callbacks.Callback):
    """Full-catalogue validation NDCG@10 after each epoch, plus a wall-clock budget."""

    def __init__(self, metric: Callable[[Recommender], float], max_seconds: float = 0.0):
        super().__init__()
        self.metric = metric
        self.max_seconds = max_seconds
        self.started = time.time()
        self.epoch_seconds: list[float] = []
        self._epoch_start = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        self.epoch_seconds.append(time.time() - self._epoch_start)
        self.model.refresh_text_vectors()  # fine-tuning: the catalogue sees the new encoder
        value = float(self.metric(self.model))
        logs[VALIDATION_METRIC] = value
        log.info("Epoch %d: loss %.4f, validation NDCG@10 %.4f (%.0f s)", epoch + 1, logs.get("loss", float("nan")),
                 value, self.epoch_seconds[-1])
        if self.max_seconds and time.time() - self.started > self.max_seconds:
            log.info("Stopping: the training budget of %.0f s is used.", self.max_seconds)
            self.model.stop_training = True


def train(
    config: Config,
    data_dir: str,
    model_factory: Callable[[], Recommender],
    validation_metric: Callable[[Recommender], float],
) -> TrainResult:
    """Trains with early stopping on validation NDCG@10; saves the best weights to the model dir."""
    tf.keras.utils.set_random_seed(config.seed)
    strategy = choose_strategy()
    manifest = dataset.read_manifest(data_dir)
    num_train = manifest["counts"]["examples"]["train"]
    train_data = dataset.make_dataset(
        data_dir, "train", config.train.batch_size, shuffle_buffer=min(num_train, 200_000), seed=config.seed,
        drop_remainder=True,
    )
    with strategy.scope():
        model = model_factory()
        model.compile(optimizer=tf.keras.optimizers.Adam(config.train.learning_rate))
        # Build every variable now: BackupAndRestore can only restore a built model.
        model.compute_loss(next(iter(train_data.take(1))), training=False)
        model.built = True  # a tfrs.Model has no call(); Keras only sees `built`
    validation = ValidationCallback(validation_metric, config.train.max_seconds)
    checkpoint_dir = config.resolved_checkpoint_dir()
    io.makedirs(checkpoint_dir)
    callbacks = [
        validation,
        tf.keras.callbacks.EarlyStopping(
            monitor=VALIDATION_METRIC, mode="max", patience=config.train.patience, restore_best_weights=True
        ),
        tf.keras.callbacks.BackupAndRestore(backup_dir=os.path.join(checkpoint_dir, "backup")),
        tf.keras.callbacks.TensorBoard(log_dir=config.resolved_tensorboard_dir(), update_freq="epoch"),
    ]
    started = time.time()
    fit = model.fit(train_data, epochs=config.train.epochs, callbacks=callbacks, verbose=2)
    seconds = time.time() - started
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    scores = history.get(VALIDATION_METRIC, [])
    best_epoch = int(np.argmax(scores)) + 1 if scores else len(scores)
    epochs = len(scores)
    train_seconds = sum(validation.epoch_seconds) or seconds
    model_dir = config.resolved_model_dir()
    io.makedirs(model_dir)
    model.save_weights(os.path.join(model_dir, WEIGHTS, "model"))
    io.write_text(
        os.path.join(model_dir, "training.json"),
        json.dumps({"history": history, "best_epoch": best_epoch, "epochs": epochs, "seconds": seconds}, indent=2),
    )
    return TrainResult(
        model=model,
        history=history,
        epochs=epochs,
        best_epoch=best_epoch,
        seconds=seconds,
        examples_per_second=num_train * epochs / max(train_seconds, 1e-9),
    )
