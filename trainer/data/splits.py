"""Which events of a user are train, validation or test targets.

Both splits label the events of ONE user's time-sorted sequence, so they work
inside the per-user transform (`trainer.data.examples`) on any runner.

- leave-one-out: the last event is the test target, the second-to-last the
  validation target, the rest are training targets.
- temporal: global cut-off times; an event before `validation_start` is a
  training target, before `test_start` a validation target, else a test target.

In both, an event is a target only if the user has at least `min_history`
earlier events; earlier events of any split may be history (they happened
before the target), but never a later one. The "period" of an event (train /
validation / test, whether or not it is a target) decides what statistics may
be learnt from it: vocabularies and counts use only the train period.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from trainer.config import SplitKind

TRAIN, VALIDATION, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """A resolved split: the kind and, for temporal, the cut-offs (unix seconds)."""

    kind: SplitKind
    validation_start: int = 0
    test_start: int = 0

    def __post_init__(self):
        if self.kind == SplitKind.TEMPORAL and not 0 < self.validation_start < self.test_start:
            raise ValueError(
                "A temporal split needs 0 < validation_start < test_start. Received: "
                f"validation_start={self.validation_start}, test_start={self.test_start}"
            )


def event_periods(timestamps: np.ndarray, plan: SplitPlan) -> np.ndarray:
    """The period (TRAIN / VALIDATION / TEST) of each event of one user.

    Args:
      timestamps: [n] int64 unix seconds of one user's events, sorted ascending.
      plan: the split.

    Returns:
      [n] int8 period per event.
    """
    n = len(timestamps)
    if plan.kind == SplitKind.LEAVE_ONE_OUT:
        periods = np.full(n, TRAIN, dtype=np.int8)
        if n >= 1:
            periods[-1] = TEST
        if n >= 2:
            periods[-2] = VALIDATION
        return periods
    periods = np.full(n, TRAIN, dtype=np.int8)
    periods[timestamps >= plan.validation_start] = VALIDATION
    periods[timestamps >= plan.test_start] = TEST
    return periods


def resolve_temporal_cutoffs(all_timestamps: np.ndarray, validation_start: int, test_start: int) -> tuple[int, int]:
    """Cut-offs as given, or at the 80% / 90% quantiles of event time when both are 0."""
    if validation_start or test_start:
        return validation_start, test_start
    if len(all_timestamps) == 0:
        raise ValueError("Cannot place temporal cut-offs: there are no events.")
    v, t = np.quantile(all_timestamps, [0.8, 0.9], method="lower")
    v, t = int(v), int(t)
    if t <= v:
        t = v + 1
    return v, t
