"""The recipe the five ARL-CNN table scripts share: data, patches, training, scoring.

Zhang, Xie, Xia and Shen, "Attention Residual Learning for Skin Lesion Classification",
IEEE Transactions on Medical Imaging, 2019. Tables III-VII train the registered
classifiers of :mod:`zoo.arl_cnn` (``zoo.list_models(paper="arl_cnn")``) with their
registered recipe (:data:`zoo.arl_cnn.recipe.ARL_RECIPE`) and score them on the ISIC
2017 test set. Every row of a table names its registered model, its builder
arguments and its changes to the recipe (:class:`reproduce.frame.PaperRow`;
:func:`scratch_row`, :func:`imagenet_row`):

* **data** (Sec. IV-A): ISIC 2017 Part 3, 2000 training, 150 validation and 600
  test images (:func:`data_tools.isic.read_isic2017`).
* **two binary models per row**: the paper evaluates "two binary classification
  sub-tasks - melanoma vs. others and seborrheic keratosis vs. others" (Sec. IV-A)
  with networks whose output layer has 2 units (Table I), and Fig. 6 shows the
  CAMs "obtained by ARL-CNN50 when applying it to melanoma classification and
  seborrheic keratosis classification, respectively". So every row trains two
  models with a 2-way softmax, one per sub-task (:data:`TASKS`).
* **patches** (Sec. IV-B): 60 random central patches per training image, each at a
  scale drawn from 1/5, 2/5, 3/5 and 4/5 of its size, resized bilinearly to 224x224
  (:mod:`zoo.arl_cnn.patches`, the ``expand`` hook of
  :func:`data_tools.pipeline.classification_dataset`, which shuffles the images
  every epoch and mixes the patches of many images in a batch), augmented online with
  rotations of +-10 degrees, zooms of 90-110 % and flips
  (:data:`zoo.arl_cnn.recipe.ARL_AUGMENTATION`).
* **training** (Sec. IV-B): the registered recipe, mini-batch SGD, batch 32,
  learning rate 0.01 from scratch, halved every 30 epochs, 100 epochs, the best
  epoch on the official validation set; the rows fine-tuned from ImageNet (the "*"
  rows of Table III) override the learning rate with 1e-4 (Sec. IV-B). Training
  goes through :meth:`reproduce.frame.RowContext.fit` (the recipe's optimiser and
  loss); ``--momentum``, ``--halving-epochs`` and ``--no-pretrained`` change the
  recipe through :meth:`~reproduce.frame.RowContext.recipe` (:func:`row_recipe`),
  ``--learning-rate``, ``--batch-size``, ``--epochs`` are the frame's override
  flags. Every change is recorded in the run card.
* **test** (Sec. IV-B, IV-C): 9 random patches of each test image, drawn as in
  training with the run's seed, softmax scores averaged
  (:func:`zoo.arl_cnn.patches.average_over_patches`); AUC, accuracy,
  sensitivity and specificity (eq. 10-12, :func:`zoo.metrics.classification_scores`)
  and the challenge's average AUC (:func:`zoo.metrics.isic2017_average_auc`).

What the paper leaves open, and what we chose (flags change it):

* SGD momentum and weight decay: Sec. IV-B names plain "mini-batch SGD" and neither a
  momentum nor a weight decay (nor any other regulariser): the recipe's literal
  reading is momentum 0 (``--momentum`` sets one) and no weight decay
  (:data:`OPTIMISER_NOTE`).
* Input values: keras.applications' "caffe" scaling for models starting from its
  ImageNet ResNet50 weights (what they expect), [0, 1] for models from scratch.
* Best epoch: the validation AUC of the validation images' 9 test patches, each
  scored on its own (Keras' streaming AUC); the test numbers average the patches.
* Patch seeds: an image's patches are fixed by the run's ``--seed`` (and the image's
  place in its split), drawn once as the paper extracts them before its online
  augmentation; the 9 test patches of each image change with the seed, so each of
  Table VII's runs draws its own.
* Threshold of accuracy, sensitivity and specificity: 0.5 on the averaged softmax.

Every trained model is a run folder (``<row>/<task>/``, :func:`train_and_score`;
Table VII: ``<row>/run-NN/<task>/``): ``run.json`` (the registered model, its builder
arguments, input spec, recipe and overrides, data, seed and test scores) and
``model.weights.h5``, exactly the weights that were scored, which
``zoo.load_run(folder)`` rebuilds; beside them what :func:`zoo.train.fit` writes,
``settings.json`` (the flags) and ``task_result.json`` (test scores, per-image
scores, history). A finished task is not trained again when its row is run again
with the same flags (a row interrupted in its second task keeps its first). A row
also writes ``predictions.csv``, its test scores in the ISIC 2017 Part 3
submission layout.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from data_tools.isic import read_isic2017
from data_tools.pipeline import classification_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import Record
from data_tools.synthetic import make_isic2017
from reproduce import report
from reproduce.arl_extra_images import (
    DEFAULT_LIST,
    SYNTHETIC_LIST,
    extra_images_argument,
    read_extra_images,
    write_synthetic_extras,
)
from reproduce.datasets import DatasetNeed, MissingDataError
from reproduce.frame import NON_RESULT_FLAGS, Column, PaperRow, RowContext, RowResult, number_in_range
from zoo.arl_cnn import ARL_INPUT, ARL_PRETRAINED_INPUT
from zoo.arl_cnn.patches import (
    ARL_TEST_PATCHES,
    ARL_TRAIN_PATCHES,
    arl_test_patches,
    arl_training_patches,
    average_over_patches,
)
from zoo.arl_cnn.recipe import (
    ARL_AUGMENTATION,
    ARL_RECIPE,
    FINE_TUNING_LEARNING_RATE,
    HALVING_EPOCHS,
    SCRATCH_LEARNING_RATE,
    arl_sgd,
)
from zoo.metrics import classification_scores, isic2017_average_auc
from zoo.params import count_parameters
from zoo.recipe import TrainingRecipe
from zoo.submission import write_isic2017_classification_csv
from zoo.train import TrainResult

TASKS = ("melanoma", "seborrheic_keratosis")
"""The two binary sub-tasks (Sec. IV-A), named as the ISIC 2017 Part 3 CSV columns."""
TASK_ABBREVIATIONS = {"melanoma": "M", "seborrheic_keratosis": "SK"}
"""Column prefixes, as Table VI abbreviates the sub-tasks."""

THRESHOLD = 0.5  # accuracy / sensitivity / specificity (not in the paper)
CLASSES = 2
"""Each sub-task model's softmax: rest, positive (Table I's 2-unit output layer)."""
RESULT_FILE = "task_result.json"
SETTINGS_FILE = "settings.json"
PREDICTIONS_FILE = "predictions.csv"

SMOKE = {
    "epochs": 1,
    "batch_size": 4,
    "image_size": 32,
    "steps_per_epoch": 2,
    "pretrained": False,
    "learning_rate": 1e-4,
}
"""``--smoke``: 32x32 patches, two steps of one epoch, random weights (no download).

