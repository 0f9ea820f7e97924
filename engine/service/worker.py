"""The engine worker process: JSON job requests in on stdin, JSON-lines events out on stdout.

Run as ``python -m engine.service.worker`` (or ``featherweight --worker`` in the frozen app).
The GUI's
``JobRunner`` owns one such process; TensorFlow lives only here, so it can never freeze the
window, and an abort or out-of-memory kills only the worker.

Protocol, version 1 (``PROTOCOL_VERSION``). Every line is one JSON object.

Requests (stdin)::

    {"op": "submit", "id": "job-1", "job": "compress", "params": {...}}
    {"op": "cancel", "id": "job-1"}        # soft cancel, checked between batches
    {"op": "ping"}                          # answered by {"type": "pong"}
    {"op": "shutdown"}                      # cancel any job, then exit 0

Events (stdout), each carrying ``"v": 1`` and, for job events, ``"id"``::

    {"type": "hello", "pid": int, "protocol": 1}          # at once, before TensorFlow loads
    {"type": "ready", "versions": {...}}                   # TensorFlow imported and warm
    {"type": "accepted", "id", "job"}
    {"type": "stage" | "progress" | "metric" | "log", "id", ...}  # see engine.core.events
    {"type": "result", "id", "result": {...}}              # the job's return value
    {"type": "error", "id", "kind", "message", "details"}  # kind: bad_input, busy, internal...
    # kind "unsafe_model" also carries (engine.service.jobs.error_fields): "items": [{"layer",
    # "class_name", "reason", "text", "where"?}, ...] (every item that runs code or reads files),
    # "loadable_if_trusted": bool (decided without running the file's code) and
    # "trust_problem": why it would not load even if trusted ("" when it would)
    {"type": "cancelled", "id", "message"}
    {"type": "pong"}

One job runs at a time; a ``submit`` while busy is answered with an ``error`` of kind ``busy``.
Job names and their parameters are listed in ``engine.service.jobs.JOBS``.
When stdin closes (the GUI
went away) the worker cancels its job and exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from typing import IO, Any

from engine.core.errors import Cancelled, FeatherweightError
from engine.core.events import CancelToken, Reporter

PROTOCOL_VERSION = 1


class Worker:
    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._job_thread: threading.Thread | None = None
        self._job_id: str | None = None
        self._cancel: CancelToken | None = None
        self._ready = threading.Event()
        self._busy = threading.Event()

    def send(self, event: dict[str, Any]) -> None:
        line = json.dumps({"v": PROTOCOL_VERSION, **event}, default=_json_default)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def warm_up(self) -> None:
        try:
            from engine.core.tfenv import versions

            self.send({"type": "ready", "versions": versions()})
        except Exception as exc:  # a broken install: say so, keep serving what we can
            self.send({"type": "log", "level": "error", "message": f"TensorFlow failed: {exc}"})
        finally:
            self._ready.set()

    def busy(self) -> bool:
        return self._busy.is_set()

    def submit(self, job_id: str, job: str, params: dict[str, Any]) -> None:
        from engine.service.jobs import JOBS

        if self.busy():
            self.send(
                {
                    "type": "error",
                    "id": job_id,
                    "kind": "busy",
                    "message": f"another job ({self._job_id}) is still running",
                    "details": "",
                }
            )
            return
        if job not in JOBS:
            self.send(
                {
                    "type": "error",
                    "id": job_id,
                    "kind": "bad_input",
                    "message": f"unknown job {job!r} (known: {', '.join(sorted(JOBS))})",
                    "details": "",
                }
            )
            return
        self._job_id = job_id
        self._cancel = CancelToken()
        self._busy.set()
        self.send({"type": "accepted", "id": job_id, "job": job})
        self._job_thread = threading.Thread(
            target=self._run, args=(job_id, job, params, self._cancel), daemon=True
        )
        self._job_thread.start()

    def _run(self, job_id: str, job: str, params: dict[str, Any], cancel: CancelToken) -> None:
        from engine.service.jobs import JOBS

        self._ready.wait()
        reporter = Reporter(lambda ev: self.send({**ev, "id": job_id}), cancel)
        final: dict[str, Any]
        try:
            final = {"type": "result", "id": job_id, "result": JOBS[job](params, reporter)}
        except Cancelled as exc:
            final = {"type": "cancelled", "id": job_id, "message": str(exc)}
        except FeatherweightError as exc:
            from engine.service.jobs import error_fields

            final = {
                "type": "error",
                "id": job_id,
                "kind": exc.kind,
                "message": str(exc),
                "details": traceback.format_exc(),
                **error_fields(params, exc),
            }
        except Exception as exc:
            final = {
                "type": "error",
                "id": job_id,
                "kind": "internal",
                "message": f"{type(exc).__name__}: {exc}",
                "details": traceback.format_exc(),
            }
        # Free the slot before announcing the end: a client that submits the next job as soon
        # as it reads this event must not be told "busy".
        self._busy.clear()
        self.send(final)

    def cancel(self, job_id: str | None) -> None:
        if self._cancel is not None and (job_id is None or job_id == self._job_id):
            self._cancel.cancel()

    def serve(self, inp: IO[str]) -> int:
        self.send({"type": "hello", "pid": os.getpid(), "protocol": PROTOCOL_VERSION})
        threading.Thread(target=self.warm_up, daemon=True).start()
        for raw in inp:
            raw = raw.strip()
            if not raw:
                continue
            try:
                req = json.loads(raw)
                op = req["op"]
            except (ValueError, KeyError, TypeError):
                self.send({"type": "log", "level": "error", "message": f"bad request: {raw[:200]}"})
                continue
            if op == "submit":
                self.submit(
                    str(req.get("id", "")), str(req.get("job", "")), req.get("params") or {}
                )
            elif op == "cancel":
                self.cancel(req.get("id"))
            elif op == "ping":
                self.send({"type": "pong"})
            elif op == "shutdown":
                break
            else:
                self.send({"type": "log", "level": "error", "message": f"unknown op {op!r}"})
        # stdin closed or shutdown: stop the job and leave.
        self.cancel(None)
        if self._job_thread is not None:
            self._job_thread.join(timeout=10)
        return 0


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def main() -> int:
    # Keep the protocol channel clean: anything else printing to stdout (TF, Keras progress
    # bars, C libraries) goes to stderr instead.
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1)
    code = Worker(out).serve(sys.stdin)
    out.flush()
    # Daemon threads may still hold TF; skip interpreter teardown.
    os._exit(code)


if __name__ == "__main__":
    main()
