"""Search benchmark (issue 15): the budgeted search against what a user could do without it.

    python benchmarks/search.py [--cases done,compare] [--models demo,mobilenet]
        [--objectives gzip,flash] [--seeds 0,1,2] [--time 20m] [--out benchmarks/SEARCH.md]
    python benchmarks/search.py --render     # rewrite SEARCH.md and the PNGs from SEARCH.json

Cases:
- ``done``: exactly the issue's command, in a fresh process per seed, on the demo:
  ``featherweight search demo --data demo --budget 1.0 --objective O --time T --seed S
  --out D --json``. Every figure is then re-measured from ``D/best/model.tflite`` and
  ``D/best/baseline.tflite`` (file sizes, gzip of the bytes, LiteRT test accuracy on the
  dataset's test split) — not read from the search's own report — and compared with it.
- ``compare``: at equal wall time ``T`` per side, on one ``Prepared`` model (warm, same
  split, same baseline), alternating sides seed by seed: the TPE search, the same search
  with Optuna's random sampler (same space, same trial code, same budget and time), and the
  example recipes (``resources/recipes``, each run once: what a user gets by trying them;
  their total wall time is reported, the best one within the budget on test is kept).
  On the benchmark MobileNetV2 the uniform prune 80 % + int8 example's drop comes first, and
  int8 alone's size is the bar the search must beat.

Ratios are baseline / compressed bytes; drops are in points of accuracy (positive = lost).
Writes ``--out`` (markdown), the rows as JSON beside it after every run, and one frontier chart
per model and objective (``search_frontier_<model>_<objective>.png``: every trial, validation
accuracy vs size, frontier joined, budget line).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.per_layer import log, model_files  # noqa: E402 (after the sys.path line)
from engine.pipeline.search import OBJECTIVE_KEYS as OBJECTIVE_KEY  # noqa: E402

BUDGET = 1.0


def remeasure(best: Path, model: str, data: str) -> dict[str, Any]:
    """Sizes and LiteRT test accuracy of ``best/model.tflite`` vs ``best/baseline.tflite``,
    measured here from the files (not read from the search's report)."""
    from engine.pipeline.prepare import load_inputs
    from engine.tflite.metrics import tflite_accuracy

    _, splits = load_inputs(model, data, "auto", False, None)
    out: dict[str, Any] = {}
    for side in ("model", "baseline"):
        raw = (best / f"{side}.tflite").read_bytes()
        out[f"{side}_bytes"] = len(raw)
        out[f"{side}_gzip_bytes"] = len(gzip.compress(raw, 9))
        out[f"{side}_accuracy"] = tflite_accuracy(raw, splits, "test")
    out["ratio_raw"] = round(out["baseline_bytes"] / out["model_bytes"], 2)
    out["ratio_gzip"] = round(out["baseline_gzip_bytes"] / out["model_gzip_bytes"], 2)
    out["test_drop_pts"] = round((out["baseline_accuracy"] - out["model_accuracy"]) * 100, 2)
    return out


def case_done(objective: str, seed: int, time_budget: str, work: Path) -> dict[str, Any]:
    out = work / f"done-{objective}-s{seed}"
    cmd = [
        sys.executable, "-m", "engine", "search", "demo", "--data", "demo",
        "--budget", str(BUDGET), "--objective", objective, "--time", time_budget,
        "--seed", str(seed), "--out", str(out), "--json",
    ]  # fmt: skip
    log(f"done: {' '.join(cmd[2:])}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = round(time.perf_counter() - t0, 1)
    row: dict[str, Any] = {
        "case": "done",
        "model": "demo",
        "objective": objective,
        "seed": seed,
        "exit": proc.returncode,
        "wall_s": wall,
        "command": "featherweight " + " ".join(cmd[3:]),
    }
    if proc.returncode not in (0, 3):
        row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
        log(f"  failed: {row['error']}")
        return row
    doc = json.loads((out / "search.json").read_text())
    best = doc.get("best") or {}
    trials = doc.get("trials", [])
    row.update(
        trials=len(trials),
        complete=sum(t["state"] == "complete" for t in trials),
        pruned=sum(t["state"] == "pruned" for t in trials),
        failed=sum(t["state"] == "fail" for t in trials),
        cache=doc.get("cache"),
        best_trial=best.get("trial"),
        within_budget=best.get("within_budget"),
        val_drop_pts=best.get("val_drop"),
        reported_test_drop_pts=best.get("drop_pts"),
        recipe=_recipe_text(best.get("trial"), trials),
    )
    if (out / "best" / "model.tflite").exists():
        row.update(remeasure(out / "best", "demo", "demo"))
    row["frontier"] = _frontier_points(doc)
    row["baseline_val"] = _baseline_val(doc)
    row["all_trials"] = _trial_points(doc)
    log(
        f"  exit {row['exit']} in {wall} s, {row['trials']} trials: gzip "
        f"{row.get('ratio_gzip')}x, raw {row.get('ratio_raw')}x, val drop "
        f"{row['val_drop_pts']}, test drop {row.get('test_drop_pts')}"
    )
    return row


def case_mobilenet(time_budget: str, seed: int, work: Path) -> list[dict[str, Any]]:
    """The benchmark MobileNetV2: uniform prune 80 % + int8 first (its drop), int8 alone (the
    size bar), then the issue's search command on it, its best re-measured from the files."""
    from benchmarks.models import digits32, mobilenet_digits32_heldout
    from engine.pipeline.prepare import prepare

    # Trained without the validation split the search judges on (see the function).
    model, data = str(mobilenet_digits32_heldout()), str(digits32())
    prepared = prepare(model, data)
    rows = examples(prepared, "mobilenet", "gzip", 0, work, only=("prune80_int8", "int8_ptq"))
    for r in rows:
        r["case"] = "mobilenet"
    del prepared
    out = work / f"mobilenet-gzip-s{seed}"
    cmd = [
        sys.executable, "-m", "engine", "search", model, "--data", data,
        "--budget", str(BUDGET), "--objective", "gzip", "--time", time_budget,
        "--seed", str(seed), "--out", str(out), "--json",
    ]  # fmt: skip
    log(f"mobilenet: search --time {time_budget} --seed {seed}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    row: dict[str, Any] = {
        "case": "mobilenet",
        "model": "mobilenet",
        "objective": "gzip",
        "side": "search",
        "seed": seed,
        "exit": proc.returncode,
        "wall_s": round(time.perf_counter() - t0, 1),
        "command": "featherweight " + " ".join(cmd[3:]),
    }
    if proc.returncode not in (0, 3):
        row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return [*rows, row]
    doc = json.loads((out / "search.json").read_text())
    best = doc.get("best") or {}
    row.update(
        trials=len(doc["trials"]),
        cache=doc.get("cache"),
        within_budget=best.get("within_budget"),
        val_drop_pts=best.get("val_drop"),
        recipe=_recipe_text(best.get("trial"), doc["trials"]),
        frontier=_frontier_points(doc),
        all_trials=_trial_points(doc),
        baseline_val=_baseline_val(doc),
    )
    if (out / "best" / "model.tflite").exists():
        row.update(remeasure(out / "best", model, data))
    log(
        f"  exit {row['exit']}: gzip {row.get('ratio_gzip')}x, test drop {row.get('test_drop_pts')}"
    )
    return [*rows, row]


def _recipe_text(number: int | None, trials: list[dict[str, Any]]) -> str | None:
    from engine.techniques.registry import STEP_SPECS

    for t in trials:
        if t["number"] == number and t.get("recipe"):
            steps = t["recipe"]["steps"]
            return " → ".join(f"{s['type']} ({STEP_SPECS[s['type']].describe(s)})" for s in steps)
    return None


def _trial_points(doc: dict[str, Any]) -> list[dict[str, Any]]:
    key = OBJECTIVE_KEY[doc["objective"]]
    return [
        {
            "number": t["number"],
            "state": t["state"],
            "size": t.get(key),
            "val": t.get("val_accuracy"),
        }
        for t in doc.get("trials", [])
        if t.get(key) is not None and t.get("val_accuracy") is not None
    ]


def _baseline_val(doc: dict[str, Any]) -> float | None:
    val = (doc.get("baseline") or {}).get("val_accuracy")
    return None if val is None else val * 100


def _frontier_points(doc: dict[str, Any]) -> list[dict[str, Any]]:
    points = {p["number"]: p for p in _trial_points(doc)}
    return [points[n] for n in doc.get("frontier", []) if n in points]


def case_compare(
    name: str, objective: str, seeds: list[int], time_s: float, work: Path
) -> list[dict[str, Any]]:
    """TPE vs random sampler vs the example recipes, alternating, equal wall time."""
    from engine.pipeline.prepare import prepare
    from engine.pipeline.search import search

    model, data = model_files(name)
    prepared = prepare(model, data)
    base = prepared.baseline
    rows: list[dict[str, Any]] = []
    if name == "mobilenet":
        rows += examples(prepared, name, objective, seed=0, work=work, only=("prune80_int8",))
    for i, seed in enumerate(seeds):
        order = ["tpe", "random", "examples"]
        if i % 2:
            order = order[::-1]
        for side in order:
            if side == "examples":
                rows += examples(prepared, name, objective, seed, work)
                continue
            out = work / f"{name}-{objective}-{side}-s{seed}"
            log(f"compare {name} {objective}: {side} seed {seed}, {time_s:.0f} s")
            t0 = time.perf_counter()
            doc = search(prepared, BUDGET, objective, out, time_s=time_s, seed=seed, sampler=side)
            wall = round(time.perf_counter() - t0, 1)
            best = doc.get("best") or {}
            key = OBJECTIVE_KEY[objective]
            trial = next((t for t in doc["trials"] if t["number"] == best.get("trial")), {})
            rows.append(
                {
                    "case": "compare",
                    "model": name,
                    "objective": objective,
                    "side": side,
                    "seed": seed,
                    "wall_s": wall,
                    "trials": len(doc["trials"]),
                    "cache": doc.get("cache"),
                    "within_budget": best.get("within_budget"),
                    "val_drop_pts": best.get("val_drop"),
                    "test_drop_pts": best.get("drop_pts"),
                    "size": trial.get(key),
                    "ratio_gzip": best.get("ratio_gzip"),
                    "ratio_raw": best.get("ratio_raw"),
                    "baseline_size": _baseline_size(base, objective, doc),
                    "recipe": _recipe_text(best.get("trial"), doc["trials"]),
                    "frontier": _frontier_points(doc),
                    "baseline_val": _baseline_val(doc),
                    "all_trials": _trial_points(doc),
                }
            )
            log(
                f"  {side}: {rows[-1]['trials']} trials, best ratio gzip "
                f"{rows[-1]['ratio_gzip']}, raw {rows[-1]['ratio_raw']}, test drop "
                f"{rows[-1]['test_drop_pts']}"
            )
    return rows


def _baseline_size(base: dict[str, Any], objective: str, doc: dict[str, Any]) -> Any:
    return (doc.get("baseline") or {}).get(OBJECTIVE_KEY[objective], base.get("tflite_bytes"))


def examples(
    prepared: Any,
    name: str,
    objective: str,
    seed: int,
    work: Path,
    only: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Every example recipe once (or ``only`` these); one row each, test-measured."""
    from engine.pipeline.recipe import load_recipe
    from engine.pipeline.run import run_recipe
    from engine.tflite.report import report_tflite

    rows = []
    for path in sorted((ROOT / "resources" / "recipes").glob("*.json")):
        if only and path.stem not in only:
            continue
        rec = load_recipe(path)
        rec = dataclasses.replace(rec, seed=seed)
        out = work / f"{name}-example-{path.stem}-s{seed}"
        t0 = time.perf_counter()
        m = run_recipe(prepared, rec, out)
        wall = round(time.perf_counter() - t0, 1)
        comp = m["compressed"]
        size = {
            "gzip": comp["tflite_gzip_bytes"],
            "flash": comp["tflite_bytes"],
            "latency": comp["latency_ms"],
            "ram": report_tflite(out / "model.tflite").get("arena_estimate_bytes"),
        }[objective]
        rows.append(
            {
                "case": "compare",
                "model": name,
                "objective": objective,
                "side": "example",
                "example": path.stem,
                "seed": seed,
                "wall_s": wall,
                "test_drop_pts": round(m["accuracy_drop"] * 100, 2),
                "within_budget": m["accuracy_drop"] * 100 <= BUDGET,
                "size": size,
                "ratio_gzip": round(m["ratio_gzip"], 2),
                "ratio_raw": round(m["ratio_raw"], 2),
            }
        )
        r = rows[-1]
        log(f"  example {path.stem}: drop {r['test_drop_pts']:+.2f}, gzip {r['ratio_gzip']}x")
    return rows


# ------------------------------------------------------------------------------ report


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def render(data: dict[str, Any], out: Path) -> None:
    rows = data["rows"]
    lines = [
        "# Search benchmark (issue 15)",
        "",
        f"Written by `python benchmarks/search.py` on {data.get('date', '?')}; "
        f"{data.get('machine', '')}. Budget {BUDGET} point.",
        "",
    ]
    done = [r for r in rows if r["case"] == "done"]
    if done:
        lines += [
            "## The issue's command on the demo, re-measured from `D/best/`",
            "",
            "| objective | seed | exit | trials (done/pruned/failed) | cache hits | val drop | "
            "test drop | gzip ratio | raw ratio | best recipe |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in done:
            cache = r.get("cache") or {}
            lines.append(
                f"| {r['objective']} | {r['seed']} | {r['exit']} | {r.get('trials')} "
                f"({r.get('complete')}/{r.get('pruned')}/{r.get('failed')}) | "
                f"{cache.get('hits', '–')} | {r.get('val_drop_pts')} | {r.get('test_drop_pts')} | "
                f"{r.get('ratio_gzip')}× | {r.get('ratio_raw')}× | "
                f"{r.get('recipe') or r.get('error')} |"
            )
        lines.append("")
        for objective in sorted({r["objective"] for r in done}):
            rs = [r for r in done if r["objective"] == objective]
            lines.append(
                f"- **{objective}**: median gzip ratio "
                f"{_median([r.get('ratio_gzip') for r in rs])}×, "
                f"median raw ratio {_median([r.get('ratio_raw') for r in rs])}×, median test drop "
                f"{_median([r.get('test_drop_pts') for r in rs])} points over {len(rs)} seeds "
                f"(time budget {data.get('time', '?')} each; wall "
                f"{_median([r['wall_s'] for r in rs])} s median)."
            )
        lines.append("")
    mob = [r for r in rows if r["case"] == "mobilenet"]
    if mob:
        lines += [
            "## The benchmark MobileNetV2 (α 0.35, digits at 32×32)",
            "",
            "| run | exit | trials | val drop | test drop | gzip ratio | raw ratio | recipe |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in mob:
            name = f"example {r['example']}" if r.get("example") else f"search {r['command']}"
            lines.append(
                f"| {name} | {r.get('exit', '–')} | {r.get('trials', 1)} | "
                f"{r.get('val_drop_pts', '–')} | {r.get('test_drop_pts')} | "
                f"{r.get('ratio_gzip')}× | {r.get('ratio_raw')}× | "
                f"{r.get('recipe') or r.get('error') or ''} |"
            )
        lines.append("")
    comp = [r for r in rows if r["case"] == "compare"]
    for model in sorted({r["model"] for r in comp}):
        for objective in sorted({r["objective"] for r in comp if r["model"] == model}):
            rs = [r for r in comp if r["model"] == model and r["objective"] == objective]
            lines += [
                f"## {model}, objective {objective}: TPE vs random sampler vs example recipes",
                "",
                "| side | seed | wall s | trials | within budget | val drop | test drop | "
                "size | gzip ratio | raw ratio | recipe |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for r in rs:
                side = r["side"] if r["side"] != "example" else f"example {r['example']}"
                lines.append(
                    f"| {side} | {r['seed']} | {r['wall_s']} | {r.get('trials', 1)} | "
                    f"{r.get('within_budget')} | {r.get('val_drop_pts', '–')} | "
                    f"{r.get('test_drop_pts')} | {r.get('size')} | {r.get('ratio_gzip')}× | "
                    f"{r.get('ratio_raw')}× | {r.get('recipe', '')} |"
                )
            lines.append("")
            png = f"search_frontier_{model}_{objective}.png"
            if (out.parent / png).exists():
                lines += [f"![frontier]({png})", ""]
    lines += data.get("notes", [])
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def draw_frontiers(data: dict[str, Any], folder: Path) -> list[Path]:
    """One PNG per (model, objective): every trial of every search run of that pair."""
    written = []
    rows = [r for r in data["rows"] if r.get("all_trials")]
    for model, objective in sorted({(r["model"], r["objective"]) for r in rows}):
        rs = [r for r in rows if r["model"] == model and r["objective"] == objective]
        path = folder / f"search_frontier_{model}_{objective}.png"
        _draw(rs, objective, path, rs[0].get("baseline_val"))
        written.append(path)
    return written


def _draw(rows: list[dict[str, Any]], objective: str, path: Path, base: Any) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import math

    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPen

    _app = QGuiApplication.instance() or QGuiApplication(["chart"])
    w, h, left, right, top, bottom = 1000, 620, 90, 230, 50, 70
    pts = [p for r in rows for p in r["all_trials"]]
    xs = [p["size"] for p in pts]
    ys = [p["val"] * 100 for p in pts]
    x0, x1 = math.log10(min(xs) * 0.8), math.log10(max(xs) * 1.25)
    y0, y1 = max(0.0, min(ys) - 1), min(100.0, max(ys) + 1)
    if base is not None:
        y0 = min(y0, base - BUDGET - 1)

    def at(x: float, y: float) -> QPointF:
        fx = (math.log10(x) - x0) / (x1 - x0)
        fy = (y - y0) / (y1 - y0)
        return QPointF(left + fx * (w - left - right), top + (1 - fy) * (h - top - bottom))

    img = QImage(w, h, QImage.Format.Format_ARGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setFont(QFont("DejaVu Sans", 10))
    p.drawRect(QRectF(left, top, w - left - right, h - top - bottom))
    unit = "ms" if objective == "latency" else "bytes"
    p.drawText(QRectF(left, h - 40, w - left - right, 30), Qt.AlignmentFlag.AlignCenter,
               f"{objective} ({unit}, log scale)")  # fmt: skip
    p.save()
    p.translate(20, h / 2 + 80)
    p.rotate(-90)
    p.drawText(0, 0, "validation accuracy (%)")
    p.restore()
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        q = at(10**x0, y)
        p.drawText(QRectF(5, q.y() - 8, left - 10, 16), Qt.AlignmentFlag.AlignRight, f"{y:.1f}")
    for i in range(5):
        x = 10 ** (x0 + (x1 - x0) * i / 4)
        q = at(x, y0)
        p.drawText(QRectF(q.x() - 40, h - bottom + 4, 80, 16), Qt.AlignmentFlag.AlignCenter,
                   f"{x:.3g}")  # fmt: skip
    if base is not None:
        p.setPen(QPen(QColor("#d62728"), 1, Qt.PenStyle.DashLine))
        a, b = at(10**x0, base - BUDGET), at(10**x1, base - BUDGET)
        p.drawLine(a, b)
        p.drawText(QPointF(b.x() + 5, b.y() + 4), f"budget ({BUDGET:g} pt)")
    colors = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
    for i, r in enumerate(rows):
        c = QColor(colors[i % len(colors)])
        for q in r["all_trials"]:
            grey = q["state"] != "complete"
            p.setPen(QPen(QColor("#bbbbbb") if grey else c))
            p.drawEllipse(at(q["size"], q["val"] * 100), 3, 3)
        front = sorted(r["frontier"], key=lambda q: q["size"])
        p.setPen(QPen(c, 2))
        for a, b in zip(front, front[1:]):
            p.drawLine(at(a["size"], a["val"] * 100), at(b["size"], b["val"] * 100))
        label = f"{r.get('side', r['case'])} seed {r['seed']}"
        p.drawText(QPointF(w - right + 15, top + 20 + 18 * i), label)
    p.end()
    img.save(str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="done,compare")
    parser.add_argument("--models", default="demo,mobilenet")
    parser.add_argument("--objectives", default="gzip,flash")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--time", default="20m")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "SEARCH.md"))
    parser.add_argument("--work", default=None)
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    store = out.with_suffix(".json")
    if args.render:
        data = json.loads(store.read_text())
        draw_frontiers(data, out.parent)
        render(data, out)
        return 0
    from engine.pipeline.search import parse_duration

    seeds = [int(s) for s in args.seeds.split(",")]
    objectives = args.objectives.split(",")
    work = Path(args.work or ROOT / "benchmarks" / ".cache" / "search-runs")
    work.mkdir(parents=True, exist_ok=True)
    data = json.loads(store.read_text()) if store.exists() else {"rows": []}
    data.update(
        date=time.strftime("%Y-%m-%d"),
        time=args.time,
        machine=f"{os.cpu_count()} cores, {sys.platform}",
    )

    def save() -> None:
        store.write_text(json.dumps(data, indent=1) + "\n")
        draw_frontiers(data, out.parent)
        render(data, out)

    cases = args.cases.split(",")
    if "done" in cases:
        data["rows"] = [r for r in data["rows"] if r["case"] != "done"]
        for objective in objectives:
            for seed in seeds:
                data["rows"].append(case_done(objective, seed, args.time, work))
                save()
    if "mobilenet" in cases:
        data["rows"] = [r for r in data["rows"] if r["case"] != "mobilenet"]
        data["rows"] += case_mobilenet(args.time, seeds[0], work)
        save()
    if "compare" in cases:
        for model in args.models.split(","):
            for objective in objectives:
                data["rows"] = [
                    r
                    for r in data["rows"]
                    if not (
                        r["case"] == "compare"
                        and r["model"] == model
                        and r["objective"] == objective
                    )
                ]
                data["rows"] += case_compare(
                    model, objective, seeds, parse_duration(args.time), work
                )
                save()
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
