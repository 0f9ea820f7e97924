"""The featherweight command line: contract of DESIGN.md (exit codes, files, messages)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import fw

ROOT = Path(__file__).resolve().parent.parent


def assert_bad_input(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [
        line for line in result.stderr.strip().splitlines() if line.startswith("featherweight")
    ]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_version_and_help():
    r = fw("--version")
    assert r.returncode == 0 and "featherweight" in r.stdout
    r = fw("--help")
    assert r.returncode == 0 and "compress" in r.stdout


def test_demo_writes_model_and_dataset(tmp_path):
    r = fw("demo", "--out", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    paths = json.loads(r.stdout)
    assert Path(paths["model"]).stat().st_size > 100_000
    import numpy as np

    with np.load(paths["data"]) as f:
        assert set(f.files) == {"x_train", "y_train", "x_test", "y_test"}
        assert f["x_train"].shape[1:] == (8, 8, 1)


def test_inspect_demo_json():
    r = fw("inspect", "demo", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["totals"]["params"] == 151306
    assert report["output_kind"] == "softmax"


def test_inspect_missing_file(tmp_path):
    assert_bad_input(fw("inspect", str(tmp_path / "nothing.keras")), "nothing.keras")


def test_compress_bad_inputs(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"schema_version": 1, "steps": [{"type": "quantize"}]}))
    out = str(tmp_path / "out")

    not_json = tmp_path / "bad.json"
    not_json.write_text("{steps: [")
    assert_bad_input(
        fw("compress", "demo", "--data", "demo", "--recipe", str(not_json), "--out", out),
        "not valid JSON",
    )
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"schema_version": 1, "steps": [{"type": "shrink"}]}))
    assert_bad_input(
        fw("compress", "demo", "--data", "demo", "--recipe", str(unknown), "--out", out),
        "unknown step type 'shrink'",
    )
    for knob, value, word in (
        ("prune", {"target_sparsity": 1.5}, "target_sparsity"),
        ("cluster", {"clusters": 0}, "clusters"),
    ):
        f = tmp_path / f"{knob}.json"
        f.write_text(json.dumps({"schema_version": 1, "steps": [{"type": knob, **value}]}))
        assert_bad_input(
            fw("compress", "demo", "--data", "demo", "--recipe", str(f), "--out", out), word
        )

    import numpy as np

    npz = tmp_path / "partial.npz"
    np.savez(npz, x_train=np.zeros((4, 8, 8, 1)), y_train=np.zeros(4))
    refused = fw("compress", "demo", "--data", str(npz), "--recipe", str(recipe), "--out", out)
    assert_bad_input(refused, "x_test")
    # Model and data are loaded before the first stage: a refusal is the only line, with no
    # "[1/2] Measuring the original model" before it.
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    wrong = tmp_path / "wrong.npz"
    np.savez(
        wrong,
        x_train=np.zeros((8, 28, 28, 1), np.uint8),
        y_train=np.zeros(8, np.int64),
        x_test=np.zeros((4, 28, 28, 1), np.uint8),
        y_test=np.zeros(4, np.int64),
    )
    assert_bad_input(
        fw("compress", "demo", "--data", str(wrong), "--recipe", str(recipe), "--out", out),
        "(28, 28, 1)",
        "(8, 8, 1)",
    )
    classes = tmp_path / "classes.npz"
    np.savez(
        classes,
        x_train=np.zeros((8, 8, 8, 1), np.uint8),
        y_train=np.arange(8) + 5,
        x_test=np.zeros((4, 8, 8, 1), np.uint8),
        y_test=np.zeros(4, np.int64),
    )
    assert_bad_input(
        fw("compress", "demo", "--data", str(classes), "--recipe", str(recipe), "--out", out),
        "label 12",
    )
    assert not Path(out).exists() or not any(Path(out).iterdir())

    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    assert_bad_input(
        fw(
            "compress",
            "demo",
            "--data",
            "demo",
            "--recipe",
            str(recipe),
            "--out",
            str(blocker / "sub"),
        ),
        "file-not-dir",
    )


@pytest.mark.slow
def test_compress_writes_model_and_metrics(tmp_path):
    recipe = ROOT / "resources" / "recipes" / "int8_ptq.json"
    out = tmp_path / "ptq"
    r = fw(
        "compress", "demo", "--data", "demo", "--recipe", str(recipe), "--out", str(out), "--json"
    )
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    written = json.loads((out / "metrics.json").read_text())
    assert printed == written
    for key in ("accuracy", "params", "tflite_bytes", "tflite_gzip_bytes", "latency_ms"):
        assert key in written["baseline"]
    for key in (
        "accuracy",
        "keras_accuracy",
        "sparsity",
        "tflite_bytes",
        "tflite_gzip_bytes",
        "latency_ms",
    ):
        assert key in written["compressed"]
    data = (out / "model.tflite").read_bytes()
    import gzip

    assert written["compressed"]["tflite_bytes"] == len(data)
    assert written["compressed"]["tflite_gzip_bytes"] == len(gzip.compress(data, 9))
    assert written["ratio_gzip"] == pytest.approx(
        written["baseline"]["tflite_gzip_bytes"] / written["compressed"]["tflite_gzip_bytes"]
    )
