"""Importing any of the project's packages first makes tf.keras Keras 2 (tf-keras)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PROBE = """
import {package}
import tensorflow as tf
import tensorflow_recommenders as tfrs
print(tf.keras.layers.Dense.__module__)
"""


@pytest.mark.parametrize("package", ["trainer", "serving", "pipelines"])
def test_package_import_selects_keras_2(package):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(package=package)],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Keras 3 layers live in `keras.src...`; tf-keras (Keras 2) in `tf_keras.src...`.
    assert result.stdout.strip().splitlines()[-1].startswith("tf_keras."), result.stdout
