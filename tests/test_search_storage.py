"""Where a search's study lives (engine.pipeline.search_storage): two ``featherweight search``
processes on one study through a real PostgreSQL server with one of them killed mid-trial
(its trial retried by the other), the journal file's heartbeat, passwords kept out of
everything written, one-line errors for bad storage URLs.

The PostgreSQL test needs the server binaries of Debian's ``postgresql`` (packaging/ci-deps
installs them; tests/pg.py starts a throwaway server). Without them it is skipped, except
when ``CI=true``: CI must run it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.pipeline.search_storage import retried_from
from tests import pg
from tests.helpers import prune_only_space

ROOT = Path(__file__).resolve().parent.parent
SPACE_ENV = "FEATHERWEIGHT_SEARCH_SPACE"
SPACE = prune_only_space("int8", "float16", "dynamic")


# --- redact and bad URLs (no server) ---------------------------------------------------------


def test_redact_hides_every_password():
    from engine.pipeline.search_storage import redact

    assert redact(None) == "journal"
    assert (
        redact("postgresql://bob:s3cr%40t@db.lan:5432/fw") == "postgresql://bob:***@db.lan:5432/fw"
    )
    assert redact("postgresql://bob:p@ss@db/fw") == "postgresql://bob:***@db/fw"  # raw '@'
    assert redact("postgresql://bob@db/fw?password=x&sslmode=require") == (
        "postgresql://bob@db/fw?password=***&sslmode=require"
    )
    assert redact("mysql+pymysql://a:b@h/d") == "mysql+pymysql://a:***@h/d"
    for plain in ("postgresql://bob@db:5432/fw", "postgresql://db:5432/fw", "sqlite:///x.db"):
        assert redact(plain) == plain


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "is not a database URL"),
        ("oracle9://u@h/db", "unknown database kind 'oracle9'"),
        ("postgresql://bob:hunter2@127.0.0.1:1/fw", "cannot use the database"),
    ],
)
def test_bad_storage_is_one_line_without_the_password(tmp_path, url, fragment):
    from engine.core.errors import BadInputError
    from engine.pipeline.search_storage import open_storage

    with pytest.raises(BadInputError) as info:
        open_storage(tmp_path, url)
    message = str(info.value)
    assert fragment in message and "\n" not in message and "hunter2" not in message, message


def test_mysql_needs_a_driver_we_do_not_ship(tmp_path):
    import importlib.util

    from engine.core.errors import BadInputError
    from engine.pipeline.search_storage import check_url

    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("a MySQL driver is installed here")
    with pytest.raises(BadInputError, match="needs a MySQL driver, which Featherweight does not"):
        check_url("mysql://bob:hunter2@db/fw")


# --- the journal file's heartbeat --------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys, time, optuna
    from engine.pipeline.search_storage import open_storage
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=open_storage(sys.argv[1], None), study_name="s",
                                load_if_exists=True)
    def objective(trial):
        trial.suggest_int("x", 0, 100)
        print("running", trial.number, flush=True)
        time.sleep(600)
        return 0.0
    study.optimize(objective, n_trials=1)
    """
)


