"""The ``--self-test`` the frozen app runs in CI, run here from source; and the Linux
desktop integration (install.sh) the bundle ships."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINUX = ROOT / "packaging" / "linux"


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@pytest.mark.slow
def test_self_test_from_source_passes_every_check(tmp_path: Path) -> None:
    out = tmp_path / "run"
    shot = tmp_path / "window.png"
    proc = subprocess.run(
        [sys.executable, "-m", "gui", "--self-test", "--timeout", "400"]
        + ["--out", str(out), "--screenshot", str(shot)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=460,
    )
    report = proc.stdout + "\n--- stderr (tail) ---\n" + proc.stderr[-4000:]
    assert proc.returncode == 0, report
    lines = proc.stdout.splitlines()
    assert not [line for line in lines if line.startswith("FAIL")], report
    passed = [line for line in lines if line.startswith("PASS")]
    for check in (
        "main window shown and painted",
        "engine worker process started and TensorFlow loaded",
        "bundled demo model opened in the Model tab",
        "compression job finished in the engine worker",
        "LiteRT loads model.tflite and runs one inference",
        "engine worker stopped with the window",
    ):
        assert any(line.startswith(f"PASS  {check}") for line in passed), report
    assert lines[-1].startswith("self-test: all ") and lines[-1].endswith(" checks passed")
    # The run's artifacts are real files, the window grab a real PNG.
    assert (out / "model.tflite").stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_self_test_is_bounded_by_its_timeout() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gui", "--self-test", "--timeout", "2"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert "FAIL  self-test timed out after 2 s" in proc.stdout


# -- Linux desktop integration ---------------------------------------------------------------


def test_desktop_entry_opens_project_files() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(LINUX / "featherweight.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Terminal"] == "false"
    assert d["Exec"].endswith(" %f")  # the double-clicked file is passed to the app
    assert "application/x-featherweight-project" in d["MimeType"].split(";")
    xml = (LINUX / "featherweight-mime.xml").read_text()
    assert 'type="application/x-featherweight-project"' in xml
    assert '<glob pattern="*.fwproj"' in xml
    for size in (16, 32, 48, 64, 128, 256, 512):
        png = ROOT / "resources" / "icons" / f"featherweight-{size}.png"
        assert png.read_bytes()[16:24] == size.to_bytes(4, "big") * 2  # IHDR width, height


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux desktop integration")
def test_install_sh_installs_and_uninstalls_cleanly(tmp_path: Path) -> None:
    # A stand-in bundle: the executable and the icons where PyInstaller puts resources/.
    bundle = tmp_path / "bundle"
    (bundle / "_internal" / "resources").mkdir(parents=True)
    shutil.copytree(ROOT / "resources" / "icons", bundle / "_internal" / "resources" / "icons")
    exe = bundle / "featherweight"
    exe.write_text('#!/bin/sh\necho featherweight "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    prefix = tmp_path / "home" / ".local"
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    script = LINUX / "install.sh"

    subprocess.run(
        ["bash", str(script), "--bundle", str(bundle), "--prefix", str(prefix)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    share = prefix / "share"
    desktop = (share / "applications" / "featherweight.desktop").read_text()
    assert f'Exec="{bundle}/featherweight" %f' in desktop
    assert (share / "icons/hicolor/256x256/apps/featherweight.png").exists()
    assert (
        share / "icons/hicolor/48x48/mimetypes/application-x-featherweight-project.png"
    ).exists()
    assert (share / "mime/packages/featherweight.xml").exists()
    launcher = prefix / "bin" / "featherweight"
    assert subprocess.run([str(launcher), "x.fwproj"], capture_output=True, text=True).stdout == (
        "featherweight x.fwproj\n"
    )
    if shutil.which("update-mime-database"):
        globs = (share / "mime" / "globs2").read_text()
        assert "application/x-featherweight-project:*.fwproj" in globs

    subprocess.run(
        ["bash", str(script), "--uninstall", "--prefix", str(prefix)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    left = sorted(
        str(p.relative_to(prefix))
        for p in prefix.rglob("*")
        if p.is_file() and "featherweight" in p.name
    )
    assert left == []
