"""A paper's training recipe as data: loss, optimiser, schedule, augmentation, targets.

Each paper package writes its recipe once (``zoo.<paper>.recipe``) and registers it
with its models (:mod:`zoo.registry`); the table scripts, the benchmark and the tests
read it from there. A recipe holds what the paper says about *training a model*; the
experiment around it (splits, evaluation, the table) lives in ``reproduce/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping

import keras
import numpy as np

TargetKind = Literal["binary", "one_hot"]
TARGET_KINDS: tuple[str, ...] = ("binary", "one_hot")

OVERRIDABLE: tuple[str, ...] = ("learning_rate", "batch_size", "epochs", "monitor")
"""The recipe fields a run may change (``--learning-rate``, ``--batch-size``, ``--epochs``,
``--monitor``); the loss, optimiser, targets and augmentation are the paper's."""

OptimizerFactory = Callable[[float, int, int], keras.optimizers.Optimizer]
"""``make(learning_rate, steps_per_epoch, epochs) -> optimiser`` (a fresh one per call:
schedules that count epochs need the number of steps in one)."""


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    """How a paper trains its models.

    Attributes:
        source: where the paper says so (section, equation), for docs and reports.
        loss: makes the loss (a ``keras.losses.Loss``, a name, or a dict per output).
        optimizer: :data:`OptimizerFactory`.
        learning_rate: the paper's initial learning rate.
        batch_size, epochs: the paper's.
        targets: ``"binary"`` (sigmoid maps, {0, 1} per channel), ``"one_hot"``
            (softmax over the last axis), or such a kind per output name.
        augmentation: the training augmentation preset (a
            :class:`data_tools.augment.Augmentation`), or None where the paper names none.
        loss_weights: makes the per-output loss weights, or None.
        monitor: the quantity that picks the best epoch (``"val_auc"``, ``"loss"``, ...).
    """

    source: str
    loss: Callable[[], Any]
    optimizer: OptimizerFactory
    learning_rate: float
    batch_size: int
    epochs: int
    targets: TargetKind | Mapping[str, TargetKind]
    augmentation: Any = None
    loss_weights: Callable[[], Mapping[str, float]] | None = None
    monitor: str = "loss"

    def __post_init__(self):
        kinds = [self.targets] if isinstance(self.targets, str) else list(self.targets.values())
        bad = [kind for kind in kinds if kind not in TARGET_KINDS]
        if bad:
            raise ValueError(f"TrainingRecipe.targets: kinds must be in {TARGET_KINDS}, got {bad}.")
        if not isinstance(self.targets, str):
            object.__setattr__(self, "targets", MappingProxyType(dict(self.targets)))
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainingRecipe.{name} must be a positive int, got {value!r}.")
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"TrainingRecipe.learning_rate must be a positive finite number, got {rate!r}.")
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ValueError(
                f"TrainingRecipe.monitor must be a logged quantity such as 'val_auc', got {self.monitor!r}."
            )

    def with_overrides(self, **overrides: Any) -> "TrainingRecipe":
        """This recipe with some fields changed (``None`` values keep the recipe's); the
        values are checked as the recipe's own are. The command lines offer the
        :data:`OVERRIDABLE` ones as flags; a table row may also replace the loss or the
        optimiser factory (with the paper's own factory, e.g. another momentum),
        which the run card then records by name."""
        fields = {field.name for field in dataclasses.fields(self)} - {"source"}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"TrainingRecipe: no field(s) {unknown} to override; fields: {sorted(fields)}.")
        changes = {key: value for key, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **changes) if changes else self

    def overrides_from(self, registered: "TrainingRecipe") -> dict[str, Any]:
        """The fields in which this recipe differs from ``registered``, described as
        :meth:`describe` describes them."""
        mine, theirs = self.describe(), registered.describe()
        return {key: value for key, value in mine.items() if key != "source" and value != theirs[key]}

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (for run cards and reports): the source, the
        numbers, and the loss, optimiser and augmentation by name."""
        augmentation = self.augmentation
        if dataclasses.is_dataclass(augmentation):
            augmentation = {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(augmentation).items()
            }
        return {
            "source": self.source,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "monitor": self.monitor,
            "targets": self.targets if isinstance(self.targets, str) else dict(self.targets),
            "loss": _name_of(self.loss),
            "optimizer": _name_of(self.optimizer),
            "loss_weights": None if self.loss_weights is None else dict(self.loss_weights()),
            "augmentation": augmentation,
        }

    def make_optimizer(
        self, steps_per_epoch: int, *, learning_rate: float | None = None, epochs: int | None = None
    ) -> keras.optimizers.Optimizer:
        """A fresh optimiser; ``learning_rate``/``epochs`` default to the paper's."""
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be a positive int, got {steps_per_epoch!r}.")
        return self.optimizer(
            self.learning_rate if learning_rate is None else learning_rate,
            steps_per_epoch,
            self.epochs if epochs is None else epochs,
        )

    def random_targets(self, model: keras.Model, batch_size: int, rng: np.random.Generator) -> Any:
        """Random targets of the recipe's kinds, shaped like ``model``'s outputs, for
        ``batch_size`` samples (smoke tests and benchmarks): {0, 1} per channel for
        ``"binary"``, one-hot over the last axis for ``"one_hot"``."""
        structure = model.output
        if isinstance(structure, Mapping):
            kinds = dict.fromkeys(structure, self.targets) if isinstance(self.targets, str) else self.targets
            missing = sorted(set(structure) - set(kinds))
            if missing:
                raise ValueError(
                    f"TrainingRecipe.targets names no target kind for the outputs {missing} of {model.name!r}."
                )
            return {name: _random_target(tensor, kinds[name], batch_size, rng) for name, tensor in structure.items()}
        if not isinstance(self.targets, str):
            raise ValueError(
                f"TrainingRecipe.targets is per output ({sorted(self.targets)}) but {model.name!r} "
                f"has a single output; build it with its attention maps (return_attention=True)."
            )
        return _random_target(structure, self.targets, batch_size, rng)

    def compile(
        self, model: keras.Model, *, steps_per_epoch: int = 100, jit_compile: bool | str = "auto", **kwargs
    ) -> None:
        """``model.compile`` with the recipe's loss, loss weights and a fresh optimiser."""
        model.compile(
            optimizer=self.make_optimizer(steps_per_epoch),
            loss=self.loss(),
            loss_weights=None if self.loss_weights is None else dict(self.loss_weights()),
            jit_compile=jit_compile,
            **kwargs,
        )


