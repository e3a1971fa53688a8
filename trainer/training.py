"""Builds and trains the joint model: checkpoints every epoch, resumes after a
kill, stops early on validation NDCG@10, logs to TensorBoard, shows progress.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any
import numpy as np
import pandas as pd
import tensorflow as tf

from trainer.config import Config, DistributionConfig, TextMode, TrainConfig
from trainer.data import dataset, io
from trainer.models.catalogue import Catalogue, Vocabularies
from trainer.models.recommender import Recommender

log = logging.getLogger(__name__)
VALIDATION_METRIC = "val_ndcg@10"
WEIGHTS = "weights"
CONFIG_FILE = "config.json"  # the config the weights were trained with


@dataclasses.dataclass
class TrainResult:
    model: Recommender
    history: dict[str, list[float]]
    epochs: int
    best_epoch: int
    seconds: float  # training time of the epochs kept (validation excluded)
    examples_per_second: float
    seconds_to_best_epoch: float | None  # training + validation of epochs 1..best_epoch (checkpoint writes aside)


def make_strategy(distribution: DistributionConfig) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy for a cluster, else the default strategy (one device).

    Must run before any other TensorFlow op in the process (collectives are
    configured at start-up): `trainer.task` calls it first.
    """
    if not distribution.multi_worker:
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(distribution.cluster), task_type=distribution.task_type,
        task_id=distribution.task_index, rpc_layer="grpc",
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    log.info("MultiWorkerMirroredStrategy: %s #%d of %s (%d replicas)", distribution.task_type,
             distribution.task_index, distribution.cluster, strategy.num_replicas_in_sync)
    return strategy


def _writable(directory: str, is_chief: bool) -> str:
    """Where this worker writes: the real folder on the chief, a private temporary one elsewhere
    (every worker must take part in saving a distributed model; only the chief's copy counts)."""
    return directory if is_chief else tempfile.mkdtemp(prefix="worker-")


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
        normalization.adapt(_known_user_values(model, data_dir))
    return model


def _known_user_values(model: Recommender, data_dir: str) -> np.ndarray:
    """[U, A] numeric attributes, one row per training user, missing values filled with
    the column's mean of known values (so missing values do not pull the statistics)."""
    names = model.query_tower.numeric_attributes
    frames = []
    for batch in dataset.make_dataset(data_dir, "train", 4096):
        columns = {"user_id": batch["user_id"].numpy()}
        columns.update({n: batch[f"user_{n}"].numpy() for n in names})
        frames.append(pd.DataFrame(columns).drop_duplicates("user_id"))
    users = pd.concat(frames).drop_duplicates("user_id")[list(names)].astype(np.float64)
    return users.fillna(users.mean()).fillna(0.0).to_numpy(np.float32)


_BEST_WEIGHTS_PREFIX = "epoch-"


def best_weights_path(directory: str, epoch: int) -> str:
    """Where `ValidationCallback` in `directory` keeps the weights of 1-based `epoch` while it is the best."""
    return os.path.join(directory, "best", f"{_BEST_WEIGHTS_PREFIX}{epoch:04d}")


