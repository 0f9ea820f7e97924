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

Job ``search`` (issue 15) plays a synthetic search of the demo (``synthetic_search``: 12 trials,
events in the order and shape engine/pipeline/search.py sends them), writes ``search.json``
and the trial folders into ``params["out"]`` after every trial, and ends normally on a cancel
(the document with ``"stopped": "user"``), as the real search does. Job ``open_trial`` writes
an ordinary run folder (metrics.json, model.tflite) and answers metrics like ``compress``.
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
        if job == "search":
            play_search(job_id, params, send, cancel, args.delay, args.ignore_cancel)
            return
        if job == "open_trial":
            play_open_trial(job_id, params, send, rec_dir, args.delay)
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


# -- issue 15: a synthetic search of the demo -----------------------------------------------
DEMO_BASELINE = {
    "val_accuracy": 137 / 142,
    "accuracy": 0.975,
    "tflite_bytes": 608532,
    "tflite_gzip_bytes": 560624,
    "latency_ms": 0.0389,
    "arena_bytes": 21504,
}
OBJECTIVE_KEYS = {
    "gzip": "tflite_gzip_bytes",
    "flash": "tflite_bytes",
    "latency": "latency_ms",
    "ram": "arena_bytes",
}
# number: (state, steps, val correct of 142, gzip, raw, latency ms, arena, seconds, cache hits)
_TRIALS = [
    ("complete", "p80", 137, 55055, 161832, 0.0394, 12800, 21.0, 0),
    ("complete", "d50 p90e c16", 135, 11800, 52400, 0.0201, 6400, 38.5, 0),
    ("pruned", "p95 c8", None, None, None, None, None, 9.2, 0),
    ("complete", "p90s c16", 136, 22600, 161800, 0.0392, 12800, 24.1, 0),
    ("complete", "d75 p80 c16 qat", 136, 16900, 92100, 0.0301, 9600, 41.7, 1),
    ("fail", "d50 p95 c8 f16", None, None, None, None, None, 3.1, 1),
    ("complete", "d50 p80e c16", 136, 13100, 52400, 0.0203, 6400, 12.4, 1),
    ("complete", "p50 f16", 137, 140200, 305900, 0.0411, 25600, 17.9, 0),
    ("pruned", "d50 p95e c8", None, None, None, None, None, 8.8, 1),
    ("complete", "d50 p90e c8", 134, 9400, 52400, 0.0199, 6400, 14.0, 2),
    ("complete", "d50 p80e c8 sparse", 136, 12400, 40100, 0.0221, 6400, 11.2, 2),
    ("complete", "dyn", 137, 131000, 161900, 0.0522, 24000, 6.5, 0),
]
_TEST = {9: 0.9583, 1: 0.9667, 10: 0.9694, 0: 0.9722}


def _steps(code: str) -> tuple[list[dict], dict]:
    steps: list[dict] = []
    params: dict = {"width": None, "sparsity": 0.0, "allocation": "uniform", "clusters": 0}
    params.update({"qat": False, "format": "int8", "sparse": False})
    fmt = "int8"
    for part in code.split():
        if part in ("f16", "dyn"):
            fmt = {"f16": "float16", "dyn": "dynamic"}[part]
        elif part == "sparse":
            params["sparse"] = True
        elif part == "qat":
            params["qat"] = True
            steps.append({"type": "qat", "epochs": 2})
        elif part.startswith("d"):
            params["width"] = int(part[1:]) / 100
            steps.append({"type": "distill", "width": params["width"], "epochs": 12})
        elif part.startswith("p"):
            alloc = {"e": "erk", "s": "sensitivity"}.get(part[-1], "uniform")
            sp = int(part[1:3]) / 100
            params.update(sparsity=sp, allocation=alloc)
            steps.append({"type": "prune", "target_sparsity": sp, "allocation": alloc, "epochs": 4})
        elif part.startswith("c"):
            params["clusters"] = int(part[1:])
            steps.append({"type": "cluster", "clusters": params["clusters"], "epochs": 2})
    params["format"] = fmt
    quantize = {"type": "quantize", "mode": fmt}
    if params["sparse"]:
        quantize["sparse"] = True
    steps.append(quantize)
    return steps, params


