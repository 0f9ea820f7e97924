"""What a user sees from ``featherweight``: no library log lines, a progress bar on a terminal
and plain lines when piped, a suggestion for a mistyped command, one line (not a Qt abort)
when the app has no display, and the libraries' log replayed only when asked or on failure."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lines that must never reach a user on a normal run (the list).
NOISE = ("W0000", "I0000", "E0000", "WARNING", "INFO:", "absl", "cudart", "fully_quantize",
         "UserWarning")  # fmt: skip
# Import + training (2 epochs of pruning) + full-int8 conversion, in ~20 s.
TINY_RECIPE = {
    "schema_version": 1,
    "name": "tiny-prune-int8",
    "seed": 0,
    "batch_size": 64,
    "steps": [
        {"type": "prune", "target_sparsity": 0.5, "epochs": 2, "learning_rate": 0.0005},
        {"type": "quantize", "mode": "int8", "io": "float", "calibration_samples": 50},
    ],
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FEATHERWEIGHT_VERBOSE"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def _fw(*args: str, module: str = "gui", env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(word in line for word in NOISE)]


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.json"
    path.write_text(json.dumps(TINY_RECIPE))
    return path


# -- the launcher: commands, mistakes, no display -----------------------------------------


@pytest.mark.parametrize("module", ["gui", "engine"])
def test_mistyped_command_is_an_error_with_a_suggestion(module: str) -> None:
    r = _fw("compres", "demo", module=module)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        "featherweight: error: unknown command 'compres'; did you mean 'compress'?"
    )
    assert r.stdout == ""
    r = _fw("frobnicate", module=module)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "featherweight: error: unknown command 'frobnicate' "
        "(commands: inspect, compress, analyze, search, run, report, demo)"
    ]


def test_launcher_rules_for_files_options_and_commands(tmp_path: Path) -> None:
    from gui.launcher import classify

    existing = tmp_path / "digits"
    existing.write_text("x")
    assert classify([]) == ("app", "")
    assert classify(["--demo"]) == ("app", "")
    assert classify(["new-project.fwproj"]) == ("app", "")  # becomes the file Save writes
    assert classify(["model.keras", "--demo"]) == ("app", "")
    assert classify([str(existing)]) == ("app", "")
    assert classify(["compress", "demo"]) == ("cli", "")
    assert classify(["--verbose", "inspect", "demo"]) == ("cli", "")
    assert classify(["--version"]) == ("cli", "")
    assert classify(["--worker"]) == ("worker", "")
    assert classify(["--self-test", "--timeout", "5"]) == ("self-test", "")
    kind, message = classify(["inspekt", "demo"])
    assert kind == "error" and message.endswith("did you mean 'inspect'?")
    kind, message = classify(["--dmeo"])
    assert kind == "error" and message.endswith("did you mean '--demo'?")
    kind, message = classify(["--demo", "compress"])
    assert kind == "error" and "first" in message


def test_display_detection() -> None:
    from gui.launcher import has_display

    linux = "linux"
    assert not has_display({}, linux)
    assert has_display({"DISPLAY": ":0"}, linux)
    assert has_display({"WAYLAND_DISPLAY": "wayland-0"}, linux)
    assert has_display({"QT_QPA_PLATFORM": "offscreen"}, linux)
    assert has_display({"QT_QPA_PLATFORM": "minimal"}, linux)
    assert not has_display({"QT_QPA_PLATFORM": "xcb"}, linux)
    assert not has_display({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "w"}, linux)
    assert has_display({"QT_QPA_PLATFORM": "wayland", "WAYLAND_DISPLAY": "w"}, linux)
    assert has_display({}, "win32") and has_display({}, "darwin")


def test_app_without_a_display_says_so_in_one_line() -> None:
    env = _env()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    for extra in ({}, {"QT_QPA_PLATFORM": "xcb"}):
        r = _fw(env={**env, **extra}, timeout=60)
        assert r.returncode == 2, r.stderr  # Qt's abort would be 134
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert "needs a display" in lines[0]
        assert "inspect, compress, analyze, search, run, report, demo" in lines[0]
    r = _fw("--self-test", env=env, timeout=60)
    assert r.returncode == 2 and "QT_QPA_PLATFORM=offscreen" in r.stderr


def test_help_and_version_go_to_the_command_line() -> None:
    r = _fw("--help")
    assert r.returncode == 0 and "--verbose" in r.stdout and "compress" in r.stdout
    r = _fw("--version")
    assert r.returncode == 0 and r.stdout.startswith("featherweight ")


# -- captured library output ---------------------------------------------------------------

_FAKE_COMMAND = """
import os, sys, warnings
import engine.cli as cli
from engine.core.errors import FeatherweightError

