"""The per-user cache folder and its small, crash-safe file helpers.

``cache_dir()`` is ``$FEATHERWEIGHT_CACHE_DIR`` when set (tests, benchmarks), else the
platform's per-user cache folder + ``featherweight``: ``$XDG_CACHE_HOME`` (default
``~/.cache``) on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows.
Everything in it can be deleted at any time: it only saves work.

``write_atomic`` writes through a temp file in the same folder + ``os.replace`` so that a
reader never sees half a file; ``read_json`` returns None for a missing or unreadable file,
so a corrupt cache entry is simply ignored (and rewritten).

Light module: no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

CACHE_ENV = "FEATHERWEIGHT_CACHE_DIR"


def cache_dir(sub: str = "") -> Path:
    """The cache folder (``sub`` appended), not created."""
    env = os.environ.get(CACHE_ENV)
    if env:
        base = Path(env)
    else:
        if sys.platform == "win32":  # pragma: no cover
            root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        elif sys.platform == "darwin":  # pragma: no cover
            root = Path.home() / "Library" / "Caches"
        else:
            root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        base = root / "featherweight"
    return base / sub if sub else base


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, replace);
    creates the folder. Raises OSError; the temp file never stays behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def read_json(path: str | Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB chunks. Raises OSError."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(folder: str | Path, *, contents: bool = True, stat: bool = False) -> str:
    """sha256 (hex) over a folder: every regular file's relative POSIX path, in sorted order,
    with its size and, with ``contents``, its bytes' sha256 (with ``stat``, its mtime in ns).
    Hidden files count like any other. Raises OSError."""
    root = Path(folder)
    h = hashlib.sha256()
    for f in sorted(q for q in root.rglob("*") if q.is_file()):
        st = f.stat()
        line = f"{f.relative_to(root).as_posix()}\0{st.st_size}"
        if stat:
            line += f"\0{st.st_mtime_ns}"
        if contents:
            line += f"\0{sha256_file(f)}"
        h.update((line + "\n").encode("utf-8", "surrogateescape"))
    return h.hexdigest()
