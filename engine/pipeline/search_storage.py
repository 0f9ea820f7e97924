"""Where a search's Optuna study lives, and how trials of killed processes come back.

- ``open_storage(out_dir, None)``: the study is a journal file, ``out_dir/study.journal``
  (Optuna's ``JournalStorage`` with its file backend: append-only, crash-safe, resumable;
  several processes on one machine may share it). Optuna 5.0's ``JournalStorage`` has no
  heartbeat, so this module adds one through Optuna's own ``BaseHeartbeat`` interface: while a
  trial runs, ``Study.optimize`` rewrites ``out_dir/heartbeats/<trial id>.json`` (host, pid)
  every ``heartbeat_seconds()``; a RUNNING trial is stale when that file is older than the
  grace period, or at once when its process ran on this host and is gone.
- ``open_storage(out_dir, url)``: Optuna's ``RDBStorage`` (PostgreSQL; MySQL with a driver
  the user installs; SQLite for one machine), shared by ``featherweight search --storage URL``
  on several machines, with Optuna's heartbeat (``heartbeat_interval`` / ``grace_period``).
- Either way a stale trial is failed and queued again, with the same parameters, by
  ``RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)`` (the non-deprecated name of
  ``RetryFailedTrialCallback`` in Optuna 5.0). ``Study.optimize`` checks before every new
  trial; ``recover(study)`` does it at once (call it when a search starts or resumes).
- Passwords: ``postgresql://user@host/db`` takes the password from ``PGPASSWORD`` or
  ``~/.pgpass`` (libpq reads them); a password written in the URL works but only
  ``redact(url)`` may be shown or stored (search.json, project, logs, error messages).
- Bad input is one line (``BadInputError``): an unparsable URL, an unknown database kind, a
  missing driver (Featherweight ships psycopg2 for PostgreSQL, no MySQL driver), a server that
  cannot be reached or refuses the login.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
import random
import re
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.errors import BadInputError

if TYPE_CHECKING:
    import optuna

JOURNAL_FILE = "study.journal"
HEARTBEAT_DIR = "heartbeats"
HEARTBEAT_ENV = "FEATHERWEIGHT_HEARTBEAT_S"
DEFAULT_HEARTBEAT_S = 20
GRACE_FACTOR = 3  # a trial is stale after GRACE_FACTOR missed heartbeats (TF holds the GIL)
MAX_RETRY = 2  # a trial whose process died is run again at most this many times
CONNECT_TIMEOUT_S = 10
CREATE_ATTEMPTS = 5  # processes creating the tables of an empty database together: retries

_URL_PASSWORD = re.compile(r"(://[^/@:?#]*:)([^/?#]*)@")
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd)=)([^&#]*)", re.IGNORECASE)


def redact(url: str | None) -> str:
    """``url`` with any password replaced by ``***`` (in ``user:password@`` and in a
    ``password=`` query parameter); ``"journal"`` for None (the file backend)."""
    if url is None:
        return "journal"
    text = _URL_PASSWORD.sub(r"\1***@", str(url))
    return _QUERY_PASSWORD.sub(r"\1***", text)


def heartbeat_seconds() -> int:
    """Seconds between heartbeats of a running trial: ``FEATHERWEIGHT_HEARTBEAT_S`` (a whole
    number >= 1) or ``DEFAULT_HEARTBEAT_S``. A trial is stale after ``GRACE_FACTOR`` of them."""
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT_S
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise BadInputError(f"{HEARTBEAT_ENV}={raw!r}: expected a whole number of seconds >= 1")
    return value


def open_storage(
    out_dir: Path | str, url: str | None, *, heartbeat_s: int | None = None
) -> optuna.storages.BaseStorage:
    """The storage of a search in ``out_dir``: the journal file ``out_dir/study.journal`` for
    ``url`` None, else the database at ``url``. Both have a heartbeat and retry the trials of
    killed processes (module docstring). Raises ``BadInputError`` (one line, password hidden)
    when the URL or the database is unusable."""
    interval = heartbeat_s if heartbeat_s is not None else heartbeat_seconds()
    if url is None:
        return _journal_storage(Path(out_dir), interval)
    return _rdb_storage(str(url), interval)


def recover(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials of ``study`` whose process is gone (heartbeat stale) and queue
    their retries; returns their trial numbers. ``Study.optimize`` does the same before each
    trial; this does it now (a resumed search shows them at once)."""
    import optuna
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
    from optuna.trial import TrialState

    storage = study._storage
    if not isinstance(storage, BaseHeartbeat) or not is_heartbeat_enabled(storage):
        return []
    failed: list[int] = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another process failed it first (and queued its retry)
    callback = storage.get_heartbeat_stale_trial_callback()
    numbers = []
    for trial_id in failed:
        trial = copy.deepcopy(storage.get_trial(trial_id))  # the callback edits its attrs
        numbers.append(trial.number)
        if callback is not None:
            with _quiet():
                callback(study, trial)
    return numbers


