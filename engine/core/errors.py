"""Exceptions the engine raises on purpose. Anything else is a bug (exit code 1)."""

from __future__ import annotations

from typing import Any


class FeatherweightError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1
    kind = "internal"


class BadInputError(FeatherweightError):
    """The user's input (model, data, recipe, path) is wrong. One-line message, exit 2."""

    exit_code = 2
    kind = "bad_input"


class UnsafeModelError(BadInputError):
    """The model file would run code or read other files when loaded (Lambda layers,
    unknown classes, path-valued options). ``items``: what was found, each one
    (``engine.models.safety.UnsafeItem``); the message names them all on one line."""

    kind = "unsafe_model"

    def __init__(self, message: str, items: list[Any] | None = None) -> None:
        super().__init__(message)
        self.items: list[Any] = list(items or [])


class UnsupportedModelError(BadInputError):
    """The model is readable but outside what Featherweight supports."""

    kind = "unsupported_model"


class DataError(BadInputError):
    """The dataset is missing, malformed or does not fit the model."""

    kind = "bad_data"


class RecipeError(BadInputError):
    """The recipe is not valid JSON or breaks the schema / order rules."""

    kind = "bad_recipe"


class Cancelled(FeatherweightError):
    """The job was cancelled by the user; no finished-looking artifact is left."""

    exit_code = 130
    kind = "cancelled"
