"""JobRunner / EngineClient over a fake worker: jobs, queue, cancel, kill, crash, shutdown."""

from __future__ import annotations

import pytest

from gui.runner import READY, EngineClient
from tests.gui.conftest import child_pids, fake_worker_command


@pytest.fixture
def client(qtbot):
    clients = []

    def make(*flags, grace=5.0):
        c = EngineClient(fake_worker_command(*flags), cancel_grace_s=grace)
        clients.append(c)
        if c.state != READY:
            with qtbot.waitSignal(c.versionsChanged, timeout=10_000):
                pass
        return c

    yield make
    for c in clients:
        c.shutdown()


def test_job_events_arrive_as_signals_and_versions_come_from_ready(client, qtbot):
    c = client()
    assert c.versions["tensorflow"] == "2.21.0"
    job = c.submit("sleep", {"seconds": 0.2})
    progress = []
    job.progress.connect(progress.append)
    with qtbot.waitSignal(job.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == ["finished"]
    assert job.result == {}
    assert progress and progress[-1]["step"] == progress[-1]["total"]


def test_second_job_is_queued_until_the_first_ends(client, qtbot):
    c = client()
    first = c.submit("sleep", {"seconds": 0.3})
    second = c.submit("inspect", {"model": "demo"})
    assert second.state == "queued" and c.queued_jobs == [second]
    with qtbot.waitSignal(second.finished, timeout=5000):
        pass
    assert first.state == "finished"
    assert second.result["totals"]["params"] == 151306


def test_cancel_queued_job_never_reaches_the_worker(client, qtbot):
    c = client()
    first = c.submit("sleep", {"seconds": 0.3})
    second = c.submit("sleep", {"seconds": 5})
    with qtbot.waitSignal(second.finished, timeout=1000) as blocker:
        c.cancel(second)
    assert blocker.args == ["cancelled"]
    with qtbot.waitSignal(first.finished, timeout=5000):
        pass
    assert not c.busy


def test_soft_cancel_stops_a_running_job(client, qtbot):
    c = client()
    job = c.submit("sleep", {"seconds": 30})
    with qtbot.waitSignal(job.progress, timeout=5000):
        pass
    pid = c.worker_pid
    with qtbot.waitSignal(job.finished, timeout=3000) as blocker:
        c.cancel(job)
    assert blocker.args == ["cancelled"]
    assert c.worker_pid == pid  # the same worker, not restarted


def test_job_ignoring_cancel_is_killed_and_the_worker_restarted(client, qtbot):
    c = client("--ignore-cancel", grace=0.5)
    job = c.submit("sleep", {"seconds": 30})
    with qtbot.waitSignal(job.progress, timeout=5000):
        pass
    old_pid = c.worker_pid
    with qtbot.waitSignal(job.finished, timeout=5000) as blocker:
        c.cancel(job)
    assert blocker.args == ["cancelled"]
    assert "restarted" in job.cancel_message
    with qtbot.waitSignal(c.versionsChanged, timeout=10_000):
        pass
    assert c.worker_pid != old_pid
    assert old_pid not in child_pids()
    again = c.submit("sleep", {"seconds": 0.1})
    with qtbot.waitSignal(again.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == ["finished"]


def test_worker_crash_fails_the_job_and_a_fresh_worker_takes_the_next_one(client, qtbot):
    c = client()
    old_pid = c.worker_pid
    crashes = []
    c.crashed.connect(lambda m, d: crashes.append(m))
    job = c.submit("crash")
    nxt = c.submit("inspect", {"model": "demo"})
    with qtbot.waitSignal(nxt.finished, timeout=10_000) as blocker:
        pass
    assert job.state == "failed" and job.error["kind"] == "crashed"
    assert "exited with code 3" in job.error["message"]
    assert crashes and "fresh one" in crashes[0]
    assert blocker.args == ["finished"] and c.worker_pid != old_pid


def test_missing_worker_executable_is_reported_not_hung(qtbot):
    c = EngineClient(["/nonexistent/featherweight-worker"])
    try:
        qtbot.waitUntil(lambda: c.state == "failed", timeout=5000)
        job = c.submit("inspect", {"model": "demo"})
        with qtbot.waitSignal(job.finished, timeout=3000) as blocker:
            pass
        assert blocker.args == ["failed"]
        assert "could not be started" in job.error["message"]
    finally:
        c.shutdown()


def test_shutdown_stops_process_and_thread(client, qtbot):
    c = client()
    pid = c.worker_pid
    assert pid in child_pids()
    job = c.submit("sleep", {"seconds": 30})
    with qtbot.waitSignal(job.accepted, timeout=5000):
        pass
    c.shutdown()
    assert not c.is_alive()
    assert job.state == "cancelled"
    assert pid not in child_pids()
