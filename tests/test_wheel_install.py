"""A real (non-editable) install: build the wheel, install it into a fresh venv, and run
``featherweight`` from outside the repository -- every subpackage and resource must be in
the wheel, and the console script must reach the launcher."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """``(venv python, a work folder outside the repo, env)`` with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a clean copy: an in-tree build would leave build/ (and stale modules in
    # later wheels) in the working tree.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("engine", "gui", "resources"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    (src / "docs").mkdir()
    shutil.copy2(ROOT / "docs" / "user-guide.md", src / "docs" / "user-guide.md")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    dist = tmp / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dist), str(src)],
        cwd=tmp,
        env=env,
    )
    (wheel,) = dist.glob("featherweight-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=env)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
        + ["--no-deps", "--no-index", str(wheel)],
        cwd=tmp,
        env=env,
    )
    # The heavy dependencies (TensorFlow, Qt...) come from this venv, without downloads: a
    # path line in a .pth file, so this venv's own .pth files (the editable install pointing
    # at the repo) are not processed.
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp,
        env=env,
    ).stdout.strip()
    (Path(site) / "_featherweight_test_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    work = tmp / "elsewhere"
    work.mkdir()
    return python, work, env


@pytest.mark.slow
def test_wheel_install_runs_demo_from_outside_the_repo(installed) -> None:
    python, work, env = installed
    exe = python.parent / "featherweight"
    assert exe.exists()
    out = work / "demo"
    r = _run([str(exe), "demo", "--out", str(out)], cwd=work, env=env)
    assert (out / "demo_model.keras").stat().st_size > 100_000, r.stdout
    assert (out / "digits.npz").stat().st_size > 10_000, r.stdout

    # Every layer of both packages, and the resources, come from the wheel, not the repo.
    code = (
        "import engine.models.loading as a, engine.service.worker as b, gui.main_window as c\n"
        "import gui.launcher as d, engine.pipeline.run as e\n"
        "from engine.core.demo import resources_dir\n"
        "for m in (a, b, c, d, e): print(m.__file__)\n"
        "print(resources_dir() / 'tflm_ops.json')\n"
        "print(resources_dir() / 'recipes' / 'int8_ptq.json')\n"
        "print(c.user_guide_path())\n"
        "import engine.report.html as h\n"  # the report's template and stylesheet (package data)
        "print(h.TEMPLATES / h.TEMPLATE); print(h.TEMPLATES / h.STYLESHEET)\n"
    )
    r = _run([str(python), "-c", code], cwd=work, env={**env, "QT_QPA_PLATFORM": "offscreen"})
    paths = [Path(line) for line in r.stdout.split()]
    venv = python.parent.parent
    for p in paths:
        assert p.is_file(), p
        assert venv in p.parents and ROOT not in p.parents, p


@pytest.mark.slow
def test_wheel_install_opens_the_app(installed) -> None:
    """The console script opens the window (offscreen) and paints it; the app starts its
    engine worker with this venv's Python on the way."""
    python, work, env = installed
    exe = python.parent / "featherweight"
    r = _run(
        [str(exe), "--demo", "--quit-after-paint"],
        cwd=work,
        env={**env, "QT_QPA_PLATFORM": "offscreen"},
        timeout=180,
    )
    assert [line for line in r.stdout.splitlines() if line.startswith("painted ")], r.stdout
