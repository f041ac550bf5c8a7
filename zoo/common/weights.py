"""The builders' ``weights=`` argument: a checkpoint of the whole model, loaded once built.

A checkpoint is a Keras ``.weights.h5`` file (``model.save_weights``) or a ``.keras``
file (``model.save``). Keras stores each layer's variables under
``layers/<snake_case class name>[_<n>]`` (the n-th layer of that class in
``model.layers``), so a checkpoint of another model either fails deep inside Keras
("A total of N objects could not be loaded", a KeyError) or half-loads with a
warning. :func:`load_checkpoint` compares the file's variables with the model's
first and raises a :class:`CheckpointMismatchError` naming the file, the model and the
first layer that does not match; its attributes (``path``, ``model``, ``detail``,
``parameters``) let a caller that knows more (:mod:`zoo.serving`: the registry name,
the builder arguments) say so without reading the message.

Those keys follow the order of ``model.layers``, which Keras derives from the model's
outputs: the same layers in a model that also outputs attention maps can come in
another order (DANet's position and channel branches swap), and a checkpoint would
load into the wrong layers without any error. So every builder ends with
:func:`assemble_model`, which loads a checkpoint into the layer order of the
builder's *default* outputs (what the recipes train and save) whatever outputs were
asked for; a ``.keras`` file says which outputs it was saved with, and is loaded in
that order.

The encoder's pretrained weights (``encoder_weights=``: ImageNet or a keras.applications
file) are another argument: :func:`zoo.common.validation.check_encoder_weights`.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

import h5py
import keras
import numpy as np
from keras.src.utils.naming import to_snake_case  # the names Keras' weights files use

from zoo.common.run_card import card_beside, check_against_card
from zoo.common.validation import check_classes, check_encoder_weights, check_input_shape, check_return_attention

CHECKPOINT_SUFFIXES: tuple[str, ...] = (".weights.h5", ".keras")
_KERAS_WEIGHTS_MEMBER = "model.weights.h5"  # the weights inside a .keras archive
_KERAS_CONFIG_MEMBER = "config.json"


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the model it is loaded into: not a Keras
    checkpoint, or one of another model (or of this model built otherwise).

    Callers that know more (the registry name, the builder arguments) re-raise it with
    their own message from these attributes; none of them parses the text.

    Attributes:
        path: the checkpoint file.
        model: the name of the model it was loaded into.
        detail: what does not fit, as a clause (``"layer 'head' (Conv2D) has weights of
            shapes [...], the file's are [...]"``, ``"it is not a Keras checkpoint
            (...)"``).
        parameters: the model's parameter count, where the layers were compared.
        argument: the builder argument that named the file (``"weights"``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        model: str,
        detail: str,
        *,
        parameters: int | None = None,
        argument: str = "weights",
        message: str | None = None,
    ):
        self.path, self.model, self.detail = Path(path), model, detail
        self.parameters, self.argument = parameters, argument
        super().__init__(message or f"{argument}={str(path)!r}: it does not fit model {model!r}: {detail}.")


def assemble_model(
    inputs: Any,
    main_name: str,
    main: keras.KerasTensor,
    maps: Mapping[str, keras.KerasTensor],
    *,
    return_attention: bool,
    weights: Any,
    name: str,
    attention_by_default: bool = False,
    initialise: Callable[[keras.Model], None] | None = None,
) -> keras.Model:
    """The builders' last step: the model, with the checkpoint ``weights`` loaded.

    Args:
        inputs: the model's input(s).
        main_name: the main output's key (``"mask"`` or ``"probabilities"``).
        main: the main output.
        maps: the attention maps by name (``{}`` for models without attention); a map
            computed in another dtype (mixed precision) is output in float32, as the
            main output (layer ``{name}_float32``).
        return_attention: output ``{main_name: main, **maps}`` instead of ``main``.
        weights: ``None`` or a checkpoint (:func:`load_checkpoint`), loaded in the
            layer order of the default outputs.
        name: the model's name.
        attention_by_default: the builder returns its maps by default (AttnMel-CNN,
            whose loss regularises them).
        initialise: sets initial weights before the checkpoint is loaded (the
            encoder's pretrained weights, copied by layer name).
    """
    maps = {key: _float32(tensor, f"{key}_float32") for key, tensor in maps.items()}

    def model_with(attention: bool) -> keras.Model:
        return keras.Model(inputs, {main_name: main, **maps} if attention else main, name=name)

    default = model_with(attention_by_default)
    if initialise is not None:
        initialise(default)
    load_checkpoint(default, weights)
    return default if return_attention == attention_by_default else model_with(return_attention)


def check_checkpoint(weights: Any, model: str, *, argument: str = "weights") -> Path | None:
    """``None`` or the path of an existing ``.weights.h5``/``.keras`` file; a ValueError
    naming ``argument``, the file and ``model`` otherwise."""
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"{argument} must be None or the path to a .weights.h5 or .keras checkpoint of "
            f"model {model!r}, got {weights!r}."
        )
    path = Path(weights)
    if not path.name.endswith(CHECKPOINT_SUFFIXES):
        raise ValueError(
            f"{argument}={str(path)!r}: a checkpoint of model {model!r} must be a Keras "
            f".weights.h5 or .keras file (the encoder's keras.applications weights go to "
            f"encoder_weights=)."
        )
    if not path.is_file():
        raise ValueError(
            f"{argument}={str(path)!r}: no such file (a .weights.h5 or .keras checkpoint of model {model!r})."
        )
    return path


def load_checkpoint(model: keras.Model, weights: Any, *, argument: str = "weights") -> None:
    """Loads the checkpoint ``weights`` (``None``: nothing) into the built ``model``.

    A file inside a run folder (beside a ``run.json``, :mod:`zoo.run`) is also checked
    against the run's card: the model must have the run's input shapes and network
    (the weights of a fully convolutional model trained at 64x64 would load into a
    256x256 one without any other complaint).

    Raises:
        ValueError: ``weights`` is no existing ``.weights.h5``/``.keras`` file.
        CheckpointMismatchError: not a Keras file, or a checkpoint of another model
            (the message names the first layer that does not match).
        zoo.common.run_card.RunMismatchError: a run's weights, and a model that is
            not the run's.
    """
    path = check_checkpoint(weights, model.name, argument=argument)
    if path is None:
        return
    card = card_beside(path)
    if card is not None:
        check_against_card(model, card, path)
    model = _as_saved(model, path, argument)
    problem = _first_mismatch(model, _stored_shapes(path, model.name, argument))
    if problem:
        parameters = model.count_params()
        raise CheckpointMismatchError(
            path,
            model.name,
            problem,
            parameters=parameters,
            argument=argument,
            message=f"{argument}={str(path)!r} is not a checkpoint of model {model.name!r} "
            f"({parameters:,} parameters): {problem}. Build the model the checkpoint was "
            f"saved from (the same builder and arguments, e.g. classes).",
        )
    try:
        model.load_weights(path)
    except Exception as error:  # what the comparison cannot see: re-raise with the file and model
        detail = f"loading it failed: {type(error).__name__}: {' '.join(str(error).split())[:400]}"
        raise CheckpointMismatchError(
            path,
            model.name,
            detail,
            argument=argument,
            message=f"{argument}={str(path)!r}: loading it into model {model.name!r} failed: "
            f"{type(error).__name__}: {' '.join(str(error).split())[:400]}",
        ) from error


def first_non_finite(variables) -> tuple[Any, int, int] | None:
    """``(variable, non-finite count, size)`` of the first of ``variables`` holding NaN
    or infinite values, or ``None``: the one scan behind every refusal of broken
    weights (training, saving a run, serving)."""
    for variable in variables:
        values = keras.ops.convert_to_numpy(variable)
        finite = np.isfinite(values)
        if not finite.all():
            return variable, int(values.size - finite.sum()), int(values.size)
    return None


def _float32(tensor: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """``tensor`` itself if float32, else cast by a float32 linear activation ``name``."""
    if keras.backend.standardize_dtype(tensor.dtype) == "float32":
        return tensor
    return keras.layers.Activation("linear", dtype="float32", name=name)(tensor)


def _as_saved(model: keras.Model, path: Path, argument: str) -> keras.Model:
    """``model`` with the outputs a ``.keras`` file was saved with (its layers in the
    file's order); ``model`` itself for a ``.weights.h5`` file or the same outputs."""
    if not path.name.endswith(".keras"):
        return model
    try:
        with zipfile.ZipFile(path) as archive:
            saved_outputs = json.loads(archive.read(_KERAS_CONFIG_MEMBER))["config"]["output_layers"]
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as error:
        raise CheckpointMismatchError(
            path,
            model.name,
            f"it is not a Keras model file (saved by model.save): {type(error).__name__}: {error}",
            argument=argument,
            message=f"{argument}={str(path)!r} is not a Keras model file of model {model.name!r} "
            f"(saved by model.save): {type(error).__name__}: {error}",
        ) from None

    def tensor(entry):
        if isinstance(entry, Mapping):
            return {key: tensor(value) for key, value in entry.items()}
        if len(entry) == 3 and isinstance(entry[0], str):
            layer_name, node_index, tensor_index = entry
            names = {layer.name for layer in model.layers}
            if layer_name not in names or node_index != 0:
                detail = f"its output layer {layer_name!r} is not one of the model's"
                raise CheckpointMismatchError(
                    path,
                    model.name,
                    detail,
                    argument=argument,
                    message=f"{argument}={str(path)!r} is not a checkpoint of model {model.name!r}: {detail}.",
                )
            output = model.get_layer(layer_name).output
            return output[tensor_index] if isinstance(output, (tuple, list)) else output
        return [tensor(item) for item in entry]

    inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]
    return keras.Model(inputs, tensor(saved_outputs), name=model.name)


def layer_keys(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """``(key, layer)`` for every layer of ``model``: the group name of its variables
    under ``layers/`` in a Keras weights file."""
    used: dict[str, int] = {}
    keys = []
    for layer in model.layers:
        name = to_snake_case(type(layer).__name__)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        keys.append((name, layer))
    return keys


def _stored_shapes(path: Path, model: str, argument: str) -> dict[str, list[tuple[int, ...]]]:
    """The sorted variable shapes under each ``layers/<key>`` group of the file."""
    try:
        if path.name.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                source: Any = io.BytesIO(archive.read(_KERAS_WEIGHTS_MEMBER))
        else:
            source = path
        with h5py.File(source, "r") as file:
            groups = file.get("layers")
            if not isinstance(groups, h5py.Group):
                raise ValueError("it holds no 'layers' group")
            return {
                key: sorted(_dataset_shapes(group)) for key, group in groups.items() if isinstance(group, h5py.Group)
            }
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise CheckpointMismatchError(
            path,
            model,
            f"it is not a Keras checkpoint (saved by model.save_weights or model.save): {error}",
            argument=argument,
            message=f"{argument}={str(path)!r} is not a Keras checkpoint of model {model!r} "
            f"(saved by model.save_weights or model.save): {error}",
        ) from None


def _dataset_shapes(group: h5py.Group) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    group.visititems(lambda _, item: shapes.append(tuple(item.shape)) if isinstance(item, h5py.Dataset) else None)
    return shapes


def _first_mismatch(model: keras.Model, stored: dict[str, list[tuple[int, ...]]]) -> str | None:
    stored = dict(stored)
    for key, layer in layer_keys(model):
        expected = sorted(tuple(int(d) for d in weight.shape) for weight in layer.weights)
        found = stored.pop(key, [])
        if expected == found:
            continue
        what = f"layer {layer.name!r} ({type(layer).__name__})"
        if not found:
            return f"{what} has no weights in the file"
        if not expected:
            return f"{what} has no weights, the file has {len(found)} for it"
        return f"{what} has weights of shapes {expected}, the file's are {found}"
    extra = sorted(key for key, shapes in stored.items() if shapes)
    if extra:
        return f"the file has weights of {len(extra)} layers the model lacks, e.g. {extra[0]!r}"
    return None


def check_builder_arguments(
    model: str, input_shape, classes, weights, encoder_weights, return_attention, *, multiple: int, attention: bool
) -> tuple[tuple[int, int, int], str | None]:
    """The checks every builder over a pretrained encoder starts with: the checkpoint,
    the encoder weights, the input shape (sides divisible by ``multiple``; 3 channels
    for pretrained weights), the classes and ``return_attention`` (allowed iff the model
    has ``attention`` maps). Returns the checked input shape and encoder weights."""
    check_checkpoint(weights, model)
    encoder_weights = check_encoder_weights(encoder_weights, model)
    input_shape = check_input_shape(input_shape, model, multiple=multiple, pretrained=encoder_weights is not None)
    check_classes(classes)
    check_return_attention(return_attention, model, available=attention)
    return input_shape, encoder_weights
