"""Remembered preferences (``QSettings``): window geometry, recent models and projects,
last folders, the autosave interval (``autosave/seconds``, default 180).

Tests pass a ``QSettings`` on a temporary INI file, so they never touch the user's settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 8
DEFAULT_AUTOSAVE_SECONDS = 180.0


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

    def recent_projects(self) -> list[str]:
        value = self.q.value("recent/projects", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent_project(self, path: str) -> list[str]:
        items = [p for p in self.recent_projects() if p != path]
        items.insert(0, path)
        items = items[:MAX_RECENT]
        self.q.setValue("recent/projects", items)
        return items

    def remove_recent_project(self, path: str) -> None:
        self.q.setValue("recent/projects", [p for p in self.recent_projects() if p != path])

    def prune_recent_projects(self) -> list[str]:
        """Drop entries whose file is gone; returns the dropped paths."""
        items = self.recent_projects()
        gone = [p for p in items if not Path(p).is_file()]
        if gone:
            self.q.setValue("recent/projects", [p for p in items if p not in gone])
        return gone

    def clear_recent_projects(self) -> None:
        self.q.setValue("recent/projects", [])

    def autosave_seconds(self) -> float:
        """Seconds between autosaves (``autosave/seconds``; at least 5)."""
        try:
            value = float(self.q.value("autosave/seconds", DEFAULT_AUTOSAVE_SECONDS))
        except (TypeError, ValueError):
            value = DEFAULT_AUTOSAVE_SECONDS
        return max(5.0, value)

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