The small learning rate keeps the barely trained networks finite in inference mode:
after two steps at 0.01 their batch-norm moving statistics are far from the
activations' (RAN14's soft-mask branch pools 32x32 inputs down to 1x1 maps)."""


def _make_synthetic_data(root: Path) -> Path:
    """Synthetic ISIC 2017 in ``root/isic2017`` and synthetic extra images beside it."""
    data_dir = make_isic2017(root / "isic2017", n_train=6, n_val=3, n_test=6, image_size=(48, 64))
    write_synthetic_extras(root)
    return data_dir


DATASET = DatasetNeed(
    name="ISIC 2017 (Part 3)",
    default_dir="data/isic2017",
    how_to_get="python -m data_tools.download isic2017 --dest data/isic2017",
    make_synthetic=_make_synthetic_data,
)


# --------------------------------------------------------------------------- rows and models


IMAGENET = "imagenet"
"""The rows fine-tuned from ImageNet (the "*" of Tables III-VII) start from
keras.applications' ResNet50 weights (``--resnet50-weights`` names a local copy)."""


def scratch_row(name: str, values: Mapping[str, Any], model: str, **builder_args: Any) -> PaperRow:
    """A row whose registered ``model`` trains from scratch with the registered recipe
    as it is (Sec. IV-B: learning rate 0.01); ``builder_args``: its variant."""
    return PaperRow(name, values, model=model, builder_args=builder_args)


