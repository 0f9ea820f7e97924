"""Architecture rules: the engine never imports Qt; light modules never import TensorFlow."""

import subprocess
import sys

LIGHT = [
    "engine",
    "engine.pipeline.recipe",
    "engine.core.events",
    "engine.core.errors",
    "engine.data.datasets",
]


def _imported_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_light_modules_import_neither_qt_nor_tensorflow():
    for module in LIGHT:
        mods = _imported_after(module)
        assert not any(m.startswith("PySide6") for m in mods), module
        assert "tensorflow" not in mods, module
