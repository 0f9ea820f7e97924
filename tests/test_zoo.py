"""The model zoo (issue 13): every family through ``featherweight inspect`` and int8 PTQ.

Models are built from code by ``tests/zoo/builders.py`` (cached on disk, see its docstring),
at 32×32 inputs and small widths. Per family:

- ``test_inspect``: ``featherweight inspect MODEL --json`` succeeds; a Keras 3 file's import
  check (outputs of the Keras 2 translation vs the Keras 3 model) is within tolerance; the
  output kind is the family's.
- ``test_float_and_int8``: ``compress`` with the int8 PTQ recipe: the float32 baseline
  ``.tflite`` agrees with the trained Keras model's own accuracy (so the data scaling rule
  and the import are right), the int8 ``.tflite`` is within 2 points of it, token inputs stay
  int32.
- ``test_refusal``: multi-output and custom-layer models end ``featherweight compress`` with
  exit 2 and one line on stderr (no traceback, no library log lines).

Families that fail today are ``xfail(strict=True)`` with the exact current error: a fix flips
one to XPASS, which fails the run until its mark is removed here. Prune + int8 of the zoo is
in ``benchmarks/zoo.py`` (too slow for the test run).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.zoo.builders import FAMILIES, ZooEntry, build_family

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

PROGRESS = re.compile(r"^\[\d+/\d+\] ")
TOKEN_FAMILIES = {"text_cnn", "embed_gap", "transformer_text"}
MAX_INT8_DROP = 0.02  # the bar: int8 within 2 points of float
# Float32 .tflite vs the trained Keras model on the same test images (a few samples may flip
# on borderline scores after conversion; a wrong scaling rule or import moves it far more).
MAX_FLOAT_GAP = 0.02

# (test, family) -> (exception type, the exact current error). Remove an entry when it passes.
# Seen on the issue13-wip working tree, 2026-11-30 19:10 UTC.
XFAIL: dict[tuple[str, str], tuple[type[BaseException], str]] = {
    ("int8", "tabular_mlp"): (
        AssertionError,
        "int8 PTQ loses 52 points (float 0.925 -> int8 0.405): one int8 input scale for raw "
        "features of scales 0.1 ... 1,700 (issue 13 item 6: keep the Normalization float)",
    ),
}


def _params(test: str, names: list[str]) -> list[Any]:
    out = []
    for name in names:
        marks = []
        if (test, name) in XFAIL:
            raises, reason = XFAIL[(test, name)]
            marks.append(pytest.mark.xfail(strict=True, raises=raises, reason=reason))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


WORKING = [n for n, f in FAMILIES.items() if not f.refusal]
REFUSALS = [n for n, f in FAMILIES.items() if f.refusal]


@pytest.fixture(scope="session")
def zoo() -> Any:
    """``zoo(name) -> ZooEntry``: built once per session (and cached on disk)."""
    built: dict[str, ZooEntry] = {}

    def get(name: str) -> ZooEntry:
        if name not in built:
            built[name] = build_family(name)
        return built[name]

    return get


def _int8_recipe() -> Any:
    from engine.pipeline.recipe import validate_recipe

    return validate_recipe(
        {
            "schema_version": 2,
            "name": "zoo-int8",
            "batch_size": 32,
            "steps": [{"type": "quantize", "mode": "int8", "calibration_samples": 100}],
        }
    )


@pytest.mark.parametrize("name", _params("inspect", WORKING))
def test_inspect(zoo: Any, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    entry = zoo(name)
    code = main(["inspect", str(entry.model_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err.strip()
    report = json.loads(out)
    if entry.family.saver == "keras3":
        check = report["import_check"]
        assert check is not None and check["max_abs_diff"] <= check["tolerance"], check
    assert report["output_kind"] == entry.family.output, report["output_kind"]


@pytest.mark.parametrize("name", _params("int8", WORKING))
def test_float_and_int8(zoo: Any, name: str, tmp_path: Path) -> None:
    from engine.pipeline.run import compress

    entry = zoo(name)
    metrics = compress(str(entry.model_path), str(entry.data_path), _int8_recipe(), tmp_path)
    base, comp = metrics["baseline"], metrics["compressed"]
    trained = entry.info["keras_test_accuracy"]
    assert abs(base["accuracy"] - trained) <= MAX_FLOAT_GAP, (base["accuracy"], trained)
    assert metrics["accuracy_drop"] <= MAX_INT8_DROP, (base["accuracy"], comp["accuracy"])
    assert "int8" in set(comp["kernel_dtypes"].values()), comp["kernel_dtypes"]
    if name in TOKEN_FAMILIES:
        assert comp["io"]["input"]["dtype"] == "int32", comp["io"]


@pytest.mark.parametrize("name", _params("refusal", REFUSALS))
def test_refusal(zoo: Any, name: str, tmp_path: Path) -> None:
    entry = zoo(name)
    recipe = ROOT / "resources" / "recipes" / "int8_ptq.json"
    result = subprocess.run(
        [sys.executable, "-m", "engine", "compress", str(entry.model_path),
         "--data", str(entry.data_path), "--recipe", str(recipe), "--out", str(tmp_path / "o")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # The command line's own stage lines ("[1/3] Measuring ...") may precede the error; no
    # other line may (no traceback, no library log line).
    lines = [ln for ln in result.stderr.strip().splitlines() if not PROGRESS.match(ln)]
    first = lines[0] if lines else ""
    assert result.returncode == 2, f"exit {result.returncode}: {first}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr: {lines[:3]}"
    assert first.startswith("featherweight: error:"), first