def imagenet_row(name: str, values: Mapping[str, Any], model: str, **builder_args: Any) -> PaperRow:
    """A "*" row: the registered ``model`` starts from ImageNet ResNet50 weights
    (builder argument ``encoder_weights="imagenet"``) and fine-tunes at the paper's
    learning rate 1e-4 (Sec. IV-B; the recipe override ``learning_rate``)."""
    return PaperRow(
        name,
        values,
        model=model,
        builder_args={"encoder_weights": IMAGENET, **builder_args},
        recipe_overrides={"learning_rate": FINE_TUNING_LEARNING_RATE},
    )


def fine_tuned(row: PaperRow) -> bool:
    """The row starts from ImageNet weights (:func:`imagenet_row`)."""
    return row.builder_args.get("encoder_weights") is not None


# --------------------------------------------------------------------------- columns


SCORE_KEYS = {"AUC": "auc", "ACC": "accuracy", "Sensitivity": "sensitivity", "Specificity": "specificity"}
"""Column header (Tables III-V) -> key of :func:`zoo.metrics.classification_scores`."""
SCORE_COLUMNS = tuple(
    Column(f"{TASK_ABBREVIATIONS[task]} {header}", higher_is_better=True, decimals=3)
    for task in TASKS
    for header in SCORE_KEYS
)
"""Tables III-V's eight score columns: ``"M AUC"`` ... ``"SK Specificity"``."""


def paper_scores(melanoma: Sequence[float], keratosis: Sequence[float]) -> dict[str, float]:
    """A paper row's eight scores by column name: (AUC, ACC, Sensitivity, Specificity)
    of melanoma, then of seborrheic keratosis, as Tables III-V print them."""
    return dict(zip((column.name for column in SCORE_COLUMNS), (*melanoma, *keratosis), strict=True))


AVERAGE_AUC = Column("Average AUC", higher_is_better=True, decimals=3)
PARAMS = Column("Params", "x10^7", decimals=2)
"""Counted as the paper counts (:func:`zoo.params.count_parameters`), with two decimals:
the paper's one decimal follows no one rounding of these counts (ResNet50's 2.351e7 is
printed 2.3, SEnet14's 1.081e7 1.1; Table III's notes)."""


# --------------------------------------------------------------------------- flags


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The tables' own flags. None repeats a recipe value: ``--learning-rate``,
    ``--batch-size``, ``--epochs`` and ``--monitor`` are the frame's override flags
    (default: the registered recipe's), ``--momentum`` and ``--halving-epochs`` replace
    the recipe's optimiser (:func:`row_recipe`), and the defaults say "the recipe's"."""
    parser.add_argument(
        "--image-size",
        type=number_in_range(int, 32),
        help="patch side fed to the networks, at least 32 (default: the registered "
        f"input's, {ARL_INPUT.image_size[0]}, Sec. IV-B)",
    )
    parser.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the paper's '*' rows (the 50-layer models) from ImageNet ResNet50 "
        f"weights and fine-tune them at the learning rate {FINE_TUNING_LEARNING_RATE} "
        "(Sec. IV-B); --no-pretrained trains them from scratch at the recipe's "
        f"{SCRATCH_LEARNING_RATE} (default: on; the 14-layer models always start "
        "from scratch)",
    )
    parser.add_argument(
        "--resnet50-weights",
        help="with --pretrained: a local copy of keras.applications' no-top ResNet50 "
        "weights file (default: the rows' 'imagenet', downloaded)",
    )
    parser.add_argument(
        "--momentum",
        type=number_in_range(float, 0.0, 1.0),
        help="SGD momentum (default: the recipe's, 0: the paper names plain mini-batch SGD)",
    )
    parser.add_argument(
        "--halving-epochs",
        type=number_in_range(int, 1),
        help=f"halve the learning rate every this many epochs (default: the recipe's, {HALVING_EPOCHS}, Sec. IV-B)",
    )
    parser.add_argument(
        "--steps-per-epoch",
        type=number_in_range(int, 1),
        help="training batches per epoch (default: one pass over the 60 patches of every training image)",
    )
    parser.add_argument(
        "--extra-images",
        type=extra_images_argument,
        default=DEFAULT_LIST,
        help="the extra ISIC Archive training images (Sec. IV-A: 1320; a list "
        "image_id,melanoma,seborrheic_keratosis[,path] as "
        "reproduce/arl_extra_images.py writes it), or 'none' to train on the "
        "2000 challenge images only (default: %(default)s)",
    )
    parser.add_argument(
        "--colour-constancy",
        choices=("gray_world",),
        help="normalise every image's colour with the gray-world algorithm first "
        "(Sec. V-F: ARL-CNN50 then reaches an average AUC of 0.918; default: off, "
        "as every table of the paper)",
    )
    parser.add_argument(
        "--threshold",
        type=number_in_range(float, 0.0, 1.0, include_low=False),
        default=THRESHOLD,
        help="score threshold of accuracy, sensitivity and specificity (default: %(default)s)",
    )


