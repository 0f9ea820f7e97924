"""Featherweight against hand-written scripts, and the desktop app against headless.

One command (from the repository root)::

    python benchmarks/run.py            # 5 seeds, every example recipe, 3 GUI pairs
    python benchmarks/run.py --quick    # 3 seeds, every example recipe, 1 GUI pair
    python benchmarks/run.py --large    # the large-model case only (ResNet50, int8 PTQ)

Writes ``benchmarks/results.json`` (a run replaces only the sections it ran),
``benchmarks/RESULTS.md`` (written from results.json; anything below the ``<!-- notes -->``
line of an existing RESULTS.md is kept), ``benchmarks/accuracy_vs_size.png`` and the
measured demo table in the README (between ``<!-- bench:demo-table -->`` and
``<!-- /bench -->``).

1. Engine vs plain tfmot script (``benchmarks/plain_tfmot.py``), in this process. Every
   recipe is first run once on both sides untimed (warm-up). Then for every seed and recipe:
   a pair "engine" (``engine.pipeline.run.compress`` with an EMPTY baseline cache: a fresh
   ``FEATHERWEIGHT_CACHE_DIR``) / "plain" (tfmot guide defaults), and a second pair
   "engine, baseline cached" (the same cache folder, now warm) / "plain, same pruning
   schedule as the engine" (recipes with a prune step only). Which side runs first
   alternates per recipe and per seed. Both sides are timed from loading the model file
   to the measured ``.tflite`` (Python imports excluded on both sides). Sparsity is measured
   on the exported ``.tflite`` on both sides (``engine.tflite.metrics``). The load the rest
   of the machine puts on it (``/proc/stat`` minus this process) is measured for every run.
2. GUI vs headless: the same recipe through the real app (``benchmarks/gui_probe.py``,
   offscreen, real job runner and worker, live charts) and through a bare engine worker
   (``python -m engine.service.worker`` driven over its JSON-lines pipes, no Qt), alternating,
   each with a fresh worker process and a fresh baseline cache folder.
3. Start-up: ``python -m gui --quit-after-paint`` against ``python -c "import tensorflow"``.
4. ``--large`` (not in CI): a Keras 3 ResNet50 (``benchmarks/models.py``) through the
   engine's one-step int8 PTQ recipe vs ``benchmarks/plain_keras3_ptq.py`` (Keras 3 load,
   float and int8 ``TFLiteConverter``, LiteRT accuracy of both on the same test split),
   warm-up on both sides, then alternated pairs with an empty baseline cache; when the wall
   ratio is over 1.10 one more engine run is profiled with pyinstrument.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

RECIPES = ("int8_ptq", "prune80_int8", "prune80_cluster16_int8", "pcqat_int8", "distill05_int8")
GUI_RECIPE = "prune80_int8"  # training with live charts, short enough to repeat
RECIPE_DIR = ROOT / "resources" / "recipes"
NOTES_MARK = "<!-- notes -->"
README = ROOT / "README.md"
README_BEGIN = "<!-- bench:demo-table -->"
README_END = "<!-- /bench -->"
SIDES = ("engine", "plain", "engine_cached", "plain_engine_schedule")
SIDE_LABELS = {
    "engine": "engine (empty baseline cache)",
    "plain": "plain, tfmot guide defaults",
    "engine_cached": "engine, baseline cached",
    "plain_engine_schedule": "plain, same pruning schedule as the engine",
}
TOGETHER_LIMIT = 1.05  # all demo recipes together: wall and CPU, median of pairs
LARGE_LIMIT = 1.10  # large model int8 PTQ, wall
TARGETS = {
    "gzip_ratio": "engine mean gzip ratio >= plain's (guide defaults)",
    "accuracy_drop": "engine mean accuracy drop <= plain's + 0.5 points",
    "together_wall": f"all recipes together: engine/plain wall <= {TOGETHER_LIMIT} (median)",
    "together_cpu": f"all recipes together: engine/plain CPU <= {TOGETHER_LIMIT} (median)",
    "large_wall": f"large model int8 PTQ: engine/user script wall <= {LARGE_LIMIT}",
    "gui_time": "GUI time <= 1.05 x headless",
    "pause": "longest event-loop pause < 50 ms",
    "launch": "window painted < 0.5 x `import tensorflow`",
}
RECIPE_TITLES = {
    "int8_ptq": "post-training int8",
    "prune80_int8": "prune 80 % + int8",
    "prune80_cluster16_int8": "+ cluster 16, sparsity kept",
    "pcqat_int8": "prune + cluster + QAT → int8 (PCQAT)",
    "distill05_int8": "distil to 0.5× width + int8",
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fresh_cache_dir(parent: Path, name: str = "cache") -> Path:
    """A new, empty folder for the engine's baseline cache."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=parent))


def use_cache_dir(path: Path) -> None:
    """Point this process's engine cache (and the XDG fallback) at ``path``."""
    os.environ["FEATHERWEIGHT_CACHE_DIR"] = str(path)
    os.environ["XDG_CACHE_HOME"] = str(path)


