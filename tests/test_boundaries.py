"""Architecture rules: the import contracts (import-linter), the engine never imports Qt or
the gui package, light modules never import TensorFlow."""

import io
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LIGHT = [
    "engine",
    "engine.cli",
    "engine.pipeline.recipe",
    "engine.core.events",
    "engine.core.errors",
    "engine.data.datasets",
]


def _imported_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(out.stdout.split())


def test_import_contracts_hold():
    """``lint-imports`` (contracts in pyproject.toml: engine layers, engine never imports
    gui/PySide6/pyqtgraph, no cycles between sibling modules) exits 0."""
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), f"{lint} missing: pip install -e '.[dev]'"
    proc = subprocess.run(
        [str(lint), "--no-logo", "--no-cache"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken." in proc.stdout, proc.stdout


def test_engine_light_modules_import_neither_qt_nor_tensorflow():
    for module in LIGHT:
        mods = _imported_after(module)
        assert not any(m.startswith("PySide6") for m in mods), module
        assert "tensorflow" not in mods, module


def test_engine_cli_imports_neither_gui_nor_qt_nor_tensorflow():
    mods = _imported_after("engine.cli")
    assert not [m for m in mods if m == "gui" or m.startswith("gui.")]
    assert not [m for m in mods if m.startswith(("PySide6", "pyqtgraph"))]
    assert not [m for m in mods if m.split(".")[0] in ("tensorflow", "tf_keras", "keras")]


def test_launcher_imports_neither_qt_nor_tensorflow():
    """``featherweight`` decides between app and command line before Qt is imported (Qt
    aborts without a display) and before TensorFlow (2-3 s)."""
    mods = _imported_after("gui.launcher")
    assert not [m for m in mods if m.startswith(("PySide6", "pyqtgraph", "tensorflow"))]


def test_nothing_under_engine_names_the_gui_package():
    """Not even through ``importlib`` or a string: no name ``gui`` and no string that is a
    ``gui`` module path in engine/ code (docstrings and comments may talk about "the GUI")."""
    found = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            text = None
            if tok.type == tokenize.NAME and tok.string == "gui":
                text = tok.string
            elif tok.type == tokenize.STRING:
                body = tok.string.lstrip("rbuRBUfF").strip("'\"")
                if body == "gui" or body.startswith(("gui.", "gui/", "gui:")):
                    text = tok.string
            if text is not None:
                found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {text}")
    assert not found, "\n".join(found)


def test_engine_top_level_holds_only_packages_and_the_cli():
    top = sorted(p.name for p in (ROOT / "engine").iterdir() if p.name != "__pycache__")
    modules = [n for n in top if not (ROOT / "engine" / n).is_dir()]
    assert modules == ["__init__.py", "__main__.py", "cli.py"], top
