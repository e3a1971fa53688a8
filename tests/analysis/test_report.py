"""`write_report` end to end on tiny tables: files, sections, summary, edge cases."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from tests.analysis.frames import make_events, make_items, make_tables
from trainer.analysis.report import write_report
from trainer.data import schema

# 4 users; u1 returns to A. Six users would be needed for default min support,
# so the tests pass min_support_users=1 or 2 where rules should appear.
ROWS = [
    ("u1", "A", 1_700_000_000),
    ("u1", "B", 1_700_000_060),
    ("u1", "A", 1_700_003_660),
    ("u2", "A", 1_700_100_000),
    ("u2", "B", 1_700_100_600),
    ("u3", "A", 1_700_200_000),
    ("u3", "C", 1_700_200_030),
    ("u4", "B", 1_700_300_000),
]
SUMMARY_KEYS = {
    "dataset",
    "overview",
    "activity",
    "gaps",
    "location",
    "repeats",
    "association_rules",
    "transitions",
    "plots",
}


def _located_events():
    n = len(ROWS)
    return make_events(ROWS, latitude=40.7 + 0.01 * np.arange(n), longitude=-74.0 + 0.01 * np.arange(n))


def _read(output_dir):
    with open(os.path.join(output_dir, "report.md"), encoding="utf-8") as f:
        text = f.read()
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    return text, summary


def _referenced_images(text):
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_report_files_sections_and_summary(tmp_path):
    items = make_items(["A", "B", "C"], texts=["Apple pie", "Banana | split", "Cherry"])
    path = write_report(make_tables(_located_events(), items), str(tmp_path), min_support_users=2)
    assert path == os.path.join(str(tmp_path), "report.md")
    text, summary = _read(tmp_path)

    for heading in ("## 1. Overview", "## 2. Activity", "## 3. Gaps", "## 4. Where", "## 5. Repeat", "## 6. Item"):
        assert heading in text
    images = _referenced_images(text)
    assert "location_density.png" in images and "gaps.png" in images and "activity_weekday_hour.png" in images
    for image in images:
        with open(os.path.join(tmp_path, image), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert set(summary["plots"].values()) == set(images)
    assert SUMMARY_KEYS <= set(summary)

    assert summary["overview"]["events"] == 8
    assert summary["overview"]["users"] == 4
    assert summary["overview"]["items"] == 3
    # Items have 4 (A), 3 (B) and 1 (C) events; the top 1% of 3 items is 1 item: 4 of 8 events.
    assert summary["overview"]["top_1pct_items_event_share"] == pytest.approx(0.5)
    # One repeat (u1's second A) among 8 events; of the 3 users with >= 2 events only u1's last is a repeat.
    assert summary["repeats"]["repeat_event_share"] == pytest.approx(1 / 8)
    assert summary["repeats"]["last_event_repeat_share"] == pytest.approx(1 / 3)
    assert summary["gaps"]["count"] == 4  # 2 for u1, 1 each for u2 and u3
    assert summary["location"]["source"] == "events"
    # A and B are shared by u1 and u2: the only pair with 2 users.
    rules = summary["association_rules"]["rules"]
    assert {(r["antecedent"], r["consequent"]) for r in rules} == {("A", "B"), ("B", "A")}
    assert rules[0]["antecedent_text"] in ("Apple pie", "Banana | split")
    # Item text is shown, with its pipe escaped so that the table keeps its columns.
    assert "Banana \\| split" in text


def test_items_without_text_give_tables_without_text_columns(tmp_path):
    write_report(make_tables(make_events(ROWS)), str(tmp_path), min_support_users=1)
    text, summary = _read(tmp_path)
    assert "| A | B | users A & B |" in text
    assert "antecedent_text" not in summary["association_rules"]["rules"][0]


def test_no_location_says_so(tmp_path):
    write_report(make_tables(make_events(ROWS)), str(tmp_path))
    text, summary = _read(tmp_path)
    assert "No location" in text
    assert summary["location"]["source"] == "none"
    assert "location_density.png" not in _referenced_images(text)
    assert not os.path.exists(os.path.join(tmp_path, "location_density.png"))


def test_item_locations_stand_in_for_event_locations(tmp_path):
    items = make_items(["A", "B", "C"])
    items[schema.LATITUDE] = [51.5, 51.6, np.nan]
    items[schema.LONGITUDE] = [-0.1, -0.2, np.nan]
    write_report(make_tables(make_events(ROWS), items), str(tmp_path))
    text, summary = _read(tmp_path)
    assert summary["location"]["source"] == "items"
    # C has no location: 7 of 8 events (all but u3's C) are placed.
    assert summary["location"]["share_located"] == pytest.approx(7 / 8)
    assert "item's location" in text
    assert os.path.exists(os.path.join(tmp_path, "location_density.png"))


def test_one_event_per_user_does_not_crash(tmp_path):
    write_report(make_tables(make_events([("u1", "A", 5), ("u2", "B", 9)])), str(tmp_path))
    text, summary = _read(tmp_path)
    assert "no gaps" in text
    assert summary["gaps"]["count"] == 0
    assert summary["association_rules"]["rules"] == []
    assert summary["repeats"]["last_event_repeat_share"] is None  # NaN is written as null


@pytest.mark.parametrize(
    "name,value", [("top_rules", 0), ("top_transitions", -1), ("min_support_users", 0), ("max_rule_items", 1)]
)
def test_bad_arguments_are_named(tmp_path, name, value):
    with pytest.raises(ValueError, match=f"{name}={value}"):
        write_report(make_tables(make_events(ROWS)), str(tmp_path), **{name: value})


def test_remote_output_dir_and_empty_events_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="output_dir"):
        write_report(make_tables(make_events(ROWS)), "gs://bucket/report")
    with pytest.raises(ValueError, match="empty"):
        write_report(make_tables(make_events([])), str(tmp_path))
