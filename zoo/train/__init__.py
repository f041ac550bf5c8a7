"""One way to train every model of the zoo: Keras ``fit`` with checkpoints and resume.

On the command line, ``python -m zoo.train --model NAME --data DIR --out RUN`` trains
a registered model on a dataset folder with its paper's recipe and leaves a run folder
(:mod:`zoo.train.command`; the layouts it reads: :mod:`data_tools.detect`).

Every reproduce script trains through :func:`fit`. It builds the model, optimizer,
loss and metrics inside the distribution strategy's scope and under the requested
dtype policy, compiles with or without XLA, and runs ``model.fit`` with:

* a checkpoint of the best epoch by ``config.monitor`` (``best.weights.h5``), loaded
  back into the model at the end (the papers report their best epoch, e.g. AttnMel
  by validation AUC);
* ``keras.callbacks.BackupAndRestore`` in ``backup/`` so that a killed run, started
  again with the same ``out_dir``, resumes instead of starting over;
* a CSV log of every epoch (``train_log.csv``), appended to on resume; the returned
  history is read from it, so it covers the interrupted and the resumed part;
* optionally TensorBoard logs (``tensorboard/``) and Keras progress bars.

**Non-finite loss.** Training stops at the first batch whose loss is NaN or
infinite, or at the end of the first epoch that left a weight non-finite (one NaN
pixel in the inputs is enough), with a :class:`NonFiniteLossError` naming the epoch
(and batch, or weight); the best checkpoint of the epochs before is kept, and no
backup is written after that. An empty training dataset (e.g. a batch
larger than the training set with ``drop_remainder``) is an error too.

Files in ``out_dir``: ``train_config.json`` (the :class:`TrainConfig`),
``runtime.json`` (:func:`zoo.runtime.describe_runtime`), ``train_log.csv``,
``best.weights.h5``, ``backup/`` while a run is unfinished, ``train.lock`` while a
process trains into it (a second run on the folder is refused).

**Resume.** A run resumes iff ``out_dir/backup`` holds a training state; it is
deleted when ``fit`` completes, so running again over a finished run starts a
new run that overwrites the old files. The checkpoint, the backup and its
metadata are written as one unit tied by a manifest of checksums
(:mod:`zoo.train.state`): a run killed at any moment, also while writing them,
resumes from the last complete unit, and files that do not belong together (cut
short, changed, another model's) are refused in one sentence naming the file.
With ``backup_freq="epoch"`` (default) the
state is saved at the end of every epoch and a run killed in epoch *k* restarts at
the first batch of epoch *k* with the weights and optimizer state of the end of
epoch *k - 1*. The result then equals an uninterrupted run when the data order and
random ops do not depend on how many epochs the process has run: the
:mod:`data_tools.pipeline` datasets draw epoch *k* from ``(seed, k)`` alone, and
``fit`` tells them which epoch starts (:func:`data_tools.pipeline.set_training_epoch`),
so a resumed run with them ends with the weights of an uninterrupted one (tested by
killing a training process with SIGKILL). A ``tf.data`` shuffle of your own with
``reshuffle_each_iteration`` restarts its sequence of orders in a new process.
With an integer ``backup_freq=n`` the state is also saved every *n* batches: the
weights then include the part of epoch *k* done before the kill, but ``fit`` cannot
start in the middle of an epoch, so epoch *k* is rerun from its first batch and
those batches are seen twice.

**Distribution.** The datasets' batch size is the *global* batch: with
``strategy.num_replicas_in_sync`` replicas each replica gets ``batch /
replicas`` samples per step and the gradients are averaged over all replicas, so a
step is the same step as on one device with the same batch. The learning rate is
not changed: if you grow the global batch with the number of replicas, scale the
learning rate yourself (e.g. the linear scaling rule of Goyal et al. 2017). Pass the
optimizer, loss and metrics as zero-argument factories (classes or lambdas) when
using a strategy: their variables must be created inside its scope, which ``fit``
does. On a multi-worker cluster only the chief writes to ``out_dir``; the other
workers write to ``out_dir/workers/<task>``.

**Backends.** :func:`fit` runs on any Keras backend with ``strategy="default"``: the
``tf.data`` pipelines feed JAX and PyTorch too (Keras converts each batch), and the
model compiles with ``jit_compile`` under JAX (always) and TensorFlow (``config.xla``).
The ``"mirrored"`` and ``"multi_worker"`` strategies are ``tf.distribute``'s and need
``KERAS_BACKEND=tensorflow``; on JAX use ``keras.distribution`` instead.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import keras
import numpy as np

from data_tools.atomic import atomic_write_text
from data_tools.epochs import set_training_epoch
from data_tools.lazy_tensorflow import lazy_tensorflow, tensorflow_imported
from zoo.common.run_card import BACKUP_DIR
from zoo.common.run_card import TRAINING_CHECKPOINT as BEST_WEIGHTS_FILE
from zoo.common.weights import first_non_finite
from zoo.runtime import (
    STRATEGIES,
    describe_runtime,
    is_chief,
    make_strategy,
    precision_policy,
    resolve_xla,
    task_name,
)
from zoo.train.arrays import ArrayDataset  # noqa: F401  (re-exported: training on arrays)
from zoo.train.state import StagedCheckpoint, StateBackup, TrainingState, log_lines, run_lock

tf = lazy_tensorflow("training on a tf.data.Dataset")

Mode = Literal["min", "max", "auto"]

CONFIG_FILE = "train_config.json"
RUNTIME_FILE = "runtime.json"
LOG_FILE = "train_log.csv"
TENSORBOARD_DIR = "tensorboard"

# Metric-name fragments whose direction ``mode="auto"`` can infer.
_LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "distance")
_HIGHER_IS_BETTER = ("acc", "auc", "dice", "iou", "jaccard", "precision", "recall", "f1", "sensitivity", "specificity")


@dataclasses.dataclass
class TrainConfig:
    """How to train: where to write, how long, what to monitor, on what runtime.

    Attributes:
        out_dir: folder for the checkpoints, logs and backups of this run.
        epochs: total number of epochs (a resumed run stops at the same total).
        monitor: the logged quantity that picks the best epoch, e.g.
            ``"val_loss"``, ``"val_auc"``, ``"val_dice"`` (``"val_"`` + a metric name).
        mode: ``"min"``, ``"max"``, or ``"auto"`` (``"min"`` for names containing
            loss/error/mae/mse/distance, ``"max"`` for acc/auc/dice/iou/jaccard/
            precision/recall/f1/sensitivity/specificity; anything else must be set).
        xla: compile the train and test steps with XLA; ``None`` means on iff a GPU
            is present (on CPU XLA is slower, see :mod:`zoo.runtime`).
        mixed_precision: ``mixed_float16`` compute with float32 variables and loss
            scaling. Meant for GPUs; on CPU it is slower and only useful for tests.
            The builders keep their final activations in float32.
        strategy: ``"default"``, ``"mirrored"`` or ``"multi_worker"`` (cluster from
            ``TF_CONFIG``), see :func:`zoo.runtime.make_strategy`.
        seed: passed to ``keras.utils.set_random_seed`` before the model is built.
        steps_per_epoch, validation_steps: batches per epoch; required when a
            dataset repeats forever, otherwise ``None`` runs each dataset once.
        backup_freq: ``"epoch"`` or a number of batches between backups (see the
            module docstring for what a resumed run repeats).
        tensorboard: also write TensorBoard logs.
        verbose: Keras ``fit`` verbosity: 0 (silent), 1 (progress bar), 2 (one line
            per epoch), or ``"auto"``: the bar on a terminal, a line per epoch where
            the output goes to a file or a pipe (a cluster's log, where the bar would
            write every step's update).
        keep: ``"best"`` (the epoch with the best ``monitor``) or ``"last"`` (the
            final epoch, for papers that report their final model without a
            validation set; ``monitor`` is then only logged).
    """

    out_dir: str | Path
    epochs: int
    monitor: str = "val_loss"
    mode: Mode = "auto"
    xla: bool | None = None
    mixed_precision: bool = False
    strategy: str = "default"
    seed: int = 0
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    backup_freq: Literal["epoch"] | int = "epoch"
    tensorboard: bool = False
    verbose: Literal["auto", 0, 1, 2] = "auto"
    keep: Literal["best", "last"] = "best"

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        _check_positive_int("epochs", self.epochs)
        for name in ("steps_per_epoch", "validation_steps"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        if self.backup_freq != "epoch":
            _check_positive_int("backup_freq", self.backup_freq)
        if not self.monitor or not isinstance(self.monitor, str):
            raise ValueError(f"TrainConfig.monitor must be a metric name such as 'val_loss', got {self.monitor!r}.")
        _check_choice("mode", self.mode, ("min", "max", "auto"))
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("verbose", self.verbose, ("auto", 0, 1, 2))
        _check_choice("keep", self.keep, ("best", "last"))
        resolve_xla(self.xla)  # type check

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (``out_dir`` as a string)."""
        return {**dataclasses.asdict(self), "out_dir": str(self.out_dir)}

    @property
    def resolved_mode(self) -> Literal["min", "max"]:
        """``mode`` with ``"auto"`` resolved from the monitored name."""
        if self.mode != "auto":
            return self.mode
        name = self.monitor.lower().removeprefix("val_")
        if any(fragment in name for fragment in _LOWER_IS_BETTER):
            return "min"
        if any(fragment in name for fragment in _HIGHER_IS_BETTER):
            return "max"
        raise ValueError(
            f"TrainConfig: cannot tell whether monitor={self.monitor!r} should go up or down; "
            "set mode='min' or mode='max'."
        )


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names epoch and batch."""


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model, holding the weights of the best epoch.
        history: per-epoch logs as :func:`read_log` returns them (``"epoch"``,
            ``"loss"``, ``"val_loss"``, metrics...), from epoch 0, including the
            epochs run before a resume.
        best_epoch: zero-based index of the kept epoch into ``history``: the best by
            the monitored quantity, or the last with ``TrainConfig.keep="last"``
            (:attr:`kept_epoch` is the same epoch counted from 1).
        out_dir: the folder this process wrote to.
        best_weights_path: the best epoch's weights.
    """

    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    out_dir: Path
    best_weights_path: Path

    @property
    def kept_epoch(self) -> int:
        """The kept epoch counted from 1, as Keras prints it ("Epoch 5/10"): the number
        run cards and table results record."""
        return self.best_epoch + 1


Factory = Callable[[], Any]


def fit(
    build_model: Callable[[], keras.Model],
    train_data: tf.data.Dataset | keras.utils.PyDataset,
    val_data: tf.data.Dataset | keras.utils.PyDataset | None,
    config: TrainConfig,
    *,
    optimizer: keras.optimizers.Optimizer | str | Factory,
    loss: Any,
    metrics: Any = None,
    loss_weights: Sequence[float] | Mapping[str, float] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Builds, compiles and trains a model; resumes an interrupted run in ``out_dir``.

    Args:
        build_model: zero-argument callable returning the (uncompiled) model, e.g.
            ``lambda: build_aernet(weights=None)``. Called inside the strategy
            scope under the dtype policy of ``config.mixed_precision``.
        train_data: batches of ``(inputs, targets)`` or ``(inputs, targets,
            sample_weights)``: a ``tf.data.Dataset``, a ``keras.utils.PyDataset``,
            or arrays in memory through :class:`ArrayDataset` (the last two need no
            TensorFlow); the batch size is the global batch (module docstring).
        val_data: validation batches, or ``None`` when ``config.monitor`` is a
            training quantity.
        config: see :class:`TrainConfig`.
        optimizer, loss, metrics: anything ``model.compile`` accepts, or
            zero-argument factories of it (classes, lambdas); factories are called
            inside the strategy scope. ``loss`` and ``metrics`` may be lists or
            dicts of such values (one per model output).
        loss_weights: passed to ``model.compile`` (e.g. PSPNet's auxiliary 0.4).
        callbacks: extra callbacks, run before the ones ``fit`` adds.

    Returns:
        A :class:`TrainResult` whose model holds the best epoch's weights.
    """
    _check_optimizer(optimizer)
    _check_dataset("train_data", train_data, config.steps_per_epoch, "steps_per_epoch")
    if val_data is None:
        if config.monitor.startswith("val_"):
            raise ValueError(f"TrainConfig.monitor={config.monitor!r} needs val_data, got val_data=None.")
    else:
        _check_dataset("val_data", val_data, config.validation_steps, "validation_steps")
    mode = config.resolved_mode
    xla = resolve_xla(config.xla)

    strategy = make_strategy(config.strategy)
    out_dir = config.out_dir if is_chief(strategy) else config.out_dir / "workers" / task_name(strategy)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = TrainingState(out_dir)
    with run_lock(out_dir), strategy.scope():  # one run per folder; its state checked before it resumes
        resuming = state.recover(out_dir / LOG_FILE) is not None
        atomic_write_text(out_dir / CONFIG_FILE, json.dumps(config.to_dict(), indent=2))
        runtime = describe_runtime(xla=xla, mixed_precision=config.mixed_precision, strategy=strategy)
        atomic_write_text(out_dir / RUNTIME_FILE, json.dumps(runtime, indent=2))
        keras.utils.set_random_seed(config.seed)
        with precision_policy(config.mixed_precision):
            model = build_model()
            if not isinstance(model, keras.Model):
                raise TypeError(f"build_model must return a keras.Model, got {type(model).__name__}.")
            model.compile(
                optimizer=_instantiate(optimizer),
                loss=_instantiate(loss),
                metrics=_instantiate(metrics),
                loss_weights=loss_weights,
                jit_compile=xla,
            )
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch,
            validation_steps=config.validation_steps,
            callbacks=[*callbacks, *_run_callbacks(config, mode, state, resuming)],
            verbose=fit_verbosity(config.verbose),
            shuffle=False,  # datasets shuffle themselves (data_tools pipelines, with a seed)
        )
        history = read_log(out_dir / LOG_FILE)
        model.load_weights(str(out_dir / BEST_WEIGHTS_FILE))
    kept = history["epoch"][-1] if config.keep == "last" else _best_epoch(history, config.monitor, mode)
    return TrainResult(model, history, kept, out_dir, out_dir / BEST_WEIGHTS_FILE)


def _run_callbacks(
    config: TrainConfig, mode: str, state: TrainingState, resuming: bool
) -> list[keras.callbacks.Callback]:
    """Monitor check, CSV log, best checkpoint, backup and TensorBoard, in that order.

    The log and the best checkpoint come before the backup, which commits the
    checkpoint with it (:mod:`zoo.train.state`): a kill before the commit makes the
    resumed run drop the epoch's row and run the epoch again.
    """
    out_dir = state.out_dir
    log_path = out_dir / LOG_FILE
    # A resumed run keeps the best value so far, or its first epoch would replace
    # the best checkpoint whatever its value.
    previous_best = _best_value(read_log(log_path), config.monitor, mode) if resuming else None
    callbacks = [
        _EpochData(),
        _StopOnNonFiniteLoss(out_dir / BEST_WEIGHTS_FILE),
        _RequireMonitor(config.monitor),
        keras.callbacks.CSVLogger(str(log_path), append=resuming),
        StagedCheckpoint(
            state,
            monitor=config.monitor,
            mode=mode,
            save_best_only=config.keep == "best",  # "last": every epoch overwrites it
            initial_value_threshold=previous_best if config.keep == "best" else None,
        ),
        StateBackup(state, save_freq=config.backup_freq),
    ]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / TENSORBOARD_DIR)))
    return callbacks


def read_log(path: str | Path) -> dict[str, list[float]]:
    """A ``train_log.csv`` as ``{"epoch": [...], "loss": [...], ...}`` in epoch order.

    An epoch logged twice (a run killed after logging it but before backing it up
    repeats it on resume) keeps its last row.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    log_lines(path)  # a row cut short by a kill: one sentence naming the file and line
    with path.open(newline="") as file:
        rows = {int(row["epoch"]): row for row in csv.DictReader(file)}
    keys = [key for key in next(iter(rows.values()), {}) if key != "epoch"]
    epochs = sorted(rows)
    history: dict[str, list[float]] = {"epoch": epochs}
    for key in keys:
        history[key] = [_to_float(rows[epoch][key]) for epoch in epochs]
    return history


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # "NA" for a metric missing that epoch
        return math.nan


def _best_value(history: Mapping[str, list[float]], monitor: str, mode: str) -> float | None:
    values = history.get(monitor)
    if not values or all(math.isnan(v) for v in values):
        return None
    return float(np.nanmin(values) if mode == "min" else np.nanmax(values))


def fit_verbosity(verbose: Literal["auto", 0, 1, 2]) -> int:
    """Keras' ``verbose`` for :attr:`TrainConfig.verbose`: ``"auto"`` is 1 (the bar)
    when standard output is a terminal, else 2 (a line per epoch)."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def _best_epoch(history: Mapping[str, list[float]], monitor: str, mode: str) -> int:
    """The first epoch with the best value, as ``ModelCheckpoint`` keeps it."""
    values = np.asarray(history[monitor], dtype=float)
    if not np.isfinite(values).any():
        raise ValueError(
            f"{monitor!r} was never finite in {len(values)} epoch(s): no epoch can be "
            "chosen as the best; check the validation data for NaN or empty batches."
        )
    index = np.nanargmin(values) if mode == "min" else np.nanargmax(values)
    return int(history["epoch"][index])


class _EpochData(keras.callbacks.Callback):
    """Tells the data_tools pipelines which epoch starts, so that its data order and
    augmentation are those of that epoch in any process (exact resume)."""

    def on_epoch_begin(self, epoch, logs=None):
        set_training_epoch(epoch)


class _StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises :class:`NonFiniteLossError` at the first batch with a non-finite loss,
    or at the end of an epoch whose updates left a weight non-finite.

    The weights are checked too because a NaN input need not show in the loss: a
    ReLU that maps NaN to 0 (oneDNN on CPUs does) hides it from the forward pass but
    not from the gradient, and the model then trains on with NaN kernels. The check
    runs first among the callbacks, so neither the log, the best checkpoint nor the
    backup see the broken weights. (Keras' ``TerminateOnNaN`` only stops quietly.)
    """

    def __init__(self, best_weights: Path):
        super().__init__()
        self.best_weights, self.epoch = best_weights, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            kept = (
                f"the best checkpoint so far is kept in {self.best_weights}"
                if self.best_weights.is_file()
                else "no epoch finished, so there is no checkpoint"
            )
            raise NonFiniteLossError(
                f"epoch {self.epoch}, batch {batch}: the training loss is {float(loss)}. Look for NaN or "
                "infinite values in the inputs or targets of this batch or the one before (a NaN input "
                "can reach the weights through the gradient before it shows in the loss), or lower the "
                f"learning rate; {kept}."
            )

    def on_epoch_end(self, epoch, logs=None):
        found = first_non_finite(self.model.trainable_weights)
        if found is not None:
            kept = (
                f"the best checkpoint so far is kept in {self.best_weights}"
                if self.best_weights.is_file()
                else "there is no checkpoint yet"
            )
            raise NonFiniteLossError(
                f"epoch {epoch}: after its updates the weights {found[0].path!r} hold NaN or "
                "infinite values. Look for NaN or infinite values in this epoch's inputs or "
                f"targets, or lower the learning rate; {kept}."
            )


class _RequireMonitor(keras.callbacks.Callback):
    """Stops at the first epoch end if the monitored quantity is not logged, or if
    no training batch ran at all (Keras then logs nothing and says nothing).

    ``ModelCheckpoint`` only warns in that case and would keep no checkpoint.
    """

    def __init__(self, monitor: str):
        super().__init__()
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        if not logs or "loss" not in logs:
            raise ValueError(
                f"no training batch ran in epoch {epoch}: the training dataset is empty (a batch size "
                "larger than the training set with drop_remainder=True drops every sample)."
            )
        if self.monitor not in (logs or {}):
            raise ValueError(
                f"TrainConfig.monitor={self.monitor!r} is not among the logged quantities "
                f"{sorted(logs or {})}; monitor one of them."
            )


def _instantiate(value: Any) -> Any:
    """Calls zero-argument factories (recursively in lists and dicts); keeps the rest."""
    if isinstance(value, Mapping):
        return {key: _instantiate(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_instantiate(item) for item in value]
    if _is_factory(value):
        return _instantiate(value())
    return value


def _is_factory(value: Any) -> bool:
    built = (keras.losses.Loss, keras.metrics.Metric, keras.optimizers.Optimizer, keras.Model)
    if isinstance(value, built) or not callable(value):
        return False
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return all(
        parameter.default is not inspect.Parameter.empty
        or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for parameter in signature.parameters.values()
    )


def _check_optimizer(optimizer: Any) -> None:
    """A callable that needs arguments is no optimiser Keras can use: most likely a
    recipe's factory ``(learning_rate, steps_per_epoch, epochs)``."""
    if callable(optimizer) and not isinstance(optimizer, keras.optimizers.Optimizer) and not _is_factory(optimizer):
        raise TypeError(
            f"optimizer={optimizer!r} needs arguments. A TrainingRecipe's optimizer is a factory of "
            "(learning_rate, steps_per_epoch, epochs): pass optimizer=lambda: recipe.make_optimizer(steps_per_epoch), "
            "or an optimiser, its name, or a zero-argument factory of it."
        )


def _check_dataset(name: str, data: Any, steps: int | None, steps_name: str) -> None:
    if isinstance(data, keras.utils.PyDataset):
        return
    if not tensorflow_imported() or not isinstance(data, tf.data.Dataset):
        raise TypeError(f"{name} must be a tf.data.Dataset or keras.utils.PyDataset, got {type(data).__name__}.")
    spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            f"{name} must yield (inputs, targets) or (inputs, targets, sample_weights) batches, got elements {spec}."
        )
    if steps is None and data.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError(f"{name} repeats forever: set TrainConfig.{steps_name}.")
    if data.cardinality() == 0:
        raise ValueError(
            f"{name} yields no batch: is the batch size larger than the number of samples "
            "(with drop_remainder=True every sample is dropped)?"
        )


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}.")


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"TrainConfig.{name} must be one of {allowed}, got {value!r}.")
