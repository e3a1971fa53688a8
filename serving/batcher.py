"""Server-side request batching: concurrent requests to the same signature are
merged along the batch dimension, run once, and split back.

Unlike stock TF Serving (which pads variable-length inputs with each tensor's
first element), inner dimensions are padded with the contract's padding values
("" / 0 / NaN), which the model masks, and each request's outputs are cropped
back to the width it would have had alone (K, C).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np

from serving import contract
from serving.servable import RequestError

log = logging.getLogger(__name__)

PAD_VALUES = {np.dtype(object): b"", np.dtype(np.int64): 0, np.dtype(np.int32): 0, np.dtype(np.float32): np.nan,
              np.dtype(np.bool_): False}


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 64  # rows
    batch_timeout_micros: int = 2000  # how long the first request waits for company
    num_batch_threads: int = 2

    def __post_init__(self):
        if self.max_batch_size < 1 or self.batch_timeout_micros < 0 or self.num_batch_threads < 1:
            raise ValueError(f"Invalid batching options: {self}")


@dataclasses.dataclass
class _Task:
    key: tuple
    run: Callable[[str, Mapping[str, np.ndarray]], dict[str, np.ndarray]]
    signature: str
    inputs: Mapping[str, np.ndarray]
    rows: int
    future: concurrent.futures.Future


def _pad(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if value.shape[1:] == shape[1:]:
        return value
    out = np.full((value.shape[0],) + shape[1:], PAD_VALUES.get(value.dtype, 0), dtype=value.dtype)
    out[tuple(slice(0, d) for d in value.shape)] = value
    return out


def merge(tasks: list[_Task]) -> dict[str, np.ndarray]:
    """Concatenates the tasks' inputs along dim 0, padding inner dims to the largest."""
    merged = {}
    for name in tasks[0].inputs:
        values = [np.asarray(t.inputs[name]) for t in tasks]
        inner = tuple(max(v.shape[d] for v in values) for d in range(1, values[0].ndim))
        merged[name] = np.concatenate([_pad(v, (v.shape[0],) + inner) for v in values], axis=0)
    return merged


def _own_width(signature: str, inputs: Mapping[str, np.ndarray], merged_width: int) -> dict[str, int]:
    """Per output dimension letter, the size this request's outputs would have alone."""
    widths = {}
    if "k" in inputs:
        widths["K"] = min(int(np.max(inputs["k"])) if inputs["k"].size else 0, merged_width)
    if "candidate_item_ids" in inputs:
        widths["C"] = inputs["candidate_item_ids"].shape[1]
    return widths


def split(tasks: list[_Task], outputs: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Rows of each task, with K / C dimensions cropped to the task's own width."""
    letters = {t.name: t.shape for t in contract.OUTPUTS.get(tasks[0].signature, ())}
    results, start = [], 0
    for task in tasks:
        part = {}
        for name, value in outputs.items():
            piece = value[start : start + task.rows]
            shape = letters.get(name)
            if shape:
                widths = _own_width(task.signature, task.inputs, value.shape[1] if value.ndim > 1 else 0)
                index = tuple(slice(0, widths[letter]) if letter in widths else slice(None) for letter in shape[1:])
                piece = piece[(slice(None),) + index]
            part[name] = piece
        results.append(part)
        start += task.rows
    return results


class Batcher:
    """Runs each request's `run(signature, inputs) -> outputs` on merged batches from a queue."""

    def __init__(self, options: BatchingOptions):
        self.options = options
        self._queue: queue.Queue[_Task | None] = queue.Queue()
        self._stopped = threading.Event()
        self.batches = 0  # merged runs so far (for monitoring and tests)
        self.requests = 0
        self._threads = [threading.Thread(target=self._loop, name=f"batch-{i}", daemon=True) for i in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def submit(
        self, key: tuple, run: Callable[[str, Mapping[str, np.ndarray]], dict[str, np.ndarray]], signature: str,
        inputs: Mapping[str, np.ndarray],
    ) -> concurrent.futures.Future:
        """Queues a checked request. Requests merge only with the same `key` (model,
        version, signature), whose `run` they share."""
        row_counts = {name: len(value) for name, value in inputs.items() if np.ndim(value)}
        if len(set(row_counts.values())) > 1:
            # Merged requests are split back by rows: every input must have one row per request row.
            raise RequestError(f"With batching every input's first dimension is the batch; got {dict(sorted(row_counts.items()))}")
        rows = next(iter(row_counts.values()), 0)
        future: concurrent.futures.Future = concurrent.futures.Future()
        if rows == 0 or rows > self.options.max_batch_size:
            try:  # empty or already large requests run alone, now
                future.set_result(run(signature, inputs))
            except Exception as e:  # handed to the waiting request
                future.set_exception(e)
            return future
        self._queue.put(_Task(key, run, signature, inputs, rows, future))
        return future

    def _collect(self) -> list[_Task]:
        first = self._queue.get()
        if first is None:
            return []
        tasks, rows = [first], first.rows
        deadline = time.monotonic() + self.options.batch_timeout_micros / 1e6
        deferred = []
        while rows < self.options.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                task = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if task is None:
                self._queue.put(None)
                break
            if task.key == first.key and rows + task.rows <= self.options.max_batch_size:
                tasks.append(task)
                rows += task.rows
            else:
                deferred.append(task)
        for task in deferred:
            self._queue.put(task)
        return tasks

    def _loop(self) -> None:
        while not self._stopped.is_set():
            tasks = self._collect()
            if not tasks:
                return
            live = [t for t in tasks if t.future.set_running_or_notify_cancel()]
            if not live:
                continue
            self.batches += 1
            self.requests += len(live)
            try:
                outputs = live[0].run(live[0].signature, merge(live) if len(live) > 1 else live[0].inputs)
                parts = split(live, outputs) if len(live) > 1 else [outputs]
                for task, part in zip(live, parts):
                    task.future.set_result(part)
            except Exception as e:  # a failed batch: retry each request alone so one bad request fails alone
                if len(live) == 1:
                    live[0].future.set_exception(e)
                    continue
                for task in live:
                    try:
                        task.future.set_result(task.run(task.signature, task.inputs))
                    except Exception as single:  # this request's own error
                        task.future.set_exception(single)

    def stop(self) -> None:
        self._stopped.set()
        for _ in self._threads:
            self._queue.put(None)
