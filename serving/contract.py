"""The serving contract, written once: signature names, every input and output
tensor (name, dtype, shape, padding), and the in-graph request checks.

Everything here is dense and padded, as TensorFlow Serving has no ragged
inputs. B = requests in the batch, T = history length, E = exclusions per
request, C = candidates per request, K = max(k) over the batch, N = items.
Every input of a signature is required (stock TF Serving rejects a request
missing one); the "neutral" value of each optional input is documented.

History layout (right padding): a request's real events come first, oldest to
newest; the remaining positions are padding ("" item id, 0 timestamp, 0
offset, "" event type, NaN place). The same layout the training examples use
(`trainer.data.example_schema`).

Checks that fail answer INVALID_ARGUMENT with a message that starts with the
offending input's name (`validate`).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

RECOMMEND = "serving_default"
RETRIEVE = "retrieve"
RANK = "rank"
EMBED_ITEMS = "embed_items"
EMBED_QUERY = "embed_query"
SIGNATURES = (RECOMMEND, RETRIEVE, RANK, EMBED_ITEMS, EMBED_QUERY)

DEFAULT_MAX_K = 1000


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One named tensor of the contract. `shape` uses the letters above; None = any size."""

    name: str
    dtype: tf.DType
    shape: tuple[str, ...]
    doc: str

    def spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None] * len(self.shape), self.dtype, name=self.name)


# ---- inputs ------------------------------------------------------------------

QUERY_INPUTS = (
    Tensor("user_id", tf.string, ("B",), 'the user\'s id; "" or an id unseen in training = a new user'),
    Tensor("history_item_ids", tf.string, ("B", "T"), 'item ids, oldest first; "" = padding (after the real events)'),
    Tensor("history_timestamps", tf.int64, ("B", "T"), "unix seconds of each event; 0 at padding"),
    Tensor("history_event_types", tf.string, ("B", "T"), 'e.g. "click", "purchase", "check-in"; "" at padding'),
    Tensor("history_utc_offsets", tf.int64, ("B", "T"), "minutes east of UTC at each event (local time); 0 at padding"),
    Tensor("history_latitudes", tf.float32, ("B", "T"), "where each event happened; NaN = unknown, and at padding"),
    Tensor("history_longitudes", tf.float32, ("B", "T"), "NaN = unknown, and at padding"),
    Tensor("request_timestamp", tf.int64, ("B",), "unix seconds of the request (>= 0)"),
    Tensor("request_utc_offset", tf.int64, ("B",), "minutes east of UTC at the request"),
    Tensor("request_latitude", tf.float32, ("B",), "where the user is now; NaN = unknown"),
    Tensor("request_longitude", tf.float32, ("B",), "NaN = unknown"),
)
K = Tensor("k", tf.int32, ("B",), "how many items to return for this request, 1..max_k (output width = max over the batch)")
EXCLUSIONS = Tensor("exclusions", tf.string, ("B", "E"), 'item ids never to return; "" = padding (E may be 0)')
DIVERSITY = Tensor(
    "diversity", tf.float32, ("B",), "MMR weight in [0, 1]: 0 = rank by score only (neutral), 1 = most diverse"
)
CANDIDATES = Tensor("candidate_item_ids", tf.string, ("B", "C"), 'items to score; "" = padding')
ITEM_INPUTS = (
    Tensor("item_id", tf.string, ("N",), 'the item\'s id; "" or an id unseen in training = a new item'),
    Tensor("text", tf.string, ("N",), 'title / description; "" = none'),
    Tensor("category", tf.string, ("N",), 'categories joined by "|" (e.g. "grocery|coffee"); "" = none'),
    Tensor("latitude", tf.float32, ("N",), "the item's place (store, venue); NaN = unknown"),
    Tensor("longitude", tf.float32, ("N",), "NaN = unknown"),
    Tensor("price", tf.float32, ("N",), "NaN = unknown"),
)

INPUTS: dict[str, tuple[Tensor, ...]] = {
    RECOMMEND: QUERY_INPUTS + (K, EXCLUSIONS, DIVERSITY),
    RETRIEVE: QUERY_INPUTS + (K, EXCLUSIONS),
    RANK: QUERY_INPUTS + (CANDIDATES,),
    EMBED_ITEMS: ITEM_INPUTS,
    EMBED_QUERY: QUERY_INPUTS,
}

