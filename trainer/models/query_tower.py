"""The query (user) tower: sequence state + request context + user attributes.

Output: an L2-normalised [B, D] query vector and the [B, H] hidden features
the repeat and behaviour heads also read.
"""

from __future__ import annotations

import tensorflow as tf

from trainer.config import ModelConfig
from trainer.data import example_schema as es
from trainer.features.vocabulary import Vocabulary, lookup_layer
from trainer.models.candidate_tower import GEO_BUCKETS, hashed_cell
from trainer.models.sequence_tower import log_distance


class QueryTower(tf.keras.layers.Layer):
    """(sequence state [B, U], request features, user features) -> (query [B, D], hidden [B, H]).

    User features: user_id [B] string (training vocabulary; unseen -> OOV),
    numeric attributes [B] float32 (NaN missing), categorical attributes [B]
    string ("" missing).
    """

    def __init__(
        self,
        user_vocabulary: Vocabulary,
        numeric_attributes: tuple[str, ...],
        categorical_vocabularies: dict[str, Vocabulary],
        model_config: ModelConfig,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.model_config = model_config
        self.numeric_attributes = tuple(numeric_attributes)
        self.user_lookup = lookup_layer(user_vocabulary, num_oov_indices=1)
        self.user_embedding = tf.keras.layers.Embedding(len(user_vocabulary) + 2, 32, name="user_id_embedding")
        self.numeric_normalization = tf.keras.layers.Normalization(name="user_numeric_normalization") if numeric_attributes else None
        self.categorical_lookups = {}
        self.categorical_embeddings = {}
        for name, vocabulary in sorted(categorical_vocabularies.items()):
            if len(vocabulary):
                self.categorical_lookups[name] = lookup_layer(vocabulary, num_oov_indices=1)
                self.categorical_embeddings[name] = tf.keras.layers.Embedding(len(vocabulary) + 2, 8, name=f"user_{name}_embedding")
        self.hour_embedding = tf.keras.layers.Embedding(24, 4, name="request_hour_embedding")
        self.weekday_embedding = tf.keras.layers.Embedding(7, 3, name="request_weekday_embedding")
        self.coarse_embedding = tf.keras.layers.Embedding(GEO_BUCKETS, 8, name="request_coarse_cell_embedding")
        self.fine_embedding = tf.keras.layers.Embedding(GEO_BUCKETS, 16, name="request_fine_cell_embedding")
        hidden = 2 * model_config.embedding_dim
        self.hidden_layer = tf.keras.layers.Dense(hidden, activation="gelu", name="query_hidden")
        self.dropout = tf.keras.layers.Dropout(model_config.dropout)
        self.output_layer = tf.keras.layers.Dense(model_config.embedding_dim, name="query_output")

    def _user_ids(self, user_ids: tf.Tensor, training: bool) -> tf.Tensor:
        ids = self.user_lookup(user_ids)
        if training and self.model_config.id_dropout > 0:
            # As for items: train the OOV row, which new users get at serving time.
            dropped = tf.random.uniform(tf.shape(ids)) < self.model_config.id_dropout
            ids = tf.where(tf.logical_and(dropped, ids > 0), tf.ones_like(ids), ids)
        return ids

    def numeric_matrix(self, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """([B, A] float32 values with NaN -> 0, [B, A] float32 1 where known)."""
        values = tf.stack(
            [tf.cast(batch[es.USER_ATTRIBUTE_PREFIX + n], tf.float32) for n in self.numeric_attributes], axis=-1
        )
        known = tf.logical_not(tf.math.is_nan(values))
        return tf.where(known, values, 0.0), tf.cast(known, tf.float32)

    def call(self, state: tf.Tensor, features: dict[str, tf.Tensor], batch: dict[str, tf.Tensor], training: bool = False):
        last_km, has_km = log_distance(features["request_last_place_km"])
        parts = [
            state,
            features["request_cyclic_time"],
            self.hour_embedding(features["request_hour"]),
            self.weekday_embedding(features["request_weekday"]),
            self.coarse_embedding(hashed_cell(features["request_coarse_cell"])),
            self.fine_embedding(hashed_cell(features["request_fine_cell"])),
            tf.stack([last_km, has_km], axis=-1),
            self.user_embedding(self._user_ids(batch[es.USER_ID], training)),
        ]
        if self.numeric_normalization is not None:
            values, known = self.numeric_matrix(batch)
            parts += [self.numeric_normalization(values) * known, known]
        for name, lookup in self.categorical_lookups.items():
            parts.append(self.categorical_embeddings[name](lookup(batch[es.USER_ATTRIBUTE_PREFIX + name])))
        hidden = self.dropout(self.hidden_layer(tf.concat(parts, axis=-1)), training=training)
        return tf.math.l2_normalize(self.output_layer(hidden), axis=-1), hidden
