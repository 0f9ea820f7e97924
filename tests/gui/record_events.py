"""Re-record the fake worker's events from the REAL engine worker (needs TensorFlow).

    python tests/gui/record_events.py          # rewrites tests/gui/recordings/*.jsonl

Runs inspect / check_data / baseline on the demo and a small compress (prune 80 % for 2
epochs + int8), and stores every event the worker sent (without ``id``/``v``), so the fast
GUI tests replay what the engine really says.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
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


def main() -> int:
    out_dir = Path(tempfile.mkdtemp()) / "run"
    jobs = [
        ("inspect", {"model": "demo"}),
        ("check_data", {"model": "demo", "data": "demo", "scale": "auto"}),
        ("baseline", {"model": "demo", "data": "demo", "scale": "auto"}),
        (
            "compress",
            {
                "model": "demo",
                "data": "demo",
                "scale": "auto",
                "recipe": RECIPE,
                "out": str(out_dir),
            },
        ),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.service.worker"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    for n, (job, params) in enumerate(jobs):
        job_id = f"rec-{n}"
        proc.stdin.write(
            json.dumps({"op": "submit", "id": job_id, "job": job, "params": params}) + "\n"
        )
        proc.stdin.flush()
        events = []
        for line in proc.stdout:
            ev = json.loads(line)
            if ev.get("id") != job_id or ev["type"] == "accepted":
                continue
            ev.pop("id")
            ev.pop("v", None)
            events.append(ev)
            if ev["type"] in ("result", "error", "cancelled"):
                break
        if events[-1]["type"] != "result":
            raise SystemExit(f"{job} failed: {events[-1]}")
        path = HERE / "recordings" / f"{job}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        print(f"{job}: {len(events)} events -> {path}")
    proc.stdin.write('{"op": "shutdown"}\n')
    proc.stdin.close()
    proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
