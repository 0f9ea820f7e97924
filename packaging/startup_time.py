"""Measure the app's cold start: process launch -> main window painted.

Runs ``APP --quit-after-paint`` N times (gui.app prints ``painted <s since main()>`` after
the first paint and closes) and reports the wall time from launch to that line, i.e.
bootloader + Python start + imports + window build + first paint. TensorFlow loads in the
worker process meanwhile and is not on this path.

    python packaging/startup_time.py [--runs 5] [APP ...]   (APP: dist/featherweight/featherweight)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def launch_to_paint(cmd: list[str], timeout: float = 60.0) -> tuple[float, float]:
    """(seconds from launch to the 'painted' line, seconds main() reported)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "--quit-after-paint"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("painted "):
                return time.perf_counter() - t0, float(line.split()[1])
        raise RuntimeError(f"{cmd[0]} exited without painting (code {proc.wait()})")
    finally:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "app", nargs="*", default=[str(ROOT / "dist" / "featherweight" / "featherweight")]
    )
    args = p.parse_args()
    walls, mains = [], []
    for i in range(args.runs):
        wall, in_main = launch_to_paint(args.app)
        walls.append(wall)
        mains.append(in_main)
        print(f"run {i + 1}: launch -> painted {wall:.3f} s (main() -> painted {in_main:.3f} s)")
    print(
        f"median launch -> painted {statistics.median(walls):.3f} s, "
        f"min {min(walls):.3f} s, max {max(walls):.3f} s "
        f"({os.environ.get('QT_QPA_PLATFORM', 'offscreen')})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
