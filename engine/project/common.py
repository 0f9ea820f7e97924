"""What the project modules share: the format version and file-name constants, ProjectError and
the atomic JSON writer.

``document``, ``lock`` and ``migrations`` all import this module and never each other in a
circle: ``lock`` and ``migrations`` need only what is here; ``document`` imports both of them.
Light: no TensorFlow, no Qt.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError

FORMAT_VERSION = 6  # docs/project-format.md; engine.project.migrations
EXTENSION = ".fwproj"
FILES_SUFFIX = "_files"
RECOVERY_SUFFIX = ".recovery"
UNTITLED_RECOVERY_NAME = "recovery" + EXTENSION
RUN_STATUSES = ("pending", "running", "done", "failed", "cancelled")
SCALE_RULES = ("auto", "1/255", "-1..1", "none")  # same as engine.data.datasets.SCALE_RULES
TEST_SAVE_PAUSE_ENV = "FEATHERWEIGHT_TEST_SAVE_PAUSE"
DATA_DIR_ENV = "FEATHERWEIGHT_DATA_DIR"

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ProjectError(BadInputError):
    """The project file is missing, unreadable, corrupt, too new, locked or inconsistent."""

    kind = "bad_project"


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - directories cannot be opened there
        return
    # Best effort: the file itself is already synced and in place; some file systems
    # (network shares) refuse to fsync a folder, which must not turn a save into an error.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _test_pause(tmp: Path) -> None:
    """Test-only hook: with FEATHERWEIGHT_TEST_SAVE_PAUSE=<flag file>, a save stops after
    writing and syncing the temp file, before os.replace: it creates the flag file (holding
    the temp path) and sleeps, so a test can kill the process at exactly this point."""
    flag = os.environ.get(TEST_SAVE_PAUSE_ENV)
    if not flag:
        return
    Path(flag).write_text(str(tmp), encoding="utf-8")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)


def write_json_atomic(path: str | Path, data: dict[str, Any], *, pause_hook: bool = False) -> None:
    """Write ``data`` as JSON to ``path`` atomically: temp file in the same folder, write,
    flush, fsync, ``os.replace``, fsync the folder. On any failure the previous file is
    untouched and the temp file removed. Raises ProjectError."""
    path = Path(path)
    try:
        text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"cannot save {path.name}: content is not JSON ({exc})") from None
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            if pause_hook:
                _test_pause(tmp)
            os.replace(tmp, path)
        except BaseException:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise
        _fsync_dir(path.parent)
    except OSError as exc:
        raise ProjectError(f"cannot save {path}: {exc.strerror or exc}") from None