def files_under(path: Path) -> int:
    return sum(1 for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def child_env(cache_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if cache_dir is not None:
        env["FEATHERWEIGHT_CACHE_DIR"] = str(cache_dir)
        env["XDG_CACHE_HOME"] = str(cache_dir)
    return env


def mean_sd(values: list[float]) -> dict[str, float]:
    vals = [float(v) for v in values]
    return {
        "mean": statistics.fmean(vals) if vals else float("nan"),
        "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "n": len(vals),
    }


def spread(values: list[float]) -> dict[str, Any]:
    vals = sorted(float(v) for v in values)
    if not vals:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "values": []}
    return {
        "median": statistics.median(vals),
        "min": vals[0],
        "max": vals[-1],
        "values": [round(v, 4) for v in values],
    }


# -- machine load -----------------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def load_snapshot() -> dict[str, Any]:
    """Busy CPU seconds of the whole machine (``/proc/stat``), this process's CPU seconds
    (itself and its waited-for children), the load average and the time."""
    busy = float("nan")
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        busy = (user + nice + system + irq + softirq + steal) / CLK_TCK
    except (OSError, ValueError):
        pass
    t = os.times()
    return {
        "t": time.perf_counter(),
        "busy_s": busy,
        "own_s": t.user + t.system + t.children_user + t.children_system,
        "loadavg": list(os.getloadavg()),
    }


def load_between(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What the rest of the machine did between two snapshots."""
    wall = b["t"] - a["t"]
    others = max(0.0, (b["busy_s"] - a["busy_s"]) - (b["own_s"] - a["own_s"]))
    return {
        "wall_s": round(wall, 3),
        "own_cpu_s": round(b["own_s"] - a["own_s"], 3),
        "others_cpu_s": round(others, 3),
        "others_cores": round(others / wall, 3) if wall > 0 else float("nan"),
        "loadavg_before": a["loadavg"],
        "loadavg_after": b["loadavg"],
    }


def load_sentence(load: dict[str, Any], what: str) -> str:
    cores = os.cpu_count() or 1
    share = load["others_cores"] / cores
    verdict = (
        "a quiet machine"
        if share < 0.05
        else "a lightly used machine"
        if share < 0.2
        else "a busy machine: absolute times are noisy, ratios come from alternated pairs"
    )
    return (
        f"Machine load during {what} (measured): other processes used "
        f"{load['others_cpu_s']:.0f} CPU-s in {load['wall_s']:.0f} s, i.e. "
        f"{load['others_cores']:.2f} of {cores} cores on average ({verdict}); load average "
        f"{load['loadavg_before'][0]:.1f} before, {load['loadavg_after'][0]:.1f} after."
    )


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    a = load_snapshot()
    out = fn(*args, **kwargs)
    return out, load_between(a, load_snapshot())


# -- 1. engine vs plain ---------------------------------------------------------------------
def has_prune(name: str) -> bool:
    import plain_tfmot

    return any(
        s["type"] == "prune" for s in plain_tfmot.read_recipe(RECIPE_DIR / f"{name}.json")["steps"]
    )


def run_engine(
    name: str, seed: int, out: Path, cache: Path, side: str = "engine"
) -> dict[str, Any]:
    from engine.pipeline.recipe import load_recipe
    from engine.pipeline.run import compress

    recipe = load_recipe(RECIPE_DIR / f"{name}.json")
    recipe.seed = seed
    use_cache_dir(cache)
    files_before = files_under(cache)
    c0 = time.process_time()
    t0 = time.perf_counter()
    # The plain script splits with load_data(..., seed=seed): the engine must use that split.
    m = compress("demo", "demo", recipe, out, split_seed=seed)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if m["data"]["seed"] != seed:
        raise RuntimeError(f"engine split seed {m['data']['seed']} != {seed}: not the same split")
    return {
        "side": side,
        "recipe": name,
        "seed": seed,
        "wall_s": wall,
        "cpu_s": cpu,
        "ratio_gzip": m["ratio_gzip"],
        "ratio_raw": m["ratio_raw"],
        "accuracy_drop": m["accuracy_drop"],
        "baseline_accuracy": m["baseline"]["accuracy"],
        "baseline_params": m["baseline"].get("params"),
        "accuracy": m["compressed"]["accuracy"],
        "tflite_bytes": m["compressed"]["tflite_bytes"],
        "tflite_gzip_bytes": m["compressed"]["tflite_gzip_bytes"],
        "baseline_gzip_bytes": m["baseline"]["tflite_gzip_bytes"],
        "sparsity": m["compressed"]["sparsity"],
        "stage_s": m.get("timings", {}),
        "cache_files_before": files_before,
        "cache_files_after": files_under(cache),
    }


def run_plain(name: str, seed: int, out: Path, schedule: str = "guide") -> dict[str, Any]:
    import plain_tfmot

    recipe = plain_tfmot.read_recipe(RECIPE_DIR / f"{name}.json")
    recipe["seed"] = seed
    c0 = time.process_time()
    m = plain_tfmot.run_recipe(recipe, seed, out, prune_schedule=schedule)
    cpu = time.process_time() - c0  # includes the untimed sparsity read (a few ms)
    return {
        "side": "plain" if schedule == "guide" else "plain_engine_schedule",
        "recipe": name,
        "seed": seed,
        "wall_s": m["wall_s"],
        "cpu_s": cpu,
        "ratio_gzip": m["ratio_gzip"],
        "ratio_raw": m["ratio_raw"],
        "accuracy_drop": m["accuracy_drop"],
        "baseline_accuracy": m["baseline"]["accuracy"],
        "baseline_params": m["baseline"]["params"],
        "accuracy": m["compressed"]["accuracy"],
        "tflite_bytes": m["compressed"]["tflite_bytes"],
        "tflite_gzip_bytes": m["compressed"]["tflite_gzip_bytes"],
        "baseline_gzip_bytes": m["baseline"]["tflite_gzip_bytes"],
        "sparsity": m["compressed"]["sparsity"],
        "keras_sparsity": m["compressed"]["keras_sparsity"],
        "stage_s": m["stage_s"],
    }


def settle() -> None:
    """Same between-runs housekeeping for both sides (not timed)."""
    import tf_keras

    tf_keras.backend.clear_session()
    gc.collect()


def compare(recipes: list[str], seeds: list[int], work: Path) -> list[dict[str, Any]]:
    prunes = {name: has_prune(name) for name in recipes}
    for name in recipes:
        log(f"warm-up (untimed): {name} through the engine and the plain script")
        run_engine(name, 99, work / f"warm-engine-{name}", fresh_cache_dir(work))
        settle()
        run_plain(name, 99, work / f"warm-plain-{name}")
        settle()
    runs: list[dict[str, Any]] = []
    for si, seed in enumerate(seeds):
        for ri, name in enumerate(recipes):
            engine_first = (si + ri) % 2 == 0  # alternates per recipe and per seed
            cache = fresh_cache_dir(work)
            tag = f"{name}-{seed}"
            jobs: dict[str, tuple[Any, tuple[Any, ...]]] = {
                "engine": (run_engine, (name, seed, work / f"engine-{tag}", cache)),
                "plain": (run_plain, (name, seed, work / f"plain-{tag}")),
                "engine_cached": (
                    run_engine,
                    (name, seed, work / f"cached-{tag}", cache, "engine_cached"),
                ),
                "plain_engine_schedule": (
                    run_plain,
                    (name, seed, work / f"plainsched-{tag}", "engine"),
                ),
            }
            first = ["engine", "plain"] if engine_first else ["plain", "engine"]
            second = ["engine_cached"] + (["plain_engine_schedule"] if prunes[name] else [])
            if not engine_first:
                second.reverse()
            for side in first + second:
                fn, fn_args = jobs[side]
                r, load = timed(fn, *fn_args)
                r["load"] = load
                r["first_in_pair"] = side in (first[0], second[0])
                settle()
                runs.append(r)
                log(
                    f"{r['side']:21} {name:22} seed {seed}: gzip {r['ratio_gzip']:6.2f}x raw "
                    f"{r['ratio_raw']:5.2f}x drop {r['accuracy_drop'] * 100:+5.2f} pt sparsity "
                    f"{r['sparsity'] * 100:4.1f}% {r['wall_s']:6.1f} s (others "
                    f"{load['others_cores']:.2f} cores)"
                )
    return runs


def _runs(runs: list[dict[str, Any]], side: str, name: str | None = None) -> list[dict[str, Any]]:
    return [r for r in runs if r["side"] == side and (name is None or r["recipe"] == name)]


def _pair_ratios(
    runs: list[dict[str, Any]], num: str, den: str, key: str, name: str | None = None
) -> dict[int, float]:
    """Per seed: sum of ``key`` over the recipes (or one recipe) of side ``num`` / ``den``."""
    out: dict[int, float] = {}
    for seed in sorted({r["seed"] for r in runs}):
        a = [r for r in _runs(runs, num, name) if r["seed"] == seed]
        b = [r for r in _runs(runs, den, name) if r["seed"] == seed]
        if name is None:  # together: only recipes both sides ran
            common = {r["recipe"] for r in a} & {r["recipe"] for r in b}
            a = [r for r in a if r["recipe"] in common]
            b = [r for r in b if r["recipe"] in common]
        if a and b:
            out[seed] = sum(r[key] for r in a) / sum(r[key] for r in b)
    return out


def _stage_diff(runs: list[dict[str, Any]], num: str, den: str) -> dict[str, float]:
    """Mean per-run stage time difference num - den, by stage, over all runs (s)."""
    sums: dict[str, float] = {}
    for side, sign in ((num, 1.0), (den, -1.0)):
        rs = _runs(runs, side)
        for r in rs:
            for k, v in r.get("stage_s", {}).items():
                sums[k] = sums.get(k, 0.0) + sign * v / max(1, len(rs))
    return {k: round(v, 3) for k, v in sorted(sums.items(), key=lambda kv: -abs(kv[1]))}


def summarize(runs: list[dict[str, Any]], recipes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = (
        "ratio_gzip",
        "ratio_raw",
        "accuracy_drop",
        "wall_s",
        "cpu_s",
        "tflite_gzip_bytes",
        "accuracy",
        "sparsity",
    )
    for name in recipes:
        row: dict[str, Any] = {"sides": {}}
        for side in SIDES:
            rs = _runs(runs, side, name)
            if not rs:
                continue
            row["sides"][side] = {key: mean_sd([r[key] for r in rs]) for key in keys}
            stages: dict[str, list[float]] = {}
            for r in rs:
                for k, v in r.get("stage_s", {}).items():
                    stages.setdefault(k, []).append(v)
            row["sides"][side]["stage_s"] = {k: statistics.fmean(v) for k, v in stages.items()}
            row["sides"][side]["others_cores"] = mean_sd([r["load"]["others_cores"] for r in rs])
        for label, num, den in (
            ("engine_vs_plain", "engine", "plain"),
            ("cached_vs_plain", "engine_cached", "plain"),
            ("engine_vs_plain_same_schedule", "engine", "plain_engine_schedule"),
        ):
            wall = _pair_ratios(runs, num, den, "wall_s", name)
            if wall:
                row[label] = {
                    "wall": spread(list(wall.values())),
                    "cpu": spread(list(_pair_ratios(runs, num, den, "cpu_s", name).values())),
                }
        e, p = row["sides"]["engine"], row["sides"]["plain"]
        row["targets"] = {
            "gzip_ratio": e["ratio_gzip"]["mean"] >= p["ratio_gzip"]["mean"],
            "accuracy_drop": e["accuracy_drop"]["mean"] <= p["accuracy_drop"]["mean"] + 0.005,
        }
        row["causes"] = {}
        if not row["targets"]["gzip_ratio"]:
            diff = e["tflite_gzip_bytes"]["mean"] - p["tflite_gzip_bytes"]["mean"]
            row["causes"]["gzip_ratio"] = (
                f"the engine's file is {diff:+.0f} bytes (gzip) against the plain one; the "
                "engine writes labels and input normalization into model.tflite "
                "(engine.tflite.metadata), about 120 gzip bytes"
                if 0 < diff < 200
                else f"the engine's file is {diff:+.0f} bytes (gzip) against the plain one"
            )
        if not row["targets"]["accuracy_drop"]:
            drops = [f"{r['accuracy_drop'] * 100:+.2f}" for r in _runs(runs, "engine", name)]
            pdrops = [f"{r['accuracy_drop'] * 100:+.2f}" for r in _runs(runs, "plain", name)]
            row["causes"]["accuracy_drop"] = (
                f"per-seed drops engine {', '.join(drops)} vs plain {', '.join(pdrops)} points "
                "(one test image = 0.28 points)"
            )
        out[name] = row
    together: dict[str, Any] = {}
    for label, num, den in (
        ("engine_vs_plain", "engine", "plain"),
        ("cached_vs_plain", "engine_cached", "plain"),
    ):
        wall = _pair_ratios(runs, num, den, "wall_s")
        cpu = _pair_ratios(runs, num, den, "cpu_s")
        together[label] = {
            "wall": spread(list(wall.values())),
            "cpu": spread(list(cpu.values())),
            "pairs": len(wall),
            "num_wall_s": sum(r["wall_s"] for r in _runs(runs, num)),
            "den_wall_s": sum(r["wall_s"] for r in _runs(runs, den)),
            "num_cpu_s": sum(r["cpu_s"] for r in _runs(runs, num)),
            "den_cpu_s": sum(r["cpu_s"] for r in _runs(runs, den)),
        }
    ev = together["engine_vs_plain"]
    targets = {
        "together_wall": ev["wall"]["median"] <= TOGETHER_LIMIT,
        "together_cpu": ev["cpu"]["median"] <= TOGETHER_LIMIT,
        "pairs_enough": ev["pairs"] >= 3,
    }
    causes: dict[str, str] = {}
    if not (targets["together_wall"] and targets["together_cpu"]):
        diff = _stage_diff(runs, "engine", "plain")
        e_load = statistics.fmean(r["load"]["others_cores"] for r in _runs(runs, "engine"))
        p_load = statistics.fmean(r["load"]["others_cores"] for r in _runs(runs, "plain"))
        top = ", ".join(f"{k} {v:+.2f} s" for k, v in list(diff.items())[:4])
        e_off = statistics.fmean(r["wall_s"] - r["cpu_s"] for r in _runs(runs, "engine"))
        p_off = statistics.fmean(r["wall_s"] - r["cpu_s"] for r in _runs(runs, "plain"))
        cause = (
            f"engine − plain per run, by stage (mean): {top}; wall − CPU of this process "
            f"per run (time not on a CPU) engine {e_off:.1f} s vs plain {p_off:.1f} s; other "
            f"processes used {e_load:.2f} cores during engine runs vs {p_load:.2f} during "
            "plain runs"
        )
        if not targets["together_wall"]:
            causes["together_wall"] = cause
        if not targets["together_cpu"]:
            causes["together_cpu"] = cause
    if not targets["pairs_enough"]:
        causes["pairs_enough"] = f"only {ev['pairs']} pair(s): run with --seeds 3 or more"
    out["_together"] = {**together, "targets": targets, "causes": causes}
    out["_stage_diff_engine_minus_plain"] = _stage_diff(runs, "engine", "plain")
    return out


# -- 4. the large-model case ------------------------------------------------------------------
LARGE_RECIPE = {
    "schema_version": 1,
    "name": "int8-ptq-large",
    "description": "Post-training full-integer int8 (the large-model benchmark).",
    "seed": 0,
    "batch_size": 32,
    "steps": [{"type": "quantize", "mode": "int8"}],
}
PROFILE_FILE = "large_profile.txt"


def run_engine_large(model: Path, data: Path, out: Path, cache: Path) -> dict[str, Any]:
    from engine.pipeline.recipe import validate_recipe
    from engine.pipeline.run import compress

    recipe = validate_recipe(json.loads(json.dumps(LARGE_RECIPE)))
    use_cache_dir(cache)
    c0 = time.process_time()
    t0 = time.perf_counter()
    m = compress(str(model), str(data), recipe, out)
    wall = time.perf_counter() - t0
    return {
        "side": "engine",
        "wall_s": wall,
        "cpu_s": time.process_time() - c0,
        "baseline_accuracy": m["baseline"]["accuracy"],
        "accuracy": m["compressed"]["accuracy"],
        "baseline_bytes": m["baseline"]["tflite_bytes"],
        "tflite_bytes": m["compressed"]["tflite_bytes"],
        "ratio_raw": m["ratio_raw"],
        "accuracy_drop": m["accuracy_drop"],
        "test_samples": m["data"].get("n_test"),
        "stage_s": m.get("timings", {}),
    }


def run_plain_large(model: Path, data: Path, out: Path) -> dict[str, Any]:
    import plain_keras3_ptq

    c0 = time.process_time()
    m = plain_keras3_ptq.run_ptq(model, data, out)
    return {
        "side": "plain",
        "wall_s": m["wall_s"],
        "cpu_s": time.process_time() - c0,
        "baseline_accuracy": m["baseline"]["accuracy"],
        "accuracy": m["compressed"]["accuracy"],
        "baseline_bytes": m["baseline"]["tflite_bytes"],
        "tflite_bytes": m["compressed"]["tflite_bytes"],
        "ratio_raw": m["ratio_raw"],
        "accuracy_drop": m["accuracy_drop"],
        "test_samples": m["test_samples"],
        "stage_s": m["stage_s"],
    }


def profile_engine_large(model: Path, data: Path, work: Path, out: Path) -> dict[str, Any]:
    """One more empty-cache engine run under pyinstrument; the text tree goes to ``out``."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {"error": "pyinstrument is not installed (pip install pyinstrument)"}
    profiler = Profiler(interval=0.01)
    profiler.start()
    run_engine_large(model, data, work / "large-profiled", fresh_cache_dir(work))
    profiler.stop()
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    out.write_text(text)
    # The heaviest frames under compress(), one line each, for RESULTS.md.
    top: list[str] = []
    for line in text.splitlines():
        m = re.match(r"^[\s│├└─]*([\d.]+)\s+(\S+)\s+(\S+)", line)
        if m and float(m.group(1)) >= 0.5:
            depth = len(line) - len(line.lstrip(" │├└─"))
            top.append(f"{'  ' * (depth // 3)}{m.group(1)} s {m.group(2)} ({m.group(3)})")
    return {"file": out.name, "lines": top[:40]}


def large_case(pairs: int, epochs: int, work: Path, out_dir: Path, profile: str) -> dict[str, Any]:
    import models

    log("large: building or reusing the cached ResNet50 (Keras 3) and the 32×32 digits")
    data = models.digits32()
    model = models.resnet50_digits32(epochs=epochs)
    log(f"large: model {model} ({model.stat().st_size / 1e6:.0f} MB), data {data}")
    log("large: warm-up (untimed), engine then user script")
    run_engine_large(model, data, work / "large-warm-engine", fresh_cache_dir(work))
    settle()
    run_plain_large(model, data, work / "large-warm-plain")
    settle()
    meter = load_snapshot()
    runs: list[dict[str, Any]] = []
    for i in range(pairs):
        order = ("engine", "plain") if i % 2 == 0 else ("plain", "engine")
        for side in order:
            if side == "engine":
                r, load = timed(
                    run_engine_large, model, data, work / f"large-engine-{i}", fresh_cache_dir(work)
                )
            else:
                r, load = timed(run_plain_large, model, data, work / f"large-plain-{i}")
            r["pair"] = i
            r["load"] = load
            settle()
            runs.append(r)
            log(
                f"large {side:6} pair {i}: {r['wall_s']:.1f} s (CPU {r['cpu_s']:.1f} s), float "
                f"{r['baseline_accuracy']:.4f} int8 {r['accuracy']:.4f}, raw ratio "
                f"{r['ratio_raw']:.2f}x (others {load['others_cores']:.2f} cores)"
            )
    load = load_between(meter, load_snapshot())
    ratios = []
    for i in range(pairs):
        e = next(r for r in runs if r["pair"] == i and r["side"] == "engine")
        p = next(r for r in runs if r["pair"] == i and r["side"] == "plain")
        ratios.append(e["wall_s"] / p["wall_s"])
    e_runs = [r for r in runs if r["side"] == "engine"]
    p_runs = [r for r in runs if r["side"] == "plain"]
    res: dict[str, Any] = {
        "model": {
            "file": model.name,
            "mb": round(model.stat().st_size / 1e6, 1),
            "trained_epochs": epochs,
        },
        "runs": runs,
        "wall_ratio": spread(ratios),
        "wall_ratio_of_sums": sum(r["wall_s"] for r in e_runs) / sum(r["wall_s"] for r in p_runs),
        "cpu_ratio_of_sums": sum(r["cpu_s"] for r in e_runs) / sum(r["cpu_s"] for r in p_runs),
        "load": load,
        "same_test_split": all(
            abs(e["baseline_accuracy"] - p["baseline_accuracy"]) < 1e-9
            for e in e_runs
            for p in p_runs
        ),
        "finished_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    res["target_met"] = res["wall_ratio"]["median"] <= LARGE_LIMIT
    stages: dict[str, list[float]] = {}
    for r in e_runs:
        for k, v in r["stage_s"].items():
            stages.setdefault(k, []).append(v)
    res["engine_stage_s"] = {k: statistics.fmean(v) for k, v in stages.items()}
    pstages: dict[str, list[float]] = {}
    for r in p_runs:
        for k, v in r["stage_s"].items():
            pstages.setdefault(k, []).append(v)
    res["plain_stage_s"] = {k: statistics.fmean(v) for k, v in pstages.items()}
    if profile == "always" or (profile == "auto" and not res["target_met"]):
        log("large: profiling one more engine run (pyinstrument)")
        res["profile"] = profile_engine_large(model, data, work, out_dir / PROFILE_FILE)
    log(
        f"large: engine/user wall median {res['wall_ratio']['median']:.2f} "
        f"(pairs {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    return res


# -- 2. GUI vs headless -----------------------------------------------------------------------
def vm_hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_headless_worker(name: str, seed: int, out: Path, nice: int = 0) -> dict[str, Any]:
    """The recipe through a bare ``engine.service.worker`` process (no Qt), timed submit -> result.

    ``nice`` > 0 runs the worker at that niceness (the app lowers its worker's priority)."""
    from engine.pipeline.recipe import load_recipe

    recipe = load_recipe(RECIPE_DIR / f"{name}.json")
    recipe.seed = seed
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.service.worker"],
        cwd=ROOT,
        env=child_env(fresh_cache_dir(out.parent, f"cache-{out.name}")),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def read_until(kind: str) -> dict[str, Any]:
        for line in proc.stdout:  # type: ignore[union-attr]
            ev = json.loads(line)
            if ev.get("type") == kind or ev.get("type") in ("error", "cancelled"):
                return ev
        raise RuntimeError("engine worker exited early")

    try:
        read_until("ready")
        data = {"model": "demo", "data": "demo", "scale": "auto", "allow_unsafe": False}
        # The same untimed jobs the app's Model tab runs before a compression (warm worker).
        for i, (job, extra) in enumerate(
            (("inspect", {}), ("check_data", data), ("baseline", data))
        ):
            req = {"op": "submit", "id": f"w{i}", "job": job, "params": {"model": "demo", **extra}}
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            read_until("result")
        params = {**data, "recipe": recipe.to_dict(), "out": str(out)}
        t0 = time.perf_counter()
        while True:  # the worker may still be closing the previous job's thread: "busy"
            proc.stdin.write(
                json.dumps({"op": "submit", "id": "b", "job": "compress", "params": params}) + "\n"
            )
            proc.stdin.flush()
            ev = read_until("result")
            if ev.get("kind") != "busy":
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        if ev.get("type") != "result":
            raise RuntimeError(f"headless run failed: {ev}")
        res = ev["result"]
        peak = vm_hwm_mib(proc.pid)
        from gui_probe import cpu_seconds

        worker_cpu = cpu_seconds(proc.pid)
        proc.stdin.write(json.dumps({"op": "shutdown"}) + "\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {
        "headless_s": wall,
        "worker_timings": res.get("timings"),
        "worker_peak_rss_mib": peak,
        "worker_cpu_s": worker_cpu,
        "ratio_gzip": res.get("ratio_gzip"),
    }


def run_gui(name: str, seed: int, out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(HERE / "gui_probe.py"),
        str(RECIPE_DIR / f"{name}.json"),
        "--seed",
        str(seed),
        "--out",
        str(out),
    ]
    env = child_env(fresh_cache_dir(out.parent, f"cache-{out.name}"))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT ") :])
            if res.get("state") != "finished":
                raise RuntimeError(f"GUI run did not finish: {res}")
            return res
    raise RuntimeError(f"gui_probe printed no result: {done.stdout[-500:]} {done.stderr[-2000:]}")


def gui_vs_headless(pairs: int, work: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for i in range(pairs):
        order = ("gui", "headless") if i % 2 == 0 else ("headless", "gui")
        pair: dict[str, Any] = {"seed": i}
        for side in order:
            out = work / f"{side}-{i}"
            if side == "gui":
                pair["gui"] = run_gui(GUI_RECIPE, i, out)
            else:
                pair["headless"] = run_headless_worker(GUI_RECIPE, i, out)
        g, h = pair["gui"], pair["headless"]
        pair["ratio"] = g["gui_s"] / h["headless_s"]
        log(
            f"GUI {g['gui_s']:.1f} s vs headless {h['headless_s']:.1f} s (x{pair['ratio']:.2f}); "
            f"longest gap {g['max_gap_ms']:.0f} ms; RSS app {g['gui_peak_rss_mib']:.0f} MiB, "
            f"worker {g['worker_peak_rss_mib']:.0f} MiB"
        )
        runs.append(pair)
    gui_total = sum(p["gui"]["gui_s"] for p in runs)
    head_total = sum(p["headless"]["headless_s"] for p in runs)
    max_gap = max(p["gui"]["max_gap_ms"] for p in runs)
    worker_gui = sum(sum((p["gui"]["worker_timings"] or {}).values()) for p in runs)
    worker_head = sum(sum((p["headless"]["worker_timings"] or {}).values()) for p in runs)
    return {
        "recipe": GUI_RECIPE,
        "pairs": runs,
        "gui_s": mean_sd([p["gui"]["gui_s"] for p in runs]),
        "headless_s": mean_sd([p["headless"]["headless_s"] for p in runs]),
        "ratio": mean_sd([p["ratio"] for p in runs]),
        "ratio_of_sums": gui_total / head_total,
        "worker_stage_ratio": worker_gui / worker_head if worker_head else None,
        "max_busy_ms": max(p["gui"].get("max_busy_ms", float("nan")) for p in runs),
        "worker_cpu_s_gui": mean_sd([p["gui"].get("worker_cpu_s") or 0.0 for p in runs]),
        "worker_cpu_s_headless": mean_sd([p["headless"].get("worker_cpu_s") or 0.0 for p in runs]),
        "gui_cpu_s": mean_sd([p["gui"].get("gui_cpu_s", float("nan")) for p in runs]),
        "max_gap_ms": max_gap,
        "gaps_over_50ms_per_run": mean_sd([p["gui"]["gaps_over_50ms"] for p in runs]),
        "gui_peak_rss_mib": max(p["gui"]["gui_peak_rss_mib"] or 0 for p in runs),
        "worker_peak_rss_mib_gui": max(p["gui"]["worker_peak_rss_mib"] or 0 for p in runs),
        "worker_peak_rss_mib_headless": max(
            p["headless"]["worker_peak_rss_mib"] or 0 for p in runs
        ),
        "targets": {"gui_time": gui_total / head_total <= 1.05, "pause": max_gap < 50.0},
    }


# -- 3. start-up ------------------------------------------------------------------------------
def time_import_tf() -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        env=child_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def time_window_painted(work: Path) -> dict[str, float]:
    env = child_env()
    home = Path(tempfile.mkdtemp(prefix="fw-launch-", dir=work))
    env["XDG_CONFIG_HOME"] = str(home / "config")  # never touch the user's settings
    env["XDG_DATA_HOME"] = str(home / "data")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gui", "--quit-after-paint"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    painted = None
    inside = None
    for line in proc.stdout:
        if line.startswith("painted"):
            painted = time.perf_counter() - t0
            inside = float(line.split()[1])
            break
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if painted is None:
        raise RuntimeError("the app never printed 'painted'")
    return {"launch_to_painted_s": painted, "main_to_painted_s": inside}


def startup(repeats: int, work: Path) -> dict[str, Any]:
    tf_times, paint, inside = [], [], []
    for i in range(repeats):
        steps = ("tf", "app") if i % 2 == 0 else ("app", "tf")
        for s in steps:
            if s == "tf":
                tf_times.append(time_import_tf())
            else:
                r = time_window_painted(work)
                paint.append(r["launch_to_painted_s"])
                inside.append(r["main_to_painted_s"])
    ratio = statistics.fmean(paint) / statistics.fmean(tf_times)
    log(
        f"window painted {statistics.fmean(paint):.2f} s vs import tensorflow "
        f"{statistics.fmean(tf_times):.2f} s (x{ratio:.2f})"
    )
    return {
        "import_tensorflow_s": mean_sd(tf_times),
        "launch_to_painted_s": mean_sd(paint),
        "main_to_painted_s": mean_sd(inside),
        "ratio": ratio,
        "targets": {"launch": ratio < 0.5},
    }


# -- machine, report --------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    versions = {"python": platform.python_version()}
    for pkg in (
        "tensorflow",
        "tf-keras",
        "keras",
        "tensorflow-model-optimization",
        "ai-edge-litert",
        "PySide6-Essentials",
        "pyqtgraph",
        "numpy",
    ):
        try:
            versions[pkg] = version(pkg)
        except Exception:
            versions[pkg] = "?"
    import engine

    versions["featherweight"] = engine.__version__
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "versions": versions,
    }


def fmt(ms: dict[str, float], scale: float = 1.0, digits: int = 2, suffix: str = "") -> str:
    return f"{ms['mean'] * scale:.{digits}f} ± {ms['sd'] * scale:.{digits}f}{suffix}"


def fmt_spread(s: dict[str, Any]) -> str:
    return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def yes(ok: bool) -> str:
    return "met" if ok else "**missed**"


def merge_results(path: Path, new: dict[str, Any]) -> dict[str, Any]:
    """results.json with the sections of this run replaced (others kept, each dated)."""
    old: dict[str, Any] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    if "compare" in old and "schema" not in old:  # written by the harness before issue 11
        old = {}
    merged = {**old, **new, "schema": 2}
    return merged


def render(out: Path, readme: Path | None = README) -> None:
    """(Re)write RESULTS.md, the chart and the README's demo block from ``out/results.json``."""
    res = json.loads((out / "results.json").read_text())
    if "compare" in res:
        subprocess.run(
            [
                sys.executable,
                str(HERE / "chart.py"),
                str(out / "results.json"),
                str(out / "accuracy_vs_size.png"),
            ],
            env=child_env(),
            check=True,
        )
    md = out / "RESULTS.md"
    notes = ""
    if md.exists() and NOTES_MARK in md.read_text():
        notes = md.read_text().split(NOTES_MARK, 1)[1]
    md.write_text(render_markdown(res, notes))
    if readme is not None and "compare" in res and readme.exists():
        text = readme.read_text()
        new = replace_block(text, render_readme_block(res))
        if new != text:
            readme.write_text(new)


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between the README markers replaced by ``block``."""
    if README_BEGIN not in text or README_END not in text:
        return text
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_BEGIN}\n{block.strip()}\n{README_END}{tail}"


def ratio_text(x: float) -> str:
    """3.72, 10.1, 14.0: three significant figures, trailing zero kept."""
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def render_readme_block(res: dict[str, Any]) -> str:
    """The README's "What the demo gives (measured)" table: the engine's own runs."""
    c = res["compare"]
    runs = [r for r in c["runs"] if r["side"] == "engine"]
    seed0 = min(r["seed"] for r in runs)
    first = [r for r in runs if r["seed"] == seed0]
    params = first[0].get("baseline_params")
    base_acc = first[0]["baseline_accuracy"]
    lines = [
        "<!-- written by benchmarks/run.py from benchmarks/results.json; edits here are "
        "overwritten -->",
        "`featherweight compress demo --data demo --recipe resources/recipes/R.json --out D "
        "--json` on",
        f"the built-in digits CNN ({params / 1000:.0f}k parameters, {base_acc * 100:.1f} % test "
        "accuracy as float32 `.tflite`):"
        if params
        else "the built-in digits CNN:",
        "",
        "| recipe (`resources/recipes/`) | gzip ratio | raw ratio | accuracy drop |",
        "|---|---|---|---|",
    ]
    drops: list[float] = []
    for name in c["recipes"]:
        r = next((r for r in first if r["recipe"] == name), None)
        if r is None:
            continue
        drops += [x["accuracy_drop"] * 100 for x in runs if x["recipe"] == name]
        gz = r["ratio_gzip"]
        lines.append(
            f"| `{name}.json` — {RECIPE_TITLES.get(name, name)} | "
            f"{ratio_text(gz)}× | {ratio_text(r['ratio_raw'])}× | "
            f"{r['accuracy_drop'] * 100:.1f} pts |"
        )
    n_seeds = len({r["seed"] for r in runs})
    lines += [
        "",
        f"Seed {seed0}, from the engine runs of `{c['command']}` ({c['finished_utc']} UTC); "
        f"over {n_seeds} seed(s) the drops are {min(drops):.1f} to {max(drops):.1f} pts "
        "(see [benchmarks/RESULTS.md](benchmarks/RESULTS.md)).",
    ]
    return "\n".join(lines)


def render_markdown(res: dict[str, Any], notes: str) -> str:
    m = res["machine"]
    lines = [
        "# Benchmarks: Featherweight vs hand-written scripts, and GUI vs headless",
        "",
        "Everything above the notes line is written by `benchmarks/run.py` from "
        "`benchmarks/results.json`; each section says which run it comes from.",
        "",
        f"Machine: {m['cores']} cores, {m['cpu']}, {m['platform']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        "",
    ]
    if "compare" in res:
        lines += render_compare(res["compare"])
    if "gui" in res:
        lines += render_gui(res["gui"])
    if "startup" in res:
        s = res["startup"]
        lines += [
            "## Start-up",
            "",
            f"Run: `{s['command']}`, {s['finished_utc']} UTC.",
            "",
            f"Launch → window painted: {fmt(s['launch_to_painted_s'], 1, 2)} s "
            f"(inside `main()`: {fmt(s['main_to_painted_s'], 1, 2)} s); "
            f'`python -c "import tensorflow"`: {fmt(s["import_tensorflow_s"], 1, 2)} s; '
            f"ratio **{s['ratio']:.2f}**.",
            "",
        ]
    if "large" in res:
        lines += render_large(res["large"])
    lines += render_targets(res)
    lines += ["", NOTES_MARK, notes.strip("\n"), ""]
    return "\n".join(lines)


def render_compare(c: dict[str, Any]) -> list[str]:
    s = c["summary"]
    t = s["_together"]
    ev, cv = t["engine_vs_plain"], t["cached_vs_plain"]
    lines = [
        "## Engine vs plain tfmot script (demo model, demo data, same split and hyperparameters)",
        "",
        f"Run: `{c['command']}` (seeds {c['seeds']}), {c['finished_utc']} UTC, "
        f"{c['total_minutes']:.1f} min.",
        load_sentence(c["load"], "the engine-vs-plain runs"),
        "",
        "Method: every recipe ran once on both sides untimed first (warm-up). Then, per seed "
        "and recipe, the pair engine (empty baseline cache) / plain (tfmot guide defaults), "
        "then the pair engine with the baseline cache now warm / plain with the engine's "
        "pruning schedule (recipes with a prune step); which side runs first alternates per "
        "recipe and seed. Time: model file → measured `.tflite` (imports excluded). Sizes are "
        "baseline float32 `.tflite` / compressed `.tflite` (gzip = `gzip.compress(data, 9)`); "
        "accuracy drop in points on the test split with LiteRT; sparsity = zeros among the "
        "Conv/Dense kernels of the exported `.tflite`, read with "
        "`engine.tflite.metrics.sparsity_report` on both sides. Mean ± sd over seeds; wall "
        "ratios are the median (min–max) over the seeds' pairs.",
        "",
        "| recipe | row | gzip ratio | raw ratio | accuracy drop (pt) | sparsity (.tflite) "
        "| wall (s) | CPU (s) | wall / plain | CPU / plain | others' cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in c["recipes"]:
        row = s[name]
        first = True
        for side in SIDES:
            if side not in row["sides"]:
                continue
            x = row["sides"][side]
            ratio_key = {
                "engine": "engine_vs_plain",
                "engine_cached": "cached_vs_plain",
            }.get(side)
            wr = fmt_spread(row[ratio_key]["wall"]) if ratio_key in row else ""
            cr = fmt_spread(row[ratio_key]["cpu"]) if ratio_key in row else ""
            lines.append(
                f"| {name if first else ''} | {SIDE_LABELS[side]} | {fmt(x['ratio_gzip'])} | "
                f"{fmt(x['ratio_raw'])} | {fmt(x['accuracy_drop'], 100)} | "
                f"{fmt(x['sparsity'], 100, 1, '%')} | {fmt(x['wall_s'], 1, 1)} | "
                f"{fmt(x['cpu_s'], 1, 1)} | {wr} | {cr} | {x['others_cores']['mean']:.2f} |"
            )
            first = False
    lines += [
        "",
        f"**All recipes together** ({ev['pairs']} alternated pair(s), one per seed; ratio = "
        "sum over the recipes of one seed, median (min–max) over seeds): engine / plain wall "
        f"**{fmt_spread(ev['wall'])}**, CPU **{fmt_spread(ev['cpu'])}** (totals: engine "
        f"{ev['num_wall_s']:.0f} s wall, {ev['num_cpu_s']:.0f} s CPU; plain "
        f"{ev['den_wall_s']:.0f} s wall, {ev['den_cpu_s']:.0f} s CPU). Engine with the "
        f"baseline cached / plain: wall {fmt_spread(cv['wall'])}, CPU {fmt_spread(cv['cpu'])}.",
        "",
        "Per-recipe spread of engine / plain wall over the pairs: "
        + "; ".join(
            f"{name} {fmt_spread(s[name]['engine_vs_plain']['wall'])}" for name in c["recipes"]
        )
        + ".",
        "",
        "Engine − plain stage time per run (mean over all recipes and seeds, s): "
        + ", ".join(f"{k} {v:+.2f}" for k, v in s["_stage_diff_engine_minus_plain"].items())
        + ". (The engine's `convert` includes saving `model.keras` and the metadata; its "
        "`evaluate` includes the Keras accuracy, latency and sparsity.)",
        "",
        "Engine stage times (mean s): "
        + "; ".join(
            f"{name}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in s[name]["sides"]["engine"]["stage_s"].items())
            for name in c["recipes"]
        ),
        "",
        "Engine with the baseline cached, stage times (mean s): "
        + "; ".join(
            f"{name}: "
            + ", ".join(
                f"{k} {v:.1f}" for k, v in s[name]["sides"]["engine_cached"]["stage_s"].items()
            )
            for name in c["recipes"]
            if "engine_cached" in s[name]["sides"]
        )
        + f". Cache files written by the empty-cache runs: {c['cache_note']}.",
        "",
        "![accuracy vs gzip size](accuracy_vs_size.png)",
        "",
    ]
    return lines


def render_gui(g: dict[str, Any]) -> list[str]:
    return [
        f"## Desktop app vs headless ({g['recipe']}, {len(g['pairs'])} alternating pair(s))",
        "",
        f"Run: `{g['command']}`, {g['finished_utc']} UTC. " + load_sentence(g["load"], "it"),
        "",
        "| measure | value |",
        "|---|---|",
        f"| GUI run (start → finished, live charts) | {fmt(g['gui_s'], 1, 1)} s |",
        f"| headless worker run (submit → result) | {fmt(g['headless_s'], 1, 1)} s |",
        f"| GUI / headless | {g['ratio_of_sums']:.2f} (pairs {fmt(g['ratio'])}, median "
        f"{statistics.median(p['ratio'] for p in g['pairs']):.2f}) |",
        f"| same, engine stage times inside the worker only | {g['worker_stage_ratio']:.2f} |",
        f"| CPU used by the app process during a run (all its threads) | "
        f"{fmt(g['gui_cpu_s'], 1, 2)} s |",
        f"| CPU used by the worker process over its life (GUI / headless) | "
        f"{fmt(g['worker_cpu_s_gui'], 1, 1)} / {fmt(g['worker_cpu_s_headless'], 1, 1)} s |",
        f"| longest event-loop gap during a run (10 ms timer) | {g['max_gap_ms']:.0f} ms |",
        f"| most GUI-thread CPU spent between two ticks (the app's own share of a gap) | "
        f"{g['max_busy_ms']:.0f} ms |",
        f"| gaps > 50 ms per run | {fmt(g['gaps_over_50ms_per_run'], 1, 1)} |",
        f"| peak RSS, app process | {g['gui_peak_rss_mib']:.0f} MiB |",
        f"| peak RSS, worker (GUI / headless) | {g['worker_peak_rss_mib_gui']:.0f} / "
        f"{g['worker_peak_rss_mib_headless']:.0f} MiB |",
        "",
    ]


def render_large(g: dict[str, Any]) -> list[str]:
    e = [r for r in g["runs"] if r["side"] == "engine"]
    p = [r for r in g["runs"] if r["side"] == "plain"]
    lines = [
        "## Large model: Keras 3 ResNet50, int8 post-training quantization",
        "",
        f"Run: `{g['command']}`, {g['finished_utc']} UTC. " + load_sentence(g["load"], "it"),
        "",
        f"Model: `keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), "
        f"classes=10)` saved by Keras 3 ({g['model']['mb']:.0f} MB with its optimizer state), "
        f"trained {g['model']['trained_epochs']} epoch(s) on the digits upscaled to 32×32×3 "
        "(`benchmarks/models.py`). Engine: `compress(model, digits32.npz, one-step int8 "
        "recipe)`, empty baseline cache every run. User script: `benchmarks/plain_keras3_ptq.py` "
        "(Keras 3 load, float and int8 `TFLiteConverter` with 300 representative images, "
        "LiteRT accuracy of both on the `.npz` test split — the split the engine uses: "
        f"float accuracies equal on both sides: {'yes' if g['same_test_split'] else '**no**'}). "
        "One untimed warm-up of each side, then alternated pairs.",
        "",
        "| side | wall (s) | CPU (s) | float acc | int8 acc | float bytes | int8 bytes "
        "| others' cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, rs in (("engine", e), ("user script", p)):
        for r in rs:
            lines.append(
                f"| {label} (pair {r['pair']}) | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                f"{r['baseline_accuracy'] * 100:.2f} % | {r['accuracy'] * 100:.2f} % | "
                f"{r['baseline_bytes']:,} | {r['tflite_bytes']:,} | "
                f"{r['load']['others_cores']:.2f} |"
            )
    lines += [
        "",
        f"Wall engine / user script: median **{fmt_spread(g['wall_ratio'])}** over "
        f"{len(e)} pair(s); ratio of sums wall {g['wall_ratio_of_sums']:.2f}, CPU "
        f"{g['cpu_ratio_of_sums']:.2f}.",
        "",
        "Engine stages (mean s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in g["engine_stage_s"].items())
        + "; user script (mean s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in g["plain_stage_s"].items())
        + ".",
        "",
    ]
    prof = g.get("profile")
    if prof:
        if "error" in prof:
            lines += [f"Profile: {prof['error']}.", ""]
        else:
            lines += [
                f"Profile of one more engine run (pyinstrument, frames ≥ 0.5 s; full tree in "
                f"`benchmarks/{prof['file']}`):",
                "",
                "```",
                *prof["lines"],
                "```",
                "",
            ]
    return lines


def render_targets(res: dict[str, Any]) -> list[str]:
    lines = ["## Targets", "", "| target | result | cause of a miss |", "|---|---|---|"]
    if "compare" in res:
        s = res["compare"]["summary"]
        for name in res["compare"]["recipes"]:
            t, e, p = s[name]["targets"], s[name]["sides"]["engine"], s[name]["sides"]["plain"]
            causes = s[name]["causes"]
            lines.append(
                f"| {name}: {TARGETS['gzip_ratio']} | {yes(t['gzip_ratio'])} "
                f"({e['ratio_gzip']['mean']:.3f} vs {p['ratio_gzip']['mean']:.3f}) | "
                f"{causes.get('gzip_ratio', '')} |"
            )
            lines.append(
                f"| {name}: {TARGETS['accuracy_drop']} | {yes(t['accuracy_drop'])} "
                f"({e['accuracy_drop']['mean'] * 100:+.2f} vs "
                f"{p['accuracy_drop']['mean'] * 100:+.2f}) | {causes.get('accuracy_drop', '')} |"
            )
        t = s["_together"]
        for key, kind in (("together_wall", "wall"), ("together_cpu", "cpu")):
            lines.append(
                f"| {TARGETS[key]} | {yes(t['targets'][key])} "
                f"({fmt_spread(t['engine_vs_plain'][kind])}, {t['engine_vs_plain']['pairs']} "
                f"pair(s)) | {t['causes'].get(key, '')} |"
            )
        if not t["targets"]["pairs_enough"]:
            lines.append(f"| ≥ 3 alternated pairs | **missed** | {t['causes']['pairs_enough']} |")
    if "large" in res:
        g = res["large"]
        cause = ""
        if not g["target_met"]:
            cause = (
                "engine stages (s): "
                + ", ".join(f"{k} {v:.1f}" for k, v in g["engine_stage_s"].items())
                + " vs user script "
                + ", ".join(f"{k} {v:.1f}" for k, v in g["plain_stage_s"].items())
                + ("; see the profile above" if g.get("profile") else "")
            )
        lines.append(
            f"| {TARGETS['large_wall']} | {yes(g['target_met'])} "
            f"({fmt_spread(g['wall_ratio'])}) | {cause} |"
        )
    if "gui" in res:
        g = res["gui"]
        lines.append(
            f"| {TARGETS['gui_time']} | {yes(g['targets']['gui_time'])} "
            f"({g['ratio_of_sums']:.2f}) | |"
        )
        lines.append(
            f"| {TARGETS['pause']} | {yes(g['targets']['pause'])} ({g['max_gap_ms']:.0f} ms) | |"
        )
    if "startup" in res:
        s = res["startup"]
        lines.append(
            f"| {TARGETS['launch']} | {yes(s['targets']['launch'])} ({s['ratio']:.2f}) | |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 1 GUI pair")
    parser.add_argument("--seeds", type=int, default=None, help="default 5 (3 with --quick)")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--gui-pairs", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--skip-gui", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument(
        "--large", action="store_true", help="only the large-model case (long; not in CI)"
    )
    parser.add_argument("--large-pairs", type=int, default=2)
    parser.add_argument("--large-epochs", type=int, default=1, help="training of a new model")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="large case: profile an engine run (auto: when over the target)",
    )
    parser.add_argument("--out", default=str(HERE), help="folder for results (default benchmarks/)")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not rewrite the README's demo block"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite RESULTS.md, the chart and the README block from results.json",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    readme = None if args.no_readme else README
    if args.render_only:
        render(out, readme)
        return 0
    seeds = list(range(args.seeds if args.seeds is not None else (3 if args.quick else 5)))
    pairs = args.gui_pairs if args.gui_pairs is not None else (1 if args.quick else 3)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="fw-bench-"))
    use_cache_dir(fresh_cache_dir(work, "cache-unused"))  # never the user's own cache
    command = " ".join(["python benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    new: dict[str, Any] = {"machine": machine()}
    log(f"work folder {work}")

    def stamp(section: dict[str, Any], t0: float) -> dict[str, Any]:
        section["command"] = command
        section["finished_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        section["total_minutes"] = (time.time() - t0) / 60
        return section

    if args.large:
        t0 = time.time()
        new["large"] = stamp(
            large_case(args.large_pairs, args.large_epochs, work, out, args.profile), t0
        )
    else:
        if not args.skip_gui:
            # Start-up first, while this process has not loaded TensorFlow yet.
            t0 = time.time()
            new["startup"] = stamp(startup(2 if args.quick else 3, work), t0)
            t0 = time.time()
            a = load_snapshot()
            gui = gui_vs_headless(pairs, work)
            gui["load"] = load_between(a, load_snapshot())
            new["gui"] = stamp(gui, t0)
        if not args.skip_compare:
            t0 = time.time()
            a = load_snapshot()
            runs = compare(args.recipes, seeds, work)
            load = load_between(a, load_snapshot())
            empties = [r for r in runs if r["side"] == "engine"]
            written = sum(r["cache_files_after"] - r["cache_files_before"] for r in empties)
            hits = [r for r in runs if r["side"] == "engine_cached"]
            note = (
                f"{written} file(s) over {len(empties)} runs (the cached runs found "
                f"{statistics.fmean(r['cache_files_before'] for r in hits):.0f} per folder)"
                if written
                else "none — the engine did not use FEATHERWEIGHT_CACHE_DIR, so the "
                "'baseline cached' row is just a second run"
            )
            new["compare"] = stamp(
                {
                    "seeds": seeds,
                    "recipes": args.recipes,
                    "runs": runs,
                    "summary": summarize(runs, args.recipes),
                    "load": load,
                    "cache_note": note,
                },
                t0,
            )
    path = out / "results.json"
    res = merge_results(path, new)
    path.write_text(json.dumps(res, indent=2) + "\n")
    render(out, readme)
    log(f"done in {(time.time() - started) / 60:.1f} min: {out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