def synthetic_search(params: dict) -> tuple[list[dict], dict]:
    """The events and the final search.json document of the synthetic demo search."""
    objective = str(params.get("objective") or "gzip")
    budget = float(params.get("budget", 1.0))
    limit = params.get("trials")
    rows = _TRIALS[: int(limit)] if limit else _TRIALS
    key = OBJECTIVE_KEYS.get(objective, "tflite_gzip_bytes")
    base_val = DEMO_BASELINE["val_accuracy"]
    baseline = dict(DEMO_BASELINE)
    time_budget = params.get("time_s")
    doc = {
        "schema_version": 1,
        "kind": "featherweight-search",
        "study_name": "demo-digits-gzip-1pt",
        "storage": "journal",
        "objective": objective,
        "budget_pts": budget,
        "seed": int(params.get("seed", 0)),
        "sampler": "tpe",
        "time_budget_s": time_budget,
        "trial_budget": limit,
        "elapsed_s": 0.0,
        "stopped": None,
        "model": str(params.get("model", "demo")),
        "data": {"source": str(params.get("data", "demo")), "n_val": 142, "n_test": 360},
        "split": {"seed": params.get("split_seed", 0), "val_fraction": 0.1},
        "baseline": baseline,
        "space": {"width": [None, 0.75, 0.5], "sparsity": [0, 0.5, 0.8, 0.9, 0.95]},
        "trials": [],
        "frontier": [],
        "frontier_test": [],
        "best": None,
        "cache": {"hits": 0, "misses": 0},
        "noise": {"val_samples": 142, "one_sample_pts": 100 / 142},
    }
    events: list[dict] = []
    elapsed = 2.0

    def summary() -> dict:
        done = [t for t in doc["trials"] if t["state"] != "running"]
        best = _best(doc["trials"], key, budget)
        per = elapsed / max(1, len(done))
        left = len(rows) - len(done)
        return {
            "type": "search",
            "trials_done": len(done),
            "best": best["number"] if best else None,
            "best_values": _values(best) if best else None,
            "frontier": _frontier(doc["trials"], key),
            "elapsed_s": round(elapsed, 1),
            "time_budget_s": time_budget,
            "trial_budget": limit,
            "eta_s": round(per * left, 1),
            "baseline": baseline,
            "objective": objective,
            "budget_pts": budget,
        }

    events.append(summary())
    for number, (state, code, correct, gz, raw, lat, arena, secs, hits) in enumerate(rows):
        steps, trial_params = _steps(code)
        recipe = {
            "schema_version": 3,
            "name": f"search-trial-{number:04d}",
            "seed": 0,
            "batch_size": 32,
            "steps": steps,
        }
        start = {
            "type": "trial",
            "number": number,
            "state": "running",
            "params": trial_params,
            "recipe": recipe,
        }
        events.append(start)
        events.append(
            {
                "type": "stage",
                "stage": "prune",
                "label": "Pruning",
                "index": 0,
                "count": 2,
                "state": "start",
            }
        )
        events.append(
            {
                "type": "metric",
                "stage": "prune",
                "epoch": 1.0,
                "values": {"val_accuracy": (correct or 110) / 142},
            }
        )
        val = correct / 142 if correct is not None else None
        drop = (base_val - val) * 100 if val is not None else None
        values = {
            "val_accuracy": val,
            "val_drop": drop,
            "tflite_bytes": raw,
            "tflite_gzip_bytes": gz,
            "latency_ms": lat,
            "arena_bytes": arena,
        }
        obj = values[key] if state == "complete" else None
        feasible = drop is not None and drop <= budget + 1e-9
        error = "conversion failed: float16 with 95 % sparsity" if state == "fail" else None
        end = {
            "type": "trial",
            "number": number,
            "state": state,
            "params": trial_params,
            "recipe": recipe,
            "values": values,
            "objective_value": obj,
            "feasible": feasible if state == "complete" else False,
            "duration_s": secs,
            "cache_hits": hits,
            "error": error,
        }
        elapsed += secs
        doc["cache"]["hits"] += hits
        doc["cache"]["misses"] += len(steps) - 1 - hits if len(steps) > 1 else 0
        doc["trials"].append(
            {
                "number": number,
                "state": state,
                "params": trial_params,
                "recipe": recipe,
                **values,
                "val_drop_se": 0.5,
                "objective_value": obj,
                "feasible": end["feasible"],
                "duration_s": secs,
                "cache_hits": hits,
                "folder": f"trials/{number:04d}",
                "error": error,
            }
        )
        events.append(end)
        events.append(summary())
    doc["elapsed_s"] = round(elapsed, 1)
    return events, doc


def _values(t: dict) -> dict:
    keys = ("val_accuracy", "val_drop", "tflite_bytes", "tflite_gzip_bytes", "latency_ms")
    return {k: t.get(k) for k in (*keys, "arena_bytes")}


def _best(trials: list[dict], key: str, budget: float) -> dict | None:
    ok = [t for t in trials if t["state"] == "complete" and t["feasible"]]
    return min(ok, key=lambda t: t[key]) if ok else None