def input_spec(args: argparse.Namespace, weights: str | None) -> InputSpec:
    """Patches of ``--image-size`` (default: the registered input's 224), stretched; in
    keras.applications' "caffe" scaling for ImageNet ResNet50 weights (what they
    expect, :data:`zoo.arl_cnn.ARL_PRETRAINED_INPUT`), else in [0, 1]
    (:data:`zoo.arl_cnn.ARL_INPUT`)."""
    size = ARL_INPUT.image_size if args.image_size is None else (args.image_size, args.image_size)
    base = ARL_INPUT if weights is None else ARL_PRETRAINED_INPUT
    return dataclasses.replace(base, image_size=size, colour_constancy=args.colour_constancy)


def initial_weights(ctx: RowContext) -> str | None:
    """The row's ImageNet start (:func:`imagenet_row`, ``--resnet50-weights`` for a local
    copy) unless ``--no-pretrained``; None for the rows trained from scratch."""
    if not fine_tuned(ctx.row) or not ctx.args.pretrained:
        return None
    return ctx.args.resnet50_weights or ctx.row.builder_args["encoder_weights"]


def row_builder_args(ctx: RowContext, spec: InputSpec) -> dict[str, Any]:
    """The row's builder arguments (:meth:`~reproduce.frame.RowContext.builder_args`):
    the registered model's, the row's variant, and the script's input shape, the two
    softmax units of one sub-task (Table I) and the initial weights."""
    return ctx.builder_args(input_shape=spec.input_shape, classes=CLASSES, encoder_weights=initial_weights(ctx))


def script_overrides(ctx: RowContext) -> dict[str, Any]:
    """The recipe changes the script's flags choose (None keeps the recipe's):
    ``--momentum``/``--halving-epochs`` make another :func:`zoo.arl_cnn.recipe.arl_sgd`,
    and ``--no-pretrained`` trains a "*" row from scratch at the recipe's own learning
    rate instead of the row's fine-tuning one (Sec. IV-B)."""
    sgd = {"momentum": ctx.args.momentum, "halving_epochs": ctx.args.halving_epochs}
    sgd = {key: value for key, value in sgd.items() if value is not None}
    scratch = fine_tuned(ctx.row) and initial_weights(ctx) is None
    return {
        "optimizer": arl_sgd(**sgd) if sgd else None,
        "learning_rate": ctx.entry.recipe.learning_rate if scratch else None,
    }


def row_recipe(ctx: RowContext) -> TrainingRecipe:
    """The row's recipe: registered, then the row's overrides, then the script's
    (:func:`script_overrides`), then the command line's (:meth:`RowContext.recipe`)."""
    return ctx.recipe(**script_overrides(ctx))


# --------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class Splits:
    """The records a row trains, validates and tests on."""

    train: Sequence[Record]
    validation: Sequence[Record]
    test: Sequence[Record]


def read_splits(ctx: RowContext, parts: Sequence[int] = (3,), *, extras: bool = True) -> Splits:
    """ISIC 2017 training, validation and test records with their Part 3 labels; the
    training set enlarged by ``--extra-images`` (Sec. IV-A) unless ``extras=False`` or
    ``--extra-images none``."""
    read = functools.partial(read_isic2017, ctx.data_dir, parts=parts, skip_bad=ctx.bad_inputs)
    splits = Splits(read("train"), read("validation"), read("test"))
    if not extras or ctx.args.extra_images is None:
        return splits
    return add_extra_images(ctx, splits)


