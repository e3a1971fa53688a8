"""The behaviour-sequence tower: a masked, stacked GRU over the user's history.

Each history position carries the item's vector (shared with the candidate
tower), its event type, the log-bucketed gap from the previous event and to
the request, the local hour and weekday, geo-cell embeddings and the distance
moved from the previous place. Padding (after the real events) is masked, so
it never changes the output.
"""

from __future__ import annotations

import tensorflow as tf

from trainer.config import FeatureConfig, ModelConfig
from trainer.features import spatiotemporal
from trainer.features.vocabulary import Vocabulary, lookup_layer
from trainer.models.candidate_tower import GEO_BUCKETS, hashed_cell


def log_distance(km: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(log1p(km) scaled, 1 where known); NaN (unknown) -> (0, 0)."""
    known = tf.logical_not(tf.math.is_nan(km))
    return tf.where(known, tf.math.log1p(tf.maximum(km, 0.0)) / 5.0, 0.0), tf.cast(known, tf.float32)


class SequenceTower(tf.keras.layers.Layer):
    """History -> (per-position outputs [B, T, U], final state [B, U]).

    Inputs:
      item_vectors: [B, T, D] float32, the history items' candidate-tower vectors
        (zeros at padding).
      event_types: [B, T] string ("" = padding).
      features: the dict from `spatiotemporal.compute` ([B, T] history_* entries
        and history_mask [B, T] bool, True at real events, real events first).
    """

    def __init__(self, event_vocabulary: Vocabulary, model_config: ModelConfig, feature_config: FeatureConfig, **kwargs):
        super().__init__(**kwargs)
        self.model_config = model_config
        self.feature_config = feature_config
        self.event_lookup = lookup_layer(event_vocabulary, num_oov_indices=1)
        self.event_embedding = tf.keras.layers.Embedding(len(event_vocabulary) + 2, 8, name="event_type_embedding")
        self.gap_embedding = tf.keras.layers.Embedding(feature_config.num_gap_buckets, 8, name="gap_embedding")
        self.request_gap_embedding = tf.keras.layers.Embedding(feature_config.num_gap_buckets, 8, name="request_gap_embedding")
        self.hour_embedding = tf.keras.layers.Embedding(24, 4, name="hour_embedding")
        self.weekday_embedding = tf.keras.layers.Embedding(7, 3, name="weekday_embedding")
        self.coarse_embedding = tf.keras.layers.Embedding(GEO_BUCKETS, 8, name="history_coarse_cell_embedding")
        self.fine_embedding = tf.keras.layers.Embedding(GEO_BUCKETS, 16, name="history_fine_cell_embedding")
        self.input_projection = tf.keras.layers.Dense(model_config.gru_units[0], activation="gelu", name="step_projection")
        self.grus = [
            tf.keras.layers.GRU(units, return_sequences=True, return_state=True, name=f"gru_{i}")
            for i, units in enumerate(model_config.gru_units)
        ]
        self.dropout = tf.keras.layers.Dropout(model_config.dropout)

    def call(
        self, item_vectors: tf.Tensor, event_types: tf.Tensor, features: dict[str, tf.Tensor], training: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor]:
        mask = features[spatiotemporal.HISTORY_MASK]
        step_km, has_km = log_distance(features["history_step_km"])
        steps = tf.concat(
            [
                item_vectors,
                self.event_embedding(self.event_lookup(event_types)),
                self.gap_embedding(features["history_gap_bucket"]),
                self.request_gap_embedding(features["history_request_gap_bucket"]),
                self.hour_embedding(features["history_hour"]),
                self.weekday_embedding(features["history_weekday"]),
                features["history_cyclic_time"],
                self.coarse_embedding(hashed_cell(features["history_coarse_cell"])),
                self.fine_embedding(hashed_cell(features["history_fine_cell"])),
                tf.stack([step_km, has_km], axis=-1),
            ],
            axis=-1,
        )
        x = self.dropout(self.input_projection(steps), training=training)
        state = None
        for gru in self.grus:
            x, state = gru(x, mask=mask, training=training)
        # Padded positions of the outputs carry the last real state; zero them.
        x = x * tf.cast(mask, x.dtype)[..., tf.newaxis]
        # A history with no real event (cold user) yields the zero state.
        state = state * tf.cast(tf.reduce_any(mask, axis=1), state.dtype)[:, tf.newaxis]
        return x, state
