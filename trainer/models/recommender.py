"""The joint model: towers + TFRS tasks (retrieval, repeat/explore, behaviour).

`compute_loss` only wires towers to tasks; the towers and heads live in their
own modules. Scores over the whole catalogue (`score_catalogue`) are the
model's log-probabilities of the next item, in catalogue order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from trainer.config import FeatureConfig, ModelConfig, RetrievalMode
from trainer.data import example_schema as es
from trainer.features import geo, spatiotemporal
from trainer.models import labels
from trainer.models.behaviour_head import BehaviourHead
from trainer.models.candidate_tower import CandidateTower, zero_without_text
from trainer.models.catalogue import Catalogue, Vocabularies
from trainer.models.query_tower import QueryTower
from trainer.models.repeat_head import RepeatHead, pointer_context
from trainer.models.sequence_tower import SequenceTower

PAD_ROWS = 2  # catalogue lookup: 0 = padding, 1 = not in the catalogue, 2.. = items


def full_softmax_candidates(
    positives: tf.Tensor,
    target_ids: tf.Tensor,
    catalogue: tf.Tensor,
    catalogue_ids: tf.Tensor,
    allowed: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Inputs that make `tfrs.tasks.Retrieval` an exact softmax over the catalogue.

    The task's label for row b is candidate b, so candidates are the B positives
    followed by the N catalogue items; the mask keeps only each row's own
    positive from the first block, and `remove_accidental_hits` drops the
    positive's catalogue copy.

    Args:
      positives: [B, D] target vectors; target_ids: [B] string.
      catalogue: [N, D] item vectors; catalogue_ids: [N] string.
      allowed: optional [B, N] bool, False for items a row must not score
        (e.g. its history when the repeat head owns it).

    Returns:
      candidates [B + N, D], candidate_ids [B + N], score_mask [B, B + N] bool.
    """
    batch_size = tf.shape(positives)[0]
    own = tf.cast(tf.eye(batch_size), tf.bool)
    if allowed is None:
        allowed = tf.ones(tf.stack([batch_size, tf.shape(catalogue)[0]]), tf.bool)
    return (
        tf.concat([positives, catalogue], axis=0),
        tf.concat([target_ids, catalogue_ids], axis=0),
        tf.concat([own, allowed], axis=1),
    )


def in_batch_history_mask(history_item_ids: tf.Tensor, target_ids: tf.Tensor) -> tf.Tensor:
    """[B, B] bool: False where row b's history holds row j's positive (j != b)."""
    in_history = tf.reduce_any(tf.equal(history_item_ids[:, :, None], target_ids[None, None, :]), axis=1)
    return tf.logical_or(tf.logical_not(in_history), tf.cast(tf.eye(tf.shape(target_ids)[0]), tf.bool))


def average(per_example: tf.Tensor) -> tf.Tensor:
    """Scalar: the sum of [B] (sample-weighted) per-example losses / the global batch size.

    On one device this is the batch mean; under tf.distribute each replica's
    share, so the summed gradients are the global mean's.
    """
    flat = tf.reshape(per_example, [-1])
    if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
        return tf.reduce_mean(flat)  # outside a replica (e.g. building the variables): the plain mean
    return tf.nn.compute_average_loss(flat)


