"""Small helpers shared by test modules (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def fw(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m engine ARGS`` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def train_context(
    splits: Any,
    *,
    teacher: Any = None,
    events: list[Any] | None = None,
    output_kind: str = "softmax",
) -> Any:
    """A ``TrainContext`` for calling a technique directly: batch 32, the given teacher, the
    reporter's events appended to ``events`` when given."""
    from engine.core.events import Reporter
    from engine.techniques.registry import TrainContext

    sink = events.append if events is not None else None
    return TrainContext(
        splits=splits,
        reporter=Reporter(sink),
        output_kind=output_kind,
        batch_size=32,
        teacher=teacher,
    )


# FEATHERWEIGHT_SEARCH_SPACE for the search tests: one training step per trial (prune 50 %,
# 4 epochs, a checkpoint hit from the second trial on); the final formats tell trials apart.
def prune_only_space(*formats: str) -> dict[str, list[Any]]:
    return {
        "width": [None],
        "filters": [0.0],
        "sparsity": [0.5],
        "allocation": ["uniform"],
        "clusters": [0],
        "qat": [False],
        "teacher_guided": [False],
        "epochs": [4],
        "format": list(formats),
        "sparse": [False],
    }