class ValidationCallback(tf.keras.callbacks.Callback):
    """Validation NDCG@10 after each epoch; keeps the best weights; stops early or on budget.

    Progress (history, best value and epoch, seconds used) and the best weights
    live in `directory`, so a run resumed by `BackupAndRestore` after a kill
    still knows the best epoch before the kill, and keeps its weights.

    This callback must come before `BackupAndRestore` in the callback list, so
    progress.json is never behind the backup. It can be ahead: a kill between
    the two saves of an epoch. The first epoch a resumed run begins is the
    backup's, and later epochs are then forgotten (they are trained again).
    The best epoch's weights are kept per epoch, and the previous best's only
    deleted once the backup has passed the new one, so the best epoch among
    those kept always has its weights.
    """

    def __init__(self, metric: Callable[[Recommender], float], directory: str, patience: int, max_seconds: float = 0.0,
                 resume: bool = False):
        super().__init__()
        self.metric = metric
        self.directory = directory
        self.patience = patience
        self.max_seconds = max_seconds
        self.progress_path = os.path.join(directory, "progress.json")
        self.progress: dict[str, Any] = {"history": {}, "best": None, "best_epoch": 0, "seconds": 0.0, "epoch_seconds": [],
                                         "validation_seconds": []}
        if resume and io.exists(self.progress_path):
            self.progress = json.loads(io.read_bytes(self.progress_path).decode("utf-8"))
            # Progress written before validation time was recorded: those epochs' are unknown (0).
            recorded = self.progress.setdefault("validation_seconds", [])
            recorded += [0.0] * (len(self.progress["epoch_seconds"]) - len(recorded))
            log.info("Resuming: best validation NDCG@10 so far %s at epoch %d", self.progress["best"],
                     self.progress["best_epoch"])
        self._epoch_start = time.time()

    @property
    def seconds_to_best_epoch(self) -> float | None:
        """Training + validation seconds of epochs 1..best (what reaching the best model cost); None before a best."""
        best = self.progress["best_epoch"]
        if not best:
            return None
        return float(sum(self.progress["epoch_seconds"][:best]) + sum(self.progress["validation_seconds"][:best]))

    @property
    def best_path(self) -> str:
        """Weights of the best epoch so far (valid once `progress["best_epoch"]` > 0)."""
        return best_weights_path(self.directory, self.progress["best_epoch"])

    def on_epoch_begin(self, epoch, logs=None):
        # Every epoch before `epoch` is in BackupAndRestore's backup by now.
        self._forget_epochs_from(epoch)
        self._delete_superseded_best_weights()
        self._epoch_start = time.time()

    def on_train_end(self, logs=None):
        self._delete_superseded_best_weights()

    def _forget_epochs_from(self, epoch: int) -> None:
        """Drops the progress of epochs `epoch`+1 on (1-based): the backup does not have them."""
        progress = self.progress
        recorded = len(progress["epoch_seconds"])
        if recorded <= epoch:
            return
        log.warning("The backup ends at epoch %d but %s records %d epochs (killed between the two saves): "
                    "epochs %d-%d are trained again.", epoch, self.progress_path, recorded, epoch + 1, recorded)
        progress["history"] = {name: values[:epoch] for name, values in progress["history"].items()}
        progress["epoch_seconds"] = progress["epoch_seconds"][:epoch]
        progress["validation_seconds"] = progress["validation_seconds"][:epoch]
        progress["seconds"] = float(sum(progress["epoch_seconds"]))
        scores = progress["history"].get(VALIDATION_METRIC, [])
        if scores:
            best = int(np.argmax(scores))  # the first best, as on_epoch_end keeps it
            progress["best"], progress["best_epoch"] = scores[best], best + 1
        else:
            progress["best"], progress["best_epoch"] = None, 0

    def _delete_superseded_best_weights(self) -> None:
        keep = os.path.basename(self.best_path) if self.progress["best_epoch"] else None
        for path in tf.io.gfile.glob(os.path.join(self.directory, "best", _BEST_WEIGHTS_PREFIX + "*")):
            if os.path.basename(path).split(".")[0] != keep:
                tf.io.gfile.remove(path)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        validation_start = time.time()
        seconds = validation_start - self._epoch_start
        self.model.refresh_text_vectors()  # fine-tuning: the catalogue sees the new encoder
        value = float(self.metric(self.model))
        progress = self.progress
        progress["validation_seconds"].append(time.time() - validation_start)
        logs[VALIDATION_METRIC] = value
        log.info("Epoch %d: loss %.4f, validation NDCG@10 %.4f (%.0f s)", epoch + 1, logs.get("loss", float("nan")),
                 value, seconds)
        for name, number in logs.items():
            progress["history"].setdefault(name, []).append(float(number))
        progress["epoch_seconds"].append(seconds)
        progress["seconds"] += seconds
        if progress["best"] is None or value > progress["best"]:
            progress["best"], progress["best_epoch"] = value, epoch + 1
            self.model.save_weights(self.best_path)
        io.write_text(self.progress_path, json.dumps(progress, indent=2))
        if epoch + 1 - progress["best_epoch"] >= self.patience:
            log.info("Early stopping: no better validation NDCG@10 for %d epochs.", self.patience)
            self.model.stop_training = True
        if self.max_seconds and progress["seconds"] > self.max_seconds:
            log.info("Stopping: the training budget of %.0f s is used.", self.max_seconds)
            self.model.stop_training = True


