"""The benchmark's table: every builder of the zoo, how to call it, how to train it.

One :class:`BenchModel` per builder says

* where the builder lives (``"zoo.common.unet:build_unet"``, resolved lazily, so
  builders that have not landed yet are reported as "not in the zoo yet" instead
  of breaking the import);
* how to call it at the paper's size (the builder's defaults, which are the
  paper's: 256x256 for AER-Net, 224x224 for ARL-CNN and AttnMel, 473x473 for
  A-PSPNet) and at a small CPU size (:data:`SMALL_INPUT`, same architecture);
* what one training step computes (:class:`TrainStep`: the paper's loss and
  optimiser, and the kind of random targets that fit the outputs);
* which paper's tf.data preprocessing feeds it (:data:`PIPELINES`).

``reproduce/benchmark.py`` runs any such table; tests pass a table of toy models.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import math
from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping, Sequence

import keras
import numpy as np

from data_tools.augment import Augmentation
from data_tools.pipeline import Expand
from zoo.arl_cnn.patches import ARL_TRAIN_PATCHES, arl_training_patches
from zoo.arl_cnn.recipe import ARL_AUGMENTATION
from zoo.attnmel.recipe import ATTNMEL_AUGMENTATION
from zoo.sanet.recipe import SANET_AUGMENTATION
from data_tools.preprocess import InputSpec
from zoo.losses import ComboLoss, DiceLoss, GlobalBalancingLoss, attnmel_losses, focal_loss

SIZES: tuple[str, ...] = ("paper", "small")
SMALL_INPUT: tuple[int, int, int] = (64, 64, 3)
"""The small CPU size: the smallest side every architecture accepts (AER-Net needs a
multiple of 64, A-PSPNet at least 41, VGG-16 a multiple of 32)."""

TargetKind = Literal["binary", "one_hot"]
TARGET_KINDS: tuple[str, ...] = ("binary", "one_hot")
Builder = Callable[..., keras.Model]

# Superpixel label maps for models with a second integer input (SANet): a grid of
# square cells with consecutive ids, at most this many per image.
MAX_GRID_SEGMENTS = 256


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """What one benchmarked training step computes.

    Attributes:
        loss: makes the loss argument of ``model.compile`` (a loss, a name, or a
            dict per output).
        optimizer: makes a fresh optimiser (the paper's kind and learning rate).
        targets: ``"binary"`` (sigmoid masks: {0, 1} per channel) or
            ``"one_hot"`` (softmax over the last axis), or such a kind per output
            name for dict-output models.
        loss_weights: per-output weights for ``model.compile``, or None.
    """

    loss: Callable[[], Any]
    optimizer: Callable[[], keras.optimizers.Optimizer]
    targets: TargetKind | Mapping[str, TargetKind]
    loss_weights: Callable[[], Mapping[str, float]] | None = None

    def __post_init__(self):
        kinds = [self.targets] if isinstance(self.targets, str) else list(self.targets.values())
        bad = [kind for kind in kinds if kind not in TARGET_KINDS]
        if bad:
            raise ValueError(f"TrainStep.targets: kinds must be in {TARGET_KINDS}, got {bad}.")

    def compile(self, model: keras.Model, jit_compile: bool) -> None:
        """``model.compile`` with this step's loss and a fresh optimiser."""
        model.compile(
            optimizer=self.optimizer(),
            loss=self.loss(),
            loss_weights=None if self.loss_weights is None else dict(self.loss_weights()),
            jit_compile=jit_compile,
        )

    def make_targets(self, model: keras.Model, batch_size: int, rng: np.random.Generator) -> Any:
        """Random targets shaped like the model's outputs for ``batch_size`` samples."""
        structure = model.output
        if isinstance(structure, Mapping):
            if isinstance(self.targets, str):
                return {name: _random_target(tensor, self.targets, batch_size, rng) for name, tensor in structure.items()}
            missing = sorted(set(structure) - set(self.targets))
            if missing:
                raise ValueError(f"TrainStep.targets names no target kind for the outputs {missing} of {model.name!r}.")
            return {name: _random_target(tensor, self.targets[name], batch_size, rng) for name, tensor in structure.items()}
        if not isinstance(self.targets, str):
            raise ValueError(f"TrainStep.targets: {model.name!r} has a single output; give one kind, not a mapping.")
        return _random_target(structure, self.targets, batch_size, rng)


def _random_target(tensor: Any, kind: TargetKind, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    shape = (batch_size, *tensor.shape[1:])
    if kind == "binary":
        return (rng.random(shape) < 0.5).astype(np.float32)
    classes = shape[-1]
    return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, shape[:-1])]


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


