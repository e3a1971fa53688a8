"""Training: resumes after a kill from the last epoch's backup; early stopping; saved weights."""

import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from trainer import training
from trainer.config import Config, ModelConfig, TextConfig, TextMode, TrainConfig

SMALL = ModelConfig(embedding_dim=8, id_embedding_dim=8, gru_units=(8,))


class Killed(RuntimeError):
    pass


def _config(job):
    return Config(job_dir=str(job), model=SMALL, text=TextConfig(mode=TextMode.OFF),
                  train=TrainConfig(epochs=3, batch_size=64, patience=5))


def test_resumes_after_a_kill_and_keeps_the_best_epoch_from_before_it(tiny_data_dir, tmp_path, monkeypatch):
    config = _config(tmp_path)
    factory = lambda: training.build_model(config, tiny_data_dir, None)  # noqa: E731
    calls = []
    original = training.ValidationCallback.on_epoch_begin

    def kill_at_second_epoch(self, epoch, logs=None):
        calls.append(epoch)
        if epoch == 1 and calls.count(1) == 1:
            raise Killed("simulated kill during epoch 2")
        original(self, epoch, logs)

    monkeypatch.setattr(training.ValidationCallback, "on_epoch_begin", kill_at_second_epoch)
    with pytest.raises(Killed):
        training.train(config, tiny_data_dir, factory, lambda model: 0.5)  # epoch 1 scores 0.5
    assert os.path.isdir(os.path.join(config.resolved_checkpoint_dir(), "backup"))
    scores = iter([0.2, 0.1])  # worse than epoch 1's 0.5: the best stays the pre-kill epoch
    result = training.train(config, tiny_data_dir, factory, lambda model: next(scores))
    # The rerun starts at epoch 2 (index 1): epoch 1 is not trained again.
    assert calls == [0, 1, 1, 2]
    assert result.epochs == 3 and result.history["val_ndcg@10"] == [0.5, 0.2, 0.1]
    assert result.best_epoch == 1
    best = training.build_model(config, tiny_data_dir, None)
    best.compute_loss(next(iter(training.dataset.make_dataset(tiny_data_dir, "train", 8))))
    best.load_weights(training.best_weights_path(config.resolved_checkpoint_dir(), 1))
    for kept, saved in zip(result.model.trainable_variables, best.trainable_variables):
        assert (kept.numpy() == saved.numpy()).all()
    assert os.path.exists(os.path.join(config.resolved_model_dir(), "weights", "model.index"))
    assert os.listdir(config.resolved_tensorboard_dir())


def test_a_kill_between_progress_and_backup_trains_that_epoch_again_once(tiny_data_dir, tmp_path, monkeypatch):
    # Epoch 2 is validated (a new best, 0.5) and recorded in progress.json, then the
    # process dies before BackupAndRestore saves it: the backup ends at epoch 1.
    config = _config(tmp_path)
    factory = lambda: training.build_model(config, tiny_data_dir, None)  # noqa: E731
    original = tf.keras.callbacks.BackupAndRestore.on_epoch_end
    killed = []

    def die_before_backing_up_epoch_2(self, epoch, logs=None):
        if epoch == 1 and not killed:
            killed.append(epoch)
            raise Killed("simulated kill after validation, before the backup")
        original(self, epoch, logs)

    monkeypatch.setattr(tf.keras.callbacks.BackupAndRestore, "on_epoch_end", die_before_backing_up_epoch_2)
    epoch_1_weights = []

    def first_run_scores(model):
        if not epoch_1_weights:
            epoch_1_weights.extend(v.numpy().copy() for v in model.trainable_variables)
            return 0.3
        return 0.5

    with pytest.raises(Killed):
        training.train(config, tiny_data_dir, factory, first_run_scores)
    checkpoints = config.resolved_checkpoint_dir()
    assert os.path.exists(training.best_weights_path(checkpoints, 2) + ".index")  # epoch 2 was the best before the kill
    scores = iter([0.2, 0.1])  # epoch 2 again, then 3: neither beats epoch 1's 0.3
    result = training.train(config, tiny_data_dir, factory, lambda model: next(scores))
    assert result.epochs == 3 and result.history["val_ndcg@10"] == [0.3, 0.2, 0.1]
    assert all(len(values) == 3 for values in result.history.values())
    with open(os.path.join(checkpoints, "progress.json")) as f:
        progress = json.load(f)
    assert len(progress["epoch_seconds"]) == len(progress["validation_seconds"]) == 3
    assert result.best_epoch == 1  # the lost epoch 2's 0.5 is forgotten with it
    for kept, best in zip(result.model.trainable_variables, epoch_1_weights):
        np.testing.assert_array_equal(kept.numpy(), best)
    assert sorted(os.listdir(os.path.join(checkpoints, "best"))) == [
        "checkpoint", "epoch-0001.data-00000-of-00001", "epoch-0001.index"]


