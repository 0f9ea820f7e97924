"""Lazy access to TensorFlow, Keras 2 (tf_keras), Keras 3 and tfmot.

Import these through the functions here, inside functions, never at module top level of
light modules: ``import tensorflow`` costs 2-3 s.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


@cache
def tf() -> Any:
    import tensorflow

    tensorflow.get_logger().setLevel(logging.ERROR)
    return tensorflow


@cache
def keras2() -> Any:
    """Keras 2 (``tf_keras``): what every model inside the engine is built with."""
    tf()
    import tf_keras

    return tf_keras


@cache
def keras3() -> Any:
    """Keras 3: only for reading users' Keras 3 files."""
    tf()
    import keras

    return keras


@cache
def tfmot() -> Any:
    tf()
    import tensorflow_model_optimization

    return tensorflow_model_optimization


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (and make TF ops deterministic where it can)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    keras2().utils.set_random_seed(seed)


def versions() -> dict[str, str]:
    import importlib.metadata

    import engine

    return {
        "featherweight": engine.__version__,
        "tensorflow": tf().__version__,
        "tf_keras": keras2().__version__,
        "tfmot": tfmot().__version__,
        "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
    }