@dataclasses.dataclass(frozen=True)
class BenchModel:
    """One row of the benchmark table.

    Attributes:
        name: the model's name on the command line (``--models``), unique.
        paper: the paper it belongs to: a key of :data:`PIPELINES`.
        builder: ``"module:function"`` (imported when the benchmark runs) or the
            builder itself.
        train_step: loss, optimiser and targets of a training step.
        backbone: the network family the speed targets group by (``"resnet"``,
            ``"efficientnet"``, ``"vgg"``, ``"unet"``; empty: none).
        paper_kwargs: builder arguments at the paper's size (empty: the builder's
            defaults, which are the paper's).
        small_kwargs: builder arguments at the small CPU size.
    """

    name: str
    paper: str
    builder: str | Builder
    train_step: TrainStep
    backbone: str = ""
    paper_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    small_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"input_shape": SMALL_INPUT})

    @property
    def builder_name(self) -> str:
        """``module:function`` of the builder, for reports."""
        if isinstance(self.builder, str):
            return self.builder
        return f"{self.builder.__module__}:{self.builder.__qualname__}"

    def resolve(self) -> Builder | None:
        """The builder function, or None while its module or function does not exist."""
        if not isinstance(self.builder, str):
            return self.builder
        module_name, _, function_name = self.builder.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and module_name.startswith(error.name):
                return None  # the builder's own module (or its package) is missing
            raise  # the module exists but one of its imports is missing: a real error
        return getattr(module, function_name, None)

    def build(self, size: str) -> keras.Model:
        """The model at ``size`` (``"paper"`` or ``"small"``), randomly initialised."""
        if size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {size!r}.")
        builder = self.resolve()
        if builder is None:
            raise LookupError(f"{self.name}: builder {self.builder_name} is not in the zoo yet.")
        kwargs = self.paper_kwargs if size == "paper" else self.small_kwargs
        return builder(weights=None, **kwargs)


# --------------------------------------------------------------------- pipelines


@dataclasses.dataclass(frozen=True)
class PipelineRecipe:
    """A paper's training preprocessing, measured on generated JPEGs.

    Attributes:
        description: the steps, for reports.
        spec: the :class:`InputSpec` for a model input of ``(height, width)``.
        augment: the training augmentation.
        masks: mask names for segmentation (empty: classification with one label).
        mask_mode: ``"binary"`` masks (0/255 files) or one ``"index"`` mask.
        expand: the ``expand`` hook of ``classification_dataset`` for a model input of
            ``(height, width)`` (ARL-CNN: its 60 patches per image), else None.
        samples_per_image: what ``expand`` cuts from an image (ARL-CNN: 60), else 1.
    """

    description: str
    spec: Callable[[tuple[int, int]], InputSpec]
    augment: Augmentation | None = None
    masks: tuple[str, ...] = ()
    mask_mode: Literal["binary", "index"] = "binary"
    expand: Callable[[tuple[int, int]], Expand] | None = None
    samples_per_image: int = 1


def _attnmel_spec(size: tuple[int, int]) -> InputSpec:
    """AttnMel (section 3): centre crop 0.8, resize to 256/224 x the input, random crop."""
    pre_crop = tuple(round(side * 256 / 224) for side in size)
    return InputSpec(size, fit="crop", crop_fraction=0.8, pre_crop_size=pre_crop)


SANET_ATTRIBUTES = ("pigment_network", "negative_network", "streaks", "milia_like_cyst", "globules")
AERNET_FLIPS = Augmentation(horizontal_flip=True, vertical_flip=True)

