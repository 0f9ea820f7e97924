"""Measure: window painted (from process start) vs ``python -c "import tensorflow"``.

    python tests/gui/measure_startup.py [runs]

Starts ``python -m gui --quit-after-paint`` (the real app: the worker starts too) and
times the wall clock from ``Popen`` to the app's "painted" line; then times a bare
``import tensorflow``. Prints the medians. Uses whatever QT_QPA_PLATFORM is set
(offscreen, or xcb under Xvfb).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def painted_once() -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gui", "--quit-after-paint"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout
    for line in proc.stdout:
        if line.startswith("painted"):
            elapsed = time.perf_counter() - t0
            break
    else:
        raise SystemExit("the app never reported a painted window")
    proc.wait(timeout=60)
    return elapsed


def tf_once() -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"], check=True, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - t0


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    painted = [painted_once() for _ in range(runs)]
    tf = [tf_once() for _ in range(runs)]
    p, t = statistics.median(painted), statistics.median(tf)
    print(f"window painted: median {p:.3f} s  {[round(x, 3) for x in painted]}")
    print(f"import tensorflow: median {t:.3f} s  {[round(x, 3) for x in tf]}")
    print(f"ratio: {p / t:.2f}  (target < 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