def add_extra_images(ctx: RowContext, splits: Splits) -> Splits:
    """``splits`` with the ``--extra-images`` added to the training set; a listed image
    of the challenge (any split) is refused (it would leak or count twice)."""
    challenge_ids = {r.image_id for split in (splits.train, splits.validation, splits.test) for r in split}
    added = read_extra_images(extra_images_path(ctx), challenge_ids, skip_bad=ctx.bad_inputs)
    return Splits([*splits.train, *added], splits.validation, splits.test)


def extra_images_path(ctx: RowContext) -> Path:
    """``--extra-images`` (the synthetic list under ``--smoke`` by default); a missing
    list stops with how to make it or how to run without it."""
    path = ctx.args.extra_images
    if ctx.smoke and path == DEFAULT_LIST:
        return ctx.data_dir.parent / SYNTHETIC_LIST
    if not Path(path).is_file():
        raise MissingDataError(
            f"The paper trains with 1320 extra ISIC Archive images (Sec. IV-A), listed in {path}, which "
            f"does not exist. Make it with\n  python reproduce/arl_extra_images.py --isic2017 {ctx.data_dir} "
            f"--dest {Path(path).parent}\nor pass --extra-images FILE.csv, or --extra-images none to train "
            "on the 2000 challenge images only (the title then says so)."
        )
    return Path(path)


def extras_variant(args: argparse.Namespace) -> str | None:
    """The title's note when the run departs from the paper's tables (``run_table(variant=)``):
    without the extra images, or with colour constancy (Sec. V-F)."""
    notes = [] if args.extra_images is not None else ["no extra images: the 2000 ISIC 2017 training images only"]
    return "; ".join([*notes, *filter(None, [colour_constancy_variant(args)])]) or None


def colour_constancy_variant(args: argparse.Namespace) -> str | None:
    """The title's note when the images are colour-normalised (Sec. V-F), else ``None``."""
    if getattr(args, "colour_constancy", None):
        return f"{args.colour_constancy} colour constancy (Sec. V-F: average AUC 0.918)"
    return None


OPTIMISER_NOTE = (
    "Optimiser: Sec. IV-B names 'mini-batch SGD' (lr 0.01 from scratch, 1e-4 fine-tuning, halved every "
    "30 epochs, batch 32) and no momentum or weight decay anywhere; we run its literal reading, plain "
    "SGD with momentum 0 and no weight decay (--momentum sets a momentum)."
)

EXTRAS_NOTE = (
    "Trained on the 2000 ISIC 2017 training images plus 1320 ISIC Archive images (Sec. IV-A: "
    "466 melanoma, 822 nevus, 32 seborrheic keratosis); the paper lists none, so "
    "reproduce/arl_extra_images.py draws a seeded sample with those counts (--extra-images none: "
    "the 2000 only, named in the title). --colour-constancy gray_world: Sec. V-F's variant, "
    "average AUC 0.918 in the paper."
)


def _one_hot(labels: tf.Tensor) -> tf.Tensor:
    """``[B, 1]`` labels of a sub-task -> ``[B, 2]`` (rest, positive), the softmax's order."""
    return tf.concat([1.0 - labels, labels], axis=-1)


