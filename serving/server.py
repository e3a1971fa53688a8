"""A local server speaking TensorFlow Serving's gRPC API, for machines that
cannot run the `tensorflow/serving` image (development, tests, CI).

    python -m serving.server --model-base-path=runs/default/export/recommender \\
        --model-name=recommender --port=8500

Services (from `tensorflow_serving.apis`): PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus. Like TF Serving it serves the
latest version under the base path, polls the file system for new versions
(`--file-system-poll-wait-seconds`), loads and warms a new version up before
switching to it (requests in flight finish on the old one, none is dropped),
answers NOT_FOUND for unknown models / versions / signatures,
INVALID_ARGUMENT for bad requests and DEADLINE_EXCEEDED when the client's
deadline passes before its request runs, and never dies on a request. It binds 127.0.0.1
unless `--host` says otherwise. Flags accept TF Serving's spelling too
(`--model_base_path`, `--enable_batching`, ...).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.apis import status_pb2

import tensorflow_text  # noqa: F401  pylint: disable=unused-import (registers the TF Text ops the SavedModel's tokenizer uses)

from serving.batcher import Batcher, BatchingOptions
from serving.servable import NotFoundError, RequestError, Servable, versions

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ModelManager:
    """Keeps the latest version of one model loaded; swaps in new ones as they appear."""

    def __init__(self, name: str, base_path: str, poll_seconds: float):
        self.name = name
        self.base_path = base_path
        self.poll_seconds = poll_seconds
        self._current: Servable | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed: dict[int, str] = {}

    @property
    def current(self) -> Servable | None:
        return self._current

    def poll(self) -> bool:
        """Loads the newest version if it is newer than the served one; True if it switched."""
        found = [v for v in versions(self.base_path) if v not in self.failed]
        if not found or (self._current is not None and found[-1] <= self._current.version):
            return False
        version = found[-1]
        path = os.path.join(self.base_path, str(version))
        try:
            servable = Servable(path, self.name, version)
            warmed = servable.warm_up()
        except Exception as e:  # a broken version must not take the server down; keep the old one
            log.error("Loading %s version %d failed; still serving %s: %s", self.name, version,
                      self._current.version if self._current else "nothing", e)
            self.failed[version] = str(e)
            return False
        with self._lock:
            previous, self._current = self._current, servable
        log.info("Serving %s version %d (loaded in %.1f s, %d warmup requests)%s", self.name, version,
                 servable.load_seconds, warmed, f"; unloaded version {previous.version}" if previous else "")
        return True

    def start(self) -> None:
        self.poll()

        def loop():
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.poll()
                except Exception as e:  # keep polling whatever the file system does
                    log.error("Polling %s failed: %s", self.base_path, e)

        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=loop, name="version-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def servable(self, model_spec) -> Servable:
        """The servable a request's ModelSpec names, or NotFoundError."""
        if model_spec.name != self.name:
            raise NotFoundError(f"Servable not found for request: Latest({model_spec.name})")
        current = self._current
        if current is None:
            raise NotFoundError(f"Servable not found for request: Latest({self.name}) (no version loaded yet)")
        if model_spec.HasField("version") and model_spec.version.value != current.version:
            raise NotFoundError(f"Servable not found for request: Specific({self.name}, {model_spec.version.value})")
        if model_spec.version_label:
            raise NotFoundError(f"Servable not found for request: Label({self.name}, {model_spec.version_label})")
        return current


class DeadlineError(RuntimeError):
    """The client's deadline passed (answered as DEADLINE_EXCEEDED)."""


