"""The one worker layer of the GUI: a ``JobRunner`` on a ``QThread`` owns the engine worker.

``EngineClient`` (GUI thread) is what the tabs use::

    client = EngineClient()            # starts the QThread and the worker process at once
    job = client.submit("compress", {...})
    job.metric.connect(...); job.finished.connect(...)
    client.cancel(job)                 # soft cancel, then kill + restart after a grace period
    client.shutdown()                  # on close: stops the worker process and the thread

``JobRunner`` lives on its own ``QThread``: it writes JSON requests to the worker's stdin,
reads its JSON-lines events from stdout and re-emits them as Qt signals (delivered to the GUI
thread as queued signals, so only GUI-thread slots touch widgets). The worker runs one job at
a time; the client keeps a queue, so a job submitted while another runs waits its turn.
When the worker process dies the runner says so, fails the running job with kind ``crashed``
and starts a fresh worker; queued jobs then run on the new worker.

The worker command is ``[python, "-m", "engine.service.worker"]`` from source and
``[executable, "--worker"]`` in a frozen app (``packaging/entry.py`` -> ``gui.launcher``
dispatches ``--worker``); tests pass a fake worker command.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    Q_ARG,
    QMetaObject,
    QObject,
    QProcess,
    QProcessEnvironment,
    Qt,
    QThread,
    QTimer,
    Signal,
    Slot,
)

ROOT = Path(__file__).resolve().parent.parent
CANCEL_GRACE_S = 5.0
STDERR_TAIL = 60
WORKER_NICENESS = 10  # added to the worker's nice value (POSIX): the GUI comes first

# Engine states shown in the status bar.
STARTING, READY, FAILED, STOPPED = "starting", "ready", "failed", "stopped"


def default_worker_command() -> list[str]:
    """The command that starts the engine worker (frozen app: the same executable)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--worker"]
    return [sys.executable, "-m", "engine.service.worker"]


class Job(QObject):
    """Handle for one submitted job; lives on the GUI thread.

    ``state`` goes queued -> running -> finished | failed | cancelled. ``finished`` is
    emitted exactly once with that final state.
    """

    accepted = Signal()
    stage = Signal(object)
    progress = Signal(object)
    metric = Signal(object)
    log = Signal(object)
    other = Signal(object)  # any other job event (a search's "trial" and "search" events)
    succeeded = Signal(object)  # the job's result
    failed = Signal(object)  # {"kind", "message", "details", ...extra fields of the event}
    cancelled = Signal(str)
    finished = Signal(str)  # final state

    def __init__(self, job_id: str, name: str, params: dict[str, Any]) -> None:
        super().__init__()
        self.id = job_id
        self.name = name
        self.params = params
        self.state = "queued"
        self.result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.cancel_message = ""

    @property
    def done(self) -> bool:
        return self.state in ("finished", "failed", "cancelled")

    def _deliver(self, ev: dict[str, Any]) -> None:
        if self.done:
            return
        t = ev.get("type")
        if t == "accepted":
            self.state = "running"
            self.accepted.emit()
        elif t == "stage":
            self.stage.emit(ev)
        elif t == "progress":
            self.progress.emit(ev)
        elif t == "metric":
            self.metric.emit(ev)
        elif t == "log":
            self.log.emit(ev)
        elif t == "result":
            self.state = "finished"
            self.result = ev.get("result") or {}
            self.succeeded.emit(self.result)
            self.finished.emit(self.state)
        elif t == "error":
            self.state = "failed"
            self.error = {
                # extra fields pass through (an unsafe model's "items", "loadable_if_trusted",
                # "trust_problem": see engine/service/worker.py)
                **{k: v for k, v in ev.items() if k not in ("type", "id", "v")},
                "kind": ev.get("kind", "internal"),
                "message": ev.get("message", "unknown error"),
                "details": ev.get("details", ""),
            }
            self.failed.emit(self.error)
            self.finished.emit(self.state)
        elif t == "cancelled":
            self.state = "cancelled"
            self.cancel_message = str(ev.get("message", "cancelled"))
            self.cancelled.emit(self.cancel_message)
            self.finished.emit(self.state)
        elif isinstance(t, str):
            self.other.emit(ev)


