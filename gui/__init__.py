"""Featherweight desktop app (PySide6). Never imports TensorFlow."""
