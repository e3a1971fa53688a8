"""numpy <-> TensorProto and PredictRequest building, shared by the warmup
writer, the client and the local server (TF Serving's wire format)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2


def to_proto(name: str, value: np.ndarray | list, dtype: tf.DType) -> tf.compat.v1.TensorProto:
    """A TensorProto of `value` as `dtype`; raises ValueError naming the input if it does not convert."""
    try:
        if dtype == tf.string:
            array = np.asarray(value, dtype=object)
            array = np.vectorize(lambda v: v if isinstance(v, bytes) else str(v).encode("utf-8"), otypes=[object])(array) if array.size else array
            return tf.make_tensor_proto(array, dtype=tf.string, shape=array.shape)
        return tf.make_tensor_proto(np.asarray(value, dtype=dtype.as_numpy_dtype), dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Input {name!r} cannot be a {dtype.name} tensor: {e}") from e


def from_proto(proto: tf.compat.v1.TensorProto) -> np.ndarray:
    """numpy array of a TensorProto (strings as bytes objects)."""
    return tf.make_ndarray(proto)


def predict_request(
    model_name: str, signature: str, inputs: Mapping[str, np.ndarray], dtypes: Mapping[str, tf.DType],
    version: int | None = None,
) -> predict_pb2.PredictRequest:
    """A PredictRequest for `signature` with every input converted to its contract dtype."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        if name not in dtypes:
            raise ValueError(f"Input {name!r} is not in signature {signature!r}: expected {sorted(dtypes)}")
        request.inputs[name].CopyFrom(to_proto(name, value, dtypes[name]))
    return request