# ---- outputs -----------------------------------------------------------------

ITEM_IDS = Tensor("item_ids", tf.string, ("B", "K"), 'best first; "" past a request\'s own k')
SCORES = Tensor("scores", tf.float32, ("B", "K"), "log P(next item = this item); -inf past a request's own k")
FROM_HISTORY = Tensor("from_history", tf.bool, ("B", "K"), "a return to an item in the history (the repeat head's)")
BECAUSE_ITEM = Tensor(
    "because_item_id", tf.string, ("B", "K"),
    'the history item that contributed most: for a return, the position the pointer weighs most; '
    'otherwise the history item most similar to it (cosine of item vectors); "" = none',
)
BECAUSE_POSITION = Tensor("because_position", tf.int32, ("B", "K"), "its index in the history; -1 = none")
BECAUSE_WEIGHT = Tensor(
    "because_weight", tf.float32, ("B", "K"), "pointer probability (a return) or cosine similarity (otherwise); 0 = none"
)
EVENT_TYPE_NAMES = Tensor("event_type_names", tf.string, ("B", "Y"), "the behaviour classes (same every row)")
EVENT_TYPE_PROBABILITIES = Tensor(
    "event_type_probabilities", tf.float32, ("B", "K", "Y"),
    "P(next behaviour | the user engages with this item), in event_type_names order; NaN past a request's own k",
)
PREDICTED_RATING = Tensor(
    "predicted_rating", tf.float32, ("B", "K"), "predicted rating (models trained on ratings); NaN past a request's own k"
)
CANDIDATE_SCORES = Tensor("scores", tf.float32, ("B", "C"), "log P(next item); -inf at padding and unknown ids")
KNOWN = Tensor("known", tf.bool, ("B", "C"), "the candidate is in the served catalogue")
ITEM_VECTORS = Tensor("item_vectors", tf.float32, ("N", "D"), "unit item vectors (the candidate tower)")
QUERY_VECTORS = Tensor("query_vectors", tf.float32, ("B", "D"), "unit query vectors (the query tower)")

CANDIDATE_EVENT_TYPE_PROBABILITIES = Tensor(
    "event_type_probabilities", tf.float32, ("B", "C", "Y"),
    "P(next behaviour | the user engages with this candidate); NaN at padding and unknown ids",
)
CANDIDATE_PREDICTED_RATING = Tensor(
    "predicted_rating", tf.float32, ("B", "C"), "predicted rating; NaN at padding and unknown ids"
)
BEHAVIOUR_OUTPUTS = (EVENT_TYPE_NAMES, EVENT_TYPE_PROBABILITIES, PREDICTED_RATING)
OUTPUTS: dict[str, tuple[Tensor, ...]] = {
    RECOMMEND: (ITEM_IDS, SCORES, FROM_HISTORY, BECAUSE_ITEM, BECAUSE_POSITION, BECAUSE_WEIGHT) + BEHAVIOUR_OUTPUTS,
    RETRIEVE: (ITEM_IDS, SCORES, FROM_HISTORY),
    RANK: (CANDIDATE_SCORES, KNOWN, EVENT_TYPE_NAMES, CANDIDATE_EVENT_TYPE_PROBABILITIES, CANDIDATE_PREDICTED_RATING),
    EMBED_ITEMS: (ITEM_VECTORS,),
    EMBED_QUERY: (QUERY_VECTORS,),
}
"""Outputs a signature may carry; the behaviour outputs only where the model has
the head (event types with more than one class; ratings)."""


def input_specs(signature: str) -> dict[str, tf.TensorSpec]:
    """name -> TensorSpec of a signature's inputs (the SavedModel's input signature)."""
    if signature not in INPUTS:
        raise ValueError(f"`signature` must be one of {SIGNATURES}. Received: {signature!r}")
    return {t.name: t.spec() for t in INPUTS[signature]}


def describe() -> str:
    """The contract as Markdown (README / --help)."""
    lines = []
    for signature in SIGNATURES:
        lines.append(f"### `{signature}`\n\n| input | dtype | shape | meaning |\n|---|---|---|---|")
        lines += [f"| `{t.name}` | {t.dtype.name} | [{', '.join(t.shape)}] | {t.doc} |" for t in INPUTS[signature]]
        lines.append("\n| output | dtype | shape | meaning |\n|---|---|---|---|")
        lines += [f"| `{t.name}` | {t.dtype.name} | [{', '.join(t.shape)}] | {t.doc} |" for t in OUTPUTS[signature]]
        lines.append("")
    return "\n".join(lines)


