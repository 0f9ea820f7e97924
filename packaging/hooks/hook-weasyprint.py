"""PyInstaller hook for WeasyPrint (the report's PDF), replacing the contrib one.

WeasyPrint opens Pango, GObject, HarfBuzz and fontconfig with cffi's ``dlopen`` at import
time, so PyInstaller's dependency scan never sees them. The contrib hook asks
``ctypes.util.find_library`` for names like ``libfontconfig``, which on this Python raises
(``liblibfontconfig.a``) and aborts its whole loop: the bundle then has whatever GTK's Qt
plugin happened to pull in. Here each library is looked up by the names ctypes resolves and
copied to the bundle's top folder, where the frozen app's loader finds it; fontconfig's
configuration (``/etc/fonts``) goes to ``etc/fonts`` (the runtime hook uses it when the
user's system has none).
"""

import ctypes.util
import os

from PyInstaller.depend.utils import _resolveCtypesImports
from PyInstaller.utils.hooks import collect_data_files, logger

datas = collect_data_files("weasyprint")
binaries = []

# (ctypes name, required): what weasyprint/text/ffi.py dlopens on Linux and macOS.
LIBRARIES = (
    ("gobject-2.0", True),
    ("pango-1.0", True),
    ("harfbuzz", True),
    ("harfbuzz-subset", False),
    ("fontconfig", True),
    ("pangoft2-1.0", True),
)

names = []
for lib, required in LIBRARIES:
    try:
        found = ctypes.util.find_library(lib)
    except OSError:
        found = None
    if found:
        names.append(os.path.basename(found))
    elif required:
        logger.warning("weasyprint: library %s not found; the bundle cannot write PDFs", lib)
for _name, path, _kind in _resolveCtypesImports(names):
    binaries.append((path, "."))

if os.path.isdir("/etc/fonts"):
    datas.append(("/etc/fonts", "etc/fonts"))
