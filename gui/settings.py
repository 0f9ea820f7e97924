"""Remembered preferences (``QSettings``): window geometry, recent models, last folders.

Tests pass a ``QSettings`` on a temporary INI file, so they never touch the user's settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 8


def default_settings() -> QSettings:
    return QSettings("Featherweight", "Featherweight")


class AppSettings:
    """Typed access to the app's ``QSettings``."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else default_settings()

    def recent_models(self) -> list[str]:
        value = self.q.value("recent/models", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent_model(self, path: str) -> list[str]:
        items = [p for p in self.recent_models() if p != path]
        items.insert(0, path)
        items = items[:MAX_RECENT]
        self.q.setValue("recent/models", items)
        return items

    def clear_recent_models(self) -> None:
        self.q.setValue("recent/models", [])

    def last_folder(self, kind: str) -> str:
        """Last folder used for ``kind`` (model, data, recipe, export); home by default."""
        value = self.q.value(f"folders/{kind}", "")
        return str(value) if value and Path(str(value)).is_dir() else str(Path.home())

    def set_last_folder(self, kind: str, path: str) -> None:
        p = Path(path)
        self.q.setValue(f"folders/{kind}", str(p if p.is_dir() else p.parent))

    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, geometry: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)

    def sync(self) -> None:
        self.q.sync()