def retried_from(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the trial that ``trial`` retries (its process died), else None."""
    value = trial.system_attrs.get("failed_trial")
    return int(value) if value is not None else None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna flags heartbeats and the retry callback as experimental: not the user's news."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _retry_callback() -> Callable[[Any, Any], None]:
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with _quiet():
        return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)  # type: ignore[no-any-return]


# --- the journal file backend ------------------------------------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields if len(fields) > 19 else None


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), to tell a reused pid apart."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def _host() -> str:
    """This machine, and its PID namespace when there is one: two containers that share the
    search folder (and maybe a host name) never judge each other's pids."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()} {namespace}".strip()


def _alive(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` (started at ``start``, when known) still runs on this host."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate it there: rely on the heartbeat's age
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    except OSError:
        return True  # cannot tell: rely on the heartbeat's age
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc: rely on the heartbeat's age
    if fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped
    return start is None or fields[19] == start


def _journal_storage(out_dir: Path, interval: int) -> optuna.storages.BaseStorage:
    from optuna.storages import BaseStorage
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.storages.journal import (
        JournalFileBackend,
        JournalFileOpenLock,
        JournalFileSymlinkLock,
        JournalStorage,
    )
    from optuna.trial import TrialState

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create the search folder {out_dir}: {exc.strerror}") from None
    path = out_dir / JOURNAL_FILE
    beats = out_dir / HEARTBEAT_DIR
    grace = GRACE_FACTOR * interval
    host = _host()
    pid = os.getpid()
    me = {"host": host, "pid": pid, "start": _process_start(pid)}

    class _Journal(JournalStorage, BaseHeartbeat):  # type: ignore[misc]
        """JournalStorage + a heartbeat file per running trial (see the module docstring)."""

        def record_heartbeat(self, trial_id: int) -> None:
            beats.mkdir(exist_ok=True)
            target = beats / f"{trial_id}.json"
            tmp = beats / f".{trial_id}.{pid}.tmp"
            try:
                tmp.write_text(json.dumps(me))
                os.replace(tmp, target)
            except OSError:
                pass  # a missed beat; the next one (or the grace period) covers it

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
            stale = []
            now = time.time()
            for trial in running:
                target = beats / f"{trial._trial_id}.json"
                try:
                    beat = target.stat().st_mtime
                    owner = json.loads(target.read_text())
                except (OSError, ValueError):
                    started = trial.datetime_start or datetime.datetime.now()
                    if (datetime.datetime.now() - started).total_seconds() > grace:
                        stale.append(trial._trial_id)  # never beat: asked outside optimize()
                    continue
                if now - beat > grace:
                    stale.append(trial._trial_id)
                elif owner.get("host") == host and owner.get("pid") != pid:
                    if not _alive(int(owner.get("pid", 0)), owner.get("start")):
                        stale.append(trial._trial_id)
            self._forget_finished(study_id, {t._trial_id for t in running})
            return stale

        def _forget_finished(self, study_id: int, running: set[int]) -> None:
            try:
                names = [p for p in beats.iterdir() if p.suffix == ".json"]
            except OSError:
                return
            for p in names:
                if p.stem.isdigit() and int(p.stem) not in running:
                    with contextlib.suppress(OSError):
                        p.unlink()

        def get_heartbeat_interval(self) -> int:
            return interval

        def get_heartbeat_stale_trial_callback(self) -> Callable[[Any, Any], None]:
            return callback

    callback = _retry_callback()
    lock = JournalFileOpenLock(str(path)) if os.name == "nt" else JournalFileSymlinkLock(str(path))
    try:
        storage: BaseStorage = _Journal(JournalFileBackend(str(path), lock_obj=lock))
    except OSError as exc:
        raise BadInputError(f"cannot open the study file {path}: {exc.strerror}") from None
    except (ValueError, KeyError) as exc:
        raise BadInputError(f"the study file {path} is damaged ({exc})") from None
    return storage


# --- databases ---------------------------------------------------------------------------

_DRIVER_HINT = {
    "mysql": "--storage mysql needs a MySQL driver, which Featherweight does not ship: "
    "pip install PyMySQL and use mysql+pymysql://user@host/db",
    "mariadb": "--storage mariadb needs a MySQL driver, which Featherweight does not ship: "
    "pip install PyMySQL and use mariadb+pymysql://user@host/db",
    "postgresql": "--storage postgresql needs the psycopg2 driver (pip install psycopg2-binary)",
}


def _with_driver(url: Any) -> Any:
    """A ``postgresql://`` URL without a driver uses psycopg2 (what Featherweight ships);
    SQLAlchemy 2.1 would pick psycopg 3 otherwise."""
    import importlib.util

    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        return url.set(drivername="postgresql+psycopg2")
    return url


def _first_line(exc: BaseException, secret: str | None) -> str:
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    text = str(orig if orig is not None else exc).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    if secret:
        line = line.replace(secret, "***")
    return line


def check_url(url: str) -> None:
    """Raise ``BadInputError`` (one line) when ``url`` cannot be a storage here: not a
    database URL, an unknown database kind, or its driver is missing. Does not connect (cheap:
    the CLI checks before loading the model; ``open_storage`` connects)."""
    _parsed_url(url)


def _parsed_url(url: str) -> Any:
    """The SQLAlchemy URL of ``url`` with the driver Featherweight uses (``check_url``)."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    shown = redact(url)
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise BadInputError(
            f"--storage {shown!r} is not a database URL (e.g. postgresql://user@host:5432/db)"
        ) from None
    parsed = _with_driver(parsed)
    backend = parsed.get_backend_name()
    try:
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise BadInputError(
            f"--storage {shown!r}: unknown database kind {backend!r} "
            "(use postgresql://user@host:5432/db)"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        hint = _DRIVER_HINT.get(backend, f"--storage {backend} needs a database driver")
        raise BadInputError(f"{hint} (not installed here)") from None
    return parsed


def _rdb_storage(url: str, interval: int) -> optuna.storages.BaseStorage:
    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    parsed = _parsed_url(url)
    secret = parsed.password
    backend = parsed.get_backend_name()
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "postgresql" and "connect_timeout" not in parsed.query:
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    full = parsed.render_as_string(hide_password=False)
    try:
        for attempt in range(CREATE_ATTEMPTS):
            try:
                with _quiet():
                    return RDBStorage(
                        full,
                        engine_kwargs=engine_kwargs,
                        heartbeat_interval=interval,
                        grace_period=GRACE_FACTOR * interval,
                        heartbeat_stale_trial_callback=_retry_callback(),
                    )
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                # Processes started together on an empty database all create Optuna's
                # tables; the losers hit "duplicate key ... pg_type_typname_nsp_index" or
                # "relation ... already exists".
                # The tables exist a moment later: try again.
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 + random.random())
        raise AssertionError("unreachable")
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise BadInputError(
            f"cannot use the database {redact(full)}: {_first_line(exc, secret)}"
        ) from None
    except (RuntimeError, ValueError) as exc:  # e.g. a schema from a newer Optuna
        raise BadInputError(
            f"cannot use the database {redact(full)}: {_first_line(exc, secret)}"
        ) from None
