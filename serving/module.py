"""The exported model: the trained towers plus the served catalogue and user
table, with one `tf.function` per signature of `serving.contract`.

State that may change without retraining lives in variables whose first
dimension is free (`ServedCatalogue`, `UserTable`): `serving.add_items` loads
a version, appends items embedded by its own `embed_items`, and saves the next
version. Only TF core and TF Text ops; no Python at serving time.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from serving import contract, mmr
from serving.key_index import KeyIndex
from trainer.data import example_schema as es
from trainer.models.candidate_tower import zero_without_text
from trainer.models.recommender import PAD_ROWS, Recommender, gather_rows

NEG_INF = float("-inf")


@dataclasses.dataclass(frozen=True)
class ServingSettings:
    """Model-level serving behaviour, fixed at export.

    max_k: the largest k a request may ask for.
    exclude_history: never recommend items already in the request's history
      (films: yes; places people return to: no).
    mmr_pool: how many of the best-scoring items MMR re-ranking chooses from.
    """

    max_k: int = contract.DEFAULT_MAX_K
    exclude_history: bool = False
    mmr_pool: int = 200

    def __post_init__(self):
        if self.max_k < 1:
            raise ValueError(f"`max_k` must be >= 1. Received: max_k={self.max_k}")
        if self.mmr_pool < 1:
            raise ValueError(f"`mmr_pool` must be >= 1. Received: mmr_pool={self.mmr_pool}")


class ServedCatalogue(tf.Module):
    """The items a version serves: ids, unit vectors [N, D], places [N] (NaN unknown)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, latitudes: np.ndarray, longitudes: np.ndarray):
        super().__init__(name="catalogue")
        if not len(ids) == len(vectors) == len(latitudes) == len(longitudes):
            raise ValueError(
                "`ids`, `vectors`, `latitudes` and `longitudes` need one row per item. Received lengths: "
                f"{len(ids)}, {len(vectors)}, {len(latitudes)}, {len(longitudes)}"
            )
        self.index = KeyIndex(ids, "item_index")
        dim = vectors.shape[1]
        self.vectors = tf.Variable(vectors.astype(np.float32), shape=tf.TensorShape([None, dim]), trainable=False, name="vectors")
        self.latitudes = tf.Variable(np.asarray(latitudes, np.float32), shape=tf.TensorShape([None]), trainable=False, name="latitudes")
        self.longitudes = tf.Variable(np.asarray(longitudes, np.float32), shape=tf.TensorShape([None]), trainable=False, name="longitudes")

    @property
    def ids(self) -> tf.Variable:
        return self.index.keys

    def lookup(self, ids: tf.Tensor) -> tf.Tensor:
        """Catalogue row + PAD_ROWS of each id (any shape): 0 for "", 1 for ids not served."""
        rows = self.index.lookup(ids)
        return tf.where(tf.equal(ids, ""), tf.constant(0, tf.int64), tf.where(rows < 0, tf.constant(1, tf.int64), rows + PAD_ROWS))