def _flatten_patches(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``[B, 9, h, w, 3]`` test patches -> ``[9B, h, w, 3]``, each with its image's label."""
    shape = tf.shape(images)
    patches = tf.reshape(images, tf.concat([[-1], shape[2:]], axis=0))
    return patches, tf.repeat(labels, ARL_TEST_PATCHES, axis=0)


def training_patches(
    records: Sequence[Record], task: str, spec: InputSpec, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Augmented random central patches (60 per image, fixed by ``seed``), the images
    shuffled every epoch and their patches mixed, repeated: ``(patch, one-hot)``."""
    data = classification_dataset(
        records,
        spec,
        label_names=(task,),
        batch_size=batch_size,
        training=True,
        expand=functools.partial(arl_training_patches, size=spec.image_size),
        augment=ARL_AUGMENTATION,
        seed=seed,
        repeat=True,
    )
    return data.map(lambda images, labels: (images, _one_hot(labels)))


def evaluation_patches(
    records: Sequence[Record], task: str, spec: InputSpec, batch_size: int, cache: bool, seed: int
) -> tf.data.Dataset:
    """The 9 test patches of each image (drawn with ``seed``, the run's), consecutive,
    with the image's one-hot label.

    A batch holds the patches of ``ceil(batch_size / 9)`` images.
    """
    images_per_batch = math.ceil(batch_size / ARL_TEST_PATCHES)
    data = classification_dataset(
        records,
        spec,
        label_names=(task,),
        batch_size=images_per_batch,
        training=False,
        expand=functools.partial(arl_test_patches, size=spec.image_size),
        cache=cache,
        seed=seed,
    )
    return data.map(_flatten_patches).map(lambda images, labels: (images, _one_hot(labels)))


def steps_per_epoch(args: argparse.Namespace, train: Sequence[Record], batch_size: int) -> int:
    """``--steps-per-epoch``, else one pass over the 60 patches of every training image
    in batches of ``batch_size`` (the recipe's)."""
    if args.steps_per_epoch is not None:
        return args.steps_per_epoch
    return max(1, ARL_TRAIN_PATCHES * len(train) // batch_size)


# --------------------------------------------------------------------------- training


def auc_metric() -> keras.metrics.Metric:
    """ROC AUC of the positive class: the mean over both softmax columns equals it (the
    rest column ranks the images in reverse against reversed labels)."""
    return keras.metrics.AUC(num_thresholds=1000, multi_label=True, num_labels=CLASSES, name="auc")


@dataclasses.dataclass(frozen=True)
class TaskPlan:
    """How a row trains each of its sub-task models: everything :func:`train_task` and
    the run card need, decided once per row (:func:`task_plan`).

    Attributes:
        builder_args: the registered model's builder arguments for this row.
        recipe: the row's recipe (:func:`row_recipe`).
        spec: the patches' input spec.
    """

    builder_args: Mapping[str, Any]
    recipe: TrainingRecipe
    spec: InputSpec


def task_plan(ctx: RowContext) -> TaskPlan:
    """The row's builder arguments, recipe and input spec."""
    spec = input_spec(ctx.args, initial_weights(ctx))
    return TaskPlan(row_builder_args(ctx, spec), row_recipe(ctx), spec)


def train_task(ctx: RowContext, plan: TaskPlan, task: str, splits: Splits, out_dir: Path, seed: int) -> TrainResult:
    """Trains the row's model on one sub-task through :meth:`RowContext.fit` (the
    recipe's optimiser, loss, epochs and batch size); returns the best epoch's model."""
    batch_size = plan.recipe.batch_size
    return ctx.fit(
        training_patches(splits.train, task, plan.spec, batch_size, seed),
        evaluation_patches(splits.validation, task, plan.spec, batch_size, cache=True, seed=seed),
        builder_args=plan.builder_args,
        recipe=plan.recipe,
        steps_per_epoch=steps_per_epoch(ctx.args, splits.train, batch_size),
        metrics=[auc_metric],
        repeated=True,
        out_dir=out_dir,
        seed=seed,
    )


def image_scores(
    model: keras.Model, records: Sequence[Record], task: str, spec: InputSpec, batch_size: int, seed: int
) -> np.ndarray:
    """Each image's positive-class probability, averaged over its 9 test patches
    (drawn with ``seed``, the run's: :func:`evaluation_patches`).

    Raises:
        FloatingPointError: a score is not finite (the training diverged).
    """
    patches = evaluation_patches(records, task, spec, batch_size, cache=False, seed=seed)
    probabilities = model.predict(patches.map(lambda images, _: images), verbose=0)
    scores = average_over_patches(probabilities, ARL_TEST_PATCHES).numpy()[:, 1]
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError(
            f"{model.name} ({task}): test scores are not finite; the training diverged (try a lower --learning-rate)"
        )
    return scores


def rescore_run(
    run: Any, records: Sequence[Record], threshold: float | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """A run folder's model (:func:`zoo.load_run`) scored again as its table scored it:
    the test patches of its recorded seed and sub-task, in its input spec; returns the
    per-image scores and :func:`zoo.metrics.classification_scores` (at the recorded
    threshold unless ``threshold``)."""
    task, seed = run.card.data["task"], run.card.training["seed"]
    scores = image_scores(run.model, records, task, run.input_spec, run.card.training["batch_size"], seed)
    labels = [record.labels[task] for record in records]
    threshold = run.card.training["threshold"] if threshold is None else threshold
    return scores, classification_scores(labels, scores, threshold=threshold)


@dataclasses.dataclass
class TaskResult:
    """One trained sub-task model and its test scores.

    Attributes:
        scores: :func:`zoo.metrics.classification_scores` of the test images.
        image_scores: test image id -> averaged positive-class probability.
        history, kept_epoch: from :func:`zoo.train.fit` (the kept epoch counted from 1).
        params: the model's parameter count as the paper counts it (trainable, no
            bias in a convolution that batch norm follows: :func:`zoo.params.count_parameters`).
        keras_params: Keras' ``count_params`` (moving statistics and those biases included).
        run: the run folder of the trained model (``zoo.load_run(run)``).
    """

    scores: dict[str, float]
    image_scores: dict[str, float]
    history: dict[str, list[float]]
    kept_epoch: int
    params: int
    keras_params: int = 0
    run: str | None = None


def _settings(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The flags a trained task depends on."""
    flags = {k: v for k, v in vars(args).items() if k not in NON_RESULT_FLAGS}
    return report.json_safe({**flags, "seed": seed})


def claim_folder(folder: Path, settings: Mapping[str, Any]) -> None:
    """Makes ``folder`` a work folder of ``settings`` (recorded in ``settings.json``).

    A folder recorded with other settings is emptied first, so that no stale
    checkpoint, backup, run or result made with them is resumed or reused; one
    recorded with the same settings is kept as it is (its finished work is reused, an
    interrupted training resumes).
    """
    record = folder / SETTINGS_FILE
    settings = report.json_safe(settings)
    if record.is_file() and json.loads(record.read_text(encoding="utf-8")) != settings:
        print(f"    {folder} was made with other settings: starting over")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings, indent=1), encoding="utf-8")


def train_and_score(
    ctx: RowContext,
    plan: TaskPlan,
    task: str,
    splits: Splits,
    out_dir: Path,
    seed: int,
    data: Mapping[str, Any] | None = None,
) -> TaskResult:
    """Trains one sub-task model, scores it on the test split and makes ``out_dir`` its
    run folder (:meth:`RowContext.save_run`: the weights scored, the scores in the
    card; ``data`` adds to the card's data record). A task finished earlier in
    ``out_dir`` with the same flags is reused (:func:`claim_folder`)."""
    result_file = out_dir / RESULT_FILE
    claim_folder(out_dir, _settings(ctx.args, seed))
    if result_file.is_file():
        print(f"    {task}: finished earlier in {out_dir}, kept")
        return TaskResult(**json.loads(result_file.read_text(encoding="utf-8")))
    trained = train_task(ctx, plan, task, splits, out_dir, seed)
    batch_size = plan.recipe.batch_size
    scores = image_scores(trained.model, splits.test, task, plan.spec, batch_size, seed)
    labels = [record.labels[task] for record in splits.test]
    result = TaskResult(
        scores=classification_scores(labels, scores, threshold=ctx.args.threshold),
        image_scores={r.image_id: float(s) for r, s in zip(splits.test, scores, strict=True)},
        history=trained.history,
        kept_epoch=trained.kept_epoch,
        params=count_parameters(trained.model).pytorch_style,
        keras_params=trained.model.count_params(),
        run=str(out_dir),
    )
    ctx.save_run(
        trained.model,
        builder_args=plan.builder_args,
        recipe=plan.recipe,
        input_spec=plan.spec,
        scores={"task": task, **result.scores, "test_images": len(splits.test)},
        training={
            "seed": seed,
            "kept_epoch": trained.kept_epoch,
            "batch_size": batch_size,
            "steps_per_epoch": steps_per_epoch(ctx.args, splits.train, batch_size),
            "test_patches": ARL_TEST_PATCHES,
            "threshold": ctx.args.threshold,
        },
        data={
            "task": task,
            "train_images": len(splits.train),
            "validation_images": len(splits.validation),
            "test_images": len(splits.test),
            "extra_images": None if ctx.args.extra_images is None else str(extra_images_path(ctx)),
            **(data or {}),
        },
        folder=out_dir,
    )
    result_file.write_text(json.dumps(report.json_safe(dataclasses.asdict(result)), indent=1), encoding="utf-8")
    return result


# --------------------------------------------------------------------------- rows


@dataclasses.dataclass
class RowScores:
    """Both sub-task models of a row, scored on the same test images."""

    tasks: dict[str, TaskResult]
    test: Sequence[Record]
    monitor: str = ARL_RECIPE.monitor

    def values(self) -> dict[str, float]:
        """The eight score columns of Tables III-V (:data:`SCORE_COLUMNS`)."""
        return {
            f"{TASK_ABBREVIATIONS[task]} {header}": result.scores[key]
            for task, result in self.tasks.items()
            for header, key in SCORE_KEYS.items()
        }

    def challenge_scores(self) -> dict[str, float]:
        """ISIC 2017 Part 3's AUCs and their mean, the challenge's ranking score."""
        truth = [[r.labels[task] for task in TASKS] for r in self.test]
        scores = [[self.tasks[task].image_scores[r.image_id] for task in TASKS] for r in self.test]
        return isic2017_average_auc(np.array(truth), np.array(scores))

    def write_predictions(self, path: Path) -> Path:
        """The test scores as an ISIC 2017 Part 3 submission CSV."""
        ids = [r.image_id for r in self.test]
        columns = [[self.tasks[task].image_scores[i] for i in ids] for task in TASKS]
        return write_isic2017_classification_csv(path, ids, *columns)

    def extra(self) -> dict[str, Any]:
        """What a row keeps besides its columns: every score, epochs, sizes, histories,
        and each sub-task's run folder."""
        return {
            "params": self.tasks[TASKS[0]].params,
            "keras_params": self.tasks[TASKS[0]].keras_params,
            "challenge": self.challenge_scores(),
            "test_images": len(self.test),
            "runs": {task: r.run for task, r in self.tasks.items()},
            **{
                task: {"scores": r.scores, "kept_epoch": r.kept_epoch, "history": r.history}
                for task, r in self.tasks.items()
            },
        }


def score_model(
    ctx: RowContext,
    splits: Splits,
    *,
    out_dir: Path | None = None,
    seed: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> RowScores:
    """Trains and scores the two sub-task models of one row (or one run of a row): the
    row's registered model, builder arguments and recipe (:func:`task_plan`).

    Each model's run folder is ``out_dir/<task>/`` (default: the row's folder);
    ``seed`` defaults to ``--seed``; ``data`` adds to the run cards' data record.
    Writes ``out_dir/predictions.csv``.
    """
    out_dir = ctx.out_dir if out_dir is None else out_dir
    seed = ctx.args.seed if seed is None else seed
    plan = task_plan(ctx)
    tasks = {task: train_and_score(ctx, plan, task, splits, out_dir / task, seed, data) for task in TASKS}
    row = RowScores(tasks, splits.test, plan.recipe.monitor)
    row.write_predictions(out_dir / PREDICTIONS_FILE)
    return row


def row_result(row: RowScores, values: Mapping[str, float]) -> RowResult:
    """A frame row from ``values`` (the table's columns); the curves show the melanoma
    model's training (the other's history is in ``extra``)."""
    return RowResult(dict(values), history=row.tasks[TASKS[0]].history, monitor=row.monitor, extra=row.extra())


def table_values(row: RowScores, *, params: bool = False, average_auc: bool = False) -> dict[str, float]:
    """The score columns, plus ``Params`` (x10^7) and ``Average AUC`` when asked."""
    values = row.values()
    if params:
        values[PARAMS.name] = row.tasks[TASKS[0]].params / 1e7
    if average_auc:
        values[AVERAGE_AUC.name] = row.challenge_scores()["average_auc"]
    return values
