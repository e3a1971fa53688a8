"""`write_report` on one million random events: the speed target (well under a minute).

Marked slow (about 5 s with data generation; deselect with -m "not slow"). As a script
that logs the time: `python -m tests.analysis.test_report_speed [num_events]`.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time

import pytest

from tests.analysis.random_tables import random_tables
from trainer.analysis.report import write_report

NUM_EVENTS = 1_000_000
TIME_LIMIT_SECONDS = 60.0


def time_report(num_events: int, output_dir: str) -> float:
    """Seconds `write_report` takes on `num_events` random events (generation not counted)."""
    tables = random_tables(num_events)
    start = time.perf_counter()
    write_report(tables, output_dir)
    return time.perf_counter() - start


@pytest.mark.slow
def test_million_events_well_under_a_minute(tmp_path):
    seconds = time_report(NUM_EVENTS, str(tmp_path))
    logging.getLogger(__name__).info("write_report on %d events: %.1f s", NUM_EVENTS, seconds)
    assert seconds < TIME_LIMIT_SECONDS


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else NUM_EVENTS
    with tempfile.TemporaryDirectory() as directory:
        logging.info("write_report on %d events: %.1f s", count, time_report(count, directory))
