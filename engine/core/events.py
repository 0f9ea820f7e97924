"""Events and cancellation shared by every long engine call.

Every long call takes ``on_event`` (a callable receiving one dict per event) and a
``CancelToken``. The same event dicts travel, unchanged, over the worker protocol
(``engine.service.worker``) and into the GUI. Event types:

- ``{"type": "stage", "stage": str, "label": str, "state": "start"|"end", "index": int,
  "count": int}``
- ``{"type": "progress", "stage": str, "step": int, "total": int}``
- ``{"type": "metric", "stage": str, "epoch": float, "values": {name: float}}`` where names are
  among ``loss, accuracy, val_loss, val_accuracy, sparsity, est_tflite_bytes, est_gzip_bytes``;
  ``epoch`` counts epochs across the whole run (so charts have one x axis).
- ``{"type": "log", "level": "info"|"warning"|"error", "message": str}``
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.core.errors import Cancelled

Event = dict[str, Any]
EventCallback = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """Default event sink."""


class CancelToken:
    """Thread-safe cancel flag, checked by long operations between batches."""

    def __init__(self) -> None:
        self._flag = threading.Event()

    def cancel(self) -> None:
        self._flag.set()

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    def raise_if_cancelled(self) -> None:
        if self._flag.is_set():
            raise Cancelled("cancelled by the user")


class Reporter:
    """Convenience wrapper around ``on_event`` + ``CancelToken`` used inside the engine.

    It also keeps a global epoch counter so metric points of successive stages line up
    on one x axis, and throttles progress events to noticeable changes.
    """

    def __init__(
        self, on_event: EventCallback | None = None, cancel: CancelToken | None = None
    ) -> None:
        self.on_event = on_event or ignore_event
        self.cancel = cancel or CancelToken()
        self.epoch_offset = 0.0
        self.stage_name = ""
        self._last_progress: tuple[str, int, int] | None = None
        self._last_progress_time = 0.0

    def emit(self, event: Event) -> None:
        self.on_event(event)

    def check_cancel(self) -> None:
        self.cancel.raise_if_cancelled()

    @contextmanager
    def stage(self, name: str, label: str, index: int = 0, count: int = 1) -> Iterator[None]:
        """Emit stage start/end around a block; checks cancel on entry."""
        self.check_cancel()
        previous = self.stage_name
        self.stage_name = name
        base = {"type": "stage", "stage": name, "label": label, "index": index, "count": count}
        self.emit({**base, "state": "start"})
        try:
            yield
        finally:
            self.emit({**base, "state": "end"})
            self.stage_name = previous

    def progress(self, step: int, total: int) -> None:
        now = time.monotonic()
        key = (self.stage_name, step, total)
        if key == self._last_progress:
            return
        # Throttle: at most ~20 events/s unless the stage finished.
        if step < total and now - self._last_progress_time < 0.05:
            return
        self._last_progress = key
        self._last_progress_time = now
        self.emit({"type": "progress", "stage": self.stage_name, "step": step, "total": total})

    def metric(self, epoch: float, **values: float) -> None:
        """One chart point; ``epoch`` is relative to the current stage."""
        clean = {k: float(v) for k, v in values.items() if v is not None}
        self.emit(
            {
                "type": "metric",
                "stage": self.stage_name,
                "epoch": self.epoch_offset + float(epoch),
                "values": clean,
            }
        )

    def advance_epochs(self, epochs: float) -> None:
        self.epoch_offset += float(epochs)

    def log(self, message: str, level: str = "info") -> None:
        self.emit({"type": "log", "level": level, "message": message})
