"""Drive engine.service.worker as the GUI does: a subprocess speaking JSON lines."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.service.worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.events: queue.Queue[dict] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))  # every stdout line must be protocol JSON

    def send(self, **req) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def next_event(self, timeout: float = 120.0) -> dict:
        return self.events.get(timeout=timeout)

    def wait_for(self, pred, timeout: float = 300.0) -> tuple[dict, list[dict]]:
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.next_event(max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out; last events: {seen[-5:]}") from None
            seen.append(ev)
            if pred(ev):
                return ev, seen

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                self.send(op="shutdown")
            except (BrokenPipeError, OSError):
                pass
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def worker():
    w = WorkerProcess()
    w.hello = w.next_event(30)
    w.ready, _ = w.wait_for(lambda ev: ev["type"] == "ready", timeout=120)
    yield w
    assert w.close() == 0


def _final(job_id):
    return lambda ev: ev.get("id") == job_id and ev["type"] in ("result", "error", "cancelled")


def test_hello_then_ready(worker):
    assert worker.hello["type"] == "hello" and worker.hello["v"] == 1
    assert worker.hello["protocol"] == 1
    assert worker.ready["versions"]["tensorflow"].startswith("2.21")


def test_ping_and_unknown_job(worker):
    worker.send(op="ping")
    worker.wait_for(lambda ev: ev["type"] == "pong", 30)
    worker.send(op="submit", id="nope", job="fly", params={})
    ev, _ = worker.wait_for(_final("nope"), 30)
    assert ev["type"] == "error" and "unknown job 'fly'" in ev["message"]


def test_inspect_job(worker):
    worker.send(op="submit", id="i1", job="inspect", params={"model": "demo"})
    ev, seen = worker.wait_for(_final("i1"))
    assert seen[0]["type"] == "accepted"
    assert ev["type"] == "result", ev
    assert ev["result"]["totals"]["params"] == 151306


def test_bad_model_is_a_clean_error(worker, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("this is not a model")
    worker.send(op="submit", id="b1", job="inspect", params={"model": str(bad)})
    ev, _ = worker.wait_for(_final("b1"))
    assert ev["type"] == "error" and ev["kind"] != "internal", ev
    assert "bad.h5" in ev["message"]


def test_cancel_mid_job_and_busy(worker):
    worker.send(op="submit", id="s1", job="sleep", params={"seconds": 30})
    worker.wait_for(lambda ev: ev.get("id") == "s1" and ev["type"] == "progress", 30)
    worker.send(op="submit", id="s2", job="sleep", params={"seconds": 1})
    ev, _ = worker.wait_for(_final("s2"), 30)
    assert ev["type"] == "error" and ev["kind"] == "busy"
    worker.send(op="cancel", id="s1")
    ev, _ = worker.wait_for(_final("s1"), 30)
    assert ev["type"] == "cancelled"


@pytest.mark.slow
def test_compress_job_streams_events_and_can_be_cancelled(worker, tmp_path):
    recipe = {
        "schema_version": 1,
        "name": "prune-int8",
        "steps": [
            {"type": "prune", "target_sparsity": 0.5, "epochs": 2},
            {"type": "quantize", "mode": "int8", "calibration_samples": 50},
        ],
    }
    out = tmp_path / "run1"
    worker.send(
        op="submit",
        id="c1",
        job="compress",
        params={"model": "demo", "data": "demo", "recipe": recipe, "out": str(out)},
    )
    ev, seen = worker.wait_for(_final("c1"), 600)
    assert ev["type"] == "result", ev
    types = {e["type"] for e in seen}
    assert {"stage", "progress", "metric"} <= types
    metrics = json.loads((out / "metrics.json").read_text())
    assert ev["result"]["ratio_gzip"] == metrics["ratio_gzip"]
    assert (out / "model.tflite").stat().st_size == metrics["compressed"]["tflite_bytes"]

    # Same job again, cancelled after the first metric point: nothing finished is left.
    out2 = tmp_path / "run2"
    recipe["steps"][0]["epochs"] = 50
    worker.send(
        op="submit",
        id="c2",
        job="compress",
        params={"model": "demo", "data": "demo", "recipe": recipe, "out": str(out2)},
    )
    worker.wait_for(lambda e: e.get("id") == "c2" and e["type"] == "metric", 300)
    worker.send(op="cancel", id="c2")
    ev, _ = worker.wait_for(_final("c2"), 120)
    assert ev["type"] == "cancelled"
    assert not (out2 / "metrics.json").exists()
    assert not (out2 / "model.tflite").exists()


def test_worker_exits_when_stdin_closes():
    w = WorkerProcess()
    assert w.next_event(30)["type"] == "hello"
    assert w.proc.stdin is not None
    w.proc.stdin.close()
    assert w.proc.wait(timeout=60) == 0