PIPELINES: Mapping[str, PipelineRecipe] = MappingProxyType({
    "aernet": PipelineRecipe(
        "JPEG decode, resize, CIELAB in [0, 1] (section 3.1), flips",
        lambda size: InputSpec(size, colour="lab"), AERNET_FLIPS, masks=("lesion",)),
    "arl_cnn": PipelineRecipe(
        "JPEG decode, 60 multi-scale central patches resized to the input (IV.B), "
        "rotation +-10 deg, zoom 0.9-1.1, flips",
        lambda size: InputSpec(size), ARL_AUGMENTATION,
        expand=lambda size: functools.partial(arl_training_patches, size=size), samples_per_image=ARL_TRAIN_PATCHES),
    "attnmel": PipelineRecipe(
        "JPEG decode, centre crop 0.8, resize 256 (x input/224), random crop, rot90, flips",
        _attnmel_spec, ATTNMEL_AUGMENTATION),
    "apspnet": PipelineRecipe(
        "JPEG decode, grey padding to a square, resize (IV.A), caffe scale",
        lambda size: InputSpec(size, fit="pad", scale="caffe"), None, masks=("classes",), mask_mode="index"),
    "sanet": PipelineRecipe(
        "JPEG decode, resize, flips, rot90, contrast, CLAHE, emboss, Gaussian noise and blur "
        "(superpixel maps are precomputed offline and not included)",
        lambda size: InputSpec(size), SANET_AUGMENTATION, masks=SANET_ATTRIBUTES),
})


# --------------------------------------------------------------- training steps


def _adam(learning_rate: float) -> Callable[[], keras.optimizers.Optimizer]:
    return lambda: keras.optimizers.Adam(learning_rate)


def _sgd(learning_rate: float, momentum: float = 0.0, nesterov: bool = False) -> Callable[[], keras.optimizers.Optimizer]:
    return lambda: keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=nesterov)


def _attnmel_loss() -> dict[str, keras.losses.Loss]:
    return attnmel_losses()[0]


def _attnmel_loss_weights() -> dict[str, float]:
    return attnmel_losses()[1]


# AER-Net section 4: Adam, lr 0.001, Dice loss (eq. 1).
AERNET_STEP = TrainStep(DiceLoss, _adam(1e-3), "binary")
# ARL-CNN section IV.B: mini-batch SGD, lr 0.01, cross-entropy on the softmax.
ARL_STEP = TrainStep(lambda: "categorical_crossentropy", _sgd(1e-2), "one_hot")
# AttnMel section 3: SGD with momentum (reference code: Nesterov 0.9), lr 0.01,
# focal loss; AttnMel-CNN adds the attention Dice regularisers (eq. 5).
ATTNMEL_STEP = TrainStep(focal_loss, _sgd(1e-2, 0.9, True), "one_hot")
ATTNMEL_REGULARISED_STEP = TrainStep(
    _attnmel_loss, _sgd(1e-2, 0.9, True),
    {"probabilities": "one_hot", "attention_pool3": "binary", "attention_pool4": "binary"},
    loss_weights=_attnmel_loss_weights)
# SANet "Experiments": an Adam variant, lr 0.0001, global balancing loss (eq. 9).
SANET_STEP = TrainStep(GlobalBalancingLoss, _adam(1e-4), "binary")
# A-PSPNet section IV.B: Adam, lr 0.001, Combo loss (eq. 6) on one-hot masks.
APSPNET_STEP = TrainStep(ComboLoss, _adam(1e-3), "one_hot")


def _entries(paper: str, step: TrainStep, builders: Sequence[tuple[str, str, str]]) -> list[BenchModel]:
    """One entry per ``(name, backbone, builder)``."""
    return [BenchModel(name, paper, builder, step, backbone) for name, backbone, builder in builders]


