"""Prepare once / run many: the on-disk baseline cache, run_recipe on one Prepared, and the
split belonging to the dataset (the same files for a GUI run, `featherweight run` and
`featherweight compress`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.core.cache import CACHE_ENV
from engine.core.events import Reporter
from engine.pipeline import prepare as prep
from engine.pipeline.recipe import validate_recipe
from engine.pipeline.run import compress, run_recipe

DYNAMIC = {"schema_version": 1, "name": "dyn", "steps": [{"type": "quantize", "mode": "dynamic"}]}


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("FEATHERWEIGHT_DATA_DIR", str(tmp_path / "userdata"))


def _events() -> tuple[list[dict], Reporter]:
    events: list[dict] = []
    return events, Reporter(events.append)


def _no_measuring(*args, **kwargs):
    raise AssertionError("the baseline was measured again")


def test_second_compress_reuses_the_cached_baseline(tmp_path, monkeypatch):
    recipe = validate_recipe(DYNAMIC)
    first = compress("demo", "demo", recipe, tmp_path / "a")
    assert first["schema_version"] == 2
    assert first["baseline_source"] == "measured"
    entries = sorted(p.name for p in prep.baseline_cache_dir().iterdir())
    assert len(entries) == 2 and entries[0].endswith(".json") and entries[1].endswith(".tflite")

    monkeypatch.setattr(prep, "measure_baseline", _no_measuring)
    events, reporter = _events()
    second = compress("demo", "demo", recipe, tmp_path / "b", reporter=reporter)
    assert second["baseline_source"] == "cache"
    assert second["baseline"] == first["baseline"]  # every number, latency included
    assert second["ratio_gzip"] == pytest.approx(first["ratio_gzip"])
    assert (tmp_path / "b" / "baseline.tflite").read_bytes() == (
        tmp_path / "a" / "baseline.tflite"
    ).read_bytes()
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["baseline_source"] == "cache"
    assert any(e["type"] == "log" and "reused" in e["message"] for e in events)
    # Same stage events as a measuring run: baseline first, numbered out of the same count.
    starts = [(e["stage"], e["index"], e["count"]) for e in events if e.get("state") == "start"]
    assert starts == [("baseline", 0, 3), ("convert", 1, 3), ("evaluate", 2, 3)]

    # Another split is another key: measured (the patched function refuses).
    with pytest.raises(AssertionError, match="measured again"):
        compress("demo", "demo", recipe, tmp_path / "c", split_seed=1)


def test_corrupt_or_mismatched_cache_entries_are_ignored(tmp_path, monkeypatch):
    first = prep.prepare("demo", "demo")
    folder = prep.baseline_cache_dir()
    (entry,) = folder.glob("*.json")
    tflite = entry.with_suffix(".tflite")
    calls = []
    real = prep.measure_baseline

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prep, "measure_baseline", counting)
    entry.write_text('{"format": 1, "key": "trunc')  # a torn write
    again = prep.prepare("demo", "demo")
    assert again.baseline_source == "measured" and len(calls) == 1
    assert json.loads(entry.read_text())["key"] == entry.stem == first.cache_key  # rewritten
    tflite.write_bytes(tflite.read_bytes()[:-10])  # .tflite no longer matches its sha256
    assert prep.prepare("demo", "demo").baseline_source == "measured" and len(calls) == 2
    cached = prep.prepare("demo", "demo")
    assert cached.baseline_source == "cache" and len(calls) == 2
    assert cached.baseline_tflite == first.baseline_tflite
    assert not list(folder.glob(".*.tmp"))
    # Explicit defaults are the same split, hence the same key.
    assert prep.prepare("demo", "demo", (0, 0.1)).cache_key == first.cache_key


def test_run_recipe_runs_many_recipes_on_one_prepared(tmp_path, monkeypatch):
    events, reporter = _events()
    prepared = prep.prepare("demo", "demo", (0, 0.1), reporter=reporter)
    assert prepared.baseline_source == "measured"
    assert [e["stage"] for e in events if e.get("state") == "start"] == ["baseline"]
    weights = [w.copy() for w in prepared.loaded.model.get_weights()]
    monkeypatch.setattr(prep, "measure_baseline", _no_measuring)

    tune = validate_recipe(
        {
            "schema_version": 1,
            "name": "tune",
            "steps": [
                {"type": "finetune", "epochs": 1, "learning_rate": 0.01},
                {"type": "quantize", "mode": "float16"},
            ],
        }
    )
    a = run_recipe(prepared, tune, tmp_path / "tune")
    b = run_recipe(prepared, validate_recipe(DYNAMIC), tmp_path / "dyn")
    # The prepared model is untouched by training, so both runs start from the same model.
    for before, after in zip(weights, prepared.loaded.model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert a["baseline"] == b["baseline"] == prepared.baseline
    assert a["baseline_source"] == b["baseline_source"] == "measured"
    assert a["data"] == b["data"] == prepared.splits.describe()
    assert a["compressed"]["format"] == "float16" and b["compressed"]["format"] == "dynamic"
    # A conversion-only recipe converts the prepared model itself: its Keras accuracy is the
    # baseline's (measured once), the fine-tuned one is measured on the tuned model.
    assert b["compressed"]["keras_accuracy"] == prepared.baseline["keras_accuracy"]
    assert a["compressed"]["keras_accuracy"] == a["steps"][-1]["test_keras_accuracy"]
    for out in ("tune", "dyn"):
        assert (tmp_path / out / "metrics.json").is_file()
        assert (tmp_path / out / "baseline.tflite").read_bytes() == prepared.baseline_tflite


# --------------------------------------------------------------------------- the split


@pytest.fixture(scope="module")
def image_project(tmp_path_factory):
    """A 3-class image folder (10 PNGs of 8x8 per class) and a tiny 3-class model."""
    from engine.core.tfenv import keras2, tf

    root = tmp_path_factory.mktemp("split")
    data = root / "shapes"
    rng = np.random.default_rng(0)
    for c, name in enumerate(("circle", "square", "triangle")):
        (data / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 80, (8, 8, 3), dtype=np.uint8) + np.uint8(60 * c)
            (data / name / f"img{i:02d}.png").write_bytes(tf().io.encode_png(pixels).numpy())
    k = keras2()
    k.utils.set_random_seed(0)
    model = k.Sequential(
        [
            k.layers.Input((8, 8, 3)),
            k.layers.Conv2D(4, 3, activation="relu"),
            k.layers.GlobalAveragePooling2D(),
            k.layers.Dense(3, activation="softmax"),
        ]
    )
    model_path = root / "tiny.keras"
    model.save(model_path)
    return model_path, data


def test_gui_run_featherweight_run_and_compress_use_the_same_split(
    image_project, tmp_path, monkeypatch
):
    from engine.project import document as P
    from engine.service.jobs import JOBS

    model_path, data = image_project
    used: list[dict] = []
    real = prep.load_inputs

    def spy(*args, **kwargs):
        loaded, splits = real(*args, **kwargs)
        used.append({k: [p for p, _ in v] for k, v in splits.files.items()})
        return loaded, splits

    monkeypatch.setattr(prep, "load_inputs", spy)

    recipe = dict(DYNAMIC, seed=3)  # a recipe seed that is not the dataset's
    project = P.new_project()
    P.set_model(project, model_path)
    P.set_dataset(project, data)  # a new project's dataset: seed 0, fraction 0.1
    P.add_pending_run(project, recipe)
    path = P.save_project(project, tmp_path / "shapes.fwproj")

    # 1. `featherweight run`
    summary = P.run_project(path)
    assert summary["done"] == ["run-001"]
    # 2. the GUI: the compress job with the params the GUI sends, the split from the project
    params = {
        "model": str(model_path),
        "data": str(data),
        "scale": "auto",
        "allow_unsafe": False,
        "recipe": recipe,
        "out": str(tmp_path / "gui"),
        **P.split_params(P.load_project(path)),
    }
    assert P.split_params(P.load_project(path)) == {"split_seed": 0, "val_fraction": 0.1}
    gui = JOBS["compress"](params, Reporter())
    # 3. `featherweight compress MODEL --data DATA` (no split arguments)
    cli = compress(model_path, data, validate_recipe(recipe), tmp_path / "cli")

    assert len(used) == 3
    assert used[0] == used[1] == used[2]
    assert sum(len(v) for v in used[0].values()) == 30 and len(used[0]["test"]) == 6
    done = P.load_project(path).runs[0]
    assert done.metrics["data"] == gui["data"] == cli["data"]
    assert done.config["split"] == {"seed": 0, "val_fraction": 0.1}
    assert done.seeds == {"recipe": 3, "split": 0}
    # The recipe's seed (what the GUI used before) would have chosen other test images.
    _, other = real(model_path, data, "auto", False, (3, 0.1))
    assert [p for p, _ in other.files["test"]] != used[0]["test"]

    # A project with its own split: every path follows the dataset's seed and fraction.
    used.clear()
    P.set_dataset(project, data, seed=7, val_fraction=0.25)
    params.update(P.split_params(project), out=str(tmp_path / "gui7"))
    JOBS["compress"](params, Reporter())
    JOBS["check_data"](params, Reporter())
    compress(
        model_path,
        data,
        validate_recipe(recipe),
        tmp_path / "cli7",
        split_seed=7,
        val_fraction=0.25,
    )
    assert len(used) == 3 and used[0] == used[1] == used[2]
    assert used[0]["test"] != [p for p, _ in other.files["test"]]


def test_split_spec_defaults_and_errors():
    from engine.core.errors import DataError
    from engine.data.splits import SplitSpec

    assert SplitSpec.of(None) == SplitSpec(0, 0.1) == SplitSpec.of((None, None))
    assert SplitSpec.of({"seed": 4, "val_fraction": 0.2}) == SplitSpec(4, 0.2)
    for bad in ((-1, 0.1), (1, 0.95), (True, 0.1), "seed"):
        with pytest.raises(DataError):
            SplitSpec.of(bad)


def test_cache_dir_follows_xdg_and_the_override(monkeypatch, tmp_path):
    from engine.core.cache import cache_dir

    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("baselines") == tmp_path / "xdg" / "featherweight" / "baselines"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == Path(tmp_path / "mine")
