"""The generic events reader: formats, column mapping and unusable-input errors."""

import gzip
import json

import pandas as pd
import pytest

from trainer.data.readers import events as reader

CSV = "uid,sku,when,event_type\nu1,a,1700000000,view\nu2,b,2023-11-14T22:13:20Z,purchase\n"
MAP = {"user_id": "uid", "item_id": "sku", "timestamp": "when"}


def test_csv_with_column_map(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(CSV)
    raw = reader.read_events_files(str(path), column_map=MAP)
    assert raw.events["user_id"].tolist() == ["u1", "u2"]
    assert raw.events["timestamp"].tolist() == ["1700000000", "2023-11-14T22:13:20Z"]
    assert raw.events["_source_row"].tolist() == [1, 2]
    assert raw.events["_source_file"].tolist() == [str(path)] * 2


def test_parquet_jsonl_and_gzip_give_the_same_rows(tmp_path):
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "b"], "timestamp": [1700000000, 1700000100]})
    frame.to_parquet(tmp_path / "e.parquet")
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    with gzip.open(tmp_path / "e.csv.gz", "wt") as f:
        f.write(frame.to_csv(index=False))
    for name in ("e.parquet", "e.jsonl", "e.csv.gz"):
        raw = reader.read_events_files(str(tmp_path / name))
        assert raw.events[["user_id", "item_id", "timestamp"]].values.tolist() == [
            ["u1", "a", "1700000000"], ["u2", "b", "1700000100"]], name


def test_glob_reads_files_in_sorted_order(tmp_path):
    (tmp_path / "b.csv").write_text("user_id,item_id,timestamp\nu2,x,2\n")
    (tmp_path / "a.csv").write_text("user_id,item_id,timestamp\nu1,x,1\n")
    raw = reader.read_events_files(str(tmp_path / "*.csv"))
    assert raw.events["user_id"].tolist() == ["u1", "u2"]


def test_bad_json_lines_become_rows_for_the_rejects(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"user_id": "u1", "item_id": "a", "timestamp": 5}\n{not json\n[1, 2]\n')
    raw = reader.read_events_files(str(path))
    assert raw.events["_source_row"].tolist() == [1, 2, 3]
    assert raw.events["_raw_line"].tolist()[1:] == ["{not json", "[1, 2]"]
    assert raw.events["user_id"].tolist()[1:] == ["", ""]


def test_missing_column_names_file_and_columns(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("user,item_id,timestamp\nu1,a,1\n")
    with pytest.raises(ValueError, match=r"e\.csv.*missing required column\(s\) \['user_id'\].*found columns"):
        reader.read_events_files(str(path))


def test_wrong_delimiter_is_diagnosed(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("user_id;item_id;timestamp\nu1;a;1\n")
    with pytest.raises(ValueError, match=r"';'-delimited"):
        reader.read_events_files(str(path))
    raw = reader.read_events_files(str(path), delimiter=";")
    assert raw.events["item_id"].tolist() == ["a"]


def test_empty_and_unreadable_inputs(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv.*is empty"):
        reader.read_events_files(str(tmp_path / "empty.csv"))
    with pytest.raises(ValueError, match=r"nope\.csv.*does not exist"):
        reader.read_events_files(str(tmp_path / "nope.csv"))
    with pytest.raises(ValueError, match=r"No input files match"):
        reader.read_events_files(str(tmp_path / "*.parquet"))
    (tmp_path / "e.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"e\.xlsx.*extension"):
        reader.read_events_files(str(tmp_path / "e.xlsx"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet.*Parquet"):
        reader.read_events_files(str(tmp_path / "bad.parquet"))


def test_items_and_users_files(tmp_path):
    (tmp_path / "e.csv").write_text("user_id,item_id,timestamp\nu1,a,1\n")
    (tmp_path / "i.csv").write_text("item_id,text,category,price\na,Red shoe,shoes|red,9.5\n")
    (tmp_path / "u.jsonl").write_text('{"user_id": "u1", "age": 31}\n')
    raw = reader.read_events_files(str(tmp_path / "e.csv"), str(tmp_path / "i.csv"), str(tmp_path / "u.jsonl"))
    assert raw.items["text"].tolist() == ["Red shoe"] and raw.items["category"].tolist() == ["shoes|red"]
    assert raw.users["age"].tolist() == ["31"]
