"""A throwaway PostgreSQL server for tests: ``with postgres() as server: server.url``.

Uses the server binaries of Debian's ``postgresql`` package (``/usr/lib/postgresql/<v>/bin``;
``packaging/ci-deps`` installs it) or ``initdb`` / ``pg_ctl`` on PATH. ``initdb`` refuses to run
as root, so as root the cluster is created and run by the ``postgres`` user (``runuser``), the
same thing ``pg_virtualenv`` does; unlike ``pg_virtualenv`` as root (a cluster always named
``15/regress`` under ``/etc/postgresql``, refused while one exists) every server here is its own
temporary folder and port, so parallel or interrupted runs never collide.

The server listens on 127.0.0.1 only, with password (scram-sha-256) logins: ``url`` has no
password (clients take it from ``PGPASSWORD``, see ``env``), ``url_with_password`` has it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "featherweight"
DATABASE = "postgres"


@dataclass
class Server:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def url_with_password(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password}


def bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None (not installed)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable() -> str | None:
    """Why no server can be started here (None when one can)."""
    if bin_dir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed (packaging/ci-deps)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[Server]:
    """Start a fresh server in a temporary folder; stop it and delete everything after."""
    why = unavailable()
    if why:
        raise RuntimeError(why)
    bins = bin_dir()
    assert bins is not None
    root = Path(tempfile.mkdtemp(prefix="fw-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(12)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if prefix:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    data, log = root / "data", root / "log"
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C"}

    def run(*args: str) -> None:
        done = subprocess.run(
            [*prefix, *args], env=env, capture_output=True, text=True, timeout=120, cwd=root
        )
        if done.returncode:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{Path(args[0]).name} failed: {' | '.join(tail)}")

    started = False
    try:
        run(
            str(bins / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
            "-E",
            "UTF8",
        )
        pwfile.unlink()
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bins / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        started = True
        yield Server("127.0.0.1", port, USER, password, DATABASE)
    finally:
        if started:
            with contextlib.suppress(Exception):
                run(str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # manual check: python tests/pg.py
    with postgres() as server:
        print(server.url, "up")
