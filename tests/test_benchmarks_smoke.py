"""Smoke tests of the benchmark harness (``benchmarks/``); the full runs take minutes and are
not run here.

- the hand-written tfmot script runs the no-training recipe and its numbers match its files,
  sparsity measured on the exported ``.tflite`` as the engine measures it;
- it refuses, before any work, a step type or knob value it does not implement;
- its "engine schedule" is the engine's ``derive_schedule``;
- ``run.py`` turns results into ratios (median of alternated pairs, spread, causes of
  misses), a measured load sentence, RESULTS.md, the chart and the README's demo block;
- ``per_layer.py``, ``search.py`` and ``estimate.py`` check their sides and render.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, Any]]:
    """The benchmark modules, imported from benchmarks/ (not a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        import plain_tfmot
        import run

        yield {"plain": plain_tfmot, "run": run}
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.slow
def test_plain_script_writes_measured_int8_tflite(tmp_path: Path, bench: dict[str, Any]) -> None:
    plain_tfmot = bench["plain"]
    from engine.tflite.metrics import sparsity_report

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
    # Sparsity as the engine measures it: on the exported file.
    assert metrics["compressed"]["sparsity"] == sparsity_report(data)["sparsity"]
    assert {"baseline", "convert", "evaluate"} <= set(metrics["stage_s"])
    assert metrics["wall_s"] >= sum(metrics["stage_s"].values()) - 0.01


def test_plain_script_raises_on_a_step_it_does_not_implement(bench: dict[str, Any]) -> None:
    plain_tfmot = bench["plain"]
    recipe = plain_tfmot.read_recipe(ROOT / "resources" / "recipes" / "prune80_int8.json")
    unknown = {**recipe, "steps": [{"type": "identity"}, *recipe["steps"]]}
    with pytest.raises(plain_tfmot.NotImplementedInPlainScript, match="'identity'"):
        plain_tfmot.run_recipe(unknown, seed=0)
    # A knob value it does not implement is refused too, not silently ignored.
    steps = [dict(s) for s in recipe["steps"]]
    steps[0]["structured_2_4"] = True
    with pytest.raises(plain_tfmot.NotImplementedInPlainScript, match="structured_2_4"):
        plain_tfmot.run_recipe({**recipe, "steps": steps}, seed=0)
    # Every step type of today's recipe format is implemented.
    from engine.pipeline.recipe import STEP_SPECS

    for kind in ("distill", "prune", "cluster", "finetune", "qat", "quantize"):
        assert kind in STEP_SPECS and kind in plain_tfmot.STEP_HANDLERS


def test_plain_script_schedules(bench: dict[str, Any]) -> None:
    plain_tfmot = bench["plain"]
    from engine.techniques.prune import derive_schedule

    guide = plain_tfmot.prune_schedule_args(1294, 32, 6, "guide")
    assert guide == {"begin_step": 0, "end_step": 41 * 6, "frequency": 100}
    same = plain_tfmot.prune_schedule_args(1294, 32, 6, "engine")
    sched = derive_schedule(41, 6)
    assert same == {
        "begin_step": sched.begin_step,
        "end_step": sched.end_step,
        "frequency": sched.frequency,
    }
    assert same != guide


def _fake_runs(ratio: float) -> list[dict[str, Any]]:
    """Runs of two recipes over three seeds; the engine takes ``ratio`` x plain's time."""
    runs: list[dict[str, Any]] = []
    for seed in range(3):
        for name, base in (("int8_ptq", 2.0), ("prune80_int8", 6.0)):
            for side, factor in (
                ("engine", ratio),
                ("plain", 1.0),
                ("engine_cached", ratio * 0.9),
                ("plain_engine_schedule", 1.0),
            ):
                if side == "plain_engine_schedule" and name == "int8_ptq":
                    continue
                eng = side.startswith("engine")
                runs.append(
                    {
                        "side": side,
                        "recipe": name,
                        "seed": seed,
                        "wall_s": base * factor,
                        "cpu_s": base * factor * 1.1,
                        "ratio_gzip": 3.72 if eng else 3.73,
                        "ratio_raw": 3.76,
                        "accuracy_drop": 0.0,
                        "baseline_accuracy": 0.975,
                        "baseline_params": 151_000,
                        "accuracy": 0.975,
                        "tflite_bytes": 161_832 if eng else 161_744,
                        "tflite_gzip_bytes": 100_117 if eng else 100_000,
                        "baseline_gzip_bytes": 372_000,
                        "sparsity": 0.8,
                        "stage_s": {"baseline": 0.8 * (ratio if eng else 1.0), "convert": 0.6},
                        "load": {"others_cores": 0.1, "wall_s": 1.0},
                        "cache_files_before": 2 if side == "engine_cached" else 0,
                        "cache_files_after": 2,
                    }
                )
    return runs


def test_run_reports_medians_spread_and_causes(
    tmp_path: Path, bench: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = bench["run"]
    recipes = ["int8_ptq", "prune80_int8"]
    runs = _fake_runs(1.2)
    summary = run.summarize(runs, recipes)
    together = summary["_together"]
    assert together["engine_vs_plain"]["pairs"] == 3
    assert together["engine_vs_plain"]["wall"]["median"] == pytest.approx(1.2)
    assert together["cached_vs_plain"]["wall"]["median"] == pytest.approx(1.08)
    assert not together["targets"]["together_wall"]
    assert "baseline" in together["causes"]["together_wall"]  # the stage that differs
    # The gzip miss is explained (117 bytes of metadata), the schedule row is per recipe.
    assert not summary["int8_ptq"]["targets"]["gzip_ratio"]
    assert "+117 bytes" in summary["int8_ptq"]["causes"]["gzip_ratio"]
    assert "engine_vs_plain_same_schedule" in summary["prune80_int8"]
    assert "plain_engine_schedule" not in summary["int8_ptq"]["sides"]
    assert run.summarize(_fake_runs(1.0), recipes)["_together"]["targets"]["together_wall"]

    load = {
        "wall_s": 100.0,
        "own_cpu_s": 150.0,
        "others_cpu_s": 60.0,
        "others_cores": 0.6,
        "loadavg_before": [1.5, 1.0, 1.0],
        "loadavg_after": [2.5, 1.0, 1.0],
    }
    compare = {
        "command": "python benchmarks/run.py --quick",
        "finished_utc": "2026-01-01 00:00",
        "total_minutes": 1.0,
        "seeds": [0, 1, 2],
        "recipes": recipes,
        "runs": runs,
        "summary": summary,
        "load": load,
        "cache_note": "2 file(s)",
    }
    res = {"schema": 2, "machine": {"cores": 2, "cpu": "x", "platform": "y", "versions": {}}}
    res["compare"] = compare
    (tmp_path / "results.json").write_text(json.dumps(res))
    (tmp_path / "RESULTS.md").write_text("old\n<!-- notes -->\nkept by hand\n")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- bench:demo-table -->\nold table 3.84×\n<!-- /bench -->\nafter\n")
    run.render(tmp_path, readme)

    md = (tmp_path / "RESULTS.md").read_text()
    assert "kept by hand" in md and "old\n" not in md
    assert "other processes used 60 CPU-s in 100 s" in md  # measured, not a fixed sentence
    assert "**1.20 (1.20–1.20)**" in md  # together: median (min–max) of the pairs
    assert "plain, same pruning schedule as the engine" in md
    assert "engine, baseline cached" in md
    assert (tmp_path / "accuracy_vs_size.png").stat().st_size > 1000
    text = readme.read_text()
    assert "3.84" not in text and text.endswith("<!-- /bench -->\nafter\n")
    assert "| `int8_ptq.json` — post-training int8 | 3.72× | 3.76× | 0.0 pts |" in text
    # The real README carries the markers the benchmark writes into.
    real = (ROOT / "README.md").read_text()
    assert real.count(run.README_BEGIN) == 1 and real.count(run.README_END) == 1


def test_load_meter_measures_this_machine(bench: dict[str, Any]) -> None:
    run = bench["run"]
    a = run.load_snapshot()
    sum(i * i for i in range(200_000))  # some CPU of our own
    load = run.load_between(a, run.load_snapshot())
    assert load["wall_s"] > 0 and load["own_cpu_s"] >= 0 and load["others_cpu_s"] >= 0
    assert len(load["loadavg_before"]) == 3
    assert "of 2 cores" in run.load_sentence({**load, "others_cores": 0.5}, "it") or (
        run.os.cpu_count() != 2
    )


def test_per_layer_benchmark_checks_same_work_and_renders(tmp_path: Path) -> None:
    """``benchmarks/per_layer.py``: the two sides of a comparison may differ only in the knob
    under test; the summary is mean and sd over seeds; the report states what it decided."""
    sys.path.insert(0, str(BENCH))
    try:
        import per_layer
    finally:
        sys.path.remove(str(BENCH))
    a = [{"type": "prune", "epochs": 4, "allocation": "uniform"}, per_layer.INT8]
    b = [{"type": "prune", "epochs": 4, "allocation": "erk"}, per_layer.INT8]
    per_layer.same_work(a, b, {"allocation"})
    with pytest.raises(AssertionError, match="sides differ"):
        per_layer.same_work(a, [{**b[0], "epochs": 5}, per_layer.INT8], {"allocation"})
    rows = [
        {"recipe": r, "seed": s, "drop_pts": d, "ratio_raw": 3.0}
        for r, s, d in [("uniform", 0, 2.0), ("erk", 0, 0.5), ("uniform", 1, 3.0), ("erk", 1, 0.5)]
    ]
    summ = per_layer.summary(rows)
    assert summ["uniform"]["mean_drop"] == 2.5 and summ["erk"]["sd_drop"] == 0.0
    data = {"models": {"demo": {"allocation": {"target": 0.9, "rows": rows, "summary": summ}}}}
    out = tmp_path / "PER_LAYER.md"
    per_layer.render(data, out)
    text = out.read_text()
    assert "| uniform | +2.50 | 0.71 | 3.00× | 2 |" in text
    assert "against uniform, the mean drop is lower with erk by +2.00 points" in text


def test_search_benchmark_reports_medians_and_draws_frontiers(tmp_path: Path) -> None:
    """``benchmarks/search.py``: the done table and its medians (gzip/raw ratios, test drop
    re-measured from best/), the frontier points of a search document, the frontier PNG."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_search", BENCH / "search.py")
    assert spec and spec.loader
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    doc = {
        "objective": "gzip",
        "baseline": {"val_accuracy": 0.97},
        "frontier": [2, 0],
        "trials": [
            {"number": 0, "state": "complete", "tflite_gzip_bytes": 9000, "val_accuracy": 0.98},
            {"number": 1, "state": "pruned", "tflite_gzip_bytes": None, "val_accuracy": None},
            {"number": 2, "state": "complete", "tflite_gzip_bytes": 3000, "val_accuracy": 0.96},
        ],
    }
    points = search._trial_points(doc)
    assert [p["number"] for p in points] == [0, 2]  # the pruned trial has no size
    assert [p["number"] for p in search._frontier_points(doc)] == [2, 0]
    rows = [
        {
            "case": "done",
            "model": "demo",
            "objective": "gzip",
            "seed": s,
            "exit": 0,
            "wall_s": 600.0,
            "ratio_gzip": g,
            "ratio_raw": 30.0,
            "test_drop_pts": d,
            "all_trials": points,
            "frontier": search._frontier_points(doc),
            "baseline_val": 97.0,
        }  # fmt: skip
        for s, g, d in [(0, 100.0, 0.5), (1, 60.0, -0.3), (2, 140.0, 1.2)]
    ]
    data = {"rows": rows, "date": "2026-12-01", "time": "10m"}
    pngs = search.draw_frontiers(data, tmp_path)
    assert [p.name for p in pngs] == ["search_frontier_demo_gzip.png"]
    assert pngs[0].stat().st_size > 5000
    out = tmp_path / "SEARCH.md"
    search.render(data, out)
    text = out.read_text()
    assert "median gzip ratio 100.0×" in text and "median test drop 0.5 points" in text
    assert "![frontier](search_frontier_demo_gzip.png)" not in text  # no compare rows


def test_estimate_benchmark_alternates_and_flags_misses(tmp_path: Path) -> None:
    """``benchmarks/estimate.py``: every recipe it times is a valid recipe with an estimate,
    each repeat runs the recipes in the other order after an untimed warm-up, and a recipe
    whose estimate is off by more than a factor of 3 is reported as a miss."""
    from benchmarks import estimate

    calls: list[str] = []
    names = list(estimate.RECIPES)

    def fake_compress(model: str, data: str, recipe: Any, out: Path) -> None:
        assert (model, data) == ("demo", "demo")
        calls.append(recipe.name)

    res = estimate.time_model("demo", names, 2, tmp_path, compress=fake_compress)
    assert calls == ["warmup", *names, *names[::-1]]
    assert all(res["estimates"][n] > 0 for n in names)
    assert [r["recipe"] for r in res["rows"]] == names
    est = {"fast": 10.0, "slow": 10.0}
    runs = [
        {"recipe": n, "repeat": i, "seconds": s, "load": {"others_cores": 0.5}}
        for n, i, s in [("fast", 0, 8.0), ("fast", 1, 12.0), ("slow", 0, 40.0), ("slow", 1, 50.0)]
    ]
    rows = {r["recipe"]: r for r in estimate.summarize(est, runs)}
    assert rows["fast"]["ratio"]["median"] == pytest.approx((10 / 8 + 10 / 12) / 2)
    assert not rows["fast"]["miss"] and rows["slow"]["miss"]
    model = {**res, "rows": list(rows.values()), "command": "c", "date": "d"}
    text = estimate.render({"notes": "", "models": [model]})
    assert "| `fast` | 10.0 s | 10.0 s (8.0-12.0) | 1.04 (0.83-1.25) | 0.50 | yes |" in text
    assert "| `slow` | 10.0 s | 45.0 s (40.0-50.0) | 0.23 (0.20-0.25) | 0.50 | MISS |" in text
