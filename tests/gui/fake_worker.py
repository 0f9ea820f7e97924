"""A stand-in for ``engine.service.worker`` that plays recorded events (no TensorFlow).

Speaks protocol 1 (see engine/service/worker.py). For ``submit`` of job NAME it plays
``recordings/NAME.jsonl`` (one event per line, without ``id``/``v``), pausing ``--delay``
seconds between events and checking for ``cancel`` in between. Behaviour switches:

    --delay S          pause between recorded events (default 0.01)
    --ready-delay S    wait before the "ready" event (default 0)
    --ignore-cancel    never honour a soft cancel (the runner must kill us)
    --recordings DIR   where the .jsonl files are (default: next to this script)

Special job names: ``crash`` exits the process at once (code 3) after ``accepted``;
``fail`` answers an internal error; jobs named in ``--unsafe`` fail with kind
``unsafe_model`` unless params.allow_unsafe is true; ``inspect`` of a model whose name
contains "corrupt" fails with kind ``bad_input``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.01)
    ap.add_argument("--ready-delay", type=float, default=0.0)
    ap.add_argument("--ignore-cancel", action="store_true")
    ap.add_argument("--recordings", default=str(HERE / "recordings"))
    args = ap.parse_args()
    rec_dir = Path(args.recordings)
    lock = threading.Lock()
    cancel = threading.Event()
    state: dict = {"thread": None, "id": None}

    def send(ev: dict) -> None:
        with lock:
            sys.stdout.write(json.dumps({"v": 1, **ev}) + "\n")
            sys.stdout.flush()

    def play(job_id: str, job: str, params: dict) -> None:
        if job == "crash":
            time.sleep(args.delay)
            os._exit(3)
        if job == "fail":
            send(
                {
                    "type": "error",
                    "id": job_id,
                    "kind": "internal",
                    "message": "ZeroDivisionError: division by zero",
                    "details": "Traceback (most recent call last):\n  ...\nZeroDivisionError",
                }
            )
            return
        model = str(params.get("model", ""))
        data = str(params.get("data", ""))
        if job == "check_data" and "corrupt" in data:
            send(
                {
                    "type": "error",
                    "id": job_id,
                    "kind": "bad_data",
                    "message": f"{Path(data).name} is not a readable .npz file (File is not a "
                    "zip file)",
                    "details": "",
                }
            )
            return
        if job in ("inspect", "baseline", "check_data", "compress"):
            if "corrupt" in model:
                send(
                    {
                        "type": "error",
                        "id": job_id,
                        "kind": "bad_input",
                        "message": f"{Path(model).name} is not a readable Keras model file "
                        "(truncated zip archive)",
                        "details": "Traceback: ...",
                    }
                )
                return
            if "lambda" in model and not params.get("allow_unsafe"):
                send(
                    {
                        "type": "error",
                        "id": job_id,
                        "kind": "unsafe_model",
                        "message": f"{Path(model).name} contains a Lambda layer 'lambda' whose "
                        "code would run when loaded",
                        "details": "",
                    }
                )
                return
        path = rec_dir / f"{job}.jsonl"
        events = []
        if path.exists():
            events = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        for ev in events:
            if cancel.is_set() and not args.ignore_cancel:
                send({"type": "cancelled", "id": job_id, "message": "cancelled by the user"})
                return
            time.sleep(args.delay)
            if ev.get("type") == "result" and job == "compress" and params.get("out"):
                out = Path(params["out"])
                out.mkdir(parents=True, exist_ok=True)
                (out / "metrics.json").write_text(json.dumps(ev["result"], indent=2))
                (out / "model.tflite").write_bytes(b"TFL3" + b"\0" * 64)
                (out / "model.keras").write_bytes(b"PK\x05\x06" + b"\0" * 18)
            send({**ev, "id": job_id})
        if job == "sleep":
            total = int(float(params.get("seconds", 1.0)) * 20)
            for i in range(total):
                if cancel.is_set() and not args.ignore_cancel:
                    send({"type": "cancelled", "id": job_id, "message": "cancelled by the user"})
                    return
                send(
                    {
                        "type": "progress",
                        "id": job_id,
                        "stage": "sleep",
                        "step": i + 1,
                        "total": total,
                    }
                )
                time.sleep(0.05)
            send({"type": "result", "id": job_id, "result": {}})
            return
        if not events:
            send({"type": "result", "id": job_id, "result": {}})

    send({"type": "hello", "pid": os.getpid(), "protocol": 1})
    time.sleep(args.ready_delay)
    send(
        {
            "type": "ready",
            "versions": {
                "featherweight": "0.1.0",
                "tensorflow": "2.21.0",
                "tf_keras": "2.21.0",
                "tfmot": "0.8.1",
            },
        }
    )
    for raw in sys.stdin:
        if not raw.strip():
            continue
        req = json.loads(raw)
        op = req.get("op")
        if op == "submit":
            t = state["thread"]
            if t is not None and t.is_alive():
                send(
                    {
                        "type": "error",
                        "id": req["id"],
                        "kind": "busy",
                        "message": "another job is still running",
                        "details": "",
                    }
                )
                continue
            cancel.clear()
            state["id"] = req["id"]
            send({"type": "accepted", "id": req["id"], "job": req["job"]})
            t = threading.Thread(
                target=play, args=(req["id"], req["job"], req.get("params") or {}), daemon=True
            )
            state["thread"] = t
            t.start()
        elif op == "cancel":
            cancel.set()
        elif op == "ping":
            send({"type": "pong"})
        elif op == "shutdown":
            break
    if not args.ignore_cancel:
        cancel.set()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
