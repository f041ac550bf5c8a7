"""Argument checks shared by every builder and layer of the zoo, each written once.

Every check raises a ValueError that names the argument, the value it got and what
is allowed, before any layer is built. The builders' common signature is::

    build_x(input_shape=<paper's>, classes=<paper's>, weights=None, *,
            encoder_weights=None, return_attention=False, ...)

* ``weights``: ``None`` or a checkpoint of the whole model, loaded after building
  (:func:`zoo.common.weights.load_checkpoint`);
* ``encoder_weights``: ``None``, ``"imagenet"`` or a keras.applications no-top weights
  file of the encoder (:func:`check_encoder_weights`);
* ``return_attention``: output a dict ``{<main output>: ..., <map name>: ...}``
  (:func:`check_return_attention`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

IMAGENET = "imagenet"


def check_choice(argument: str, value: Any, allowed: Sequence) -> None:
    """Raises a ValueError naming ``argument`` unless ``value`` is in ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{argument} must be one of {tuple(allowed)}, got {value!r}.")


def check_bool(argument: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False``; a ValueError naming ``argument`` otherwise."""
    if not isinstance(value, bool):
        raise ValueError(f"{argument} must be True or False, got {value!r}.")
    return value


def check_positive_int(argument: str, value: Any) -> int:
    """``value`` if it is a positive int (not a bool); a ValueError naming ``argument`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument} must be a positive int, got {value!r}.")
    return value


def check_classes(classes: Any) -> int:
    """The number of output classes (maps): a positive int."""
    return check_positive_int("classes", classes)


def check_pretrained_channels(channels: Any, model: str) -> None:
    """Pretrained encoder weights need 3 input channels (those of their first convolution)."""
    if channels != 3:
        raise ValueError(
            f"{model}: pretrained encoder weights need 3 input channels (their first "
            f"convolution's), got {channels} channels; use encoder_weights=None."
        )


def check_input_shape(
    input_shape: Sequence[int], model: str, *, multiple: int = 1, minimum_side: int = 1, pretrained: bool = False
) -> tuple[int, int, int]:
    """Validates ``(height, width, channels)`` and returns it as a tuple of ints.

    Args:
        input_shape: the builder's argument.
        model: the model's name, for the messages.
        multiple: height and width must be divisible by it (encoder-decoder models
            halve the resolution ``log2(multiple)`` times and meet their skips again).
        minimum_side: height and width must be at least this (pooling pyramids,
            stride-32 backbones).
        pretrained: pretrained encoder weights are loaded: 3 channels are needed.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(
            f"{model}: input_shape must be (height, width, channels) as positive ints, got {input_shape!r}."
        )
    height, width, channels = shape
    if min(height, width) < minimum_side:
        raise ValueError(
            f"{model}: input_shape {shape} is too small; height and width must be at least {minimum_side}."
        )
    if height % multiple or width % multiple:
        lower = (max(height // multiple, 1) * multiple, max(width // multiple, 1) * multiple)
        raise ValueError(
            f"{model}: input height and width must be divisible by {multiple}, got "
            f"{height}x{width}; resize to e.g. {lower[0]}x{lower[1]}."
        )
    if pretrained:
        check_pretrained_channels(channels, model)
    return shape


def check_encoder_weights(
    encoder_weights: Any, model: str, *, pretrained: bool = True, argument: str = "encoder_weights"
) -> str | None:
    """``None``, ``"imagenet"`` or an existing file's path as a string.

    Args:
        encoder_weights: the builder's argument: ``None`` (random initialisation),
            ``"imagenet"`` (keras.applications downloads them) or the path to the
            encoder's keras.applications no-top weights file (offline machines).
        model: the model's name, for the messages.
        pretrained: the model has an encoder with ImageNet weights; ``False`` (U-Nets,
            14-layer ResNets) accepts ``None`` only.
        argument: the argument's name in the messages (a command-line flag's).
    """
    if encoder_weights is None:
        return None
    if not pretrained:
        raise ValueError(
            f"{model} has no pretrained encoder (no ImageNet weights): {argument} must be "
            f"None, got {_shown(encoder_weights)}."
        )
    if encoder_weights == IMAGENET:
        return IMAGENET
    if isinstance(encoder_weights, (str, os.PathLike)):
        path = Path(encoder_weights)
        if path.is_file():
            return str(path)
        raise ValueError(
            f"{argument}={str(encoder_weights)!r}: no such file. {argument} must be None, "
            f"'imagenet' or the path to an existing keras.applications no-top weights file "
            f"(of the encoder of {model})."
        )
    raise ValueError(f"{argument} must be None, 'imagenet' or the path to a weights file, got {encoder_weights!r}.")


def check_return_attention(return_attention: Any, model: str, *, available: bool) -> bool:
    """``return_attention`` as a bool; ``True`` only for a model with attention maps."""
    check_bool("return_attention", return_attention)
    if return_attention and not available:
        raise ValueError(f"{model} has no attention maps: return_attention must be False, got True.")
    return return_attention


def check_feature_map(layer: str, input_shape: Sequence, *, known_channels: bool = True) -> tuple:
    """A layer's input ``(batch, height, width, channels)``; with ``known_channels`` the
    channels must be static (the layer's weights depend on them)."""
    shape = tuple(input_shape)
    if len(shape) != 4 or (known_channels and shape[-1] is None):
        known = " with known channels" if known_channels else ""
        raise ValueError(f"{layer} expects (batch, height, width, channels) inputs{known}, got {shape}.")
    return shape


def _shown(value: Any) -> str:
    return repr(str(value)) if isinstance(value, os.PathLike) else repr(value)