def test_journal_trial_of_a_killed_process_is_retried_live_one_is_not(tmp_path):
    import optuna

    from engine.pipeline.search_storage import open_storage, recover, retried_from

    env = {**os.environ, "FEATHERWEIGHT_HEARTBEAT_S": "30", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "running 0"
        study = optuna.load_study(study_name="s", storage=open_storage(tmp_path, None))
        assert recover(study) == []  # its process is alive and beating: left alone
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # Well within the 90 s grace period: a dead process on this host is seen at once.
        assert recover(study) == [0]
        assert recover(study) == []  # once
    finally:
        proc.kill()
        proc.wait()
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert retried_from(trials[1]) == 0 and trials[1].params == trials[0].params


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask() outside optimize() here
def test_journal_trial_of_another_machine_is_judged_by_its_heartbeat_age(tmp_path):
    """Another machine's running trial (shared folder): left alone while its heartbeat file is
    fresh, failed and queued again once it is older than the grace period."""
    import optuna

    from engine.pipeline import search_storage as S

    storage = S.open_storage(tmp_path, None, heartbeat_s=5)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()  # RUNNING, as if another machine had asked it
    trial.suggest_int("x", 0, 100)
    beat = tmp_path / S.HEARTBEAT_DIR / f"{trial._trial_id}.json"
    beat.parent.mkdir()
    beat.write_text(json.dumps({"host": "elsewhere", "pid": 1, "start": None}))
    assert S.recover(study) == []
    old = time.time() - S.GRACE_FACTOR * 5 - 1
    os.utime(beat, (old, old))
    assert S.recover(study) == [trial.number]
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    assert states == ["FAIL", "WAITING"]
    assert S.recover(study) == [] and not beat.exists()  # a finished trial's file goes


# --- PostgreSQL: two processes, one killed -------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    why = pg.unavailable()
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the PostgreSQL test: {why}")
        pytest.skip(why)
    with pg.postgres() as running:
        yield running


def _trials(server: pg.Server, name: str) -> list:
    """The study's trials, read here through its URL (the password from PGPASSWORD)."""
    import optuna

    from engine.pipeline.search_storage import open_storage

    saved = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = server.password  # libpq reads it; the URL has no password
    try:
        study = optuna.load_study(study_name=name, storage=open_storage("unused", server.url))
        return study.get_trials(deepcopy=False)
    finally:
        if saved is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = saved


def _search(
    out: Path, url: str, env: dict[str, str], log: Path, trials: int = 3
) -> subprocess.Popen:
    args = ["search", "demo", "--data", "demo", "--trials", str(trials), "--seed", "0"]
    args += ["--study", "two"]
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *args, "--storage", url, "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        content = log.read_text()
        if text in content:
            return content
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in time:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_two_processes_share_a_postgres_study_and_a_killed_trial_is_retried(server, tmp_path):
    """Processes A (password from PGPASSWORD) and B (password in the URL) search one study at
    the same time; A is SIGKILLed while its first trial trains. Its trial goes stale (Optuna's
    heartbeat), is failed and run again (RetryHeartbeatStaleTrialCallback) by the next
    process that starts a trial after the grace period: B, or — when B's trials were all
    started before then (a loaded machine, or trials answered as duplicates) — C, the same
    command started once B is done."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PG") and key != "DATABASE_URL"
    }
    base.update({SPACE_ENV: json.dumps(SPACE), "FEATHERWEIGHT_HEARTBEAT_S": "1"})
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = _search(tmp_path / "a", server.url, {**base, **server.env}, log_a)
    b = _search(tmp_path / "b", server.url_with_password, base, log_b)
    try:
        seen_a = _wait_for(log_a, "Pruning", a, 180)  # A's first trial is training
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=30)
        code = b.wait(timeout=240)
        assert code in (0, 3), log_b.read_text()[-3000:]
        started = re.findall(r"^trial (\d+):", seen_a, re.MULTILINE)
        assert len(started) == 1, seen_a[-2000:]
        number = int(started[0])  # the trial A was running when it was killed
        if not any(retried_from(t) == number for t in _trials(server, "two")):
            time.sleep(4)  # > the grace period (3 heartbeats of 1 s)
            done = sum(t.state.name == "COMPLETE" for t in _trials(server, "two"))
            c = _search(tmp_path / "b", server.url_with_password, base, log_b, done + 1)
            assert c.wait(timeout=240) in (0, 3), log_b.read_text()[-3000:]
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out_b = log_b.read_text()

    trials = _trials(server, "two")
    states = [(t.number, t.state.name) for t in trials]
    killed = next(t for t in trials if t.number == number)
    assert killed.state.name == "FAIL", states
    retries = [t for t in trials if retried_from(t) == number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE", states
    assert retries[0].params == killed.params
    assert [t.state.name for t in trials].count("COMPLETE") >= 2, states  # B's own + retry
    assert f"trial {retries[0].number}:" in out_b  # B (or C, writing the same log) ran it

    doc = json.loads((tmp_path / "b" / "search.json").read_text())
    assert doc["storage"] == server.url_with_password.replace(server.password, "***")
    by_number = {t["number"]: t["state"] for t in doc["trials"]}
    assert by_number[number] == "fail" and by_number[retries[0].number] == "complete"
    for folder in (tmp_path / "a", tmp_path / "b"):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".txt", ".log", ".journal"):
                assert server.password not in path.read_text(errors="replace"), path
    assert server.password not in out_b and server.password not in seen_a


def test_cli_bad_storage_exits_2_with_one_line(tmp_path):
    """Exit 2, one error line naming the missing driver, no traceback, no password."""
    result = subprocess.run(
        [sys.executable, "-m", "engine", "search", "demo", "--data", "demo", "--trials", "1"]
        + ["--storage", "mysql://bob:hunter2@db/fw", "--out", str(tmp_path / "s")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("featherweight: error:")]
    assert len(errors) == 1 and "MySQL driver" in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout
