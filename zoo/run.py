"""Run folders: a trained model that travels in one piece, from training to use.

Training (``python -m zoo.train``, :func:`zoo.fit` callers, every table script's
``rows/<row>/``) leaves a run folder::

    RUN/
      run.json           the card (zoo.common.run_card.RunCard): registry name, every
                         builder argument, input spec, recipe and overrides, data,
                         scores, training, software, commit
      model.weights.h5   the weights that were scored
      ...                training's own files: train_log.csv, train_config.json,
                         runtime.json (while training runs, also its checkpoint
                         best.weights.h5 and backup/)

and every tool takes it: :func:`load_run` and ``entry.build(weights=RUN)`` in Python,
``--run RUN`` on the command lines.

Why this format (after keras-hub presets, a config, a weights file and metadata, and
MONAI bundles, whose ``configs/metadata.json`` describes the data and the scores): the
model is rebuilt by its builder from the recorded arguments, not deserialised from a
stored graph, so a run stays loadable when a layer's code improves and needs no
``custom_objects``; the weights are a plain Keras ``.weights.h5`` file that
``model.load_weights`` reads; the card is JSON a person can read and any tool can parse.
A ``.keras`` file would hold the graph but not the InputSpec, the recipe or the data.

**The weights are the model that was scored.** :func:`save_run` is called with the
model as it was evaluated (after a best-epoch reload, a batch-norm recalibration or
anything else done after training) and writes exactly its weights; the tables test
that a reloaded run scores the table's numbers. It then removes training's
checkpoint (``best.weights.h5``) from a finished run: one folder, one set of weights,
so no one loads the unrecalibrated ones by mistake.

**A model that is not the run's is an error.** The card records the default model's
input shapes and layers; weights of a run loaded into another build (another input
size, other variants) stop with a :class:`~zoo.common.run_card.RunMismatchError`
naming both, whether they are loaded through the run folder or as a bare file.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

import keras
import numpy as np

from data_tools.atomic import atomic_path, atomic_write_text
from data_tools.preprocess import InputSpec
from zoo.common.run_card import (
    BACKUP_DIR,
    RUN_FILE,
    TRAINING_CHECKPOINT,
    WEIGHTS_FILE,
    RunCard,
    RunError,
    layer_counts,
    read_card,
    resolved_arguments,
    shapes_of,
)
from zoo.common.weights import first_non_finite
from zoo.recipe import TrainingRecipe
from zoo.registry import ModelEntry, get_model


@dataclasses.dataclass(frozen=True)
class Run:
    """A loaded run: its folder, card, registry entry, model and input spec.

    Attributes:
        folder: the run folder.
        card: its ``run.json``.
        entry: the registered model it is.
        model: the trained model (with its attention maps if loaded with
            ``attention=True``).
        input_spec: the spec the model was trained and scored with.
    """

    folder: Path
    card: RunCard
    entry: ModelEntry
    model: keras.Model
    input_spec: InputSpec


def load_run(folder: str | os.PathLike, *, attention: bool = False) -> Run:
    """The trained model of run ``folder``, built from its card with its weights.

    Args:
        folder: a run folder (holding ``run.json`` and ``model.weights.h5``).
        attention: build an attention model to also return its maps.

    Raises:
        zoo.common.run_card.RunError: not a run folder, an unknown model, or weights
            that do not fit the rebuilt model (each message names the file).
    """
    folder = Path(folder)
    card = read_card(folder)
    try:
        entry = get_model(card.model)
    except KeyError as error:
        raise RunError(f"{folder / RUN_FILE}: {error.args[0]}") from None
    model = entry.build(weights=folder, **({"return_attention": True} if attention and entry.attention else {}))
    return Run(folder, card, entry, model, InputSpec.from_config(card.input_spec))


def save_run(
    folder: str | os.PathLike,
    model: keras.Model,
    *,
    entry: ModelEntry | str,
    builder_args: Mapping[str, Any],
    input_spec: InputSpec,
    recipe: TrainingRecipe | None = None,
    training: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    scores: Mapping[str, Any] | None = None,
) -> Path:
    """Writes ``model``'s weights and its card into ``folder``: a run folder.

    Args:
        folder: created if needed; training's files may be there already.
        model: the model exactly as it was (or will be) scored. It may output its
            attention maps or not; the weights are written in the layer order of
            the builder's default outputs (:mod:`zoo.common.weights`).
        entry: the registered model (or its name).
        builder_args: the arguments ``model`` was built with beyond the entry's
            defaults (``entry.kwargs``, and ``entry.test_kwargs`` for a small model,
            are *not* added: pass what the builder got); ``weights`` and
            ``return_attention`` are left out.
        input_spec: the spec it was trained and scored with.
        recipe: the recipe it was trained with (the registered one, or one from
            :meth:`~zoo.recipe.TrainingRecipe.with_overrides`); the card records it
            and its differences from the registered recipe.
        training, data, scores: JSON-able records for the card.

    Returns:
        The folder.

    Raises:
        ValueError: non-finite weights (nothing is written), or builder arguments
            that do not build ``model``'s network.
    """
    entry = get_model(entry) if isinstance(entry, str) else entry
    folder = Path(folder)
    arguments = resolved_arguments(entry.builder, builder_args)
    default = _default_outputs(model, entry)
    _check_finite(default, folder)
    inputs, outputs = shapes_of(default)
    card = RunCard(
        model=entry.name,
        builder=entry.builder_name,
        builder_args=arguments,
        input_spec=input_spec.to_config(),
        inputs=inputs,
        outputs=outputs,
        layers=layer_counts(default),
        recipe={} if recipe is None else recipe.describe(),
        overrides={} if recipe is None else recipe.overrides_from(entry.recipe),
        training=dict(training or {}),
        data=dict(data or {}),
        scores=dict(scores or {}),
        software=software_versions(),
        commit=git_commit(),
        created=now(),
    )
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS_FILE, suffix=".weights.h5") as temporary:
        default.save_weights(temporary)
    atomic_write_text(folder / RUN_FILE, card.to_json())
    if not (folder / BACKUP_DIR).is_dir():  # training finished: its checkpoint is superseded
        (folder / TRAINING_CHECKPOINT).unlink(missing_ok=True)
    return folder


def _default_outputs(model: keras.Model, entry: ModelEntry) -> keras.Model:
    """``model`` with the outputs its builder gives by default (what checkpoints are
    saved and loaded with), sharing its layers."""
    by_default = inspect.signature(entry.builder).parameters.get("return_attention")
    maps_by_default = by_default is not None and by_default.default is True
    outputs_maps = isinstance(model.output, Mapping)
    if outputs_maps == maps_by_default:
        return model
    if outputs_maps:  # trained with its maps, saved without
        return keras.Model(model.inputs, model.output[entry.output], name=model.name)
    raise ValueError(
        f"model {model.name!r}: its builder returns its attention maps by default; save the model "
        f"built with return_attention=True (the same weights, the default outputs)."
    )


def _check_finite(model: keras.Model, folder: Path) -> None:
    found = first_non_finite(model.weights)
    if found is not None:
        raise ValueError(
            f"{folder}: not saved: the weights {found[0].path!r} of model {model.name!r} hold NaN or infinite values."
        )


def software_versions() -> dict[str, Any]:
    """Python, Keras and its backend, numpy, and TensorFlow where it is loaded."""
    versions = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:
        versions["tensorflow"] = tensorflow.__version__
    return versions


def git_commit() -> str | None:
    """The commit of the zoo's checkout, ``+dirty`` with uncommitted changes to tracked
    files; ``None`` outside a git checkout (an installed package)."""
    repo = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
