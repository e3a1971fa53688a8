"""One loaded model version: its signatures, their metadata, request checks and calls.

Used by the local server (`serving.server`) and by in-process callers
(benchmarks, batch prediction). Requests are checked against the signature the
way TF Serving checks them (missing / unexpected inputs, dtypes, ranks), and
the rest is left to the graph's own checks (`serving.contract.validate`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from serving import contract

log = logging.getLogger(__name__)

WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")


class RequestError(ValueError):
    """A request the model cannot take (answered as INVALID_ARGUMENT)."""


class NotFoundError(LookupError):
    """No such model, version or signature (answered as NOT_FOUND)."""


@dataclasses.dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: tf.DType
    rank: int | None


def _rank(shape) -> int | None:
    return None if shape.unknown_rank else len(shape.dim)


class Servable:
    """A SavedModel version loaded for serving."""

    def __init__(self, path: str, name: str, version: int):
        self.path = path
        self.name = name
        self.version = version
        started = time.time()
        saved = saved_model_pb2.SavedModel.FromString(tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb").read())
        self.meta_graph: meta_graph_pb2.MetaGraphDef = saved.meta_graphs[0]
        self.signature_defs = dict(self.meta_graph.signature_def)
        self.model = tf.saved_model.load(path)
        # "__saved_model_init_op" is an initialiser entry, not a callable signature.
        self.functions = {key: self.model.signatures[key] for key in self.signature_defs if not key.startswith("__")}
        self.inputs: dict[str, dict[str, InputSpec]] = {
            key: {
                alias: InputSpec(alias, tf.as_dtype(info.dtype), _rank(info.tensor_shape))
                for alias, info in sig.inputs.items()
            }
            for key, sig in self.signature_defs.items()
            if key in self.functions
        }
        self.load_seconds = time.time() - started

    def check(self, signature: str, inputs: Mapping[str, np.ndarray]) -> str:
        """Raises RequestError / NotFoundError for a request TF Serving would reject; returns the signature key."""
        signature = signature or "serving_default"
        if signature not in self.functions:
            raise NotFoundError(
                f"Serving signature key \"{signature}\" not found. Available: {sorted(self.functions)}"
            )
        specs = self.inputs[signature]
        missing = sorted(set(specs) - set(inputs))
        unexpected = sorted(set(inputs) - set(specs))
        if missing or unexpected:
            raise RequestError(
                f"Inputs of signature \"{signature}\" do not match: missing {missing}, unexpected {unexpected}; "
                f"expected exactly {sorted(specs)}"
            )
        for name, spec in specs.items():
            value = inputs[name]
            if spec.rank is not None and value.ndim != spec.rank:
                raise RequestError(f"{name}: expected a rank-{spec.rank} tensor, got shape {list(value.shape)}")
            if tf.as_dtype(value.dtype if value.dtype != object else tf.string) != spec.dtype:
                got = "string" if value.dtype == object else tf.as_dtype(value.dtype).name
                raise RequestError(f"{name}: expected dtype {spec.dtype.name}, got {got}")
        return signature

    def call(self, signature: str, inputs: Mapping[str, np.ndarray], output_filter=()) -> dict[str, np.ndarray]:
        """Runs a checked request; InvalidArgumentError from the graph becomes RequestError."""
        signature = self.check(signature, inputs)
        function = self.functions[signature]
        try:
            outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
        except tf.errors.InvalidArgumentError as e:
            raise RequestError(_graph_message(e)) from None
        if output_filter:
            unknown = sorted(set(output_filter) - set(outputs))
            if unknown:
                raise RequestError(f"output_filter: unknown outputs {unknown}; available {sorted(outputs)}")
            outputs = {k: v for k, v in outputs.items() if k in output_filter}
        return {name: value.numpy() for name, value in outputs.items()}

    def warm_up(self) -> int:
        """Replays assets.extra/tf_serving_warmup_requests (as TF Serving does on load); returns how many."""
        path = os.path.join(self.path, WARMUP_PATH)
        if not tf.io.gfile.exists(path):
            return 0
        from serving import warmup  # pylint: disable=g-import-not-at-top

        count = 0
        for record in warmup.read(path):
            request = record.predict_log.request
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            self.call(request.model_spec.signature_name, inputs)
            count += 1
        return count


def _graph_message(error: tf.errors.InvalidArgumentError) -> str:
    """The assertion text of a graph error (the contract's messages start with the input name)."""
    return contract.error_message(error.message)


def versions(base_path: str) -> list[int]:
    """All-digit version folders holding a saved_model.pb, ascending."""
    if not tf.io.gfile.exists(base_path):
        return []
    found = []
    for name in tf.io.gfile.listdir(base_path):
        name = name.rstrip("/")
        if name.isdigit() and tf.io.gfile.exists(os.path.join(base_path, name, "saved_model.pb")):
            found.append(int(name))
    return sorted(found)