def noisy(args):
    os.write(2, b"I0000 00:00:1.0 cudart_stub.cc:31] Could not find cuda drivers\\n")
    warnings.warn("Statistics for quantized inputs were expected", UserWarning)
    print("own progress line", file=sys.stderr)
    if os.environ.get("FAIL"):
        raise FeatherweightError("conversion failed")
    return 0

cli.COMMANDS["demo"] = noisy
sys.exit(cli.main(sys.argv[1:]))
"""


def _fake(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _FAKE_COMMAND, *args],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_library_output_is_hidden_and_replayed_on_failure() -> None:
    ok = _fake("demo", "--out", "x")
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == "own progress line\n"  # neither the fd-2 line nor the warning

    failed = _fake("demo", "--out", "x", FAIL="1")
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert "Could not find cuda drivers" in failed.stderr  # the replayed log says why
    assert lines[-1] == "featherweight: error: conversion failed"

    for verbose in (_fake("--verbose", "demo", "--out", "x"),
                    _fake("demo", "--out", "x", "--verbose"),
                    _fake("demo", "--out", "x", FEATHERWEIGHT_VERBOSE="1")):  # fmt: skip
        assert verbose.returncode == 0
        assert "Could not find cuda drivers" in verbose.stderr
        assert "UserWarning" in verbose.stderr
        assert "own progress line" in verbose.stderr


def test_quiet_stderr_restores_fd2_and_sys_stderr_after_an_error() -> None:
    from engine.core.quiet import quiet_stderr

    before = (os.fstat(2).st_ino, os.fstat(2).st_dev, sys.stderr)
    with pytest.raises(RuntimeError):
        with quiet_stderr() as captured:
            os.write(2, b"hidden\n")
            assert captured.text() == "hidden\n"
            raise RuntimeError("boom")
    assert (os.fstat(2).st_ino, os.fstat(2).st_dev, sys.stderr) == before


# -- real runs: import + training + int8 conversion ---------------------------------------


@pytest.mark.slow
def test_piped_compress_prints_plain_progress_and_no_library_lines(tiny_recipe, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gui", "compress", "demo", "--data", "demo"]
    cmd += ["--recipe", str(tiny_recipe), "--out", str(out)]
    # ``2>&1`` as in the issue: one stream, nothing from TensorFlow, absl or the converter.
    r = subprocess.run(
        cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout
    assert not _noise(r.stdout), r.stdout
    assert "\r" not in r.stdout and "\x1b[" not in r.stdout
    lines = r.stdout.splitlines()
    assert lines[:2] == ["[1/4] Measuring the original model", "[2/4] Pruning"], r.stdout
    epochs = [line for line in lines if line.startswith("    epoch ")]
    assert [e.split(":")[0] for e in epochs] == ["    epoch 1/2", "    epoch 2/2"], r.stdout
    assert "val_acc" in epochs[-1] and "sparsity 0.50" in epochs[-1]
    assert (
        "[3/4] Converting to .tflite" in lines and "[4/4] Measuring the compressed model" in lines
    )
    assert (out / "model.tflite").stat().st_size > 10_000


def _run_in_pty(cmd: list[str], timeout: float = 300) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout piped); returns (code, tty text, stdout)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(COLUMNS="200"), stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", "replace"), stdout


@pytest.mark.slow
def test_terminal_compress_draws_a_progress_bar_per_stage(tiny_recipe, tmp_path):
    cmd = [sys.executable, "-m", "gui", "compress", "demo", "--data", "demo"]
    cmd += ["--recipe", str(tiny_recipe), "--out", str(tmp_path / "out")]
    code, tty, stdout = _run_in_pty(cmd)
    assert code == 0, tty[-3000:]
    assert not _noise(tty), tty[-3000:]
    frames = [f.replace("\x1b[K", "") for f in tty.replace("\r\n", "\n").split("\r")]
    bars = [f for f in frames if f.startswith("[2/4] Pruning  epoch ")]
    assert any("\u2588" in f and "ETA " in f and "batch " in f for f in bars), frames
    assert any(f.startswith("[2/4] Pruning  epoch 2/2") for f in bars)
    assert any(f.startswith("[2/4] Pruning  epoch 1/2") for f in bars)
    # Each stage ends on one finished line: its epochs, last metrics, time taken.
    text = tty.replace("\x1b[K", "").replace("\r\n", "\n")  # the pty turns \n into \r\n
    finished = [f.strip() for f in text.split("\r") if f.endswith("\n")]
    assert any(f.startswith("[2/4] Pruning  2 epochs") and "val_acc" in f for f in finished)
    assert any(f.startswith("[3/4] Converting to .tflite  (") for f in finished), finished
    assert "ratio gzip" in stdout  # the result table still goes to stdout
