"""The candidate (item) tower: raw item attributes -> an L2-normalised vector.

id embedding (training-period vocabulary; every unseen id shares the one OOV
row, which id dropout trains as "an item known only by its content") + the
item's text vector (from the BERT text tower) + category embedding (mean over
its "|"-separated categories) + geo-cell embeddings + log price -> MLP -> unit
vector. An item with text but no interactions still gets a useful vector
from its text, category, place and price.
"""

from __future__ import annotations

import tensorflow as tf

from trainer.config import FeatureConfig, ModelConfig
from trainer.features import geo
from trainer.features.vocabulary import Vocabulary, lookup_layer

GEO_BUCKETS = 4096  # geo cells are hashed into this many embedding rows (0 = unknown)


def hashed_cell(cell: tf.Tensor, buckets: int = GEO_BUCKETS) -> tf.Tensor:
    """Geo cell id (int64, 0 = unknown) -> embedding row in [0, buckets); 0 stays 0."""
    return tf.where(cell > 0, 1 + tf.math.floormod(cell * 2654435761, buckets - 1), tf.zeros_like(cell))


# Python's str.isspace() set (ASCII whitespace, separators, \x1c-\x1f, \x85) as RE2 sees it.
_ONLY_WHITESPACE = r"[\s\pZ\x{0b}\x{1c}-\x{1f}\x{85}]*"


def has_text(texts: tf.Tensor) -> tf.Tensor:
    """[N] bool: the item has text ([N] string; empty or only whitespace, Unicode
    included, = no text; the same as Python's `bool(text.strip())`)."""
    return tf.logical_not(tf.strings.regex_full_match(texts, _ONLY_WHITESPACE))


def zero_without_text(texts: tf.Tensor, vectors: tf.Tensor) -> tf.Tensor:
    """[N, H] text vectors with the rows of items without text (`has_text`) set to 0:
    no text is no information, and a zero vector is how the tower reads "no text"."""
    return tf.where(has_text(texts)[:, None], vectors, tf.zeros_like(vectors))


def log_price(price: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """([N] float32 log1p(price), [N] float32 1 where the price is known)."""
    known = tf.logical_not(tf.math.is_nan(price))
    return tf.where(known, tf.math.log1p(tf.maximum(price, 0.0)), 0.0), tf.cast(known, tf.float32)


class CandidateTower(tf.keras.layers.Layer):
    """Item features -> [N, embedding_dim] unit vectors.

    Inputs (a dict of [N] tensors): item_id string, category string ("|"-joined,
    "" absent), latitude/longitude float32 (NaN unknown), price float32 (NaN
    unknown), and text_vector [N, H] float32 when the text tower is on.
    """

    def __init__(
        self,
        item_vocabulary: Vocabulary,
        category_vocabulary: Vocabulary,
        model_config: ModelConfig,
        feature_config: FeatureConfig,
        use_text: bool,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.model_config = model_config
        self.feature_config = feature_config
        self.use_text = use_text
        self.item_lookup = lookup_layer(item_vocabulary, num_oov_indices=1)
        self.item_embedding = tf.keras.layers.Embedding(
            len(item_vocabulary) + 2, model_config.id_embedding_dim, name="item_id_embedding"
        )
        self.use_category = len(category_vocabulary) > 0
        if self.use_category:
            self.category_lookup = lookup_layer(category_vocabulary, num_oov_indices=1)
            self.category_embedding = tf.keras.layers.Embedding(len(category_vocabulary) + 2, 16, name="category_embedding")
        self.coarse_embedding = tf.keras.layers.Embedding(GEO_BUCKETS, 8, name="item_coarse_cell_embedding")
        self.fine_embedding = tf.keras.layers.Embedding(GEO_BUCKETS, 16, name="item_fine_cell_embedding")
        if use_text:
            self.text_projection = tf.keras.layers.Dense(model_config.embedding_dim, name="text_projection")
        self.hidden = tf.keras.layers.Dense(2 * model_config.embedding_dim, activation="gelu", name="item_hidden")
        self.dropout = tf.keras.layers.Dropout(model_config.dropout)
        self.output_layer = tf.keras.layers.Dense(model_config.embedding_dim, name="item_output")

    def call(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        ids = self.item_lookup(features["item_id"])
        if training and self.model_config.id_dropout > 0:
            # Id dropout (as in DropoutNet): some known items are seen as unknown, so the
            # tower learns to place an item from its content alone, as for a new item.
            dropped = tf.random.uniform(tf.shape(ids)) < self.model_config.id_dropout
            ids = tf.where(tf.logical_and(dropped, ids > 0), tf.ones_like(ids), ids)
        parts = [self.item_embedding(ids)]
        if self.use_category:
            categories = tf.strings.strip(tf.strings.split(features["category"], sep="|"))  # ragged [N, (c)]
            categories = tf.ragged.boolean_mask(categories, tf.not_equal(categories, ""))  # "" / "a||b" gaps
            ids = tf.ragged.map_flat_values(self.category_lookup, categories)
            vectors = tf.ragged.map_flat_values(self.category_embedding, ids)
            # Mean over categories; an item without categories gets zeros.
            parts.append(tf.math.divide_no_nan(tf.reduce_sum(vectors, axis=1), tf.cast(tf.maximum(ids.row_lengths(), 1), tf.float32)[:, None]))
        lat, lon = features["latitude"], features["longitude"]
        parts.append(self.coarse_embedding(hashed_cell(geo.geo_cell(lat, lon, self.feature_config.coarse_cell_degrees))))
        parts.append(self.fine_embedding(hashed_cell(geo.geo_cell(lat, lon, self.feature_config.fine_cell_degrees))))
        price, has_price = log_price(tf.cast(features["price"], tf.float32))
        parts.append(tf.stack([price / 5.0, has_price], axis=-1))
        if self.use_text:
            # Items without text carry a zero vector (see trainer/text_vectors.py) and a 0 flag.
            text = features["text_vector"]
            has_text = tf.cast(tf.reduce_any(tf.not_equal(text, 0.0), axis=-1, keepdims=True), tf.float32)
            parts += [self.text_projection(text) * has_text, has_text]
        x = tf.concat(parts, axis=-1)
        x = self.dropout(self.hidden(x), training=training)
        return tf.math.l2_normalize(self.output_layer(x), axis=-1)
