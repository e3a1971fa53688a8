"""Pipelines: the Kubeflow (Vertex AI Pipelines) definition of the whole flow.

Importing this package selects Keras 2 (tf-keras) for TensorFlow, as TFRS requires;
see `trainer/__init__.py`.
"""

import trainer  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
