"""Re-record the fake worker's events from the REAL engine worker (needs TensorFlow).

    python tests/gui/record_events.py          # rewrites tests/gui/recordings/*.jsonl
    python tests/gui/record_events.py --zoo text_cnn   # tests/gui/recordings_zoo/text_cnn/
    python tests/gui/record_events.py --analyze        # only recordings/analyze.jsonl

Runs inspect / check_data / baseline on the demo and a small compress (prune 80 % for 2
epochs + int8), and stores every event the worker sent (without ``id``/``v``), so the fast
GUI tests replay what the engine really says. The dataset jobs carry the dataset's split
(``split_seed``, ``val_fraction``) as the GUI sends it.

``run_jobs`` is also used by tests/gui/test_recordings_shape.py, which fails when the
engine's real events no longer have the recordings' shape (then run this script).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RECORDINGS = HERE / "recordings"
ZOO_RECORDINGS = HERE / "recordings_zoo"  # one folder per zoo family (--zoo)
RECIPE = {
    "schema_version": 1,
    "name": "prune-int8",
    "seed": 0,
    "batch_size": 32,
    "steps": [
        {"type": "prune", "target_sparsity": 0.8, "epochs": 2, "learning_rate": 0.0005},
        {"type": "quantize", "mode": "int8"},
    ],
}
# The split of a new project's dataset reference (engine.project.document.DatasetRef).
SPLIT = {"split_seed": 0, "val_fraction": 0.1}


def recorded_jobs(out_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The jobs the recordings hold, with the parameters the GUI sends (the dataset jobs
    carry the dataset's split, engine/service/jobs.py)."""
    demo = {"model": "demo", "data": "demo", "scale": "auto", "allow_unsafe": False, **SPLIT}
    return [
        ("inspect", {"model": "demo", "allow_unsafe": False}),
        ("check_data", dict(demo)),
        ("baseline", dict(demo)),
        ("compress", {**demo, "recipe": RECIPE, "out": str(out_dir)}),
    ]


def analyze_job() -> tuple[str, dict[str, Any]]:
    """The sensitivity analysis of the demo as the Model tab's *Analyze* sends it."""
    demo = {"model": "demo", "data": "demo", "scale": "auto", "allow_unsafe": False, **SPLIT}
    return ("analyze", demo)


def run_jobs(jobs: list[tuple[str, dict[str, Any]]], cache_dir: Path) -> list[list[dict[str, Any]]]:
    """Run ``jobs`` one after the other in one real worker whose per-user cache is
    ``cache_dir`` (an empty one: the baseline is measured, as on a first run); every job's
    events (without ``accepted``, ``id`` and ``v``), its last one being ``result``,
    ``error`` or ``cancelled``."""
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(cache_dir),
        "FEATHERWEIGHT_CACHE_DIR": str(cache_dir),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.service.worker"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    answers = []
    try:
        for n, (job, params) in enumerate(jobs):
            job_id = f"rec-{n}"
            request = {"op": "submit", "id": job_id, "job": job, "params": params}
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            events: list[dict[str, Any]] = []
            for line in proc.stdout:
                ev = json.loads(line)
                if ev.get("id") != job_id or ev["type"] == "accepted":
                    continue
                ev.pop("id")
                ev.pop("v", None)
                events.append(ev)
                if ev["type"] in ("result", "error", "cancelled"):
                    break
            if not events:
                raise RuntimeError(f"the worker stopped during {job} (exit {proc.poll()})")
            answers.append(events)
        proc.stdin.write('{"op": "shutdown"}\n')
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return answers


def zoo_jobs(family: str) -> list[tuple[str, dict[str, Any]]]:
    """inspect / check_data / baseline of a model-zoo family (tests/zoo/builders.py, built
    or reused from its cache) with its own .npz, as the GUI sends them."""
    sys.path.insert(0, str(ROOT))
    from tests.zoo.builders import build_family

    entry = build_family(family)
    data = {
        "model": str(entry.model_path),
        "data": str(entry.data_path),
        "scale": "auto",
        "allow_unsafe": False,
        **SPLIT,
    }
    return [
        ("inspect", {"model": str(entry.model_path), "allow_unsafe": False}),
        ("check_data", dict(data)),
        ("baseline", dict(data)),
    ]


def record(jobs: list[tuple[str, dict[str, Any]]], folder: Path, tmp: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for (job, _params), events in zip(jobs, run_jobs(jobs, tmp / "cache")):
        if events[-1]["type"] != "result":
            raise SystemExit(f"{job} failed: {events[-1]}")
        path = folder / f"{job}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        print(f"{job}: {len(events)} events -> {path}")


def main(argv: list[str]) -> int:
    """No argument: the demo recordings. ``--zoo FAMILY``: recordings_zoo/FAMILY/ (inspect,
    check_data, baseline of that zoo model and its dataset; tests/gui/test_model_kinds.py
    plays recordings_zoo/text_cnn/)."""
    tmp = Path(tempfile.mkdtemp())
    if argv == ["--analyze"]:
        record([analyze_job()], RECORDINGS, tmp)
        return 0
    if len(argv) == 2 and argv[0] == "--zoo":
        record(zoo_jobs(argv[1]), ZOO_RECORDINGS / argv[1], tmp)
        return 0
    record(recorded_jobs(tmp / "run"), RECORDINGS, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