def gather_rows(catalogue: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """[..., D] rows of `catalogue` ([N, D]) for lookup indices `index` (catalogue row
    + PAD_ROWS; 0 padding, 1 unknown -> zero vectors).

    Reads only the gathered rows (no padded copy of the whole catalogue).
    """
    rows = tf.gather(catalogue, tf.maximum(index - PAD_ROWS, 0))
    return tf.where((index >= PAD_ROWS)[..., tf.newaxis], rows, tf.zeros_like(rows))


class MarginalPointerLoss(tf.keras.losses.Loss):
    """-log P(target | repeat) where P sums the pointer's softmax over every
    history position holding the target (the distribution `score_catalogue` uses).

    y_true: [B, T] 1 at positions holding the target; y_pred: [B, T] pointer logits.
    Rows without a match (not a repeat) must get sample weight 0.
    """

    def call(self, y_true, y_pred):
        matches = tf.cast(y_true, tf.bool)
        held = tf.reduce_logsumexp(tf.where(matches, y_pred, -1e9), axis=-1)
        loss = tf.reduce_logsumexp(y_pred, axis=-1) - held
        return tf.where(tf.reduce_any(matches, axis=-1), loss, 0.0)


@dataclasses.dataclass
class Outputs:
    """What one forward pass produces (B batch, T history, N catalogue, D dims)."""

    catalogue: tf.Tensor  # [N, D] candidate vectors
    query: tf.Tensor  # [B, D]
    hidden: tf.Tensor  # [B, H]
    history_index: tf.Tensor  # [B, T] int: catalogue row + PAD_ROWS (0 pad, 1 unknown)
    features: dict  # spatio-temporal features
    gate_logit: tf.Tensor | None  # [B]
    pointer_logits: tf.Tensor | None  # [B, T]


class Recommender(tfrs.Model):
    """BERT-text item tower + temporal GRU user tower, retrieval + ranking tasks."""

    def __init__(
        self,
        catalogue: Catalogue,
        vocabularies: Vocabularies,
        numeric_user_attributes: tuple[str, ...],
        model_config: ModelConfig,
        feature_config: FeatureConfig,
        text_vectors: np.ndarray | None = None,
        predict_value: bool = False,
        text_encoder: tf.keras.layers.Layer | None = None,
    ):
        super().__init__()
        if text_vectors is not None and len(text_vectors) != len(catalogue):
            raise ValueError(
                f"`text_vectors` needs one row per catalogue item: {len(catalogue)}. Received: {len(text_vectors)} rows"
            )
        self.model_config = model_config
        self.feature_config = feature_config
        self.num_items = len(catalogue)
        self.catalogue_ids = tf.constant(catalogue.ids.astype(str))
        features = catalogue.features()
        self.catalogue_features = {
            "item_id": tf.constant(features["item_id"].astype(str)),
            "category": tf.constant(features["category"].astype(str)),
            "latitude": tf.constant(features["latitude"]),
            "longitude": tf.constant(features["longitude"]),
            "price": tf.constant(features["price"]),
        }
        # Fine-tuning: positives get fresh text vectors from the trainable encoder;
        # the catalogue table (history items, full-catalogue scoring) is re-encoded
        # after every epoch (`refresh_text_vectors`), so it is at most one epoch stale.
        self.text_encoder = text_encoder
        if text_encoder is not None and text_vectors is None:
            raise ValueError("`text_vectors` (the initial catalogue encoding) are required with a `text_encoder`.")
        if text_encoder is not None and model_config.retrieval != RetrievalMode.IN_BATCH:
            raise ValueError(
                "Fine-tuning the text tower needs retrieval=in-batch (positives are re-encoded per step). "
                f"Received: retrieval={model_config.retrieval.value}"
            )
        self.catalogue_texts = tf.constant(catalogue.texts.astype(str))
        if text_vectors is not None:
            self.text_table = tf.Variable(text_vectors.astype(np.float32), trainable=False, name="text_table")
            self.catalogue_features["text_vector"] = self.text_table
        counts = catalogue.train_counts.astype(np.float64)
        # Sampling probability of each item as an in-batch positive (logQ correction).
        self.item_probability = tf.constant(np.maximum(counts, 1.0) / max(counts.sum(), 1.0), tf.float32)
        self.catalogue_lookup = tf.keras.layers.StringLookup(
            vocabulary=list(catalogue.ids.astype(str)), mask_token="", num_oov_indices=1, name="catalogue_lookup"
        )
        self.candidate_tower = CandidateTower(
            vocabularies.item_id, vocabularies.category, model_config, feature_config, use_text=text_vectors is not None
        )
        self.sequence_tower = SequenceTower(vocabularies.event_type, model_config, feature_config)
        self.query_tower = QueryTower(
            vocabularies.user_id, numeric_user_attributes, vocabularies.user_categorical, model_config
        )
        self.repeat_head = RepeatHead() if model_config.repeat_aware else None
        self.event_type_lookup = tf.keras.layers.StringLookup(
            vocabulary=list(vocabularies.event_type.tokens), mask_token="", num_oov_indices=1
        )
        num_types = len(vocabularies.event_type)
        self.behaviour_head = (
            BehaviourHead(num_types, predict_value, model_config.cross_layers) if num_types > 1 or predict_value else None
        )
        # Per-example losses, averaged in `compute_loss` with tf.nn.compute_average_loss:
        # the mean over the batch on one device, and correctly scaled for
        # tf.distribute (which refuses Keras' SUM_OVER_BATCH_SIZE in custom losses).
        sum_loss = tf.keras.losses.Reduction.NONE
        self.retrieval_task = tfrs.tasks.Retrieval(
            loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=sum_loss),
            temperature=model_config.temperature,
            remove_accidental_hits=True,
        )
        self.repeat_gate_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=sum_loss)
        )
        self.pointer_task = tfrs.tasks.Ranking(loss=MarginalPointerLoss(reduction=sum_loss))
        self.event_type_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=sum_loss)
        )
        self.value_task = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError(reduction=sum_loss))

    # ---- towers -------------------------------------------------------------

    def refresh_text_vectors(self, batch_size: int = 256) -> None:
        """Re-encodes every catalogue text with the (fine-tuned) encoder."""
        if self.text_encoder is None:
            return
        parts = [
            zero_without_text(texts, self.text_encoder(texts, training=False))
            for texts in (self.catalogue_texts[start : start + batch_size] for start in range(0, self.num_items, batch_size))
        ]
        self.text_table.assign(tf.concat(parts, axis=0))

    def positive_vectors(self, target_index: tf.Tensor, catalogue: tf.Tensor, training: bool) -> tf.Tensor:
        """[B, D] target item vectors (re-encoding their text when fine-tuning)."""
        if self.text_encoder is None:
            return gather_rows(catalogue, target_index)
        rows = tf.maximum(target_index - PAD_ROWS, 0)
        features = {name: tf.gather(values, rows) for name, values in self.catalogue_features.items()}
        texts = tf.gather(self.catalogue_texts, rows)
        features["text_vector"] = zero_without_text(texts, self.text_encoder(texts, training=training))
        return self.candidate_tower(features, training=training)

    def catalogue_vectors(self, training: bool = False) -> tf.Tensor:
        """[N, D] unit vectors of every catalogue item."""
        return self.candidate_tower(self.catalogue_features, training=training)

    def forward(
        self,
        batch: dict[str, tf.Tensor],
        training: bool = False,
        catalogue: tf.Tensor | None = None,
        lookup: Callable[[tf.Tensor], tf.Tensor] | None = None,
    ) -> Outputs:
        """One pass.

        `catalogue` ([N, D], from `catalogue_vectors`) may be passed in to reuse it,
        or to score another catalogue (serving: items added after training); then
        `lookup` maps item ids (any shape, string) to int64 rows of that catalogue
        + PAD_ROWS (0 for "", 1 for ids not in it). Default: the training catalogue.
        """
        features = spatiotemporal.compute(batch, self.feature_config)
        if catalogue is None:
            catalogue = self.catalogue_vectors(training)
        history_index = (lookup or self.catalogue_lookup)(batch[es.HISTORY_ITEM_IDS])
        item_vectors = gather_rows(catalogue, history_index)
        positions, state = self.sequence_tower(item_vectors, batch[es.HISTORY_EVENT_TYPES], features, training=training)
        query, hidden = self.query_tower(state, features, batch, training=training)
        gate_logit = pointer = None
        if self.repeat_head is not None:
            # Only catalogue items can be scored, so only they may be pointed at.
            gate_logit, pointer = self.repeat_head(
                positions, hidden, batch[es.HISTORY_ITEM_IDS], history_index >= PAD_ROWS, pointer_context(features)
            )
        return Outputs(catalogue, query, hidden, history_index, features, gate_logit, pointer)

    @staticmethod
    def scatter_history(history_index: tf.Tensor, values: tf.Tensor, num_items: tf.Tensor | int) -> tf.Tensor:
        """Sums [B, T] `values` into [B, N] at each position's catalogue item (padding/unknown skipped)."""
        batch_size = tf.shape(history_index)[0]
        rows = tf.repeat(tf.range(batch_size, dtype=history_index.dtype)[:, None], tf.shape(history_index)[1], axis=1)
        valid = history_index >= PAD_ROWS
        indices = tf.stack([tf.boolean_mask(rows, valid), tf.boolean_mask(history_index - PAD_ROWS, valid)], axis=1)
        shape = tf.cast(tf.stack([batch_size, num_items]), indices.dtype)
        return tf.scatter_nd(indices, tf.boolean_mask(values, valid), shape)

    def history_item_mask(self, history_index: tf.Tensor, num_items: tf.Tensor | int | None = None) -> tf.Tensor:
        """[B, N] bool: catalogue items present in the history window (N defaults to the training catalogue)."""
        num_items = self.num_items if num_items is None else num_items
        return self.scatter_history(history_index, tf.ones(tf.shape(history_index)), num_items) > 0

    def repeat_distribution(
        self, history_index: tf.Tensor, pointer_logits: tf.Tensor, num_items: tf.Tensor | int | None = None
    ) -> tf.Tensor:
        """[B, N] P(item | repeat): pointer attention summed per catalogue item."""
        num_items = self.num_items if num_items is None else num_items
        return self.scatter_history(history_index, tf.nn.softmax(pointer_logits, axis=-1), num_items)

    def score_catalogue(
        self,
        batch: dict[str, tf.Tensor],
        catalogue: tf.Tensor | None = None,
        lookup: Callable[[tf.Tensor], tf.Tensor] | None = None,
    ) -> tf.Tensor:
        """[B, N] float32 log P(next item) over the catalogue (catalogue order).

        `catalogue` ([N, D] from `catalogue_vectors()`) can be computed once and
        passed in when scoring many batches; see `forward` for `lookup`.
        """
        return self.score_outputs(self.forward(batch, training=False, catalogue=catalogue, lookup=lookup))

    def score_outputs(self, out: Outputs) -> tf.Tensor:
        """[B, N] float32 log P(next item) from one forward pass (see `score_catalogue`)."""
        num_items = tf.shape(out.catalogue)[0]
        logits = tf.matmul(out.query, out.catalogue, transpose_b=True) / self.model_config.temperature
        if out.gate_logit is None:
            return tf.nn.log_softmax(logits, axis=-1)
        in_history = self.history_item_mask(out.history_index, num_items)
        explore = tf.nn.log_softmax(tf.where(in_history, -1e9, logits), axis=-1)
        repeat = tf.math.log(self.repeat_distribution(out.history_index, out.pointer_logits, num_items) + 1e-12)
        log_gate = tf.math.log_sigmoid(out.gate_logit)[:, None]
        log_not_gate = tf.math.log_sigmoid(-out.gate_logit)[:, None]
        # Items in the history: repeat mass; other items: explore mass. An
        # empty history (no repeat possible) leaves pure explore.
        has_history = tf.reduce_any(in_history, axis=1, keepdims=True)
        explore_scores = tf.where(has_history, log_not_gate + explore, explore)
        return tf.where(in_history, log_gate + repeat, explore_scores)

    def behaviour(
        self,
        out: Outputs,
        batch: dict[str, tf.Tensor],
        item_index: tf.Tensor,
        latitudes: tf.Tensor | None = None,
        longitudes: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """Behaviour-head predictions for candidate rows `item_index` ([B] catalogue rows + PAD_ROWS).

        `latitudes` / `longitudes` ([N] float32, NaN unknown) belong to `out.catalogue`;
        default: the training catalogue's.
        """
        candidate = gather_rows(out.catalogue, item_index)
        latitudes = self.catalogue_features["latitude"] if latitudes is None else latitudes
        longitudes = self.catalogue_features["longitude"] if longitudes is None else longitudes
        known = item_index >= PAD_ROWS  # padding / unknown items have no place
        rows = tf.maximum(item_index - PAD_ROWS, 0)
        lat = tf.where(known, tf.gather(latitudes, rows), np.nan)
        lon = tf.where(known, tf.gather(longitudes, rows), np.nan)
        distance = geo.haversine_km(batch[es.REQUEST_LATITUDE], batch[es.REQUEST_LONGITUDE], lat, lon)
        return self.behaviour_head(out.hidden, out.query, candidate, distance, out.features["request_cyclic_time"])

    def behaviour_of_candidates(
        self,
        out: Outputs,
        batch: dict[str, tf.Tensor],
        item_index: tf.Tensor,
        latitudes: tf.Tensor | None = None,
        longitudes: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """`behaviour` for C candidates per row: `item_index` [B, C] -> each output [B, C, ...]."""
        if self.behaviour_head is None:
            return {}
        per_row = tf.shape(item_index)[1]
        repeat = lambda t: tf.repeat(t, per_row, axis=0)  # noqa: E731  [B, ...] -> [B * C, ...]
        flat_out = dataclasses.replace(
            out, query=repeat(out.query), hidden=repeat(out.hidden),
            features={"request_cyclic_time": repeat(out.features["request_cyclic_time"])},
        )
        flat_batch = {name: repeat(batch[name]) for name in (es.REQUEST_LATITUDE, es.REQUEST_LONGITUDE)}
        predicted = self.behaviour(flat_out, flat_batch, tf.reshape(item_index, [-1]), latitudes, longitudes)
        shape = tf.shape(item_index)
        return {
            name: tf.reshape(value, tf.concat([shape, tf.shape(value)[1:]], axis=0)) for name, value in predicted.items()
        }

    # ---- tasks --------------------------------------------------------------

    def retrieval_loss(self, out: Outputs, batch: dict[str, tf.Tensor], positives: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
        """The retrieval task on the explore targets, in the configured mode.

        With the repeat head on, history items are the repeat head's to score, so
        the explore softmax never sees them (as in `score_catalogue`).
        """
        target_ids = batch[es.TARGET_ITEM_ID]
        if self.model_config.retrieval == RetrievalMode.FULL:
            allowed = None
            if self.repeat_head is not None:
                allowed = tf.logical_not(self.history_item_mask(out.history_index))
            candidates, candidate_ids, score_mask = full_softmax_candidates(
                positives, target_ids, out.catalogue, self.catalogue_ids, allowed
            )
            return average(self.retrieval_task(
                out.query, candidates, sample_weight=weight, candidate_ids=candidate_ids,
                score_mask=score_mask, compute_metrics=False,
            ))
        score_mask = None
        if self.repeat_head is not None:
            score_mask = in_batch_history_mask(batch[es.HISTORY_ITEM_IDS], target_ids)
        probability = tf.gather(
            tf.concat([tf.ones([PAD_ROWS]), self.item_probability], 0), self.catalogue_lookup(target_ids)
        )
        return average(self.retrieval_task(
            out.query, positives, sample_weight=weight, score_mask=score_mask,
            candidate_sampling_probability=probability, candidate_ids=target_ids, compute_metrics=False,
        ))

    def compute_loss(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        out = self.forward(batch, training=training)
        target_index = self.catalogue_lookup(batch[es.TARGET_ITEM_ID])
        positives = self.positive_vectors(target_index, out.catalogue, training)
        config = self.model_config
        repeat = labels.is_repeat(batch) if self.repeat_head is not None else tf.zeros_like(out.query[:, 0])
        loss = config.retrieval_weight * self.retrieval_loss(out, batch, positives, 1.0 - repeat)
        if self.repeat_head is not None:
            loss += config.repeat_weight * (
                average(self.repeat_gate_task(labels=repeat[:, None], predictions=out.gate_logit[:, None]))
                + average(self.pointer_task(
                    labels=tf.cast(labels.history_matches(batch), tf.float32), predictions=out.pointer_logits,
                    sample_weight=repeat,
                ))
            )
        if self.behaviour_head is not None:
            predicted = self.behaviour(out, batch, target_index)
            if "event_type_logits" in predicted:
                classes, weight = labels.event_type_classes(self.event_type_lookup(batch[es.TARGET_EVENT_TYPE]))
                loss += config.behaviour_weight * average(self.event_type_task(
                    labels=classes, predictions=predicted["event_type_logits"], sample_weight=weight
                ))
            if "value" in predicted:
                value, weight = labels.rating_values(batch)
                loss += config.behaviour_weight * average(self.value_task(
                    labels=value[:, None], predictions=predicted["value"][:, None], sample_weight=weight
                ))
        return loss
