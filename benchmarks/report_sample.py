"""Make the demo project the report is shown and tested on: two runs, a sensitivity analysis
and a search, all real (TensorFlow training, LiteRT measurement) -- about 5 minutes.

    python benchmarks/report_sample.py OUT_DIR [--search-time 3m] [--search-trials 8]

Writes ``OUT_DIR/demo.fwproj`` and its ``demo_files/``. ``--slim`` then drops what a report
never reads (Keras files, study journal, trial folders, checkpoints), so that the result is
small enough to keep as a test sample (tests/data/report_sample/).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# What a report reads: the project, the saved JSON documents and each model.tflite (the
# .tflite path of `featherweight report`); never a baseline.tflite (metrics.json has its numbers).
KEEP_SUFFIXES = {".json", ".tflite", ".fwproj"}
DROP_DIRS = {"checkpoints", "trials", "heartbeats"}


def make(out: Path, search_time: str, search_trials: int) -> Path:
    from engine.pipeline.prepare import prepare
    from engine.pipeline.search import parse_duration, search
    from engine.pipeline.sensitivity import analyze
    from engine.project import document as doc

    out.mkdir(parents=True, exist_ok=True)
    path = out / "demo.fwproj"
    project = doc.new_project("demo")
    doc.set_model(project, "demo")
    doc.set_dataset(project, "demo", seed=0)
    for name in ("int8_ptq", "prune80_int8"):
        recipe = json.loads((ROOT / "resources" / "recipes" / f"{name}.json").read_text())
        doc.add_pending_run(project, recipe)
    doc.save_project(project, path)
    summary = doc.run_project(path)
    print("runs:", summary["done"], "failed:", summary["failed"], flush=True)

    project = doc.load_project(path)
    sens = analyze("demo", "demo", prune_grid=(0.5, 0.8, 0.9), cluster_grid=(16, 4))
    doc.add_analysis(project, sens)
    entry = doc.add_search(
        project, 1.0, "gzip", time_s=parse_duration(search_time), trials=search_trials
    )
    prepared = prepare("demo", "demo", (0, 0.1))
    result = search(
        prepared,
        1.0,
        "gzip",
        doc.search_dir(project, entry),
        time_s=parse_duration(search_time),
        trials=search_trials,
        seed=0,
    )
    print("search best:", (result.get("best") or {}).get("ratio_gzip"), flush=True)
    doc.save_project(project, path)
    return path


def slim(out: Path) -> None:
    for p in sorted(out.rglob("*"), reverse=True):
        rel = p.relative_to(out).parts
        if p.is_dir():
            if rel[-1] in DROP_DIRS or not any(p.iterdir()):
                shutil.rmtree(p)
        elif p.suffix not in KEEP_SUFFIXES or p.name.startswith(".") or p.name == "baseline.tflite":
            p.unlink()
    # The project lists each run's artifacts: keep only those still there (no "missing" warning).
    for proj in out.glob("*.fwproj"):
        data = json.loads(proj.read_text(encoding="utf-8"))
        files = proj.with_name(proj.stem + "_files")
        for run in data.get("runs", []):
            run["artifacts"] = [a for a in run.get("artifacts", []) if (files / a).exists()]
        proj.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--search-time", default="3m")
    ap.add_argument("--search-trials", type=int, default=8)
    ap.add_argument("--slim", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    make(out, args.search_time, args.search_trials)
    if args.slim:
        slim(out)
    print(out / "demo.fwproj")


if __name__ == "__main__":
    main()
