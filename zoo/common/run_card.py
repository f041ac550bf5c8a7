"""The model card of a run folder (``run.json``): what a trained model is.

A run folder is what training leaves (:mod:`zoo.run` writes and loads it)::

    RUN/
      run.json           this card
      model.weights.h5   the weights that were scored, in the layer order of the
                         builder's default outputs (zoo.common.weights)
      ...                training's own files (train_log.csv, train_config.json, ...;
                         while unfinished, its checkpoint best.weights.h5 and backup/)

The card holds what a loader needs to rebuild the model (registry name, every
builder argument) and what a reader wants to know (input spec, recipe and the
overrides, data, scores, software, commit). This module only reads, checks and
merges cards; it imports no model code, so :mod:`zoo.common.weights` can check
any weights file that sits in a run folder against its card before loading it.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import keras

RUN_FILE = "run.json"
WEIGHTS_FILE = "model.weights.h5"
TRAINING_CHECKPOINT = "best.weights.h5"
"""zoo.fit's checkpoint of the kept epoch; a finished run keeps only ``WEIGHTS_FILE``."""
BACKUP_DIR = "backup"
"""zoo.fit's training state while a run is unfinished."""
FORMAT = "medattn-zoo-run"
FORMAT_VERSION = 1

#: Builder arguments a run does not fix: where the weights come from and which
#: outputs are asked for.
FREE_ARGUMENTS = frozenset({"weights", "return_attention"})


class RunError(ValueError):
    """A run folder that cannot be read, or a model that does not fit its run."""


class RunMismatchError(RunError):
    """Weights of a run loaded into a model that is not the run's model.

    Attributes:
        layers_differ: the network differs (not only the input shapes).
    """

    def __init__(self, message: str, *, layers_differ: bool):
        super().__init__(message)
        self.layers_differ = layers_differ


