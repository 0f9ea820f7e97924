"""End-to-end: recipes on the demo, the product's promised figures, metrics.json honesty,
events, cancel and bad output folders."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

from engine.pipeline.recipe import load_recipe, validate_recipe

RECIPES = Path(__file__).resolve().parent.parent / "resources" / "recipes"
_RUNS: dict[str, tuple[dict, Path]] = {}


@pytest.fixture(scope="session")
def recipe_run(tmp_path_factory):
    """Run ``featherweight compress demo --data demo --recipe R --out D --json`` once per
    recipe per session; returns (metrics printed on stdout, out dir)."""
    from engine.cli import main

    def run(name: str) -> tuple[dict, Path]:
        if name not in _RUNS:
            out = tmp_path_factory.mktemp(name)
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                code = main(
                    [
                        "compress",
                        "demo",
                        "--data",
                        "demo",
                        "--recipe",
                        str(RECIPES / f"{name}.json"),
                        "--out",
                        str(out),
                        "--json",
                    ]
                )
            assert code == 0
            _RUNS[name] = (json.loads(buf.getvalue()), out)
        return _RUNS[name]

    return run


def test_example_recipes_are_valid():
    names = sorted(p.stem for p in RECIPES.glob("*.json"))
    assert names == [
        "distill05_int8",
        "int8_ptq",
        "pcqat_int8",
        "prune80_cluster16_int8",
        "prune80_int8",
    ]
    for name in names:
        assert load_recipe(RECIPES / f"{name}.json").final_quantize["mode"] == "int8"


# --- The figures promised in the issue ("Done means") -----------------------------------


@pytest.mark.slow
def test_int8_ptq_target(recipe_run):
    m, _ = recipe_run("int8_ptq")
    assert m["ratio_gzip"] >= 3.5
    assert m["accuracy_drop"] <= 0.01


@pytest.mark.slow
def test_prune80_int8_target(recipe_run):
    m, _ = recipe_run("prune80_int8")
    assert m["ratio_gzip"] >= 9
    assert m["accuracy_drop"] <= 0.015
    assert m["compressed"]["sparsity"] >= 0.79


@pytest.mark.slow
def test_prune80_cluster16_int8_target(recipe_run):
    m, _ = recipe_run("prune80_cluster16_int8")
    assert m["ratio_gzip"] >= 12
    assert m["accuracy_drop"] <= 0.02


@pytest.mark.slow
def test_pcqat_keeps_zeros_and_clusters_in_the_int8_file(recipe_run):
    from engine.tflite.metrics import kernel_weights

    m, out = recipe_run("pcqat_int8")
    assert m["accuracy_drop"] <= 0.02
    kernels = kernel_weights(out / "model.tflite", ["conv1", "conv2", "dense", "classifier"])
    assert set(kernels) == {"conv1", "conv2", "dense", "classifier"}
    for name, k in kernels.items():
        assert k["dtype"] == "int8"
        values = k["values"]
        assert np.all(k["zero_point"] == 0)  # symmetric weights: zero is the value 0
        assert (values == 0).mean() >= 0.79, name
        per_channel = np.moveaxis(values, k["axis"], 0).reshape(values.shape[k["axis"]], -1)
        assert max(len(np.unique(row)) for row in per_channel) <= 16, name
    assert m["compressed"]["io"]["input"]["dtype"] == "int8"
    assert m["compressed"]["io"]["input"]["scale"] > 0


@pytest.mark.slow
def test_distill_half_width_int8_target(recipe_run):
    m, _ = recipe_run("distill05_int8")
    assert m["ratio_gzip"] >= 12
    assert m["accuracy_drop"] <= 0.03
    assert m["compressed"]["params"] < m["baseline"]["params"] / 3


# --- metrics.json is what the files say ----------------------------------------------------


def _litert_accuracy(path: Path, splits) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x, y = splits.arrays("test")
    hits = 0
    for i in range(len(y)):
        xi = x[i : i + 1]
        if inp["dtype"] != np.float32:
            s, z = inp["quantization"]
            xi = np.clip(np.round(xi / s + z), -128, 127).astype(inp["dtype"])
        interp.set_tensor(inp["index"], xi)
        interp.invoke()
        hits += int(np.argmax(interp.get_tensor(out["index"])[0]) == y[i])
    return hits / len(y)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["prune80_int8", "pcqat_int8"])
def test_metrics_json_equals_remeasurement_of_the_files(name, recipe_run, demo_splits):
    from engine.core.tfenv import keras2

    printed, out = recipe_run(name)
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == printed
    for key in (
        "baseline",
        "compressed",
        "ratio_gzip",
        "ratio_raw",
        "accuracy_drop",
        "recipe",
        "data",
        "versions",
        "latency_threads",
        "timings",
        "series",
        "warnings",
    ):
        assert key in on_disk, key
    b, c = on_disk["baseline"], on_disk["compressed"]
    for block in (b, c):
        for key in (
            "accuracy",
            "keras_accuracy",
            "params",
            "tflite_bytes",
            "tflite_gzip_bytes",
            "latency_ms",
        ):
            assert key in block, key
    for key in ("sparsity", "per_layer_sparsity"):
        assert key in c
    check = c["int8_check"]
    if c["format"] == "int8":  # every int8 file was compared with float on validation
        assert check["split"] == "val" and check["max_drop_points"] == 2.0
        assert check["float_accuracy"] is not None and check["int8_accuracy"] is not None
        assert c["full_integer"] is True and check["keep_float"] == []
    else:
        assert check is None and c["full_integer"] is None
    assert c["conversion_notes"] == []  # a CNN: nothing to say
    model = (out / "model.tflite").read_bytes()
    base = (out / "baseline.tflite").read_bytes()
    assert c["tflite_bytes"] == len(model)
    assert c["tflite_gzip_bytes"] == len(gzip.compress(model, 9))
    assert b["tflite_bytes"] == len(base)
    assert b["tflite_gzip_bytes"] == len(gzip.compress(base, 9))
    assert on_disk["ratio_gzip"] == pytest.approx(b["tflite_gzip_bytes"] / c["tflite_gzip_bytes"])
    assert on_disk["ratio_raw"] == pytest.approx(b["tflite_bytes"] / c["tflite_bytes"])
    assert c["accuracy"] == pytest.approx(_litert_accuracy(out / "model.tflite", demo_splits))
    assert b["accuracy"] == pytest.approx(_litert_accuracy(out / "baseline.tflite", demo_splits))
    assert on_disk["accuracy_drop"] == pytest.approx(b["accuracy"] - c["accuracy"])
    assert c["latency_ms"] > 0 and on_disk["latency_threads"] == 1
    # The saved Keras model loads and scores like the metrics say.
    from engine.techniques.training import keras_accuracy

    if "qat" in [s["type"] for s in on_disk["recipe"]["steps"]]:
        from engine.core.tfenv import tfmot

        keras_file = on_disk["files"]["keras"]
        with tfmot().quantization.keras.quantize_scope():
            keras_model = keras2().models.load_model(out / keras_file, compile=False)
        if keras_file == "model.keras":  # tfmot could not save the PCQAT model itself
            assert any("before QAT" in w for w in on_disk["warnings"])
            assert keras_model.count_params() == c["params"]
            keras_model = None
    else:
        assert on_disk["files"]["keras"] == "model.keras"
        keras_model = keras2().models.load_model(out / "model.keras", compile=False)
    if keras_model is not None:
        assert keras_accuracy(keras_model, demo_splits) == pytest.approx(c["keras_accuracy"])
    assert 0.79 <= c["sparsity"] <= 1.0
    assert set(c["per_layer_sparsity"]) == {"conv1", "conv2", "dense", "classifier"}
    assert json.loads((out / "recipe.json").read_text()) == on_disk["recipe"]
    assert not [p for p in out.iterdir() if p.name.startswith(".featherweight-partial")]


# --- events, sparse encoding, fine-tuning after pruning --------------------------------


@pytest.fixture(scope="module")
def evented_run(tmp_path_factory):
    from engine.core.events import Reporter
    from engine.pipeline.run import compress

    recipe = validate_recipe(
        {
            "schema_version": 1,
            "name": "events",
            "seed": 1,
            "batch_size": 64,
            "steps": [
                {"type": "prune", "target_sparsity": 0.8, "epochs": 2, "learning_rate": 5e-4},
                {"type": "finetune", "epochs": 1, "learning_rate": 1e-4},
                {
                    "type": "quantize",
                    "mode": "int8",
                    "io": "int8",
                    "sparse": True,
                    "calibration_samples": 100,
                },
            ],
        }
    )
    events: list = []
    out = tmp_path_factory.mktemp("events")
    metrics = compress("demo", "demo", recipe, out, reporter=Reporter(events.append))
    return metrics, events, out


@pytest.mark.slow
def test_events_cover_every_stage_and_epoch(evented_run):
    metrics, events, _ = evented_run
    stages = [(e["stage"], e["state"]) for e in events if e["type"] == "stage"]
    names = ["baseline", "prune", "finetune", "convert", "evaluate"]
    assert stages == [(n, s) for n in names for s in ("start", "end")]
    assert {e["count"] for e in events if e["type"] == "stage"} == {5}
    points = [e for e in events if e["type"] == "metric"]
    assert [p["epoch"] for p in points] == [1.0, 2.0, 3.0]
    assert [p["stage"] for p in points] == ["prune", "prune", "finetune"]
    for p in points:
        assert {
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "sparsity",
            "est_tflite_bytes",
            "est_gzip_bytes",
        } <= set(p["values"])
    assert points[-1]["values"]["sparsity"] >= 0.79  # fine-tuning kept the pruned zeros
    assert any(e["type"] == "progress" and e["stage"] == "prune" for e in events)
    assert any(e["type"] == "log" for e in events)
    assert metrics["series"] == [{k: v for k, v in p.items() if k != "type"} for p in points]
    assert set(metrics["timings"]) == set(names)


@pytest.mark.slow
def test_sparse_int8_run_is_smaller_raw_and_reports_its_io(evented_run):
    metrics, _, out = evented_run
    c = metrics["compressed"]
    assert c["sparse_encoding"] and c["sparsity_measured_on"] == "non-sparse twin conversion"
    assert c["sparsity"] >= 0.79
    assert metrics["ratio_raw"] > 4.5  # int8 alone gives ~3.8x raw
    assert c["io"]["input"]["dtype"] == "int8" and c["io"]["output"]["dtype"] == "int8"
    assert metrics["accuracy_drop"] <= 0.03
    assert (out / "model.tflite").stat().st_size == c["tflite_bytes"]


# --- cancel and bad output folders -----------------------------------------------------


def test_cancel_mid_training_leaves_nothing_finished(tmp_path):
    from engine.core.errors import Cancelled
    from engine.core.events import CancelToken, Reporter
    from engine.pipeline.run import compress

    recipe = validate_recipe(
        {
            "schema_version": 1,
            "steps": [{"type": "prune", "epochs": 20}, {"type": "quantize", "mode": "int8"}],
        }
    )
    token = CancelToken()
    seen: list = []

    def on_event(event: dict) -> None:
        seen.append(event)
        if event["type"] == "progress" and event["stage"] == "prune" and event["step"] >= 5:
            token.cancel()

    out = tmp_path / "run"
    with pytest.raises(Cancelled):
        compress("demo", "demo", recipe, out, reporter=Reporter(on_event, token))
    assert not (out / "model.tflite").exists()
    assert not (out / "metrics.json").exists()
    assert not out.exists() or not any(out.iterdir())
    assert not [e for e in seen if e["type"] == "metric"]  # stopped within the first epoch


def test_cancel_keeps_an_earlier_finished_run_intact(tmp_path):
    from engine.core.errors import Cancelled
    from engine.core.events import CancelToken, Reporter
    from engine.pipeline.run import compress

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"old": true}')
    recipe = validate_recipe({"schema_version": 1, "steps": [{"type": "quantize"}]})
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        compress("demo", "demo", recipe, out, reporter=Reporter(None, token))
    assert json.loads((out / "metrics.json").read_text()) == {"old": True}
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_unwritable_output_folder_is_bad_input_before_any_work(where, tmp_path):
    from engine.core.errors import BadInputError
    from engine.core.events import Reporter
    from engine.pipeline.run import compress

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "sub"
    events: list = []
    recipe = validate_recipe({"schema_version": 1, "steps": [{"type": "quantize"}]})
    with pytest.raises(BadInputError, match="not_a_folder"):
        compress("demo", "demo", recipe, out, reporter=Reporter(events.append))
    assert events == []  # refused before the baseline stage started
    assert blocker.read_text() == "x"


def test_format_metrics_shows_both_ratios_and_the_drop():
    from engine.pipeline.run import format_metrics

    block = {
        "accuracy": 0.9,
        "tflite_bytes": 4096,
        "tflite_gzip_bytes": 2048,
        "latency_ms": 0.1,
        "sparsity": 0.0,
    }
    text = format_metrics(
        {
            "baseline": block,
            "compressed": {
                **block,
                "accuracy": 0.89,
                "tflite_bytes": 1024,
                "tflite_gzip_bytes": 512,
                "sparsity": 0.8,
                "format": "int8",
            },
            "ratio_gzip": 4.0,
            "ratio_raw": 4.0,
            "accuracy_drop": 0.01,
            "recipe": {"name": "r"},
            "warnings": ["w1"],
        }
    )
    assert "ratio gzip 4.00×" in text and "ratio raw 4.00×" in text
    assert "accuracy drop 1.00 pts" in text and "80.0 %" in text and "warning: w1" in text
    assert "4.0 KB" in text and "512 B" in text and "89.00 %" in text and "0.100 ms" in text


@pytest.mark.slow
def test_evaluate_baseline_and_check_data(demo_splits):
    from engine.pipeline.run import check_data, evaluate_baseline

    base = evaluate_baseline("demo", "demo")
    assert base["accuracy"] >= 0.97 and base["params"] == 151306
    assert base["tflite_bytes"] > 4 * base["params"]
    described = check_data("demo", "demo")
    assert described["n_test"] == 360 and described["num_classes"] == 10
