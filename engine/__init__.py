"""Featherweight engine: headless model compression. Never imports Qt.

Importing this package is cheap: TensorFlow is imported lazily (see ``engine.core.tfenv``).
It sets ``TF_USE_LEGACY_KERAS=1`` so that, when TensorFlow is imported later,
``tf.keras`` is Keras 2 (``tf_keras``), which tfmot requires.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"
APP_NAME = "Featherweight"
