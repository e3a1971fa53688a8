"""assets.extra/tf_serving_warmup_requests: TF Serving replays these PredictionLog
records when it loads a version, so the first real request does not pay for
graph initialisation. One record per signature."""

from __future__ import annotations

import uuid
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


def serialize(model_name: str, requests: Mapping[str, Mapping[str, np.ndarray]]) -> bytes:
    """The warmup file's bytes: one TFRecord-framed PredictionLog per request."""
    path = f"ram://warmup-{uuid.uuid4().hex}"
    with tf.io.TFRecordWriter(path) as writer:
        for record in records(model_name, requests):
            writer.write(record.SerializeToString())
    data = tf.io.gfile.GFile(path, "rb").read()
    tf.io.gfile.remove(path)
    return data


def read(path: str) -> list[prediction_log_pb2.PredictionLog]:
    """The PredictionLog records of a warmup file (what TF Serving parses)."""
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
