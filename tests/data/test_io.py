"""Whole-file writes: a failed write leaves the previous file as it was."""

import os

import pytest

from trainer.data import io


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "sub" / "progress.json"
    io.write_text(str(path), '{"epochs": 1}')
    assert path.read_text() == '{"epochs": 1}'
    with pytest.raises(TypeError):
        io.write_bytes(str(path), "not bytes")  # fails after the file was opened for writing
    assert path.read_text() == '{"epochs": 1}'
    assert os.listdir(path.parent) == ["progress.json"]
    io.write_text(str(path), '{"epochs": 2}')
    assert path.read_text() == '{"epochs": 2}' and os.listdir(path.parent) == ["progress.json"]