def _abort(context: grpc.ServicerContext, error: Exception):
    if isinstance(error, DeadlineError):
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(error))
    if isinstance(error, NotFoundError):
        context.abort(grpc.StatusCode.NOT_FOUND, str(error.args[0] if error.args else error))
    if isinstance(error, RequestError):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    log.exception("Internal error", exc_info=error)
    context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, batcher: Batcher | None):
        self.manager = manager
        self.batcher = batcher

    def _run(self, servable: Servable, signature: str, inputs, output_filter, deadline_seconds: float | None):
        if self.batcher is None:
            return servable.call(signature, inputs, output_filter)
        key = (servable.name, servable.version, signature)
        future = self.batcher.submit(key, servable.call, signature, inputs)
        try:
            outputs = future.result(timeout=deadline_seconds)
        except concurrent.futures.TimeoutError:
            future.cancel()  # if it has not started, it never runs
            raise DeadlineError("Deadline exceeded while the request waited for its batch") from None
        if output_filter:
            unknown = sorted(set(output_filter) - set(outputs))
            if unknown:
                raise RequestError(f"output_filter: unknown outputs {unknown}; available {sorted(outputs)}")
            outputs = {k: v for k, v in outputs.items() if k in output_filter}
        return outputs

    def Predict(self, request: predict_pb2.PredictRequest, context):  # noqa: N802 (gRPC method name)
        try:
            servable = self.manager.servable(request.model_spec)
            try:
                inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            except Exception as e:  # a malformed TensorProto
                raise RequestError(f"Cannot parse the request's tensors: {e}") from None
            signature = servable.check(request.model_spec.signature_name, inputs)
            remaining = context.time_remaining()  # the client's deadline (None = none)
            if remaining is not None and remaining <= 0:
                raise DeadlineError("Deadline exceeded before the request ran")
            outputs = self._run(servable, signature, inputs, list(request.output_filter), remaining)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response
        except Exception as e:  # every failure is answered, none kills the server
            _abort(context, e)

    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context):  # noqa: N802
        try:
            servable = self.manager.servable(request.model_spec)
            fields = list(request.metadata_field) or ["signature_def"]
            if fields != ["signature_def"]:
                raise RequestError(f"Metadata field(s) {fields} not supported; only signature_def")
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            signatures = get_model_metadata_pb2.SignatureDefMap()
            for key, value in servable.signature_defs.items():
                signatures.signature_def[key].CopyFrom(value)
            response.metadata["signature_def"].Pack(signatures)
            return response
        except Exception as e:  # answered, never fatal
            _abort(context, e)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager):
        self.manager = manager

    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context):  # noqa: N802
        try:
            if request.model_spec.name != self.manager.name:
                raise NotFoundError(f"Could not find any versions of model {request.model_spec.name}")
            response = get_model_status_pb2.GetModelStatusResponse()
            current = self.manager.current
            states = []
            if current is not None:
                states.append((current.version, get_model_status_pb2.ModelVersionStatus.AVAILABLE, ""))
            states += [(v, get_model_status_pb2.ModelVersionStatus.END, msg) for v, msg in sorted(self.manager.failed.items())]
            if request.model_spec.HasField("version"):
                states = [s for s in states if s[0] == request.model_spec.version.value]
                if not states:
                    raise NotFoundError(f"Could not find version {request.model_spec.version.value} of model {self.manager.name}")
            for version, state, message in states:
                status = response.model_version_status.add(version=version, state=state)
                status.status.CopyFrom(status_pb2.StatusProto(error_code=3 if message else 0, error_message=message))
            return response
        except Exception as e:  # answered, never fatal
            _abort(context, e)


class Server:
    """The gRPC server with its model manager (and optional batcher)."""

    def __init__(
        self,
        model_name: str,
        model_base_path: str,
        port: int = 8500,
        host: str = "127.0.0.1",
        poll_seconds: float = 1.0,
        batching: BatchingOptions | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_workers: int = 16,
    ):
        if not model_name:
            raise ValueError("`model_name` must be set.")
        if not versions(model_base_path):
            raise ValueError(f"No model version (all-digit folder with saved_model.pb) in model_base_path={model_base_path!r}")
        self.manager = ModelManager(model_name, model_base_path, poll_seconds)
        self.manager.start()
        if self.manager.current is None:
            raise ValueError(f"No version of {model_name!r} in {model_base_path!r} could be loaded: {self.manager.failed}")
        self.batcher = Batcher(batching) if batching else None
        options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes)]
        self.grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.manager, self.batcher), self.grpc_server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.manager), self.grpc_server)
        self.port = self.grpc_server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise ValueError(f"Cannot bind {host}:{port}")
        self.address = f"{host}:{self.port}"

    def start(self) -> "Server":
        self.grpc_server.start()
        log.info("Serving %s on %s", self.manager.name, self.address)
        return self

    def stop(self, grace: float = 1.0) -> None:
        self.manager.stop()
        if self.batcher is not None:
            self.batcher.stop()
        self.grpc_server.stop(grace).wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def flag(name: str, **kwargs):
        parser.add_argument(f"--{name}", f"--{name.replace('-', '_')}", dest=name.replace("-", "_"), **kwargs)

    flag("port", type=int, default=8500, help="gRPC port (TF Serving's default 8500; 0 = any free port)")
    flag("host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes the server to the network")
    flag("model-name", required=True)
    flag("model-base-path", required=True, help="folder of numbered versions (<export-dir>/<model-name>)")
    flag("file-system-poll-wait-seconds", type=float, default=1.0, help="0 = never look for new versions")
    flag("enable-batching", action="store_true")
    flag("max-batch-size", type=int, default=64)
    flag("batch-timeout-micros", type=int, default=2000)
    flag("num-batch-threads", type=int, default=2)
    flag("max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    flag("grpc-max-threads", type=int, default=16)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        batching = BatchingOptions(args.max_batch_size, args.batch_timeout_micros, args.num_batch_threads) if args.enable_batching else None
        server = Server(
            args.model_name, args.model_base_path, args.port, args.host, args.file_system_poll_wait_seconds,
            batching, args.max_message_bytes, args.grpc_max_threads,
        ).start()
    except ValueError as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Serving {args.model_name} version {server.manager.current.version} on {server.address}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
