"""Smoke test of the benchmark's hand-written tfmot script: it must produce a real int8 model.

The full comparison (``python benchmarks/run.py``) takes minutes; here the plain script runs
the no-training recipe once and its numbers are checked against the written files.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_plain_script_writes_measured_int8_tflite(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import plain_tfmot
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))

    recipe = plain_tfmot.read_recipe(ROOT / "resources" / "recipes" / "int8_ptq.json")
    metrics = plain_tfmot.run_recipe(recipe, seed=0, out_dir=tmp_path)

    data = (tmp_path / "model.tflite").read_bytes()
    base = (tmp_path / "baseline.tflite").read_bytes()
    assert metrics["compressed"]["tflite_bytes"] == len(data)
    assert metrics["compressed"]["tflite_gzip_bytes"] == len(gzip.compress(data, 9))
    assert metrics["ratio_gzip"] == pytest.approx(
        len(gzip.compress(base, 9)) / len(gzip.compress(data, 9))
    )
    # int8 weights: about 4x smaller than float32, and the accuracy survives.
    assert metrics["ratio_raw"] > 3.0
    assert metrics["baseline"]["accuracy"] > 0.95
    assert abs(metrics["accuracy_drop"]) < 0.02
    assert json.loads((tmp_path / "metrics.json").read_text())["ratio_raw"] == metrics["ratio_raw"]