def _name_of(factory: Any) -> str:
    """A factory's readable name: ``OptimizerFactory`` closures say what they make."""
    return getattr(factory, "description", None) or getattr(factory, "__qualname__", None) or repr(factory)


def _random_target(tensor: Any, kind: TargetKind, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    shape = (batch_size, *tensor.shape[1:])
    if kind == "binary":
        return (rng.random(shape) < 0.5).astype(np.float32)
    classes = shape[-1]
    return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, shape[:-1])]


def constant(optimizer_class: type[keras.optimizers.Optimizer], **options) -> OptimizerFactory:
    """A factory of ``optimizer_class(learning_rate, **options)`` with a constant rate."""

    def make(learning_rate: float, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
        del steps_per_epoch, epochs
        return optimizer_class(learning_rate, **options)

    return _described(make, f"{optimizer_class.__name__}({_options(options)}), constant rate")


def step_decay(
    optimizer_class: type[keras.optimizers.Optimizer], *, every_epochs: int, factor: float, **options
) -> OptimizerFactory:
    """The rate times ``factor`` every ``every_epochs`` epochs (a staircase)."""

    def make(learning_rate: float, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
        del epochs
        schedule = keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps=every_epochs * steps_per_epoch, decay_rate=factor, staircase=True
        )
        return optimizer_class(schedule, **options)

    return _described(
        make, f"{optimizer_class.__name__}({_options(options)}), rate x{factor} every {every_epochs} epochs"
    )


def polynomial_decay(optimizer_class: type[keras.optimizers.Optimizer], *, power: float, **options) -> OptimizerFactory:
    """The rate decays polynomially (``power``) to 0 over the whole run."""

    def make(learning_rate: float, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
        schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps_per_epoch * epochs, 0.0, power=power)
        return optimizer_class(schedule, **options)

    return _described(make, f"{optimizer_class.__name__}({_options(options)}), polynomial decay to 0, power {power}")


def _described(make: OptimizerFactory, description: str) -> OptimizerFactory:
    make.description = description
    return make


def _options(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in options.items())


_FLAG_TYPES: Mapping[str, tuple[type, str]] = MappingProxyType(
    {
        "learning_rate": (float, "initial learning rate"),
        "batch_size": (int, "global batch size"),
        "epochs": (int, "training epochs"),
        "monitor": (str, "the logged quantity that picks the kept epoch"),
    }
)


def add_override_flags(parser: argparse.ArgumentParser, recipe: TrainingRecipe | None = None) -> None:
    """Adds ``--learning-rate``, ``--batch-size``, ``--epochs`` and ``--monitor`` (one per
    :data:`OVERRIDABLE` field) to an ``argparse`` parser. Each defaults to ``None``:
    the recipe's value (shown in the help when ``recipe`` is given);
    :func:`overrides_from_flags` collects what the user set."""
    for name in OVERRIDABLE:
        kind, what = _FLAG_TYPES[name]
        shown = (
            f" (default: the recipe's, {getattr(recipe, name)})" if recipe is not None else " (default: the recipe's)"
        )
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=_positive(kind) if kind is not str else str,
            default=None,
            help=what + shown,
        )


def overrides_from_flags(args: Any) -> dict[str, Any]:
    """The :data:`OVERRIDABLE` fields set on the command line (``argparse.Namespace``)."""
    return {name: getattr(args, name) for name in OVERRIDABLE if getattr(args, name, None) is not None}


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse
