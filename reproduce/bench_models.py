"""What the benchmark runs, read from the registry and the recipes.

* The models are :func:`zoo.list_models` (:class:`zoo.registry.ModelEntry`):
  ``--size paper`` builds ``entry.build()`` (the paper's model), ``--size small``
  ``entry.build(small=True)`` (its small test configuration, same architecture).
* A training step is the entry's recipe (:class:`zoo.recipe.TrainingRecipe`): its
  loss, loss weights and a fresh optimiser (``recipe.compile``), on random targets of
  its kinds (``recipe.random_targets``). Recipes with a target per output (AttnMel-CNN's
  regularised attention maps) train the model built with ``return_attention=True``.
* A paper's input pipeline (:func:`pipeline_for`) is the entry's ``input_spec`` at the
  model's input size (:func:`zoo.predict.spec_for_model`) and its recipe's ``augmentation``; the targets follow the main
  output: one label for ``"probabilities"``, one binary mask per channel of a
  ``"binary"`` mask, one class-index mask for a ``"one_hot"`` mask. The only paper
  data neither says is ARL-CNN's 60 patches per image (:data:`EXPANSIONS`).

``reproduce/benchmark.py`` runs any list of entries; tests pass entries of toy models.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

import keras
import numpy as np

from data_tools.augment import Augmentation
from data_tools.preprocess import InputSpec
from zoo.arl_cnn.patches import ARL_TRAIN_PATCHES, arl_training_patches
from zoo.predict import spec_for_model
from zoo.registry import PAPERS, ModelEntry, list_models

if (
    TYPE_CHECKING
):  # the tf.data pipelines need TensorFlow; the models and steps here do not (reproduce/jax_benchmark.py)
    from data_tools.pipeline import Expand

SIZES: tuple[str, ...] = ("paper", "small")

# Superpixel label maps for models with a second integer input (SANet): a grid of
# square cells with consecutive ids, at most this many per image.
MAX_GRID_SEGMENTS = 256


def trains_with_attention(entry: ModelEntry) -> bool:
    """Whether the recipe has a target per output, so the trained model returns its maps."""
    return not isinstance(entry.recipe.targets, str)


def build_model(entry: ModelEntry, size: str) -> keras.Model:
    """The model the benchmark trains: at the paper's ``size`` or ``"small"``, randomly
    initialised, with its attention maps where the recipe trains them."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}.")
    return entry.build(small=size == "small", **({"return_attention": True} if trains_with_attention(entry) else {}))


def select_models(
    entries: Sequence[ModelEntry] | None = None, names: Sequence[str] | None = None, papers: Sequence[str] | None = None
) -> list[ModelEntry]:
    """The ``entries`` (default: every registered model) named in ``names`` (in that
    order) and/or of ``papers``; None selects everything. Raises ValueError naming
    any unknown name or paper."""
    entries = list_models() if entries is None else list(entries)
    by_name = {entry.name: entry for entry in entries}
    if len(by_name) != len(entries):
        raise ValueError("benchmark: model names must be unique.")
    unknown = [name for name in names or () if name not in by_name]
    if unknown:
        raise ValueError(f"--models: unknown model(s) {unknown}; known: {sorted(by_name)}.")
    unknown = [paper for paper in papers or () if paper not in PAPERS]
    if unknown:
        raise ValueError(f"--papers: unknown paper(s) {unknown}; known: {list(PAPERS)}.")
    selected = [by_name[name] for name in names] if names else entries
    return [entry for entry in selected if not papers or entry.paper in papers]


def random_inputs(model: keras.Model, batch_size: int, rng: np.random.Generator) -> Any:
    """Inputs for every model input: float images uniform in [0, 1); integer inputs
    (superpixel label maps) a grid of at most :data:`MAX_GRID_SEGMENTS` consecutive
    ids. Returns one array, or a list for multi-input models."""
    arrays = [_random_input(tensor, batch_size, rng) for tensor in model.inputs]
    return arrays[0] if len(arrays) == 1 else arrays


def _random_input(tensor: Any, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    shape = (batch_size, *tensor.shape[1:])
    if any(dim is None for dim in shape):
        raise ValueError(f"input {tensor.name!r} has an unknown dimension {shape}; the benchmark needs static shapes.")
    dtype = np.dtype(keras.backend.standardize_dtype(tensor.dtype))
    if np.issubdtype(dtype, np.floating):
        return rng.random(shape).astype(dtype)
    height, width = shape[1], shape[2]
    cells = math.isqrt(MAX_GRID_SEGMENTS)
    rows = np.minimum(np.arange(height) * cells // height, cells - 1)
    cols = np.minimum(np.arange(width) * cells // width, cells - 1)
    grid = (rows[:, None] * cells + cols[None, :]).astype(dtype)
    return np.broadcast_to(grid.reshape((1, height, width) + (1,) * (len(shape) - 3)), shape).copy()


# --------------------------------------------------------------------- pipelines


@dataclasses.dataclass(frozen=True)
class Expansion:
    """A paper's per-image hook of ``classification_dataset``: ``make(input size)`` and
    the samples it cuts from each image."""

    make: Callable[[tuple[int, int]], Expand]
    samples_per_image: int
    description: str


EXPANSIONS: Mapping[str, Expansion] = {
    "arl_cnn": Expansion(
        lambda size: functools.partial(arl_training_patches, size=size),
        ARL_TRAIN_PATCHES,
        f"{ARL_TRAIN_PATCHES} multi-scale central patches per image (zoo.arl_cnn.patches)",
    ),
}
"""Papers whose training images become several samples (the rest: one each)."""


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A paper's training preprocessing for one model input size, measured on generated JPEGs.

    Attributes:
        spec: the entry's InputSpec at the model's input size.
        augment: the recipe's augmentation.
        masks: mask names for segmentation (empty: classification with one label).
        mask_mode: ``"binary"`` masks (0/255 files) or one ``"index"`` mask.
        classes: the classes of an ``"index"`` mask.
        expansion: the per-image hook, or None.
        description: the steps, for reports.
    """

    spec: InputSpec
    augment: Augmentation | None
    masks: tuple[str, ...] = ()
    mask_mode: Literal["binary", "index"] = "binary"
    classes: int = 0
    expansion: Expansion | None = None
    description: str = ""

    @property
    def samples_per_image(self) -> int:
        return 1 if self.expansion is None else self.expansion.samples_per_image


def _changed_fields(value: Any) -> str:
    """The fields of a dataclass that differ from their defaults, as ``name=value``."""
    default = type(value)()
    changed = [
        (field.name, getattr(value, field.name))
        for field in dataclasses.fields(value)
        if getattr(value, field.name) != getattr(default, field.name)
    ]
    return ", ".join(name if item is True else f"{name}={item}" for name, item in changed)


def _geometry(spec: InputSpec) -> list[str]:
    """The spec's fitting and resizing steps, in order."""
    size = "x".join(map(str, spec.image_size))
    fit = {
        "stretch": [],
        "pad": ["grey padding to a square"],
        "crop": [f"centre square of {spec.crop_fraction} x the shorter side"],
    }[spec.fit]
    if spec.pre_crop_size is None:
        return [*fit, f"resize {size}"]
    return [*fit, f"resize {'x'.join(map(str, spec.pre_crop_size))}", f"crop {size}"]


def pipeline_for(entry: ModelEntry, model: keras.Model) -> Pipeline:
    """The training pipeline of ``entry``'s paper for ``model`` (built from the entry)."""
    spec = spec_for_model(entry.input_spec, model.inputs[0].shape[1:3])
    augment = entry.recipe.augmentation
    steps = [", ".join(["JPEG decode", *_geometry(spec), f"{spec.colour} {spec.scale}"])]
    expansion = EXPANSIONS.get(entry.paper)
    if expansion is not None:
        steps.append(expansion.description)
    steps.append(f"augmentation: {_changed_fields(augment) or 'none'}" if augment else "no augmentation")
    structure = model.output
    main = structure[entry.output] if isinstance(structure, Mapping) else structure
    kind = entry.recipe.targets if isinstance(entry.recipe.targets, str) else entry.recipe.targets[entry.output]
    if entry.output == "probabilities":
        layout = {}
    elif kind == "binary":
        layout = {"masks": tuple(f"channel{index}" for index in range(main.shape[-1]))}
        steps.append(f"{main.shape[-1]} binary mask(s)")
    else:
        layout = {"masks": ("classes",), "mask_mode": "index", "classes": main.shape[-1]}
        steps.append(f"one class-index mask ({main.shape[-1]} classes)")
    if entry.extra_inputs:
        steps.append(f"{', '.join(entry.extra_inputs)} precomputed offline, not included")
    return Pipeline(spec, augment, expansion=expansion, description="; ".join(steps), **layout)
