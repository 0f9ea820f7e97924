"""The project lock: one process at a time writes a project.

``NAME.fwproj.lock`` sits beside the project file while a window has the project open or
``featherweight run`` works on it. It is created with ``O_CREAT | O_EXCL`` and holds one JSON
object naming the holder (``pid``, ``hostname``, ``program``, ``since``); where ``fcntl`` exists
the holder also keeps an exclusive ``flock`` on it for as long as it holds the lock.

A lock is *stale*, and is taken over, when its holder is on this host and either its pid is
gone or nobody holds the ``flock`` (the pid was reused by an unrelated process). A lock held
on another host is never taken over: the message names the holder and says which file to
delete if that process is known to be gone.

Taking over is race-free between two takers: each must hold the ``flock`` of the old file and
check that the path still names that very file before unlinking it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.project.common import ProjectError

try:  # POSIX only; on Windows the pid check alone decides staleness.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"
DEFAULT_PROGRAM = "Featherweight"

# Locks held by this process, by resolved lock-file path, so that save_project can tell
# "our own lock" from somebody else's.
_HELD: dict[str, ProjectLock] = {}


class ProjectLockedError(ProjectError):
    """Another process holds the project's lock. ``holder`` is the lock file's content."""

    kind = "project_locked"

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


def lock_path(project_path: str | Path) -> Path:
    """``NAME.fwproj.lock`` beside the project file."""
    p = Path(project_path)
    return p.with_name(p.name + LOCK_SUFFIX)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - os.kill(pid, 0) would kill it there
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def read_lock(project_path: str | Path) -> dict[str, Any] | None:
    """The holder described in the lock file, or None when there is no lock file.

    A lock file that cannot be parsed (e.g. its writer died between create and write)
    is returned as ``{}``.
    """
    try:
        text = lock_path(project_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(holder: dict[str, Any]) -> str:
    """``'featherweight run' (pid 123 on host1, since 2026-11-24 23:40 UTC)``."""
    if not holder:
        return "an unknown process (the lock file is empty or unreadable)"
    program = holder.get("program") or "another program"
    since = holder.get("since", "")
    when = f", since {since}" if since else ""
    return f"{program!r} (pid {holder.get('pid', '?')} on {holder.get('hostname', '?')}{when})"


def _try_flock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class ProjectLock:
    """Exclusive lock on one project file. Use as a context manager or acquire()/release().

    Raises ProjectLockedError (a BadInputError) naming the holder when another live process
    holds it.
    """

    def __init__(self, project_path: str | Path, program: str = DEFAULT_PROGRAM) -> None:
        self.project_path = Path(project_path)
        self.path = lock_path(self.project_path)
        self.program = program
        self._fd: int | None = None
        self.took_over: dict[str, Any] | None = None  # the stale holder we replaced, if any

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        if self._fd is not None:
            return
        key = str(self.path.resolve())
        if key in _HELD:
            raise ProjectLockedError(
                f"{self.project_path.name} is already open in this process", _HELD[key].info()
            )
        for _ in range(5):
            if self._create():
                _HELD[key] = self
                return
            self._take_over_if_stale()
        holder = read_lock(self.project_path) or {}
        raise ProjectLockedError(self._locked_message(holder), holder)

    def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "program": self.program,
            "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise ProjectError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        _try_flock(fd)  # new file, nobody else can hold it
        os.write(fd, (json.dumps(self.info()) + "\n").encode("utf-8"))
        os.fsync(fd)
        self._fd = fd
        return True

    def _take_over_if_stale(self) -> None:
        """Remove the existing lock file if its holder is gone; otherwise raise."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return  # released meanwhile: try creating again
        try:
            holder = read_lock(self.project_path) or {}
            same_host = holder.get("hostname") == socket.gethostname()
            if fcntl is not None:
                free = _try_flock(fd)
                if not free:
                    raise ProjectLockedError(self._locked_message(holder), holder)
                # Nobody holds the flock. On this host that means the holder is gone (its
                # kernel lock died with it, even if its pid has been reused since).
                # An empty file may be a lock whose creator has not flocked it yet: give
                # it a few seconds before calling it stale.
                young = time.time() - os.fstat(fd).st_mtime < 5
                stale = same_host if holder else not young
                if not stale:
                    raise ProjectLockedError(self._locked_message(holder), holder)
            else:  # pragma: no cover - Windows
                pid = holder.get("pid")
                stale = same_host and isinstance(pid, int) and not _pid_alive(pid)
                if not stale:
                    if not holder and time.time() - os.fstat(fd).st_mtime > 10:
                        stale = True
                    else:
                        raise ProjectLockedError(self._locked_message(holder), holder)
            # Only unlink if the path still names the file we examined and hold.
            try:
                if os.stat(self.path).st_ino != os.fstat(fd).st_ino:
                    return
            except FileNotFoundError:
                return
            os.unlink(self.path)
            self.took_over = holder
        finally:
            os.close(fd)

    def _locked_message(self, holder: dict[str, Any]) -> str:
        return (
            f"{self.project_path.name} is in use by {describe_holder(holder)}; close it there "
            f"first (if that process is gone, delete {self.path})"
        )

    def release(self) -> None:
        """Remove the lock file (if it is still ours) and drop the flock. Idempotent."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        _HELD.pop(str(self.path.resolve()), None)
        try:
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)


def held_by_this_process(project_path: str | Path) -> bool:
    """True when this process holds the lock of ``project_path``."""
    return str(lock_path(project_path).resolve()) in _HELD


def check_not_locked_by_other(project_path: str | Path) -> None:
    """Raise ProjectLockedError if another live process holds the project's lock.

    Used by save_project so that a writer which forgot to lock still cannot clobber a
    project another process is writing. A stale lock is left alone (not ours to remove here).
    """
    if held_by_this_process(project_path):
        return
    path = lock_path(project_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        holder = read_lock(project_path) or {}
        if fcntl is not None:
            free = _try_flock(fd)
            if free:
                fcntl.flock(fd, fcntl.LOCK_UN)
                if holder.get("hostname") == socket.gethostname() or not holder:
                    return
        else:  # pragma: no cover - Windows
            pid = holder.get("pid")
            if holder.get("hostname") == socket.gethostname() and isinstance(pid, int):
                if not _pid_alive(pid):
                    return
    finally:
        os.close(fd)
    name = Path(project_path).name
    raise ProjectLockedError(
        f"{name} is in use by {describe_holder(holder)}; it cannot be saved from here "
        f"(if that process is gone, delete {path})",
        holder,
    )