def test_early_stopping_keeps_the_best_epoch(tiny_data_dir, tmp_path):
    config = Config(job_dir=str(tmp_path), model=SMALL, text=TextConfig(mode=TextMode.OFF),
                    train=TrainConfig(epochs=6, batch_size=64, patience=1))
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.9, 0.9])

    def slow_validation(model):
        time.sleep(0.25)
        return next(scores)

    result = training.train(config, tiny_data_dir, lambda: training.build_model(config, tiny_data_dir, None),
                             slow_validation)
    # Best 0.3 at epoch 2; epoch 3 is worse and patience 1 stops there.
    assert result.epochs == 3 and result.best_epoch == 2
    assert result.history["val_ndcg@10"] == [0.1, 0.3, 0.2]
    # Time to the best epoch counts training and validation of epochs 1-2; `seconds` only training.
    with open(os.path.join(config.resolved_checkpoint_dir(), "progress.json")) as f:
        progress = json.load(f)
    assert len(progress["validation_seconds"]) == 3 and min(progress["validation_seconds"]) >= 0.25
    assert result.seconds == pytest.approx(sum(progress["epoch_seconds"]))
    assert result.seconds_to_best_epoch == pytest.approx(
        sum(progress["epoch_seconds"][:2]) + sum(progress["validation_seconds"][:2]))
    assert result.seconds_to_best_epoch > sum(progress["epoch_seconds"][:2]) + 0.49


def test_resuming_progress_written_before_validation_time_was_recorded(tmp_path):
    progress = {"history": {"val_ndcg@10": [0.1, 0.3, 0.2]}, "best": 0.3, "best_epoch": 2, "seconds": 6.0,
                "epoch_seconds": [1.0, 2.0, 3.0]}
    (tmp_path / "progress.json").write_text(json.dumps(progress))
    callback = training.ValidationCallback(lambda model: 0.0, str(tmp_path), patience=2, resume=True)
    assert callback.progress["validation_seconds"] == [0.0, 0.0, 0.0]  # unknown, aligned with the epochs
    assert callback.seconds_to_best_epoch == 3.0


def test_too_few_examples_for_one_batch_is_a_clear_error(tiny_data_dir, tmp_path):
    config = Config(job_dir=str(tmp_path), model=SMALL, text=TextConfig(mode=TextMode.OFF),
                    train=TrainConfig(batch_size=1_000_000))
    with pytest.raises(ValueError, match="lower --batch-size"):
        training.train(config, tiny_data_dir, lambda: training.build_model(config, tiny_data_dir, None), lambda m: 0.0)


def test_learning_rate_decays_once_per_epoch():
    # 100 examples in batches of 10: 10 steps an epoch; halved after each.
    schedule = training.learning_rate(TrainConfig(learning_rate=2e-3, lr_decay=0.5, batch_size=10), 100)
    assert [round(float(schedule(step)), 8) for step in (0, 9, 10, 19, 20, 35)] == [2e-3, 2e-3, 1e-3, 1e-3, 5e-4, 2.5e-4]
    assert training.learning_rate(TrainConfig(learning_rate=2e-3), 100) == 2e-3


def test_learning_rate_decay_must_be_in_range():
    with pytest.raises(ValueError, match="lr_decay"):
        TrainConfig(lr_decay=0.0)
    with pytest.raises(ValueError, match="lr_decay"):
        TrainConfig(lr_decay=1.5)


def test_weight_decay_shrinks_weights_but_not_biases():
    # With zero gradients Adam's step is 0, so one AdamW step only decays:
    # w <- w * (1 - learning_rate * weight_decay); biases stay.
    optimizer = training.make_optimizer(TrainConfig(learning_rate=0.1, weight_decay=0.5), 100)
    layer = tf.keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="ones")
    layer.build((None, 3))
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in layer.trainable_variables])
    np.testing.assert_allclose(layer.kernel.numpy(), np.full((3, 2), 0.95), rtol=1e-6)
    np.testing.assert_allclose(layer.bias.numpy(), np.ones(2))
    assert isinstance(training.make_optimizer(TrainConfig(), 100), tf.keras.optimizers.Adam)
    with pytest.raises(ValueError, match="weight_decay"):
        TrainConfig(weight_decay=-0.1)
