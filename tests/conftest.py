"""Shared fixtures. Expensive things (TF models, datasets) are session-scoped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The baseline cache of this test session only: a later run (or the user's own cache) never
# answers for a measurement a test expects to happen.
if "FEATHERWEIGHT_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["FEATHERWEIGHT_CACHE_DIR"] = tempfile.mkdtemp(prefix="featherweight-test-cache-")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def demo_model_path() -> Path:
    from engine.core.demo import demo_model_path

    return demo_model_path()


@pytest.fixture(scope="session")
def demo_keras_model(demo_model_path):
    """The shipped demo model loaded with tf_keras (do not mutate: clone it first)."""
    from engine.core.tfenv import keras2

    return keras2().models.load_model(demo_model_path)


@pytest.fixture(scope="session")
def demo_splits():
    from engine.data.datasets import load_data

    return load_data("demo", input_shape=(8, 8, 1), num_classes=10, seed=0)