class JobRunner(QObject):
    """Owns the worker process; lives on a QThread. Talk to it through queued signals."""

    event = Signal(object)  # every event line from the worker (job events carry "id")
    engineState = Signal(str, str)  # state, human message
    crashed = Signal(str, str)  # message, details (stderr tail)

    def __init__(self, command: Sequence[str], cancel_grace_s: float = CANCEL_GRACE_S) -> None:
        super().__init__()
        self._command = list(command)
        self._grace_ms = int(cancel_grace_s * 1000)
        self._proc: QProcess | None = None
        self._buffer = b""
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL)
        self._current: str | None = None  # job id the worker is running
        self._stopping = False
        self._cancel_timer: QTimer | None = None
        self._quick_crashes = 0  # crashes since the last "ready": stop restarting after 3
        self._down_reason = "the engine is not running"
        self._ready = False
        self._cancel_pending = False
        self.pid = 0

    # -- slots (called through queued connections from the GUI thread) -------------------
    @Slot()
    def start(self) -> None:
        """Start the worker process (called once the thread runs, and after a crash)."""
        if self._cancel_timer is None:
            self._cancel_timer = QTimer(self)
            self._cancel_timer.setSingleShot(True)
            self._cancel_timer.timeout.connect(self._force_stop)
        self._stopping = False
        self._ready = False
        self._cancel_pending = False
        self._buffer = b""
        self._stderr.clear()
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        pythonpath = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", str(ROOT) + (os.pathsep + pythonpath if pythonpath else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        proc.started.connect(self._lower_priority)
        self._proc = proc
        self.engineState.emit(STARTING, "starting engine…")
        proc.start(self._command[0], self._command[1:])

    @Slot(str)
    def send(self, line: str) -> None:
        """Write one JSON request line to the worker."""
        req = json.loads(line)
        if req.get("op") == "submit":
            self._current = req.get("id")
        if self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning:
            self._proc.write((line + "\n").encode("utf-8"))
        elif req.get("op") == "submit":
            self._fail_current("crashed", self._down_reason, "\n".join(self._stderr))

    @Slot(str)
    def cancel(self, job_id: str) -> None:
        """Soft cancel; if the job has not ended after the grace period, kill the worker."""
        if job_id != self._current:
            return
        self.send(json.dumps({"op": "cancel", "id": job_id}))
        if not self._ready:
            self._cancel_pending = True  # the grace period starts once TensorFlow is up
        elif self._cancel_timer is not None:
            self._cancel_timer.start(self._grace_ms)

    @Slot(int)
    def stop(self, timeout_ms: int) -> None:
        """Shut the worker down (shutdown request, then kill). Blocks up to ``timeout_ms``."""
        self._stopping = True
        if self._cancel_timer is not None:
            self._cancel_timer.stop()
        proc = self._proc
        if proc is None:
            return
        if proc.state() != QProcess.ProcessState.NotRunning:
            proc.write(b'{"op": "shutdown"}\n')
            proc.closeWriteChannel()
            if not proc.waitForFinished(timeout_ms):
                proc.kill()
                proc.waitForFinished(2000)
        self._proc = None
        proc.deleteLater()
        self.engineState.emit(STOPPED, "engine stopped")

    @Slot()
    def kill_worker(self) -> None:
        """Kill the worker process (as a crash would); the runner then restarts it."""
        if self._proc is not None:
            self._proc.kill()

    # -- process plumbing -----------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self._proc is not None
        self._buffer += bytes(self._proc.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            raw = raw.strip()
            if not raw:
                continue
            try:
                ev = json.loads(raw)
            except ValueError:
                self._stderr.append(raw.decode("utf-8", "replace"))
                continue
            if not isinstance(ev, dict):
                continue
            self._on_event(ev)

    def _on_event(self, ev: dict[str, Any]) -> None:
        t = ev.get("type")
        if t == "hello":
            self.pid = int(ev.get("pid", 0))
        elif t == "ready":
            self._quick_crashes = 0
            self._ready = True
            if self._cancel_pending and self._current is not None and self._cancel_timer:
                self._cancel_timer.start(self._grace_ms)
            self._cancel_pending = False
            self.engineState.emit(READY, "engine ready")
        elif t in ("result", "error", "cancelled") and ev.get("id") == self._current:
            if not (t == "error" and ev.get("kind") == "busy"):
                self._current = None
                if self._cancel_timer is not None:
                    self._cancel_timer.stop()
        self.event.emit(ev)

    def _read_stderr(self) -> None:
        assert self._proc is not None
        text = bytes(self._proc.readAllStandardError().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self._stderr.append(line)

    def _fail_current(self, kind: str, message: str, details: str) -> None:
        if self._current is None:
            return
        job_id, self._current = self._current, None
        self.event.emit(
            {"type": "error", "id": job_id, "kind": kind, "message": message, "details": details}
        )

    def _force_stop(self) -> None:
        """The job ignored the soft cancel: kill the worker and report the job cancelled."""
        job_id = self._current
        if job_id is None:
            return
        self._current = None
        self.event.emit(
            {
                "type": "cancelled",
                "id": job_id,
                "message": "stopped: the engine did not stop in time and was restarted",
            }
        )
        if self._proc is not None:
            self._proc.kill()

    def _lower_priority(self) -> None:
        """Run the engine below the window's priority, so training never starves the GUI.

        Set right after start, before TensorFlow creates its threads (they inherit it).
        """
        if self._proc is None or not hasattr(os, "setpriority"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, int(self._proc.processId()), WORKER_NICENESS)
        except OSError:
            pass

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._proc = None
            msg = f"the engine could not be started ({' '.join(self._command)})"
            self._down_reason = msg
            self.engineState.emit(FAILED, msg)
            self._fail_current("crashed", msg, "")

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        proc = self.sender()
        if proc is not self._proc:
            return  # an old process reporting late
        if self._proc is not None:
            self._read_stdout()
            self._read_stderr()
        details = "\n".join(self._stderr)
        self._proc = None
        if proc is not None:
            proc.deleteLater()
        if self._stopping:
            return
        how = "crashed" if status == QProcess.ExitStatus.CrashExit else f"exited with code {code}"
        message = f"The engine process {how}; a fresh one is being started."
        self._fail_current("crashed", f"the engine process {how} while running this job", details)
        self._quick_crashes += 1
        if self._quick_crashes > 3:
            msg = f"The engine process {how} repeatedly; it was not restarted."
            self._down_reason = msg
            self.engineState.emit(FAILED, msg)
            self.crashed.emit(msg, details)
            return
        self.crashed.emit(message, details)
        self.start()


class EngineClient(QObject):
    """GUI-thread facade over the ``JobRunner``: submit, queue, cancel, shut down."""

    engineState = Signal(str, str)  # state, message
    versionsChanged = Signal(object)
    crashed = Signal(str, str)  # message, details
    busyChanged = Signal(bool)
    jobStarted = Signal(object)  # Job
    jobFinished = Signal(object)  # Job

    _send = Signal(str)
    _cancel = Signal(str)
    _start = Signal()
    _kill = Signal()

    _ids = itertools.count(1)

    def __init__(
        self,
        command: Sequence[str] | None = None,
        cancel_grace_s: float = CANCEL_GRACE_S,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.command = list(command or default_worker_command())
        self.state = STARTING
        self.state_message = "starting engine…"
        self.versions: dict[str, str] = {}
        self.worker_pid = 0
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._thread = QThread()
        self._thread.setObjectName("featherweight-job-runner")
        self._runner = JobRunner(self.command, cancel_grace_s)
        self._runner.moveToThread(self._thread)
        self._thread.finished.connect(self._runner.deleteLater)
        self._send.connect(self._runner.send)
        self._cancel.connect(self._runner.cancel)
        self._start.connect(self._runner.start)
        self._kill.connect(self._runner.kill_worker)
        self._runner.event.connect(self._on_event)
        self._runner.engineState.connect(self._on_state)
        self._runner.crashed.connect(self._on_crashed)
        self._thread.start()
        self._start.emit()

    # -- public API -----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._running is not None

    @property
    def running_job(self) -> Job | None:
        return self._running

    @property
    def queued_jobs(self) -> list[Job]:
        return list(self._queue)

    def is_alive(self) -> bool:
        return self._thread.isRunning()

    def submit(self, name: str, params: dict[str, Any] | None = None) -> Job:
        """Queue a job; it starts as soon as the worker is free. Returns its handle."""
        job = Job(f"job-{next(self._ids)}", name, dict(params or {}))  # owned by the caller
        self._jobs[job.id] = job
        self._queue.append(job)
        self._pump()
        return job

    def cancel(self, job: Job) -> None:
        """Cancel a queued job at once, or ask the running one to stop (then force it)."""
        if job.done:
            return
        if job in self._queue:
            self._queue.remove(job)
            job._deliver({"type": "cancelled", "message": "cancelled before it started"})
            self._jobs.pop(job.id, None)
            return
        self._cancel.emit(job.id)

    def ping(self) -> None:
        self._send.emit(json.dumps({"op": "ping"}))

    def kill_worker(self) -> None:
        """Kill the worker process (used by tests and by a forced stop)."""
        self._kill.emit()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the worker process and the runner thread; safe to call twice."""
        if not self._thread.isRunning():
            return
        for job in list(self._queue):
            self.cancel(job)
        QMetaObject.invokeMethod(
            self._runner,
            "stop",
            Qt.ConnectionType.BlockingQueuedConnection,
            Q_ARG(int, timeout_ms),
        )
        running = self._running
        if running is not None and not running.done:
            running._deliver({"type": "cancelled", "message": "the app is closing"})
            self._finish(running)
        self._thread.quit()
        self._thread.wait()
        self.state = STOPPED

    # -- internals ------------------------------------------------------------------------
    def _pump(self) -> None:
        if self._running is not None or not self._queue or not self._thread.isRunning():
            return
        job = self._queue.popleft()
        self._running = job
        self.busyChanged.emit(True)
        self.jobStarted.emit(job)
        self._send.emit(
            json.dumps({"op": "submit", "id": job.id, "job": job.name, "params": job.params})
        )

    def _finish(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        if self._running is job:
            self._running = None
            self.busyChanged.emit(False)
        self.jobFinished.emit(job)

    @Slot(object)
    def _on_event(self, ev: dict[str, Any]) -> None:
        t = ev.get("type")
        if t == "hello":
            self.worker_pid = int(ev.get("pid", 0))
            return
        if t == "ready":
            self.versions = dict(ev.get("versions") or {})
            self.versionsChanged.emit(self.versions)
            return
        job = self._jobs.get(str(ev.get("id", "")))
        if job is None:
            return
        if t == "error" and ev.get("kind") == "busy":
            # The worker still finishes an earlier (force-stopped) job: try again shortly.
            QTimer.singleShot(300, self, lambda: self._resend(job))
            return
        job._deliver(ev)
        if job.done:
            self._finish(job)
            self._pump()

    def _resend(self, job: Job) -> None:
        if self._running is job and not job.done and self._thread.isRunning():
            self._send.emit(
                json.dumps({"op": "submit", "id": job.id, "job": job.name, "params": job.params})
            )

    @Slot(str, str)
    def _on_crashed(self, message: str, details: str) -> None:
        if self.state != FAILED:  # else the runner gave up restarting; keep saying so
            self._on_state(STARTING, "restarting engine…")
        self.crashed.emit(message, details)

    @Slot(str, str)
    def _on_state(self, state: str, message: str) -> None:
        self.state = state
        self.state_message = message
        self.engineState.emit(state, message)
