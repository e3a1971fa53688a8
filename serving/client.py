"""Client for any TF Serving endpoint serving this model (ours or stock):
users' histories (JSON) -> PredictRequest -> recommendations with explanations.

A user, as JSON (one object, a list, or JSON lines):
    {"user_id": "u1",
     "history": [{"item_id": "i7", "timestamp": 1700000000, "event_type": "purchase",
                  "latitude": 40.7, "longitude": -73.9, "utc_offset": -300}, ...],
     "request": {"timestamp": 1700003600, "utc_offset": -300, "latitude": 40.7, "longitude": -73.9},
     "k": 10, "exclude": ["i3"], "diversity": 0.0}
To re-rank items of your own (the `rank` signature, `--rank`), give them as
"candidates": ["i9", "i4", ...]: the answer lists them best first, with ids the
served catalogue does not know last ("known": false). "k", "exclude" and
"diversity" apply to recommending only, "candidates" to ranking only.
Timestamps are unix seconds or ISO-8601 times with an offset ("2024-05-01T08:30:00-04:00",
which also gives utc_offset). Only "item_id" and "timestamp" are required per event;
"request" defaults to now at the last event's place.

    python -m serving.client --server=localhost:8500 --model-name=recommender --input=user.json

Requests always carry the same history, exclusion and candidate widths
(`history_length`, `exclusion_width`, `candidate_width`), so stock TF Serving's
batching can merge them (it pads variable-length inputs with the wrong values, so
that stays off); a user with more exclusions than `exclusion_width` or more
candidates than `candidate_width` is refused (raise it for every client of a server).
Values of the wrong JSON type fail with a ValueError naming the user and field;
null means "not given".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import numbers
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import contract, tensors

DEFAULT_HISTORY_LENGTH = 50
DEFAULT_EXCLUSION_WIDTH = 64
DEFAULT_CANDIDATE_WIDTH = 100


def _time(value: Any, field: str) -> tuple[int, int | None]:
    """(unix seconds, utc offset in minutes or None) of a JSON time."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected unix seconds or an ISO-8601 time. Received: {value!r}")
    if isinstance(value, numbers.Real) and math.isfinite(value):
        if not 0 <= value <= INT64_MAX:
            raise ValueError(f"{field}: unix seconds must be in [0, {INT64_MAX}]. Received: {value!r}")
        return int(value), None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return int(parsed.timestamp()), int(parsed.utcoffset().total_seconds() // 60)
    raise ValueError(f"{field}: expected unix seconds or an ISO-8601 time with an offset. Received: {value!r}")


def _float(value: Any, field: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: expected a number or null. Received: {value!r}") from None


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _int(value: Any, field: str, low: int, high: int) -> int:
    """A whole number in [low, high] (JSON may give it as 3 or 3.0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value != int(value):
        raise ValueError(f"{field}: expected a whole number. Received: {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{field}: must be in [{low}, {high}]. Received: {value!r}")
    return int(value)


def _list(value: Any, field: str) -> list[Any]:
    """A JSON list; null = empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{field}: expected a list. Received: {value!r}")
    return value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    """A JSON object; null = empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{field}: expected an object. Received: {value!r}")
    return value


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


@dataclasses.dataclass(frozen=True)
class RequestShape:
    history_length: int = DEFAULT_HISTORY_LENGTH
    exclusion_width: int = DEFAULT_EXCLUSION_WIDTH
    candidate_width: int = DEFAULT_CANDIDATE_WIDTH

    def __post_init__(self):
        for name in ("history_length", "exclusion_width", "candidate_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")


def query_inputs(users: Sequence[Mapping[str, Any]], shape: RequestShape = RequestShape(), now: float | None = None) -> dict[str, np.ndarray]:
    """The contract's query inputs ([B] and right-padded [B, T]) for users in the JSON form above."""
    if not users:
        raise ValueError("users: a request needs at least one user")
    b, t = len(users), shape.history_length
    out = {
        "user_id": np.full([b], "", object),
        "history_item_ids": np.full([b, t], "", object),
        "history_timestamps": np.zeros([b, t], np.int64),
        "history_event_types": np.full([b, t], "", object),
        "history_utc_offsets": np.zeros([b, t], np.int64),
        "history_latitudes": np.full([b, t], np.nan, np.float32),
        "history_longitudes": np.full([b, t], np.nan, np.float32),
        "request_timestamp": np.zeros([b], np.int64),
        "request_utc_offset": np.zeros([b], np.int64),
        "request_latitude": np.full([b], np.nan, np.float32),
        "request_longitude": np.full([b], np.nan, np.float32),
    }
    for row, user in enumerate(users):
        if not isinstance(user, Mapping):
            raise ValueError(f"user {row}: expected a JSON object. Received: {type(user).__name__}")
        out["user_id"][row] = str(_or_default(user.get("user_id"), ""))
        events = []
        for i, event in enumerate(_list(user.get("history"), f"user {row} history")):
            where = f"user {row} history[{i}]"
            if not isinstance(event, Mapping) or not event.get("item_id"):
                raise ValueError(f"{where}: needs an item_id. Received: {event!r}")
            seconds, offset = _time(event.get("timestamp"), f"{where}.timestamp")
            offset = _int(_or_default(event.get("utc_offset"), offset if offset is not None else 0),
                          f"{where}.utc_offset", -24 * 60, 24 * 60)
            events.append((seconds, str(event["item_id"]), str(_or_default(event.get("event_type"), "")), offset,
                           _float(event.get("latitude"), f"{where}.latitude"), _float(event.get("longitude"), f"{where}.longitude")))
        events.sort(key=lambda e: e[0])  # oldest first; the last `history_length` events are kept
        events = events[-t:]
        for j, (seconds, item, kind, offset, lat, lon) in enumerate(events):
            out["history_timestamps"][row, j] = seconds
            out["history_item_ids"][row, j] = item
            out["history_event_types"][row, j] = kind
            out["history_utc_offsets"][row, j] = offset
            out["history_latitudes"][row, j] = lat
            out["history_longitudes"][row, j] = lon
        request = _mapping(user.get("request"), f"user {row} request")
        if request.get("timestamp") is not None:
            seconds, offset = _time(request["timestamp"], f"user {row} request.timestamp")
        else:
            seconds, offset = int(now if now is not None else time.time()), None
        last = events[-1] if events else None
        out["request_timestamp"][row] = seconds
        default_offset = offset if offset is not None else (last[3] if last else 0)
        out["request_utc_offset"][row] = _int(_or_default(request.get("utc_offset"), default_offset),
                                              f"user {row} request.utc_offset", -24 * 60, 24 * 60)
        place = (request.get("latitude"), request.get("longitude"))
        if place == (None, None) and last:  # not given: where the user last was
            place = (last[4], last[5])
        out["request_latitude"][row] = _float(place[0], f"user {row} request.latitude")
        out["request_longitude"][row] = _float(place[1], f"user {row} request.longitude")
    return out


def recommend_inputs(
    users: Sequence[Mapping[str, Any]], k: int = 10, diversity: float = 0.0, shape: RequestShape = RequestShape(),
    now: float | None = None,
) -> dict[str, np.ndarray]:
    """serving_default inputs; per-user "k", "exclude", "diversity" override the defaults."""
    inputs = query_inputs(users, shape, now)
    exclusions = np.full([len(users), shape.exclusion_width], "", object)
    for row, user in enumerate(users):
        items = _item_ids(user, row, "exclude", shape.exclusion_width, "exclusion_width")
        exclusions[row, : len(items)] = items
    inputs["k"] = np.array([_int(_or_default(user.get("k"), k), f"user {row} k", 0, INT32_MAX)
                            for row, user in enumerate(users)], np.int32)
    inputs["exclusions"] = exclusions
    inputs["diversity"] = np.array([_float(_or_default(user.get("diversity"), diversity), f"user {row} diversity")
                                    for row, user in enumerate(users)], np.float32)
    return inputs


def _item_ids(user: Mapping[str, Any], row: int, field: str, width: int, width_name: str) -> list[str]:
    """The user's `field` list of item ids (strings or whole numbers; null and "" = not given),
    at most `width` (the RequestShape's `width_name`) of them."""
    items = []
    for i, item in enumerate(_list(user.get(field), f"user {row} {field}")):
        if item is None or item == "":
            continue
        if isinstance(item, bool) or not isinstance(item, (str, numbers.Integral)):
            raise ValueError(f"user {row} {field}[{i}]: expected an item id (a string). Received: {item!r}")
        items.append(str(item))
    if len(items) > width:
        # Every request has the same width, so stock TF Serving's batching can merge them.
        raise ValueError(f"user {row} {field}: {len(items)} items, more than the request's width {width} "
                         f"(raise {width_name} for every client of the server).")
    return items


def rank_inputs(users: Sequence[Mapping[str, Any]], shape: RequestShape = RequestShape(), now: float | None = None) -> dict[str, np.ndarray]:
    """`rank` inputs: the query inputs and each user's "candidates" as [B, candidate_width] ids, "" padded."""
    inputs = query_inputs(users, shape, now)
    candidates = np.full([len(users), shape.candidate_width], "", object)
    for row, user in enumerate(users):
        items = _item_ids(user, row, "candidates", shape.candidate_width, "candidate_width")
        if not items:
            raise ValueError(f"user {row} candidates: none given; `rank` scores the items a request names.")
        candidates[row, : len(items)] = items
    inputs["candidate_item_ids"] = candidates
    return inputs


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _behaviour(outputs: Mapping[str, np.ndarray], row: int, col: int) -> dict[str, Any]:
    """The behaviour head's outputs for the item at [row, col], where the model has them:
    `event_type_names` [B, Y] bytes/str, `event_type_probabilities` [B, K or C, Y] float32,
    `predicted_rating` [B, K or C] float32 (NaN past a request's own items)."""
    out: dict[str, Any] = {}
    if "event_type_probabilities" in outputs:
        names = [_text(n) for n in outputs["event_type_names"][row]]
        out["behaviour"] = {n: float(p) for n, p in zip(names, outputs["event_type_probabilities"][row, col])}
    if "predicted_rating" in outputs:
        out["predicted_rating"] = float(outputs["predicted_rating"][row, col])
    return out


def recommendations(outputs: Mapping[str, np.ndarray]) -> list[list[dict[str, Any]]]:
    """serving_default / retrieve outputs -> per user, the items with scores, behaviour and explanation."""
    ids = outputs["item_ids"]
    result = []
    for row in range(ids.shape[0]):
        items = []
        for col in range(ids.shape[1]):
            item = _text(ids[row, col])
            if not item:
                continue
            entry: dict[str, Any] = {"item_id": item, "score": float(outputs["scores"][row, col])}
            if "from_history" in outputs:
                entry["from_history"] = bool(outputs["from_history"][row, col])
            if "because_item_id" in outputs and outputs["because_position"][row, col] >= 0:
                entry["because"] = {
                    "item_id": _text(outputs["because_item_id"][row, col]),
                    "position": int(outputs["because_position"][row, col]),
                    "weight": float(outputs["because_weight"][row, col]),
                }
            items.append({**entry, **_behaviour(outputs, row, col)})
        result.append(items)
    return result


def rankings(outputs: Mapping[str, np.ndarray], candidate_ids: np.ndarray) -> list[list[dict[str, Any]]]:
    """`rank` outputs + the request's candidate ids -> per user, the candidates best first.

    outputs: `scores` [B, C] float32 (log P(next item); -inf at padding and unknown
      ids), `known` [B, C] bool, and the behaviour outputs where the model has them
      (`_behaviour`; NaN at padding and unknown ids).
    candidate_ids: [B, C] object array of str or bytes, "" = padding (as sent).
    Each entry: item_id, score (None for ids the served catalogue does not know,
    which come last in the user's order), known, and behaviour / predicted_rating
    for known ids. Padding is dropped.
    """
    result = []
    for row in range(candidate_ids.shape[0]):
        entries = []
        for col in range(candidate_ids.shape[1]):
            item = _text(candidate_ids[row, col])
            if not item:
                continue
            known = bool(outputs["known"][row, col])
            entry: dict[str, Any] = {"item_id": item, "score": float(outputs["scores"][row, col]) if known else None,
                                     "known": known}
            entries.append({**entry, **_behaviour(outputs, row, col)} if known else entry)
        # Stable: equal scores (and the unknown ids) keep the request's order; a NaN
        # score (never produced by the contract) would sort with the unknown ids.
        entries.sort(key=lambda e: math.inf if not e["known"] or math.isnan(e["score"]) else -e["score"])
        result.append(entries)
    return result


class Client:
    """A PredictionService client (`target` like "localhost:8500")."""

    def __init__(self, target: str, model_name: str, timeout: float = 10.0, max_message_bytes: int = 64 * 1024 * 1024):
        self.model_name = model_name
        self.timeout = timeout
        self.channel = grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes)]
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def predict(self, signature: str, inputs: Mapping[str, np.ndarray], version: int | None = None) -> dict[str, np.ndarray]:
        dtypes = {t.name: t.dtype for t in contract.INPUTS[signature]}
        request = tensors.predict_request(self.model_name, signature, inputs, dtypes, version)
        response: predict_pb2.PredictResponse = self.stub.Predict(request, timeout=self.timeout)
        return {name: tensors.from_proto(proto) for name, proto in response.outputs.items()}

    def recommend(self, users: Sequence[Mapping[str, Any]], k: int = 10, diversity: float = 0.0,
                  shape: RequestShape = RequestShape()) -> list[list[dict[str, Any]]]:
        return recommendations(self.predict(contract.RECOMMEND, recommend_inputs(users, k, diversity, shape)))

    def rank(self, users: Sequence[Mapping[str, Any]], shape: RequestShape = RequestShape()) -> list[list[dict[str, Any]]]:
        """Each user's "candidates", best first (`rankings`)."""
        inputs = rank_inputs(users, shape)
        return rankings(self.predict(contract.RANK, inputs), inputs["candidate_item_ids"])

    def close(self) -> None:
        self.channel.close()


