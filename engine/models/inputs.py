"""What a model's first layers say about its input (no TensorFlow import).

``model_input_of(model)`` reads the first layer after the input (augmentation layers and
tfmot wrappers looked through); ``input_kind(shape, model_input)`` names the kind of one
sample. The data layer (engine.data) shapes datasets by them; ``inspect`` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.models.support import unwrap

# Input kinds (``DataSplits.input_kind``): what one sample is, for messages and the GUI.
INPUT_KINDS = ("images", "tokens", "sequences", "features")
# The first layers that say how a model takes its input (``model_input_of``).
AUGMENTATION_PREFIX = "Random"  # RandomFlip, RandomRotation...: inactive at inference


@dataclass(frozen=True)
class ModelInput:
    """What a model's first layer says about its input (``model_input_of`` reads it).

    ``first_layer`` is the class name of the first layer after the input (augmentation
    layers skipped, "" unknown); ``vocab_size`` is an ``Embedding``'s ``input_dim``.
    """

    first_layer: str = ""
    vocab_size: int | None = None

    @property
    def tokens(self) -> bool:
        """The model starts with an ``Embedding``: its inputs are integer token ids."""
        return self.first_layer == "Embedding"

    @property
    def rescales(self) -> bool:
        """The model scales its raw input itself (``Rescaling`` or ``Normalization``)."""
        return self.first_layer in ("Rescaling", "Normalization")


def model_input_of(model: Any) -> ModelInput:
    """The ``ModelInput`` of a Keras 2 or 3 model: its first layer after the input layer
    (tfmot wrappers looked through, augmentation layers skipped)."""
    for layer in getattr(model, "layers", ()):
        layer = unwrap(layer)  # tfmot wrappers
        cls = type(layer).__name__
        if cls == "InputLayer" or cls.startswith(AUGMENTATION_PREFIX):
            continue
        vocab = getattr(layer, "input_dim", None) if cls == "Embedding" else None
        return ModelInput(cls, int(vocab) if vocab else None)
    return ModelInput()


def input_kind(input_shape: tuple[Any, ...], model_input: ModelInput | None = None) -> str:
    """One of ``INPUT_KINDS`` for a model's sample shape and first layer."""
    if model_input is not None and model_input.tokens:
        return "tokens"
    return {1: "features", 2: "sequences"}.get(len(tuple(input_shape)), "images")
