"""Training package: data preparation, features, models and the `trainer.task` entry point.

TensorFlow Recommenders 0.7.7 needs Keras 2 (tf-keras), which TensorFlow only
selects when `TF_USE_LEGACY_KERAS=1` is set before TensorFlow is first imported.
Importing this package sets it, so no user has to.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