def read_users(path: str) -> list[dict[str, Any]]:
    """Users from a JSON object, a JSON list or JSON lines ("-" = stdin)."""
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        users = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    users.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path} line {number}: not JSON: {e}") from None
        return users


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="localhost:8500")
    parser.add_argument("--model-name", default="recommender")
    parser.add_argument("--input", required=True, help="users JSON / JSON lines; '-' = stdin")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--diversity", type=float, default=0.0)
    parser.add_argument("--history-length", type=int, default=DEFAULT_HISTORY_LENGTH)
    parser.add_argument("--exclusion-width", type=int, default=DEFAULT_EXCLUSION_WIDTH)
    parser.add_argument("--rank", action="store_true",
                        help='rank each user\'s "candidates" (the rank signature) instead of recommending; '
                             'k, diversity and exclusions then do not apply')
    parser.add_argument("--candidate-width", type=int, default=DEFAULT_CANDIDATE_WIDTH)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        users = read_users(args.input)
        client = Client(args.server, args.model_name, args.timeout)
        shape = RequestShape(history_length=args.history_length, exclusion_width=args.exclusion_width,
                             candidate_width=args.candidate_width)
        results = client.rank(users, shape) if args.rank else client.recommend(users, args.k, args.diversity, shape)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([{"user_id": u.get("user_id", ""), "items": r} for u, r in zip(users, results)], indent=2))
        return 0
    for user, items in zip(users, results):
        print(f"user {user.get('user_id', '')!r}: {len(user.get('history', []))} events")
        for rank, item in enumerate(items, 1):
            because = item.get("because")
            why = ""
            if because:
                why = ("returns to" if item.get("from_history") else "like") + f" {because['item_id']} (event {because['position']})"
            behaviour = item.get("behaviour")
            likely = f"  next: {max(behaviour, key=behaviour.get)} {max(behaviour.values()):.2f}" if behaviour else ""
            rating = f"  rating {item['predicted_rating']:.2f}" if "predicted_rating" in item else ""
            probability = f"P={math.exp(item['score']):.4f}" if item["score"] is not None else "not in the served catalogue"
            print(f"  {rank:2d}. {item['item_id']:<20s} {probability}{likely}{rating}  {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