ZOO_MODELS: tuple[BenchModel, ...] = (
    *_entries("aernet", AERNET_STEP, [
        ("unet", "unet", "zoo.common.unet:build_unet"),
        ("attention_unet", "unet", "zoo.aernet.models:build_attention_unet"),
        ("attention_residual_unet", "unet", "zoo.aernet.models:build_attention_residual_unet"),
        ("aernet", "efficientnet", "zoo.aernet.models:build_aernet"),
    ]),
    *_entries("arl_cnn", ARL_STEP, [
        ("resnet14", "resnet", "zoo.arl_cnn.models:build_resnet14"),
        ("arl_cnn14", "resnet", "zoo.arl_cnn.models:build_arl_cnn14"),
        ("senet14", "resnet", "zoo.arl_cnn.models:build_senet14"),
        ("ran14", "resnet", "zoo.arl_cnn.models:build_ran14"),
        ("resnet50", "resnet", "zoo.arl_cnn.models:build_resnet50"),
        ("arl_cnn50", "resnet", "zoo.arl_cnn.models:build_arl_cnn50"),
        ("senet50", "resnet", "zoo.arl_cnn.models:build_senet50"),
        ("ran50", "resnet", "zoo.arl_cnn.models:build_ran50"),
    ]),
    *_entries("attnmel", ATTNMEL_STEP, [
        ("vgg16", "vgg", "zoo.attnmel.models:build_vgg16_classifier"),
        ("vgg16_gap", "vgg", "zoo.attnmel.models:build_vgg16_gap"),
        ("mel_cnn", "vgg", "zoo.attnmel.models:build_mel_cnn"),
    ]),
    BenchModel("attnmel_cnn", "attnmel", "zoo.attnmel.models:build_attnmel_cnn", ATTNMEL_REGULARISED_STEP, "vgg"),
    *_entries("sanet", SANET_STEP, [
        ("sanet_unet", "unet", "zoo.sanet.models:build_attribute_unet"),
        ("sanet_deeplab", "resnet", "zoo.sanet.models:build_deeplab"),
    ]),
    BenchModel("sanet_danet", "sanet", "zoo.apspnet.models:build_danet", SANET_STEP, "resnet",
               paper_kwargs={"input_shape": (256, 256, 3), "classes": 5, "backbone": "resnet101",
                             "activation": "sigmoid", "input_scale": "unit"},
               small_kwargs={"input_shape": SMALL_INPUT, "classes": 5, "backbone": "resnet101",
                             "activation": "sigmoid", "input_scale": "unit"}),
    *_entries("sanet", SANET_STEP, [
        ("resunet", "resnet", "zoo.sanet.models:build_resunet"),
        ("sanet", "resnet", "zoo.sanet.models:build_sanet"),
    ]),
    *_entries("apspnet", APSPNET_STEP, [
        ("pspnet", "resnet", "zoo.apspnet.models:build_pspnet"),
        ("deeplabv3", "resnet", "zoo.apspnet.models:build_deeplabv3"),
        ("danet", "resnet", "zoo.apspnet.models:build_danet"),
        ("apspnet", "resnet", "zoo.apspnet.models:build_apspnet"),
    ]),
)
"""Every builder of the zoo, grouped by paper, in the order of the papers' tables."""


def select_models(
    table: Sequence[BenchModel], names: Sequence[str] | None = None, papers: Sequence[str] | None = None
) -> list[BenchModel]:
    """The entries of ``table`` named in ``names`` (in that order) and/or of ``papers``.

    None selects everything. Raises ValueError naming any unknown name or paper.
    """
    by_name = {entry.name: entry for entry in table}
    if len(by_name) != len(table):
        raise ValueError("benchmark table: model names must be unique.")
    known_papers = sorted({entry.paper for entry in table})
    unknown = [name for name in names or () if name not in by_name]
    if unknown:
        raise ValueError(f"--models: unknown model(s) {unknown}; known: {sorted(by_name)}.")
    unknown = [paper for paper in papers or () if paper not in known_papers]
    if unknown:
        raise ValueError(f"--papers: unknown paper(s) {unknown}; known: {known_papers}.")
    selected = [by_name[name] for name in names] if names else list(table)
    return [entry for entry in selected if not papers or entry.paper in papers]
