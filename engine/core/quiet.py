"""Keep TensorFlow's log lines off the user's terminal (command line only).

TensorFlow's C++ logging (absl), its CUDA probing, the TFLite converter and LiteRT's XNNPACK
notes write straight to file descriptor 2: ``TF_CPP_MIN_LOG_LEVEL`` does not stop the absl
lines. ``quiet_stderr()`` points fd 2 at a temporary file for a block while Python's
``sys.stderr`` keeps writing to the real terminal, so the command line's own messages and
progress still show; Python warnings and the libraries' loggers (below ERROR) are silenced.
The captured text stays available (``Captured.text()``) so the caller can replay it when the
command fails.

Nothing happens at import: only the CLI's ``main`` enters ``quiet_stderr()``. The GUI's engine
worker keeps its stderr (the GUI shows its tail when the worker crashes), and test runners
keep theirs. fd 2 and ``sys.stderr`` are restored however the block ends.
"""

from __future__ import annotations

import faulthandler
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

VERBOSE_ENV = "FEATHERWEIGHT_VERBOSE"
# Libraries whose Python loggers speak at WARNING/INFO level during a normal run.
NOISY_LOGGERS = (
    "absl",
    "tensorflow",
    "tf_keras",
    "keras",
    "h5py",
    "tensorflow_model_optimization",
    "optuna",
    "alembic",
    "sqlalchemy",
)


def verbose_from_env() -> bool:
    """True if ``FEATHERWEIGHT_VERBOSE`` asks for the libraries' logs (1, true, yes, on)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Captured:
    """What was written to file descriptor 2 while it was captured."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def text(self) -> str:
        """The captured text so far ('' once the capture is closed and its file gone)."""
        try:
            self._file.flush()
            pos = self._file.tell()
            self._file.seek(0)
            data = self._file.read()
            self._file.seek(pos)
        except (OSError, ValueError):
            return ""
        return data.decode("utf-8", "replace")


def _writes_to_fd2(stream: object) -> bool:
    try:
        return stream is not None and stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextmanager
def quiet_stderr() -> Iterator[Captured]:
    """Capture file descriptor 2 (C/C++ libraries' output) in a temporary file for the block.

    Python's ``sys.stderr``, if it wrote to fd 2, is rebound to a copy of the original fd 2
    for the block (so ``print(..., file=sys.stderr)`` still reaches the user); a stream that
    was already replaced (pytest, ``redirect_stderr``) is left alone. Python warnings are
    ignored and the loggers in ``NOISY_LOGGERS`` raised to ERROR for the block. Exception-safe:
    fd 2, ``sys.stderr``, warning filters and logger levels are all restored on exit.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    saved_fd = os.dup(2)
    capture = tempfile.TemporaryFile(prefix="featherweight-stderr-")
    old_stderr = sys.stderr
    console: IO[str] | None = None
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    started_faulthandler = False
    try:
        os.dup2(capture.fileno(), 2)
        if _writes_to_fd2(old_stderr):
            console = os.fdopen(
                os.dup(saved_fd),
                "w",
                buffering=1,
                encoding=getattr(old_stderr, "encoding", None) or "utf-8",
                errors="backslashreplace",
            )
            console.reconfigure(write_through=True)  # type: ignore[attr-defined]
            sys.stderr = console
            if not faulthandler.is_enabled():
                # A fatal error (abort in C++) still shows Python's traceback to the user.
                faulthandler.enable(console)
                started_faulthandler = True
        for name in NOISY_LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield Captured(capture)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if started_faulthandler:
            faulthandler.disable()
        if console is not None:
            try:
                console.flush()
            finally:
                sys.stderr = old_stderr
                console.close()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        capture.close()