def learning_rate(train_config: TrainConfig, num_train: int) -> float | tf.keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate: constant, or times `lr_decay` after every epoch of `num_train` examples.

    The schedule follows the optimizer's step count, so a resumed run continues it.
    """
    if train_config.lr_decay == 1.0:
        return train_config.learning_rate
    return tf.keras.optimizers.schedules.ExponentialDecay(
        train_config.learning_rate, decay_steps=max(num_train // train_config.batch_size, 1),
        decay_rate=train_config.lr_decay, staircase=True,
    )


def make_optimizer(train_config: TrainConfig, num_train: int) -> tf.keras.optimizers.Optimizer:
    """Adam, or AdamW when `weight_decay` > 0 (biases are not decayed), on `learning_rate`'s schedule."""
    rate = learning_rate(train_config, num_train)
    if train_config.weight_decay == 0.0:
        return tf.keras.optimizers.Adam(rate)
    optimizer = tf.keras.optimizers.AdamW(rate, weight_decay=train_config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    return optimizer


def train(
    config: Config,
    data_dir: str,
    model_factory: Callable[[], Recommender],
    validation_metric: Callable[[Recommender], float],
    strategy: tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Trains with early stopping on validation NDCG@10; saves the best weights to the model dir.

    With a multi-worker `strategy` every worker runs this; the batch size is the
    global one, the data is sharded by example, and only the chief's files count.
    """
    tf.keras.utils.set_random_seed(config.seed)
    strategy = strategy or make_strategy(config.distribution)
    chief = config.distribution.is_chief
    manifest = dataset.read_manifest(data_dir)
    num_train = manifest["counts"]["examples"]["train"]
    if num_train < config.train.batch_size:
        raise ValueError(
            f"Only {num_train} training examples in {data_dir!r}, fewer than one batch: lower --batch-size. "
            f"Received: batch_size={config.train.batch_size}"
        )
    train_data = dataset.make_dataset(
        data_dir, "train", config.train.batch_size, shuffle_buffer=min(num_train, 200_000), seed=config.seed,
        drop_remainder=True,
    )
    if config.distribution.multi_worker:  # shard examples, not files (a small split may be one file)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_data = train_data.with_options(options)
    with strategy.scope():
        model = model_factory()
        model.compile(optimizer=make_optimizer(config.train, num_train))
        # Build every variable now: BackupAndRestore can only restore a built model.
        model.compute_loss(next(iter(train_data.take(1))), training=False)
        model.built = True  # a tfrs.Model has no call(); Keras only sees `built`
    checkpoint_dir = config.resolved_checkpoint_dir()
    backup_dir = os.path.join(checkpoint_dir, "backup")  # BackupAndRestore keeps non-chief copies apart itself
    # BackupAndRestore deletes its backup when training ends: a backup means a killed run.
    # (Multi-worker runs may leave the emptied folder behind.)
    resume = io.exists(backup_dir) and bool(tf.io.gfile.listdir(backup_dir))
    own_dir = _writable(checkpoint_dir, chief)
    if not chief and resume and io.exists(os.path.join(checkpoint_dir, "progress.json")):
        io.write_bytes(os.path.join(own_dir, "progress.json"), io.read_bytes(os.path.join(checkpoint_dir, "progress.json")))
    validation = ValidationCallback(
        validation_metric, own_dir, config.train.patience, config.train.max_seconds, resume=resume
    )
    io.makedirs(checkpoint_dir)
    callbacks = [
        validation,  # before the backup: see ValidationCallback
        tf.keras.callbacks.BackupAndRestore(backup_dir=backup_dir),
        tf.keras.callbacks.TensorBoard(log_dir=_writable(config.resolved_tensorboard_dir(), chief), update_freq="epoch"),
    ]
    started = time.time()
    model.fit(train_data, epochs=config.train.epochs, callbacks=callbacks, verbose=2)
    progress = validation.progress
    history = progress["history"]
    epochs = len(history.get(VALIDATION_METRIC, []))
    if progress["best_epoch"]:
        model.load_weights(validation.best_path).assert_existing_objects_matched()
    model_dir = _writable(config.resolved_model_dir(), chief)
    io.makedirs(model_dir)
    model.save_weights(os.path.join(model_dir, WEIGHTS, "model"))
    io.write_text(os.path.join(model_dir, CONFIG_FILE), config.to_json())
    io.write_text(
        os.path.join(model_dir, "training.json"),
        json.dumps(
            {"history": history, "best_epoch": progress["best_epoch"], "epochs": epochs, "seconds": progress["seconds"],
             "seconds_to_best_epoch": validation.seconds_to_best_epoch},
            indent=2,
        ),
    )
    log.info("Trained %d epochs in %.0f s (this process: %.0f s); best epoch %d", epochs, progress["seconds"],
             time.time() - started, progress["best_epoch"])
    return TrainResult(
        model=model,
        history=history,
        epochs=epochs,
        best_epoch=progress["best_epoch"],
        seconds=progress["seconds"],
        examples_per_second=num_train * epochs / max(progress["seconds"], 1e-9),
        seconds_to_best_epoch=validation.seconds_to_best_epoch,
    )
