"""Trimming of the PyInstaller bundle: files the app never loads, and symbol tables.

Used by ``featherweight.spec`` on the Analysis TOCs (lists of ``(dest_name, src_path,
typecode)``). Every rule says why the files are safe to drop; each was checked by running
both frozen self-tests on a build without them (see packaging/TRIMMING.md for what each
saved). ``apply`` and ``strip_large`` write what they removed to
``<workpath>/trim-report.json`` and print it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

TocEntry = tuple[str, str, str]


@dataclass(frozen=True)
class Rule:
    """Drop every TOC entry whose destination path matches one of ``patterns``."""

    name: str
    why: str
    patterns: tuple[str, ...]

    def matches(self, dest: str) -> bool:
        d = PurePosixPath(dest.replace(os.sep, "/")).as_posix()
        return any(fnmatch.fnmatchcase(d, p) for p in self.patterns)


# Destination paths inside _internal/ (POSIX separators). Qt plugin paths are PySide6's.
RULES: tuple[Rule, ...] = (
    Rule(
        "litert-npu-vendors",
        "LiteRT's NPU compiler/dispatch plugins (Qualcomm, MediaTek, Intel OpenVINO, Google "
        "Tensor); their vendor SDKs are not installed, and the app runs .tflite on the CPU",
        ("ai_edge_litert/vendors/*",),
    ),
    Rule(
        "litert-tools",
        "LiteRT command-line tools (apply_plugin_main, analyzers); the app never runs them",
        ("ai_edge_litert/tools/*",),
    ),
    Rule(
        "litert-gpu-accelerators",
        "LiteRT's WebGPU/OpenCL accelerators: the app benchmarks on the CPU only",
        (
            "ai_edge_litert/libLiteRtWebGpuAccelerator.so",
            "ai_edge_litert/libLiteRtOpenClAccelerator.so",
        ),
    ),
    Rule(
        "tf-stablehlo",
        "StableHLO Python extension (JAX/StableHLO model conversion); not used for Keras models",
        ("tensorflow/compiler/mlir/stablehlo/stablehlo_extension.so",),
    ),
    Rule(
        "headers-static-libs",
        "C/C++ headers and static/import libraries: only needed to compile against the packages",
        ("*.h", "*.hpp", "*.h.inc", "*.a", "*.lib", "*/include/*"),
    ),
    Rule(
        "qt-translations",
        "Qt's own translations of its dialogs: the app's UI is English only",
        ("PySide6/Qt/translations/*",),
    ),
    Rule(
        "qt-unused-plugins",
        "Qt plugins for things the app does not use: virtual keyboards/input methods, "
        "network information, TLS backends, SQL drivers, printing, QML tooling, and platform "
        "plugins other than xcb, wayland, offscreen and minimal",
        (
            "PySide6/Qt/plugins/platforminputcontexts/*",
            "PySide6/Qt/plugins/networkinformation/*",
            "PySide6/Qt/plugins/tls/*",
            "PySide6/Qt/plugins/sqldrivers/*",
            "PySide6/Qt/plugins/printsupport/*",
            "PySide6/Qt/plugins/qmltooling/*",
            "PySide6/Qt/plugins/designer/*",
            "PySide6/Qt/plugins/platforms/libqeglfs.so",
            "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
            "PySide6/Qt/plugins/platforms/libqvnc.so",
            "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so",
            "PySide6/Qt/plugins/egldeviceintegrations/*",
        ),
    ),
    Rule(
        "test-data",
        "test folders inside packages (data files of their test suites)",
        ("*/tests/*", "*/testing/data/*"),
    ),
)

# Pure-Python modules (a.pure, by module name) the app never imports.
MODULE_RULES: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    (
        "keras3-other-backends",
        "Keras 3 backends for JAX, PyTorch and OpenVINO (not installed); Keras imports "
        "only the backend it is configured for",
        lambda m: any(
            m == p or m.startswith(p + ".")
            for p in (
                "keras.src.backend.jax",
                "keras.src.backend.torch",
                "keras.src.backend.openvino",
            )
        ),
    ),
    (
        "test-modules",
        "test suites shipped inside packages (modules in a package named 'tests'); "
        "jinja2.tests is not one: it is Jinja's module of template tests, imported by jinja2",
        lambda m: "tests" in m.split(".") and not m.startswith("jinja2.tests"),
    ),
)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _report(workpath: Path, section: str, data: dict[str, dict[str, int]]) -> None:
    workpath.mkdir(parents=True, exist_ok=True)
    report_path = workpath / "trim-report.json"
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    report[section] = data
    report_path.write_text(json.dumps(report, indent=2))
    total = sum(v.get("bytes", 0) for v in data.values())
    print(f"trim [{section}]: {total / 2**20:.1f} MiB in total", file=sys.stderr)
    for name, v in data.items():
        print(
            f"trim [{section}]   {name:28s} {v.get('files', 0):5d} files "
            f"{v.get('bytes', 0) / 2**20:8.1f} MiB",
            file=sys.stderr,
        )


def apply(
    binaries: Iterable[TocEntry], datas: Iterable[TocEntry], workpath: Path
) -> tuple[list[TocEntry], list[TocEntry]]:
    """Drop the binaries and data files matched by ``RULES``; return the kept TOCs."""
    saved: dict[str, dict[str, int]] = {r.name: {"files": 0, "bytes": 0} for r in RULES}

    def keep(entry: TocEntry) -> bool:
        dest, src = entry[0], entry[1]
        for rule in RULES:
            if rule.matches(dest):
                saved[rule.name]["files"] += 1
                saved[rule.name]["bytes"] += _size(src)
                return False
        return True

    kept_bins = [e for e in binaries if keep(e)]
    kept_datas = [e for e in datas if keep(e)]
    _report(workpath, "files", saved)
    return kept_bins, kept_datas


def apply_modules(pure: Iterable[TocEntry], workpath: Path) -> list[TocEntry]:
    """Drop pure-Python modules matched by ``MODULE_RULES`` (bytes are source sizes)."""
    saved: dict[str, dict[str, int]] = {
        name: {"files": 0, "bytes": 0} for name, _, _ in MODULE_RULES
    }
    dropped: list[str] = []
    kept = []
    for entry in pure:
        for name, _why, pred in MODULE_RULES:
            if pred(entry[0]):
                saved[name]["files"] += 1
                saved[name]["bytes"] += _size(entry[1])
                dropped.append(entry[0])
                break
        else:
            kept.append(entry)
    _report(workpath, "modules", saved)
    (workpath / "trim-dropped-modules.txt").write_text("\n".join(sorted(dropped)) + "\n")
    return kept


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


STRIP_MIN_BYTES = 1 << 20
# auditwheel-vendored libraries (numpy.libs/, scipy.libs/, ...) are already stripped or
# patched by patchelf; leave them exactly as their wheels ship them.
STRIP_SKIP = ("*.libs/*",)


def strip_large(binaries: Iterable[TocEntry], workpath: Path) -> list[TocEntry]:
    """Replace ELF binaries of at least 1 MiB by copies without symbol tables (``strip``).

    Only ``.symtab``/debug sections go; the dynamic symbol table the loader uses stays.
    Copies are cached in ``<workpath>/stripped`` by source path, size and mtime. Linux only.
    """
    binaries = list(binaries)
    strip = shutil.which("strip")
    if not sys.platform.startswith("linux") or strip is None:
        return binaries
    cache = workpath / "stripped"
    cache.mkdir(parents=True, exist_ok=True)
    before = after = count = 0
    out: list[TocEntry] = []
    for dest, src, typecode in binaries:
        dest_posix = dest.replace(os.sep, "/")
        if (
            _size(src) < STRIP_MIN_BYTES
            or any(fnmatch.fnmatchcase(dest_posix, p) for p in STRIP_SKIP)
            or not _is_elf(src)
        ):
            out.append((dest, src, typecode))
            continue
        st = os.stat(src)
        key = hashlib.sha256(f"{os.path.realpath(src)}:{st.st_size}:{st.st_mtime_ns}".encode())
        target = cache / f"{key.hexdigest()[:16]}-{Path(src).name}"
        if not target.exists():
            tmp = target.with_suffix(target.suffix + ".tmp")
            subprocess.run([strip, "--strip-all", "-o", str(tmp), src], check=True)
            os.chmod(tmp, st.st_mode & 0o777)
            tmp.replace(target)
        before += st.st_size
        after += _size(str(target))
        count += 1
        out.append((dest, str(target), typecode))
    _report(workpath, "strip", {"symbol-tables": {"files": count, "bytes": before - after}})
    return out
