"""The model zoo (issue 13): every family through ``featherweight inspect`` and int8 PTQ.

Models are built from code by ``tests/zoo/builders.py`` (profile ``"test"``; cached on disk,
see its docstring), at 32×32 inputs and small widths. Per family:

- ``test_inspect`` (every working family): ``featherweight inspect MODEL --json`` succeeds; a
  Keras 3 file's import check (outputs of the Keras 2 translation vs the Keras 3 model) is
  within tolerance; the output kind is the family's.
- ``test_float_and_int8`` (families whose ``test_tier`` is ``"int8"``): ``compress`` with the
  int8 PTQ recipe (the engine's checked int8: compared with float on the validation split):
  the float32 baseline ``.tflite`` agrees with the Keras model's own accuracy (so the data
  scaling rule and the import are right), the int8 ``.tflite`` is within 2 points of it, its
  kernels are int8, token inputs stay int32.
- ``test_refusal``: multi-output and custom-layer models end ``featherweight compress`` with
  exit 2 and one line on stderr naming the problem (no traceback, no library log lines).

The issue's six failures, each a test here that fails without its fix:
``test_inspect[image_scratch]`` (augmentation layers refused at import; now dropped with a
warning, binary logit output), ``test_float_and_int8[lstm]`` (conversion failed on
TensorListReserve), ``test_float_and_int8[text_cnn]`` (token ids: no input scale, traceback),
``test_float_and_int8[tabular_mlp]`` (Normalization on raw features: int8 lost 33+ points),
``test_refusal[multi_output]`` (30-line traceback) and ``test_refusal[custom_layer]`` (the
message buried under TensorFlow's log lines).

Benchmark-only int8 (``test_tier="inspect"``, import check here; ``benchmarks/zoo.py`` runs
their int8 and prune + int8 with trained weights): ResNet50, DenseNet121, NASNetMobile (50-80 s
each through compress on 2 cores: over the issue's 6-minute budget for all its tests),
MobileNetV2 and MobileNetV3Small (their random-feature read-outs, 35 % and 69 %, fall to chance
in int8 and the checked int8 then spends ~50 s in the debugger: not an honest int8 subject
without real training, which costs minutes).
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
RECURRENT_FAMILIES = {"lstm", "gru", "bilstm"}
MAX_INT8_DROP = 0.02 + 1e-9  # the bar: int8 within 2 points of float (inclusive)
# Float32 .tflite vs the trained Keras model on the same test samples (a few samples may flip
# on borderline scores after conversion; a wrong scaling rule or import moves it far more).
MAX_FLOAT_GAP = 0.02
# A family's Keras accuracy must clear chance by this much, or its int8 drop means nothing.
ABOVE_CHANCE = 0.15
# What the one stderr line of each refusal must name.
REFUSAL_NAMES = {"multi_output": "2 outputs", "custom_layer": "ZooScale"}

WORKING = [n for n, f in FAMILIES.items() if not f.refusal]
INT8 = [n for n in WORKING if FAMILIES[n].test_tier == "int8"]
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


def test_tiers_are_known() -> None:
    """Every family is tested for int8 here or marked for the benchmark (never silently
    neither); the benchmark-only ones are the keras.applications networks named above."""
    tiers = {n: f.test_tier for n, f in FAMILIES.items()}
    assert set(tiers.values()) <= {"int8", "inspect"}, tiers
    inspect_only = sorted(n for n, t in tiers.items() if t == "inspect")
    assert inspect_only == [
        "densenet121", "mobilenet_v2", "mobilenet_v3_small", "nasnet_mobile", "resnet50"
    ]  # fmt: skip


@pytest.mark.parametrize("name", WORKING)
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
    if name == "image_scratch":
        # Issue 13, failure 1: refused at import ("random_flip (RandomFlip): option
        # data_format ... has no Keras 2 equivalent"). Augmentation is inactive at inference:
        # dropped from the graph, and said so, naming both layers.
        dropped = [w for w in report["warnings"] if "augmentation" in w]
        assert dropped, report["warnings"]
        assert "RandomFlip" in dropped[0] and "RandomRotation" in dropped[0], dropped
        layers = {row["class"] for row in report["layers"]}
        assert "SeparableConv2D" in layers and "Rescaling" in layers, layers
        assert not any(c.startswith("Random") for c in layers), layers


@pytest.mark.parametrize("name", INT8)
def test_float_and_int8(zoo: Any, name: str, tmp_path: Path) -> None:
    from engine.pipeline.run import compress

    entry = zoo(name)
    trained = entry.info["keras_test_accuracy"]
    assert trained >= entry.info["chance"] + ABOVE_CHANCE, (trained, entry.info["chance"])
    metrics = compress(str(entry.model_path), str(entry.data_path), _int8_recipe(), tmp_path)
    base, comp = metrics["baseline"], metrics["compressed"]
    assert abs(base["accuracy"] - trained) <= MAX_FLOAT_GAP, (base["accuracy"], trained)
    assert metrics["accuracy_drop"] <= MAX_INT8_DROP, (base["accuracy"], comp["accuracy"])
    assert "int8" in set(comp["kernel_dtypes"].values()), comp["kernel_dtypes"]
    check = comp["int8_check"]
    assert check is not None and check["split"] == "val", check
    assert comp["output_kind"] == entry.family.output, comp["output_kind"]
    if name in TOKEN_FAMILIES:
        # Failure 3: token ids are never rescaled and stay int32 (no input scale).
        assert comp["io"]["input"]["dtype"] == "int32", comp["io"]
        assert metrics["data"]["scale"] == "none", metrics["data"]["scale_reason"]
        assert metrics["data"]["input_kind"] == "tokens", metrics["data"]
    if name == "image_scratch":
        # Failure 1 again, on the compress path: the dropped augmentation is said there too.
        assert any("augmentation" in w for w in metrics["warnings"]), metrics["warnings"]
    if name in RECURRENT_FAMILIES:
        # Failure 2: the conversion says what it did to the recurrent layers.
        assert comp["conversion_notes"], comp
        assert not json.loads((tmp_path / "report.json").read_text())["flex_ops"]
    if name == "tabular_mlp":
        # Failure 4: one int8 input scale for features of scales 0.1 ... 1,700 lost 50 points;
        # the first-layer Normalization now stays float (so the file is not full-integer).
        assert check["keep_float"], check
        assert comp["full_integer"] is False, comp["full_integer"]
        assert any("Normalization" in w for w in metrics["warnings"]), metrics["warnings"]
    elif name not in RECURRENT_FAMILIES:
        assert comp["full_integer"] is True, check


@pytest.mark.parametrize("name", REFUSALS)
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
    assert REFUSAL_NAMES[name] in first, first
    assert not (tmp_path / "o" / "metrics.json").exists()
