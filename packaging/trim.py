"""Trimming rules for the PyInstaller bundle (used by featherweight.spec). Placeholder."""

from pathlib import Path


def apply(binaries, datas, workpath: Path):
    return binaries, datas


def strip_large(binaries, workpath: Path):
    return binaries
