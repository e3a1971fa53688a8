"""assets.extra/tf_serving_warmup_requests: TF Serving replays these PredictionLog
records when it loads a version, so the first real request does not pay for
graph initialisation. One record per signature."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import contract, tensors

FILENAME = "tf_serving_warmup_requests"


def records(model_name: str, requests: Mapping[str, Mapping[str, np.ndarray]]) -> list[prediction_log_pb2.PredictionLog]:
    logs = []
    for signature, inputs in requests.items():
        dtypes = {t.name: t.dtype for t in contract.INPUTS[signature]}
        request = tensors.predict_request(model_name, signature, inputs, dtypes)
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write(path: str, model_name: str, requests: Mapping[str, Mapping[str, np.ndarray]]) -> int:
    """Writes one PredictionLog per request; returns how many."""
    logs = records(model_name, requests)
    with tf.io.TFRecordWriter(path) as writer:
        for record in logs:
            writer.write(record.SerializeToString())
    return len(logs)


def read(path: str) -> list[prediction_log_pb2.PredictionLog]:
    """The PredictionLog records of a warmup file (what TF Serving parses)."""
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