@dataclasses.dataclass(frozen=True)
class RunCard:
    """``run.json``.

    Attributes:
        model: the registry name.
        builder: ``module:function`` of the builder (for readers).
        builder_args: every argument of the builder but ``weights`` and
            ``return_attention``, defaults included (tuples stored as lists).
        input_spec: :meth:`data_tools.preprocess.InputSpec.to_config` of the spec
            the model was trained and scored with.
        inputs: the default model's input shapes (``None`` for the batch).
        outputs: the default model's output shapes by name.
        layers: how many layers of each class the default model has (a network
            built another way, with the same weights, shows here).
        recipe: the recipe that trained it (the registered one with ``overrides``
            applied), as :meth:`zoo.recipe.TrainingRecipe.describe` gives it.
        overrides: the recipe fields that differ from the registered recipe.
        training: how training went and what happened to the weights after it
            (epochs run, the kept epoch, batch-norm recalibration, ...).
        data: what it was trained on (layout, folder, split, counts).
        scores: what it scored, on what.
        software: versions, backend, devices.
        commit: the git commit of the code (``+dirty`` with local changes).
        created: ISO 8601 time of writing.
    """

    model: str
    builder: str
    builder_args: Mapping[str, Any]
    input_spec: Mapping[str, Any]
    inputs: list
    outputs: Mapping[str, list]
    layers: Mapping[str, int]
    recipe: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    training: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    scores: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    software: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    commit: str | None = None
    created: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {"format": FORMAT, "format_version": FORMAT_VERSION, **dataclasses.asdict(self)},
            indent=2,
            default=_json_default,
        )

    @classmethod
    def from_json(cls, text: str, source: str = RUN_FILE) -> "RunCard":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise RunError(f"{source}: not JSON ({error}).") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RunError(f'{source}: not a run card of this zoo (no "format": "{FORMAT}").')
        if data.get("format_version") != FORMAT_VERSION:
            raise RunError(
                f"{source}: run card format version {data.get('format_version')!r}; this zoo reads "
                f"version {FORMAT_VERSION}."
            )
        fields = {field.name for field in dataclasses.fields(cls)}
        required = {
            field.name
            for field in dataclasses.fields(cls)
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise RunError(f"{source}: the run card lacks {missing}.")
        return cls(**{key: value for key, value in data.items() if key in fields})

    def build_arguments(self) -> dict[str, Any]:
        """The builder arguments as the builder takes them (lists back to tuples)."""
        return {key: tuple(value) if isinstance(value, list) else value for key, value in self.builder_args.items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, (os.PathLike,)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be written to a run card.")


def is_run_folder(path: Any) -> bool:
    """``path`` is a folder holding a ``run.json``."""
    return isinstance(path, (str, os.PathLike)) and (Path(path) / RUN_FILE).is_file()


def read_card(folder: str | os.PathLike) -> RunCard:
    """The card of run folder ``folder``; :class:`RunError` naming the file if it is
    missing or malformed."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise RunError(
            f"{folder}: not a run folder (no {RUN_FILE}); a run folder is what python -m zoo.train "
            f"and the table scripts' rows/<row>/ leave."
        )
    return RunCard.from_json(path.read_text(encoding="utf-8"), str(path))


def card_beside(weights: str | os.PathLike) -> RunCard | None:
    """The card of the run folder a weights file lies in, or ``None``."""
    folder = Path(weights).parent
    return read_card(folder) if (folder / RUN_FILE).is_file() else None


def resolved_arguments(builder: Callable[..., Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Every argument of ``builder`` with ``arguments`` applied over its defaults,
    except :data:`FREE_ARGUMENTS`: what a run card records. A ``TypeError`` names an
    argument the builder does not take."""
    signature = inspect.signature(builder)
    unknown = sorted(set(arguments) - set(signature.parameters))
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        raise TypeError(f"{builder.__module__}.{builder.__qualname__} takes no argument(s) {unknown}.")
    resolved = {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.default is not inspect.Parameter.empty and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }
    resolved.update(arguments)
    return {key: _jsonable(key, value) for key, value in resolved.items() if key not in FREE_ARGUMENTS}


def _jsonable(key: str, value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(key, item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    raise TypeError(f"builder argument {key}={value!r} cannot be recorded in a run card (JSON values only).")


def merge_arguments(card: RunCard, folder: str | os.PathLike, requested: Mapping[str, Any]) -> dict[str, Any]:
    """The run's builder arguments, with ``requested`` (the caller's) allowed only
    where they agree with the run (or are :data:`FREE_ARGUMENTS`).

    Raises:
        RunError: a requested argument differs from the run's, naming both.
    """
    recorded = card.builder_args
    conflicts = []
    for key, value in requested.items():
        if key in FREE_ARGUMENTS or key == "encoder_weights":
            continue  # the checkpoint overwrites the encoder's weights
        mine = _jsonable(key, value)
        if key not in recorded:
            conflicts.append(f"{key}={value!r} (the run's builder takes no such argument)")
        elif mine != recorded[key]:
            conflicts.append(f"{key}={value!r} (the run was trained with {recorded[key]!r})")
    if conflicts:
        raise RunError(
            f"{folder}: model {card.model!r} was trained with other builder arguments than asked for: "
            f"{'; '.join(conflicts)}. Leave them out to get the run's model."
        )
    return {**card.build_arguments(), **{k: v for k, v in requested.items() if k in FREE_ARGUMENTS}}


def shapes_of(model: keras.Model) -> tuple[list, dict[str, list]]:
    """``(input shapes, {output name: shape})`` of ``model``, as JSON lists."""
    inputs = [list(tensor.shape) for tensor in model.inputs]
    outputs = (
        model.output
        if isinstance(model.output, Mapping)
        else dict(zip(model.output_names, keras.tree.flatten(model.output), strict=True))
    )
    return inputs, {name: list(tensor.shape) for name, tensor in outputs.items()}


def layer_counts(model: keras.Model) -> dict[str, int]:
    """Layers per class of ``model`` (input layers and the float32 output casts of
    mixed precision left out)."""
    counts = collections.Counter(
        type(layer).__name__
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer) and not layer.name.endswith("_float32")
    )
    return dict(sorted(counts.items()))


def check_against_card(model: keras.Model, card: RunCard, weights: str | os.PathLike) -> None:
    """Raises :class:`RunError` when ``model`` (built to receive ``weights``, a file of
    the run) has other input shapes or another network than the run's model: a
    fully convolutional network built at 256x256 takes a 64x64 run's weights
    without complaint and predicts nonsense."""
    inputs, _ = shapes_of(model)
    problems = []
    if inputs != card.inputs:
        problems.append(f"its inputs are {_shapes(inputs)}, the run's model's are {_shapes(card.inputs)}")
    counts = layer_counts(model)
    if counts != dict(card.layers):
        differ = sorted(set(counts) | set(card.layers))
        diff = [
            f"{name} {card.layers.get(name, 0)} -> {counts.get(name, 0)}"
            for name in differ
            if counts.get(name, 0) != card.layers.get(name, 0)
        ]
        problems.append(f"its layers differ from the run's model's ({', '.join(diff[:4])})")
    if problems:
        raise RunMismatchError(
            f"{weights}: these weights are the run {Path(weights).parent}'s model {card.model!r} "
            f"(built with {_arguments(card)}), but the model they are loaded into ({model.name!r}) does not "
            f"match it: {'; '.join(problems)}. Load the run folder (zoo.load_run, --run) to get its model.",
            layers_differ=counts != dict(card.layers),
        )


def _shapes(shapes: list) -> str:
    return ", ".join("x".join("?" if d is None else str(d) for d in shape[1:]) for shape in shapes)


def _arguments(card: RunCard) -> str:
    shown = {key: value for key, value in card.builder_args.items() if key in ("input_shape", "classes")}
    return ", ".join(f"{key}={value}" for key, value in shown.items()) or "its recorded arguments"


def build_from_card(
    builder: Callable[..., keras.Model], folder: str | os.PathLike, requested: Mapping[str, Any]
) -> keras.Model:
    """The run's model built by ``builder`` with the run's arguments (``requested``
    may add :data:`FREE_ARGUMENTS` and must agree with the rest) and its weights.

    The encoder is built without pretrained weights (the run's weights replace them),
    unless the network depends on whether it had pretrained weights (keras.applications'
    EfficientNet adds a layer for pretrained weights only, ``"imagenet"`` or a file): then it is built as
    the run was, with the recorded ``encoder_weights``.
    """
    card = read_card(folder)
    weights = Path(folder) / WEIGHTS_FILE
    if not weights.is_file():
        raise RunError(f"{folder}: the run folder has no {WEIGHTS_FILE} (its training did not finish?).")
    arguments = {**merge_arguments(card, folder, requested), "weights": weights}
    recorded_encoder = arguments.get("encoder_weights")
    if recorded_encoder is None:
        return builder(**arguments)
    try:
        return builder(**{**arguments, "encoder_weights": None})
    except RunMismatchError as error:
        if not error.layers_differ:
            raise
    return builder(**arguments)
