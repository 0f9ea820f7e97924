"""Featherweight against the hand-written tfmot script, and the desktop app against headless.

One command (from the repository root)::

    python benchmarks/run.py            # full: 3 seeds, every example recipe (~15-20 min here)
    python benchmarks/run.py --quick    # 1 seed, every recipe, 1 GUI pair (~5 min)

Writes ``benchmarks/results.json``, ``benchmarks/RESULTS.md`` (tables; anything below the
``<!-- notes -->`` line of an existing RESULTS.md is kept) and
``benchmarks/accuracy_vs_size.png``.

1. Engine vs plain script, in this process, alternating: for every seed and recipe the
   engine (``engine.pipeline.run.compress``) and ``benchmarks/plain_tfmot.run_recipe`` run one
   after the other, the order flipping every time (ABBA), after one untimed warm-up of each.
   Both are timed from loading the model file to the measured ``.tflite`` (baseline float32
   conversion and its test accuracy included on both sides; Python imports excluded on both
   sides). The engine's extras (latency, sparsity read from the file, Keras accuracies,
   per-epoch size estimates, ``model.keras``, ``metrics.json``) count against the engine.
2. GUI vs headless: the same recipe through the real app (``benchmarks/gui_probe.py``,
   offscreen, real job runner and worker, live charts) and through a bare engine worker
   (``python -m engine.service.worker`` driven over its JSON-lines pipes, no Qt), alternating, each
   with a fresh worker process; reports the time ratio, the longest event-loop gap of the
   app during the run (10 ms ``QTimer``) and peak RSS (``VmHWM``) of app and workers.
3. Start-up: ``python -m engine --quit-after-paint`` (the app's own first-paint probe; the
   time is taken here, from process launch to the "painted" line) against
   ``python -c "import tensorflow"``, alternating.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
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
TARGETS = {
    "gzip_ratio": "our mean gzip ratio >= plain's",
    "accuracy_drop": "our mean accuracy drop <= plain's + 0.5 points",
    "engine_time": "engine time <= 1.10 x plain",
    "gui_time": "GUI time <= 1.05 x headless",
    "pause": "longest event-loop pause < 50 ms",
    "launch": "window painted < 0.5 x `import tensorflow`",
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def mean_sd(values: list[float]) -> dict[str, float]:
    vals = [float(v) for v in values]
    return {
        "mean": statistics.fmean(vals) if vals else float("nan"),
        "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "n": len(vals),
    }


# -- 1. engine vs plain ---------------------------------------------------------------------
def run_engine(name: str, seed: int, out: Path) -> dict[str, Any]:
    from engine.pipeline.recipe import load_recipe
    from engine.pipeline.run import compress

    recipe = load_recipe(RECIPE_DIR / f"{name}.json")
    recipe.seed = seed
    c0 = time.process_time()
    t0 = time.perf_counter()
    m = compress("demo", "demo", recipe, out)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "side": "engine",
        "recipe": name,
        "seed": seed,
        "wall_s": wall,
        "cpu_s": cpu,
        "ratio_gzip": m["ratio_gzip"],
        "ratio_raw": m["ratio_raw"],
        "accuracy_drop": m["accuracy_drop"],
        "baseline_accuracy": m["baseline"]["accuracy"],
        "accuracy": m["compressed"]["accuracy"],
        "tflite_bytes": m["compressed"]["tflite_bytes"],
        "tflite_gzip_bytes": m["compressed"]["tflite_gzip_bytes"],
        "baseline_gzip_bytes": m["baseline"]["tflite_gzip_bytes"],
        "sparsity": m["compressed"]["sparsity"],
        "stage_s": m.get("timings", {}),
    }


def run_plain(name: str, seed: int, out: Path) -> dict[str, Any]:
    import plain_tfmot

    recipe = plain_tfmot.read_recipe(RECIPE_DIR / f"{name}.json")
    recipe["seed"] = seed
    c0 = time.process_time()
    m = plain_tfmot.run_recipe(recipe, seed, out)
    cpu = time.process_time() - c0
    return {
        "side": "plain",
        "recipe": name,
        "seed": seed,
        "wall_s": m["wall_s"],
        "cpu_s": cpu,
        "ratio_gzip": m["ratio_gzip"],
        "ratio_raw": m["ratio_raw"],
        "accuracy_drop": m["accuracy_drop"],
        "baseline_accuracy": m["baseline"]["accuracy"],
        "accuracy": m["compressed"]["accuracy"],
        "tflite_bytes": m["compressed"]["tflite_bytes"],
        "tflite_gzip_bytes": m["compressed"]["tflite_gzip_bytes"],
        "baseline_gzip_bytes": m["baseline"]["tflite_gzip_bytes"],
        "sparsity": m["compressed"]["keras_sparsity"],
    }


def settle() -> None:
    """Same between-runs housekeeping for both sides (not timed)."""
    import tf_keras

    tf_keras.backend.clear_session()
    gc.collect()


def compare(recipes: list[str], seeds: list[int], work: Path) -> list[dict[str, Any]]:
    log("warm-up (untimed): int8_ptq through the engine and the plain script")
    run_engine("int8_ptq", 99, work / "warm-engine")
    settle()
    run_plain("int8_ptq", 99, work / "warm-plain")
    settle()
    runs: list[dict[str, Any]] = []
    flip = False
    for seed in seeds:
        for name in recipes:
            order = (run_plain, run_engine) if flip else (run_engine, run_plain)
            flip = not flip
            for fn in order:
                side = "engine" if fn is run_engine else "plain"
                r = fn(name, seed, work / f"{side}-{name}-{seed}")
                settle()
                runs.append(r)
                log(
                    f"{side:6} {name:24} seed {seed}: gzip {r['ratio_gzip']:6.2f}x raw "
                    f"{r['ratio_raw']:5.2f}x drop {r['accuracy_drop'] * 100:+5.2f} pt "
                    f"{r['wall_s']:6.1f} s"
                )
    return runs


def summarize(runs: list[dict[str, Any]], recipes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in recipes:
        row: dict[str, Any] = {}
        for side in ("engine", "plain"):
            rs = [r for r in runs if r["recipe"] == name and r["side"] == side]
            row[side] = {
                key: mean_sd([r[key] for r in rs])
                for key in (
                    "ratio_gzip",
                    "ratio_raw",
                    "accuracy_drop",
                    "wall_s",
                    "cpu_s",
                    "tflite_gzip_bytes",
                    "accuracy",
                    "sparsity",
                )
            }
        e = [r for r in runs if r["recipe"] == name and r["side"] == "engine"]
        p = [r for r in runs if r["recipe"] == name and r["side"] == "plain"]
        pairs = [a["wall_s"] / b["wall_s"] for a in e for b in p if a["seed"] == b["seed"]]
        row["time_ratio"] = mean_sd(pairs)
        row["time_ratio_of_sums"] = sum(r["wall_s"] for r in e) / sum(r["wall_s"] for r in p)
        row["cpu_ratio_of_sums"] = sum(r["cpu_s"] for r in e) / sum(r["cpu_s"] for r in p)
        row["targets"] = {
            "gzip_ratio": row["engine"]["ratio_gzip"]["mean"] >= row["plain"]["ratio_gzip"]["mean"],
            "accuracy_drop": row["engine"]["accuracy_drop"]["mean"]
            <= row["plain"]["accuracy_drop"]["mean"] + 0.005,
            "engine_time": row["time_ratio_of_sums"] <= 1.10,
        }
        stages: dict[str, list[float]] = {}
        for r in e:
            for k, v in r.get("stage_s", {}).items():
                stages.setdefault(k, []).append(v)
        row["engine_stage_s"] = {k: statistics.fmean(v) for k, v in stages.items()}
        out[name] = row
    all_e = sum(r["wall_s"] for r in runs if r["side"] == "engine")
    all_p = sum(r["wall_s"] for r in runs if r["side"] == "plain")
    cpu_e = sum(r["cpu_s"] for r in runs if r["side"] == "engine")
    cpu_p = sum(r["cpu_s"] for r in runs if r["side"] == "plain")
    out["_all"] = {
        "engine_s": all_e,
        "plain_s": all_p,
        "time_ratio_of_sums": all_e / all_p,
        "engine_cpu_s": cpu_e,
        "plain_cpu_s": cpu_p,
        "cpu_ratio_of_sums": cpu_e / cpu_p,
    }
    return out


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
        env=child_env(),
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
    done = subprocess.run(
        cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=900
    )
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
        [sys.executable, "-m", "engine", "--quit-after-paint"],
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
        "load_average_at_start": os.getloadavg(),
        "versions": versions,
    }


def fmt(ms: dict[str, float], scale: float = 1.0, digits: int = 2, suffix: str = "") -> str:
    return f"{ms['mean'] * scale:.{digits}f} ± {ms['sd'] * scale:.{digits}f}{suffix}"


def yes(ok: bool) -> str:
    return "met" if ok else "**missed**"


def pair_median(res: dict[str, Any], name: str) -> float:
    """Median over seeds of engine wall / plain wall (robust to one disturbed run)."""
    runs = [r for r in res["runs"] if r["recipe"] == name]
    ratios = [
        e["wall_s"] / p["wall_s"]
        for e in runs
        for p in runs
        if e["side"] == "engine" and p["side"] == "plain" and e["seed"] == p["seed"]
    ]
    return statistics.median(ratios)


def render(out: Path) -> None:
    """(Re)write RESULTS.md and the chart from ``out/results.json``, keeping the notes."""
    res = json.loads((out / "results.json").read_text())
    if "compare" not in res:
        return
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


def render_markdown(res: dict[str, Any], notes: str) -> str:
    m = res["machine"]
    lines = [
        "# Benchmarks: Featherweight vs the hand-written tfmot script, and GUI vs headless",
        "",
        f"Run: `{res['command']}` ({res['mode']}, seeds {res['seeds']}), "
        f"{res['finished_utc']} UTC, {res['total_minutes']:.1f} min.",
        f"Machine: {m['cores']} cores, {m['cpu']}, {m['platform']}; load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])} (shared machine: other "
        "jobs ran TensorFlow at the same time, so absolute times are noisy; ratios come from "
        "alternating runs).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        "",
        "## Engine vs plain tfmot script (demo model, demo data, same split and hyperparameters)",
        "",
        "Mean ± sd over seeds. Ratios are baseline float32 `.tflite` / compressed `.tflite` "
        "(gzip = `gzip.compress(data, 9)`); accuracy drop in points on the test split, "
        "measured with LiteRT on the `.tflite`. Time: model file → measured `.tflite`.",
        "",
        "| recipe | side | gzip ratio | raw ratio | accuracy drop (pt) | kernel sparsity "
        "| wall time (s) | wall engine/plain | CPU time (s) | CPU engine/plain |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cmp = res["compare"]
    for name in res["recipes"]:
        row = cmp[name]
        for side in ("engine", "plain"):
            s = row[side]
            ratio = (
                f"{row['time_ratio_of_sums']:.2f} (pairs {fmt(row['time_ratio'])}, "
                f"median {pair_median(res, name):.2f})"
                if side == "engine"
                else ""
            )
            cpu_ratio = f"{row['cpu_ratio_of_sums']:.2f}" if side == "engine" else ""
            lines.append(
                f"| {name if side == 'engine' else ''} | {side} | {fmt(s['ratio_gzip'])} | "
                f"{fmt(s['ratio_raw'])} | {fmt(s['accuracy_drop'], 100)} | "
                f"{fmt(s['sparsity'], 100, 1, '%')} | {fmt(s['wall_s'], 1, 1)} | {ratio} | "
                f"{fmt(s['cpu_s'], 1, 1)} | {cpu_ratio} |"
            )
    lines += [
        "",
        f"All recipes: engine {cmp['_all']['engine_s']:.0f} s, "
        f"plain {cmp['_all']['plain_s']:.0f} s, ratio **{cmp['_all']['time_ratio_of_sums']:.2f}**; "
        f"CPU time (this process, all threads) engine {cmp['_all']['engine_cpu_s']:.0f} s, "
        f"plain {cmp['_all']['plain_cpu_s']:.0f} s, ratio "
        f"**{cmp['_all']['cpu_ratio_of_sums']:.2f}**.",
        "",
        "Engine stage times (mean s): "
        + "; ".join(
            f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in cmp[name]["engine_stage_s"].items())
            for name in res["recipes"]
        ),
        "",
        "![accuracy vs gzip size](accuracy_vs_size.png)",
        "",
    ]
    if "gui" in res:
        g = res["gui"]
        lines += [
            f"## Desktop app vs headless ({g['recipe']}, {len(g['pairs'])} alternating pair(s))",
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
    if "startup" in res:
        s = res["startup"]
        lines += [
            "## Start-up",
            "",
            f"Launch → window painted: {fmt(s['launch_to_painted_s'], 1, 2)} s "
            f"(inside `main()`: {fmt(s['main_to_painted_s'], 1, 2)} s); "
            f'`python -c "import tensorflow"`: {fmt(s["import_tensorflow_s"], 1, 2)} s; '
            f"ratio **{s['ratio']:.2f}**.",
            "",
        ]
    lines += ["## Targets", "", "| target | result |", "|---|---|"]
    for name in res["recipes"]:
        t = cmp[name]["targets"]
        lines.append(
            f"| {name}: {TARGETS['gzip_ratio']} | {yes(t['gzip_ratio'])} "
            f"({cmp[name]['engine']['ratio_gzip']['mean']:.2f} vs "
            f"{cmp[name]['plain']['ratio_gzip']['mean']:.2f}) |"
        )
        lines.append(
            f"| {name}: {TARGETS['accuracy_drop']} | {yes(t['accuracy_drop'])} "
            f"({cmp[name]['engine']['accuracy_drop']['mean'] * 100:+.2f} vs "
            f"{cmp[name]['plain']['accuracy_drop']['mean'] * 100:+.2f}) |"
        )
        lines.append(
            f"| {name}: {TARGETS['engine_time']} | {yes(t['engine_time'])} "
            f"({cmp[name]['time_ratio_of_sums']:.2f}) |"
        )
    lines.append(
        f"| all recipes together: {TARGETS['engine_time']} | "
        f"{yes(cmp['_all']['time_ratio_of_sums'] <= 1.10)} "
        f"({cmp['_all']['time_ratio_of_sums']:.2f}) |"
    )
    if "gui" in res:
        g = res["gui"]
        lines.append(
            f"| {TARGETS['gui_time']} | {yes(g['targets']['gui_time'])} "
            f"({g['ratio_of_sums']:.2f}) |"
        )
        lines.append(
            f"| {TARGETS['pause']} | {yes(g['targets']['pause'])} ({g['max_gap_ms']:.0f} ms) |"
        )
    if "startup" in res:
        s = res["startup"]
        lines.append(f"| {TARGETS['launch']} | {yes(s['targets']['launch'])} ({s['ratio']:.2f}) |")
    lines += ["", NOTES_MARK, notes.strip("\n"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 GUI pair (~5 min)")
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--gui-pairs", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--skip-gui", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--out", default=str(HERE), help="folder for results (default benchmarks/)")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite RESULTS.md and the chart from the existing results.json",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        render(Path(args.out))
        return 0
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    pairs = args.gui_pairs if args.gui_pairs is not None else (1 if args.quick else 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="fw-bench-"))
    res: dict[str, Any] = {
        "command": " ".join(
            ["python benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "mode": "quick" if args.quick else "full",
        "seeds": seeds,
        "recipes": args.recipes,
        "machine": machine(),
    }
    log(f"work folder {work}")
    if not args.skip_gui:
        # Start-up first, while this process has not loaded TensorFlow yet.
        res["startup"] = startup(2 if args.quick else 3, work)
        res["gui"] = gui_vs_headless(pairs, work)
    if not args.skip_compare:
        runs = compare(args.recipes, seeds, work)
        res["runs"] = runs
        res["compare"] = summarize(runs, args.recipes)
    res["finished_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    res["total_minutes"] = (time.time() - started) / 60
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    render(out)
    log(f"done in {res['total_minutes']:.1f} min: {out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