# ---- in-graph checks ---------------------------------------------------------


def _same(a: tf.Tensor, b: tf.Tensor, message: str) -> tf.Operation:
    return tf.debugging.assert_equal(a, b, message=message)


def validate(signature: str, inputs: dict[str, tf.Tensor], max_k: int) -> list[tf.Operation]:
    """Assertions for a request (run them as control dependencies).

    Each fails with InvalidArgumentError whose message starts with the input's name.
    """
    checks = []
    if signature == EMBED_ITEMS:
        n = tf.shape(inputs["item_id"])[0]
        for t in ITEM_INPUTS[1:]:
            checks.append(_same(tf.shape(inputs[t.name])[0], n, f"{t.name}: must have one value per item_id"))
        return checks
    batch = tf.shape(inputs["user_id"])[0]
    checks.append(tf.debugging.assert_positive(batch, message="user_id: a request needs at least one user (B >= 1)"))
    history = tf.shape(inputs["history_item_ids"])
    for t in QUERY_INPUTS[1:7]:
        checks.append(
            _same(tf.shape(inputs[t.name]), history, f"{t.name}: shape must equal history_item_ids' shape [B, T]")
        )
    for t in QUERY_INPUTS[7:]:
        checks.append(_same(tf.shape(inputs[t.name])[0], batch, f"{t.name}: must have one value per user_id (B)"))
    checks.append(_same(history[0], batch, "history_item_ids: must have one row per user_id (B)"))
    real = tf.not_equal(inputs["history_item_ids"], "")
    gap_then_event = tf.logical_and(tf.logical_not(real[:, :-1]), real[:, 1:])
    checks.append(
        tf.debugging.assert_equal(
            tf.reduce_any(gap_then_event), False,
            message="history_item_ids: padding (empty ids) must come after the real events of each request (right padding)",
        )
    )
    checks.append(
        tf.debugging.assert_non_negative(inputs["request_timestamp"], message="request_timestamp: must be >= 0 (unix seconds)")
    )
    if signature in (RECOMMEND, RETRIEVE):
        checks.append(_same(tf.shape(inputs["k"])[0], batch, "k: must have one value per user_id (B)"))
        checks.append(tf.debugging.assert_greater_equal(inputs["k"], 1, message=f"k: must be in [1, {max_k}]"))
        checks.append(tf.debugging.assert_less_equal(inputs["k"], max_k, message=f"k: must be in [1, {max_k}]"))
        checks.append(_same(tf.shape(inputs["exclusions"])[0], batch, "exclusions: must have one row per user_id (B)"))
    if signature == RECOMMEND:
        diversity = inputs["diversity"]
        checks.append(_same(tf.shape(diversity)[0], batch, "diversity: must have one value per user_id (B)"))
        in_range = tf.reduce_all(tf.logical_and(diversity >= 0.0, diversity <= 1.0))
        checks.append(tf.debugging.assert_equal(in_range, True, message="diversity: must be in [0, 1]"))
    if signature == RANK:
        checks.append(
            _same(tf.shape(inputs["candidate_item_ids"])[0], batch, "candidate_item_ids: must have one row per user_id (B)")
        )
    return checks


def error_message(graph_error: str) -> str:
    """The contract's message out of a graph InvalidArgumentError's text.

    "... assertion failed: [k: must be in [1, 20]] [Condition x >= y ...] ..." -> "k: must be in [1, 20]".
    Other errors: their first line that says what went wrong (not TensorFlow's
    "Graph execution error:" / "Detected at node" preamble or its traceback).
    """
    marker = "assertion failed: ["
    start = graph_error.find(marker)
    if start >= 0:
        depth, begin = 0, start + len(marker) - 1
        for i in range(begin, len(graph_error)):
            depth += {"[": 1, "]": -1}.get(graph_error[i], 0)
            if depth == 0:
                return graph_error[begin + 1 : i]
    lines = [line.strip() for line in graph_error.splitlines() if line.strip()]
    boilerplate = ("Graph execution error", "Detected at node", "File ", "[[{{node")
    telling = [line for line in lines if not line.startswith(boilerplate) and not line.endswith("(most recent call last):")]
    return (telling or lines or ["invalid argument"])[0]