def _frontier(trials: list[dict], key: str) -> list[int]:
    done = sorted(
        (t for t in trials if t["state"] == "complete"),
        key=lambda t: (t[key], -t["val_accuracy"]),
    )
    out, best_acc = [], -1.0
    for t in done:
        if t["val_accuracy"] > best_acc:
            out.append(t["number"])
            best_acc = t["val_accuracy"]
    return out


def finish_document(doc: dict, stopped: str) -> dict:
    """The document after the search: frontier, test accuracy of the frontier, best."""
    key = OBJECTIVE_KEYS.get(doc["objective"], "tflite_gzip_bytes")
    doc["stopped"] = stopped
    doc["frontier"] = _frontier(doc["trials"], key)
    base = doc["baseline"]
    doc["frontier_test"] = [
        {
            "trial": n,
            "accuracy": _TEST.get(n, 0.96),
            "drop": base["accuracy"] - _TEST.get(n, 0.96),
        }
        for n in doc["frontier"]
    ]
    best = _best(doc["trials"], key, doc["budget_pts"])
    if best is not None:
        test = _TEST.get(best["number"], 0.96)
        doc["best"] = {
            "trial": best["number"],
            "within_budget": True,
            "folder": "best",
            "accuracy": test,
            "drop": base["accuracy"] - test,
            "val_accuracy": best["val_accuracy"],
            "val_drop": best["val_drop"],
            "ratio_gzip": base["tflite_gzip_bytes"] / best["tflite_gzip_bytes"],
            "ratio_raw": base["tflite_bytes"] / best["tflite_bytes"],
        }
    return doc


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def play_search(job_id, params, send, cancel, delay, ignore_cancel) -> None:
    events, final = synthetic_search(params)
    out = Path(params["out"]) if params.get("out") else None
    doc = {**final, "trials": [], "elapsed_s": 0.0}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    stopped = "trials" if params.get("trials") else "exhausted"
    for ev in events:
        if cancel.is_set() and not ignore_cancel:
            stopped = "user"
            break
        time.sleep(delay)
        if ev["type"] == "trial" and ev["state"] != "running":
            trial = next(t for t in final["trials"] if t["number"] == ev["number"])
            doc["trials"].append(trial)
            if out is not None:
                folder = out / trial["folder"]
                folder.mkdir(parents=True, exist_ok=True)
                if trial["state"] == "complete":
                    (folder / "model.tflite").write_bytes(b"TFL3" + bytes([ev["number"]]) * 64)
                (folder / "recipe.json").write_text(json.dumps(trial["recipe"], indent=1))
                _write_json(out / "search.json", doc)
        if ev["type"] == "search":
            doc["elapsed_s"] = ev["elapsed_s"]
        send({**ev, "id": job_id})
    doc = finish_document(doc, stopped)
    if out is not None:
        _write_json(out / "search.json", doc)
    send({"type": "result", "id": job_id, "result": doc})


def play_open_trial(job_id, params, send, rec_dir, delay) -> None:
    trial = int(params.get("trial", 0))
    result = None
    for line in (rec_dir / "compress.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev.get("type") == "result":
            result = ev["result"]
    assert result is not None
    test = _TEST.get(trial, 0.96)
    search_doc = Path(params.get("search_dir", "")) / "search.json"
    row = {}
    if search_doc.is_file():
        doc = json.loads(search_doc.read_text())
        row = next((t for t in doc["trials"] if t["number"] == trial), {})
    result = json.loads(json.dumps(result))
    result["compressed"]["accuracy"] = test
    if row:
        result["recipe"] = row["recipe"]
        result["compressed"]["tflite_gzip_bytes"] = row["tflite_gzip_bytes"]
        result["compressed"]["tflite_bytes"] = row["tflite_bytes"]
        result["ratio_gzip"] = result["baseline"]["tflite_gzip_bytes"] / row["tflite_gzip_bytes"]
        result["ratio_raw"] = result["baseline"]["tflite_bytes"] / row["tflite_bytes"]
    result["accuracy_drop"] = result["baseline"]["accuracy"] - test
    result["search"] = {
        "study": "demo-digits-gzip-1pt",
        "trial": trial,
        "val_accuracy": row.get("val_accuracy"),
        "val_drop": row.get("val_drop"),
    }
    send(
        {
            "type": "stage",
            "id": job_id,
            "stage": "measure",
            "label": "Measuring on the test split",
            "index": 0,
            "count": 1,
            "state": "start",
        }
    )
    time.sleep(delay)
    out = Path(params["out"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    (out / "model.tflite").write_bytes(b"TFL3" + b"\0" * 64)
    send(
        {
            "type": "stage",
            "id": job_id,
            "stage": "measure",
            "label": "Measuring on the test split",
            "index": 0,
            "count": 1,
            "state": "end",
        }
    )
    send({"type": "result", "id": job_id, "result": result})


if __name__ == "__main__":
    sys.exit(main())