class UserTable(tf.Module):
    """Attributes of the users known at export, so requests carry only the user id.

    numeric: name -> [U] float32 (NaN unknown); categorical: name -> [U] str ("" unknown).
    New users get NaN / "" (as users without attributes do in training).
    """

    def __init__(self, user_ids: np.ndarray, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray]):
        super().__init__(name="users")
        self.index = KeyIndex(user_ids, "user_index")
        self._empty = len(user_ids) == 0  # no known user: every request gets unknown attributes
        self.numeric_names = tuple(numeric)
        self.categorical_names = tuple(categorical)
        matrix = np.stack([np.asarray(numeric[n], np.float32) for n in self.numeric_names], axis=1) if numeric else np.zeros(
            [len(user_ids), 0], np.float32
        )
        self.numeric = tf.Variable(matrix, shape=tf.TensorShape([None, len(self.numeric_names)]), trainable=False, name="numeric")
        self.categorical = {
            name: tf.Variable(tf.constant(np.asarray(values, object).astype(str)), shape=tf.TensorShape([None]), trainable=False, name=name)
            for name, values in categorical.items()
        }

    def attributes(self, user_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        """[B] user ids -> {"user_<name>": [B]} in the example schema's naming."""
        rows = self.index.lookup(user_ids)
        known = rows >= 0
        safe = tf.maximum(rows, 0)  # used only where known
        out = {}
        if self._empty:
            out.update({es.USER_ATTRIBUTE_PREFIX + n: tf.fill(tf.shape(user_ids), float("nan")) for n in self.numeric_names})
            out.update({es.USER_ATTRIBUTE_PREFIX + n: tf.fill(tf.shape(user_ids), "") for n in self.categorical})
            return out
        if self.numeric_names:
            values = tf.gather(self.numeric, safe)
            values = tf.where(known[:, None], values, float("nan"))
            out.update({es.USER_ATTRIBUTE_PREFIX + n: values[:, i] for i, n in enumerate(self.numeric_names)})
        for name, values in self.categorical.items():
            out[es.USER_ATTRIBUTE_PREFIX + name] = tf.where(known, tf.gather(values, safe), "")
        return out


class ServingModule(tf.Module):
    """What `tf.saved_model.save` writes: towers, catalogue, users and the signature functions.

    Args:
      model: the trained Recommender (its towers are tracked; the object is not).
      catalogue: the served items with their candidate-tower vectors.
      users: known users' attributes.
      text_encoder: the BERT text encoder for `embed_items` (None: the model has no text).
      event_type_names: the behaviour head's classes in output order.
      settings: see `ServingSettings`.
    """

    def __init__(
        self,
        model: Recommender,
        catalogue: ServedCatalogue,
        users: UserTable,
        text_encoder: tf.keras.layers.Layer | None,
        event_type_names: tuple[str, ...],
        settings: ServingSettings,
    ):
        super().__init__(name="recommender")
        self.catalogue = catalogue
        self.users = users
        self.settings = settings
        # Tracked so their variables are saved; the model object itself stays
        # untracked (its training-only state, e.g. the catalogue text table, is not served).
        self.candidate_tower = model.candidate_tower
        self.sequence_tower = model.sequence_tower
        self.query_tower = model.query_tower
        self.repeat_head = model.repeat_head
        self.behaviour_head = model.behaviour_head
        self.text_encoder = text_encoder
        self._holder = _Untracked(model)
        has_types = model.behaviour_head is not None and model.behaviour_head.event_type_output is not None
        self._event_type_names = tuple(event_type_names) if has_types else ()
        self._predicts_rating = model.behaviour_head is not None and model.behaviour_head.value_output is not None
        self.use_text = model.candidate_tower.use_text
        self.text_dim = int(model.candidate_tower.text_projection.kernel.shape[0]) if self.use_text else 0
        for signature in contract.SIGNATURES:
            method = getattr(self, "_" + signature if signature != contract.RECOMMEND else "_recommend")
            setattr(self, signature, tf.function(method, input_signature=[contract.input_specs(signature)]))

    @property
    def model(self) -> Recommender:
        return self._holder.value

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        return {name: getattr(self, name).get_concrete_function() for name in contract.SIGNATURES}

    def output_names(self, signature: str) -> tuple[str, ...]:
        """The outputs this model's version of a signature carries."""
        names = [t.name for t in contract.OUTPUTS[signature]]
        if not self._event_type_names:
            names = [n for n in names if n not in ("event_type_names", "event_type_probabilities")]
        if not self._predicts_rating:
            names = [n for n in names if n != "predicted_rating"]
        return tuple(names)

    # ---- shared pieces ------------------------------------------------------

    def _batch(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        batch = {t.name: inputs[t.name] for t in contract.QUERY_INPUTS}
        batch.update(self.users.attributes(inputs["user_id"]))
        return batch

    def _forward(self, inputs: dict[str, tf.Tensor]):
        batch = self._batch(inputs)
        out = self.model.forward(batch, training=False, catalogue=self.catalogue.vectors.read_value(), lookup=self.catalogue.lookup)
        return batch, out

    def _behaviour(self, out, batch, item_index: tf.Tensor, real: tf.Tensor) -> dict[str, tf.Tensor]:
        """[B, C] rows + PAD_ROWS -> the behaviour outputs, NaN where `real` ([B, C] bool) is False."""
        predicted = self.model.behaviour_of_candidates(
            out, batch, item_index, self.catalogue.latitudes.read_value(), self.catalogue.longitudes.read_value()
        )
        result = {}
        if self._event_type_names:
            names = tf.constant(list(self._event_type_names))
            result["event_type_names"] = tf.tile(names[None, :], [tf.shape(item_index)[0], 1])
            probabilities = tf.nn.softmax(predicted["event_type_logits"], axis=-1)
            result["event_type_probabilities"] = tf.where(real[:, :, None], probabilities, float("nan"))
        if self._predicts_rating:
            result["predicted_rating"] = tf.where(real, predicted["value"], float("nan"))
        return result

    def _excluded(self, inputs: dict[str, tf.Tensor], out, num_items: tf.Tensor) -> tf.Tensor:
        """[B, N] bool: items a request must not get (its exclusions; its history if the model says so)."""
        excluded = self.model.scatter_history(
            self.catalogue.lookup(inputs["exclusions"]), tf.ones(tf.shape(inputs["exclusions"])), num_items
        ) > 0
        if self.settings.exclude_history:
            excluded = tf.logical_or(excluded, self.model.history_item_mask(out.history_index, num_items))
        return excluded

    def _top(self, inputs: dict[str, tf.Tensor], diversity: tf.Tensor | None):
        """The shared retrieval: checks, scores, exclusions, top-k (+ MMR)."""
        checks = contract.validate(contract.RECOMMEND if diversity is not None else contract.RETRIEVE, inputs, self.settings.max_k)
        with tf.control_dependencies(checks):
            batch, out = self._forward(inputs)
        num_items = tf.shape(out.catalogue)[0]
        scores = self.model.score_outputs(out)
        scores = tf.where(self._excluded(inputs, out, num_items), NEG_INF, scores)
        k = inputs["k"]
        width = tf.minimum(tf.reduce_max(k), num_items)
        if diversity is None:
            top = tf.math.top_k(scores, width)
            rows, values = top.indices, top.values
        else:
            pool = tf.minimum(num_items, tf.maximum(width, self.settings.mmr_pool))
            top = tf.math.top_k(scores, pool)

            def diverse():
                # Each row chooses from its own best max(k, mmr_pool), whatever its batch neighbours ask.
                own_pool = tf.range(pool)[None, :] < tf.maximum(k, self.settings.mmr_pool)[:, None]
                candidates = tf.where(own_pool, top.values, NEG_INF)
                picks, found = mmr.rerank(candidates, tf.gather(out.catalogue, top.indices), diversity, width)
                # Past the last eligible candidate MMR's pick is arbitrary (an item already
                # taken): `found` says which picks are real.
                values = tf.where(found, tf.gather(top.values, picks, batch_dims=1), NEG_INF)
                return tf.gather(top.indices, picks, batch_dims=1), values

            rows, values = tf.cond(
                tf.reduce_any(diversity > 0.0), diverse, lambda: (top.indices[:, :width], top.values[:, :width])
            )
        valid = tf.logical_and(tf.math.is_finite(values), tf.range(width)[None, :] < k[:, None])
        in_history = self.model.history_item_mask(out.history_index, num_items)
        result = {
            "item_ids": tf.where(valid, tf.gather(self.catalogue.ids, rows), ""),
            "scores": tf.where(valid, values, NEG_INF),
            "from_history": tf.logical_and(valid, tf.gather(in_history, rows, batch_dims=1)),
        }
        return batch, out, rows, valid, result

    def _explain(
        self, history_ids: tf.Tensor, out, rows: tf.Tensor, from_history: tf.Tensor, valid: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """The history event behind each recommended item (see `contract.BECAUSE_ITEM`)."""
        history = out.history_index  # [B, T]
        real = history >= PAD_ROWS
        history_vectors = gather_rows(out.catalogue, history)
        item_vectors = tf.gather(out.catalogue, rows)  # [B, K, D]
        similarity = tf.einsum("bkd,btd->bkt", item_vectors, history_vectors)
        weight = tf.where(real[:, None, :], similarity, NEG_INF)
        if out.pointer_logits is not None:
            pointer = tf.nn.softmax(out.pointer_logits, axis=-1)  # [B, T]
            same = tf.equal(history[:, None, :], tf.cast(rows, history.dtype)[:, :, None] + PAD_ROWS)
            returned = tf.where(same, tf.broadcast_to(pointer[:, None, :], tf.shape(same)), NEG_INF)
            weight = tf.where(from_history[:, :, None], returned, weight)
        position = tf.argmax(weight, axis=-1, output_type=tf.int32)
        best = tf.reduce_max(weight, axis=-1)
        found = tf.logical_and(valid, tf.math.is_finite(best))
        return {
            "because_item_id": tf.where(found, tf.gather(history_ids, position, batch_dims=1), ""),
            "because_position": tf.where(found, position, -1),
            "because_weight": tf.where(found, best, 0.0),
        }

    # ---- signatures ---------------------------------------------------------

    def _recommend(self, inputs):
        batch, out, rows, valid, result = self._top(inputs, inputs["diversity"])
        result.update(self._explain(inputs["history_item_ids"], out, rows, result["from_history"], valid))
        # NaN past each request's own k, as item_ids are "" there.
        result.update(self._behaviour(out, batch, tf.cast(rows, tf.int64) + PAD_ROWS, valid))
        return result

    def _retrieve(self, inputs):
        return self._top(inputs, None)[-1]

    def _rank(self, inputs):
        with tf.control_dependencies(contract.validate(contract.RANK, inputs, self.settings.max_k)):
            batch, out = self._forward(inputs)
        index = self.catalogue.lookup(inputs["candidate_item_ids"])  # [B, C]
        known = index >= PAD_ROWS
        scores = self.model.score_outputs(out)
        picked = tf.gather(scores, tf.maximum(index - PAD_ROWS, 0), batch_dims=1)
        result = {"scores": tf.where(known, picked, NEG_INF), "known": known}
        result.update(self._behaviour(out, batch, index, known))
        return result

    def _embed_items(self, inputs):
        with tf.control_dependencies(contract.validate(contract.EMBED_ITEMS, inputs, self.settings.max_k)):
            features = {name: tf.identity(inputs[name]) for name in ("item_id", "category", "latitude", "longitude", "price")}
        if self.use_text:
            texts = inputs["text"]
            if self.text_encoder is not None:
                vectors = self.text_encoder(texts, training=False)
            else:
                vectors = tf.zeros([tf.shape(texts)[0], self.text_dim])
            # No text is no information: a zero vector, as in training.
            features["text_vector"] = zero_without_text(texts, vectors)
        return {"item_vectors": self.candidate_tower(features, training=False)}

    def _embed_query(self, inputs):
        with tf.control_dependencies(contract.validate(contract.EMBED_QUERY, inputs, self.settings.max_k)):
            _, out = self._forward(inputs)
        return {"query_vectors": out.query}


class _Untracked:
    """Holds an object out of tf.Module's dependency tracking (only its towers are saved)."""

    def __init__(self, value):
        self.value = value
