"""Ranking heads: the behaviour of the next event for a (user, candidate, context).

Inputs are the query hidden features, the candidate's vector, their agreement,
the user-candidate distance (request place to the item's place) and request
time features, crossed by a DCN (`tfrs.layers.dcn.Cross`), then:
  - event-type logits (click / add_to_cart / purchase ... probability) when the
    data has several event types;
  - a value regression (e.g. the rating) when targets carry values.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from trainer.models.sequence_tower import log_distance


class BehaviourHead(tf.keras.layers.Layer):
    """Returns {"event_type_logits": [B, E]} and/or {"value": [B]}."""

    def __init__(self, num_event_types: int, predict_value: bool, cross_layers: int = 2, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.num_event_types = num_event_types
        self.predict_value = predict_value
        self.cross_layers = cross_layers
        self.units = units
        self.crosses = [tfrs.layers.dcn.Cross(projection_dim=None, name=f"cross_{i}") for i in range(cross_layers)]
        self.deep = tf.keras.layers.Dense(units, activation="gelu", name="behaviour_deep")
        self.event_type_output = (
            tf.keras.layers.Dense(num_event_types, name="event_type_logits") if num_event_types > 1 else None
        )
        self.value_output = tf.keras.layers.Dense(1, name="value") if predict_value else None

    def call(self, hidden: tf.Tensor, query: tf.Tensor, candidate: tf.Tensor, distance_km: tf.Tensor, time: tf.Tensor):
        """hidden [B, H], query/candidate [B, D] unit vectors, distance_km [B] (NaN unknown), time [B, 4]."""
        km, has_km = log_distance(distance_km)
        x0 = tf.concat(
            [hidden, candidate, query * candidate, tf.reduce_sum(query * candidate, -1, keepdims=True),
             tf.stack([km, has_km], -1), time],
            axis=-1,
        )
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        x = self.deep(x)
        out = {}
        if self.event_type_output is not None:
            out["event_type_logits"] = self.event_type_output(x)
        if self.value_output is not None:
            out["value"] = tf.squeeze(self.value_output(x), -1)
        return out
