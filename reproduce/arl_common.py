"""The recipe the five ARL-CNN table scripts share: data, patches, training, scoring.

Zhang et al., "Attention Residual Learning for Skin Lesion Classification", IEEE TMI
2019 (``arl_cnn.txt``). Tables III-VII train classifiers of
:mod:`zoo.arl_cnn.models` with one recipe and score them on the ISIC 2017 test set:

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
* **training** (Sec. IV-B): mini-batch SGD, batch 32, learning rate 0.01 from
  scratch and 1e-4 when fine-tuning from ImageNet (the "*" rows of Table III),
  halved every 30 epochs, 100 epochs, the best epoch on the official validation
  set (:func:`zoo.train.fit`).
* **test** (Sec. IV-B, IV-C): 9 random patches of each test image, drawn as in
  training with the run's seed, softmax scores averaged
  (:func:`zoo.arl_cnn.patches.average_over_patches`); AUC, accuracy,
  sensitivity and specificity (eq. 10-12, :func:`zoo.metrics.classification_scores`)
  and the challenge's average AUC (:func:`zoo.metrics.isic2017_average_auc`).

What the paper leaves open, and what we chose (flags change it):

* SGD momentum: the paper names plain "mini-batch SGD": 0 (``--momentum``).
* Input values: keras.applications' "caffe" scaling for models starting from its
  ImageNet ResNet50 weights (what they expect), [0, 1] for models from scratch.
* Best epoch: the validation AUC of the validation images' 9 test patches, each
  scored on its own (Keras' streaming AUC); the test numbers average the patches.
* Patch seeds: an image's patches are fixed by the run's ``--seed`` (and the image's
  place in its split), drawn once as the paper extracts them before its online
  augmentation; the 9 test patches of each image change with the seed, so each of
  Table VII's runs draws its own.
* Threshold of accuracy, sensitivity and specificity: 0.5 on the averaged softmax.

Files per trained model (``<row>/<task>/``, :func:`train_and_score`): what
:func:`zoo.train.fit` writes, plus ``settings.json`` (the flags) and
``task_result.json`` (test scores, per-image scores, history). A finished task is
not trained again when its row is run again with the same flags (a row interrupted
in its second task keeps its first). A row also writes ``predictions.csv``, its
test scores in the ISIC 2017 Part 3 submission layout.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from data_tools.isic import read_isic2017
from data_tools.pipeline import classification_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import Record
from data_tools.synthetic import make_isic2017
from reproduce import report
from reproduce.arl_extra_images import (DEFAULT_LIST, SYNTHETIC_LIST, extra_images_argument, read_extra_images,
                                        write_synthetic_extras)
from reproduce.datasets import DatasetNeed, MissingDataError
from reproduce.frame import NON_RESULT_FLAGS, Column, RowContext, RowResult, number_in_range
from zoo.metrics import classification_scores, isic2017_average_auc
from zoo.arl_cnn.models import (build_arl_cnn14, build_arl_cnn50, build_ran14, build_ran50,
                                build_senet14, build_senet50)
from zoo.arl_cnn.models import build_resnet14, build_resnet50
from zoo.arl_cnn.patches import (ARL_TEST_PATCHES, ARL_TRAIN_PATCHES, arl_test_patches, arl_training_patches,
                                 average_over_patches)
from zoo.submission import write_isic2017_classification_csv
from zoo.arl_cnn.recipe import (ARL_AUGMENTATION, ARL_RECIPE, FINE_TUNING_LEARNING_RATE,
                                HALVING_EPOCHS, SCRATCH_LEARNING_RATE, arl_sgd)
from zoo.params import count_parameters
from zoo.train import TrainResult, fit

TASKS = ("melanoma", "seborrheic_keratosis")
"""The two binary sub-tasks (Sec. IV-A), named as the ISIC 2017 Part 3 CSV columns."""
TASK_ABBREVIATIONS = {"melanoma": "M", "seborrheic_keratosis": "SK"}
"""Column prefixes, as Table VI abbreviates the sub-tasks."""

THRESHOLD = 0.5                 # accuracy / sensitivity / specificity (not in the paper)
MONITOR = ARL_RECIPE.monitor
RESULT_FILE = "task_result.json"
SETTINGS_FILE = "settings.json"
PREDICTIONS_FILE = "predictions.csv"

PAPER_SETTINGS = {"epochs": ARL_RECIPE.epochs, "batch_size": ARL_RECIPE.batch_size}
"""Sec. IV-B: 100 epochs of mini-batches of 32 patches."""
SMOKE = {"epochs": 1, "batch_size": 4, "image_size": 32, "steps_per_epoch": 2,
         "pretrained": False, "learning_rate": 1e-4}
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


# --------------------------------------------------------------------------- models


@dataclasses.dataclass(frozen=True)
class ArlModel:
    """A classifier of Tables III-VII and how the paper initialises it.

    Attributes:
        build: a builder of :mod:`zoo.arl_cnn.models` or :mod:`zoo.common.resnet`.
        imagenet: the paper starts it from ImageNet weights (Table III's "*").
        options: extra builder arguments, e.g. ``{"attention": "channel"}``.
    """

    build: Callable[..., keras.Model]
    imagenet: bool
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


MODELS: dict[str, ArlModel] = {
    "ResNet14": ArlModel(build_resnet14, imagenet=False),
    "RAN14": ArlModel(build_ran14, imagenet=False),
    "SEnet14": ArlModel(build_senet14, imagenet=False),
    "ARL-CNN14": ArlModel(build_arl_cnn14, imagenet=False),
    "ResNet50": ArlModel(build_resnet50, imagenet=True),
    "RAN50": ArlModel(build_ran50, imagenet=True),
    "SEnet50": ArlModel(build_senet50, imagenet=True),
    "ARL-CNN50": ArlModel(build_arl_cnn50, imagenet=True),
}
"""The eight models of Table III (``MODELS["ARL-CNN50"]`` is the paper's model)."""


# --------------------------------------------------------------------------- columns


SCORE_KEYS = {"AUC": "auc", "ACC": "accuracy", "Sensitivity": "sensitivity",
              "Specificity": "specificity"}
"""Column header (Tables III-V) -> key of :func:`zoo.metrics.classification_scores`."""
SCORE_COLUMNS = tuple(Column(f"{TASK_ABBREVIATIONS[task]} {header}", higher_is_better=True,
                             decimals=3) for task in TASKS for header in SCORE_KEYS)
"""Tables III-V's eight score columns: ``"M AUC"`` ... ``"SK Specificity"``."""


def paper_scores(melanoma: Sequence[float], keratosis: Sequence[float]) -> dict[str, float]:
    """A paper row's eight scores by column name: (AUC, ACC, Sensitivity, Specificity)
    of melanoma, then of seborrheic keratosis, as Tables III-V print them."""
    return dict(zip((column.name for column in SCORE_COLUMNS), (*melanoma, *keratosis)))


AVERAGE_AUC = Column("Average AUC", higher_is_better=True, decimals=3)
PARAMS = Column("Params", "x10^7", decimals=2)
"""Counted as the paper counts (:func:`zoo.params.count_parameters`); two decimals, since
the paper's one-decimal values are rounded down (ResNet50: 2.351e7 printed 2.3)."""


# --------------------------------------------------------------------------- flags


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the recipe, with the paper's values as defaults."""
    parser.add_argument("--image-size", type=number_in_range(int, 32), default=224,
                        help="patch side fed to the networks, at least 32 (default: %(default)s)")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=True,
                        help="start the 50-layer models from ImageNet ResNet50 weights and "
                             f"fine-tune them at lr {FINE_TUNING_LEARNING_RATE}, as the paper's "
                             "'*' rows (default: on; the 14-layer models always start from "
                             "scratch)")
    parser.add_argument("--resnet50-weights", default="imagenet",
                        help="with --pretrained: 'imagenet' (download) or a local copy of "
                             "keras.applications' no-top ResNet50 weights file "
                             "(default: %(default)s)")
    parser.add_argument("--learning-rate", type=number_in_range(float, 0.0, include_low=False),
                        help=f"initial SGD learning rate (default: {SCRATCH_LEARNING_RATE} from "
                             f"scratch, {FINE_TUNING_LEARNING_RATE} fine-tuning)")
    parser.add_argument("--momentum", type=number_in_range(float, 0.0, 1.0), default=0.0,
                        help="SGD momentum; the paper names plain mini-batch SGD "
                             "(default: %(default)s)")
    parser.add_argument("--halving-epochs", type=number_in_range(int, 1), default=HALVING_EPOCHS,
                        help="halve the learning rate every this many epochs "
                             "(default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=number_in_range(int, 1),
                        help="training batches per epoch (default: one pass over the 60 "
                             "patches of every training image)")
    parser.add_argument("--extra-images", type=extra_images_argument, default=DEFAULT_LIST,
                        help="the extra ISIC Archive training images (Sec. IV-A: 1320; a list "
                             "image_id,melanoma,seborrheic_keratosis[,path] as "
                             "reproduce/arl_extra_images.py writes it), or 'none' to train on the "
                             "2000 challenge images only (default: %(default)s)")
    parser.add_argument("--colour-constancy", choices=("gray_world",),
                        help="normalise every image's colour with the gray-world algorithm first "
                             "(Sec. V-F: ARL-CNN50 then reaches an average AUC of 0.918; default: off, "
                             "as every table of the paper)")
    parser.add_argument("--threshold", type=number_in_range(float, 0.0, 1.0, include_low=False),
                        default=THRESHOLD,
                        help="score threshold of accuracy, sensitivity and specificity "
                             "(default: %(default)s)")


def input_spec(args: argparse.Namespace, weights: str | None) -> InputSpec:
    """Patches of ``--image-size``, stretched; in keras.applications' "caffe" scaling
    for ImageNet ResNet50 weights (what they expect), else in [0, 1]."""
    return InputSpec(image_size=(args.image_size, args.image_size),
                     scale="unit" if weights is None else "caffe",
                     colour_constancy=args.colour_constancy)


def initial_weights(args: argparse.Namespace, model: ArlModel) -> str | None:
    """``--resnet50-weights`` for the paper's ImageNet-initialised models, else None."""
    return args.resnet50_weights if model.imagenet and args.pretrained else None


def learning_rate(args: argparse.Namespace, weights: str | None) -> float:
    """``--learning-rate``, else the paper's: 1e-4 fine-tuning, 0.01 from scratch."""
    if args.learning_rate is not None:
        return args.learning_rate
    return FINE_TUNING_LEARNING_RATE if weights is not None else SCRATCH_LEARNING_RATE


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
            "on the 2000 challenge images only (the title then says so).")
    return Path(path)


def extras_variant(args: argparse.Namespace) -> str | None:
    """The title's note when the run departs from the paper's tables (``run_table(variant=)``):
    without the extra images, or with colour constancy (Sec. V-F)."""
    notes = []
    if args.extra_images is None:
        notes.append("no extra images: the 2000 ISIC 2017 training images only")
    if getattr(args, "colour_constancy", None):
        notes.append(f"{args.colour_constancy} colour constancy (Sec. V-F: average AUC 0.918)")
    return "; ".join(notes) or None


EXTRAS_NOTE = ("Trained on the 2000 ISIC 2017 training images plus 1320 ISIC Archive images (Sec. IV-A: "
               "466 melanoma, 822 nevus, 32 seborrheic keratosis); the paper lists none, so "
               "reproduce/arl_extra_images.py draws a seeded sample with those counts (--extra-images none: "
               "the 2000 only, named in the title). --colour-constancy gray_world: Sec. V-F's variant, "
               "average AUC 0.918 in the paper.")


def _one_hot(labels: tf.Tensor) -> tf.Tensor:
    """``[B, 1]`` labels of a sub-task -> ``[B, 2]`` (rest, positive), the softmax's order."""
    return tf.concat([1.0 - labels, labels], axis=-1)


def _flatten_patches(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``[B, 9, h, w, 3]`` test patches -> ``[9B, h, w, 3]``, each with its image's label."""
    shape = tf.shape(images)
    patches = tf.reshape(images, tf.concat([[-1], shape[2:]], axis=0))
    return patches, tf.repeat(labels, ARL_TEST_PATCHES, axis=0)


def training_patches(records: Sequence[Record], task: str, spec: InputSpec, batch_size: int,
                     seed: int) -> tf.data.Dataset:
    """Augmented random central patches (60 per image, fixed by ``seed``), the images
    shuffled every epoch and their patches mixed, repeated: ``(patch, one-hot)``."""
    data = classification_dataset(records, spec, label_names=(task,),
                                  batch_size=batch_size, training=True,
                                  expand=functools.partial(arl_training_patches, size=spec.image_size),
                                  augment=ARL_AUGMENTATION, seed=seed, repeat=True)
    return data.map(lambda images, labels: (images, _one_hot(labels)))


def evaluation_patches(records: Sequence[Record], task: str, spec: InputSpec, batch_size: int,
                       cache: bool, seed: int) -> tf.data.Dataset:
    """The 9 test patches of each image (drawn with ``seed``, the run's), consecutive,
    with the image's one-hot label.

    A batch holds the patches of ``ceil(batch_size / 9)`` images.
    """
    images_per_batch = math.ceil(batch_size / ARL_TEST_PATCHES)
    data = classification_dataset(records, spec, label_names=(task,),
                                  batch_size=images_per_batch, training=False,
                                  expand=functools.partial(arl_test_patches, size=spec.image_size),
                                  cache=cache, seed=seed)
    return data.map(_flatten_patches).map(lambda images, labels: (images, _one_hot(labels)))


def steps_per_epoch(args: argparse.Namespace, train: Sequence[Record]) -> int:
    """``--steps-per-epoch``, else one pass over the 60 patches of every training image."""
    if args.steps_per_epoch is not None:
        return args.steps_per_epoch
    return max(1, ARL_TRAIN_PATCHES * len(train) // args.batch_size)


# --------------------------------------------------------------------------- training


def auc_metric() -> keras.metrics.Metric:
    """ROC AUC of the positive class: the mean over both softmax columns equals it (the
    rest column ranks the images in reverse against reversed labels)."""
    return keras.metrics.AUC(num_thresholds=1000, multi_label=True, num_labels=2, name="auc")


def train_task(ctx: RowContext, model: ArlModel, task: str, splits: Splits, out_dir: Path,
               seed: int) -> TrainResult:
    """Trains ``model`` on one sub-task with the recipe; returns the best epoch's model."""
    args = ctx.args
    weights = initial_weights(args, model)
    steps = steps_per_epoch(args, splits.train)
    config = ctx.train_config(out_dir=out_dir, seed=seed, monitor=MONITOR, mode="max",
                              steps_per_epoch=steps)
    spec = input_spec(args, weights)
    return fit(lambda: model.build(spec.input_shape, 2, encoder_weights=weights, **model.options),
               training_patches(splits.train, task, spec, args.batch_size, seed),
               evaluation_patches(splits.validation, task, spec, args.batch_size, cache=True, seed=seed),
               config,
               optimizer=lambda: arl_sgd(args.momentum, args.halving_epochs)(
                   learning_rate(args, weights), steps, args.epochs),
               loss=ARL_RECIPE.loss, metrics=[auc_metric])


def image_scores(model: keras.Model, records: Sequence[Record], task: str, spec: InputSpec,
                 batch_size: int, seed: int) -> np.ndarray:
    """Each image's positive-class probability, averaged over its 9 test patches
    (drawn with ``seed``, the run's: :func:`evaluation_patches`).

    Raises:
        FloatingPointError: a score is not finite (the training diverged).
    """
    patches = evaluation_patches(records, task, spec, batch_size, cache=False, seed=seed)
    probabilities = model.predict(patches.map(lambda images, _: images), verbose=0)
    scores = average_over_patches(probabilities, ARL_TEST_PATCHES).numpy()[:, 1]
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError(f"{model.name} ({task}): test scores are not finite; the "
                                 "training diverged (try a lower --learning-rate)")
    return scores


@dataclasses.dataclass
class TaskResult:
    """One trained sub-task model and its test scores.

    Attributes:
        scores: :func:`zoo.metrics.classification_scores` of the test images.
        image_scores: test image id -> averaged positive-class probability.
        history, best_epoch: from :func:`zoo.train.fit`.
        params: the model's parameter count as the paper counts it (trainable, no
            bias in a convolution that batch norm follows: :func:`zoo.params.count_parameters`).
        keras_params: Keras' ``count_params`` (moving statistics and those biases included).
    """

    scores: dict[str, float]
    image_scores: dict[str, float]
    history: dict[str, list[float]]
    best_epoch: int
    params: int
    keras_params: int = 0


def _settings(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The flags a trained task depends on."""
    flags = {k: v for k, v in vars(args).items() if k not in NON_RESULT_FLAGS}
    return report.json_safe({**flags, "seed": seed})


def claim_folder(folder: Path, settings: Mapping[str, Any]) -> None:
    """Makes ``folder`` a work folder of ``settings`` (recorded in ``settings.json``).

    A folder recorded with other settings is emptied first, so that no stale
    checkpoint, backup or result made with them is resumed or reused; one recorded
    with the same settings is kept as it is (its finished work is reused, an
    interrupted training resumes).
    """
    record = folder / SETTINGS_FILE
    settings = report.json_safe(settings)
    if record.is_file() and json.loads(record.read_text(encoding="utf-8")) != settings:
        print(f"    {folder} was made with other settings: starting over")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings, indent=1), encoding="utf-8")


def train_and_score(ctx: RowContext, model: ArlModel, task: str, splits: Splits,
                    out_dir: Path, seed: int) -> TaskResult:
    """Trains one sub-task model and scores it on the test split; a task finished
    earlier in ``out_dir`` with the same flags is reused (:func:`claim_folder`)."""
    result_file = out_dir / RESULT_FILE
    claim_folder(out_dir, _settings(ctx.args, seed))
    if result_file.is_file():
        print(f"    {task}: finished earlier in {out_dir}, kept")
        return TaskResult(**json.loads(result_file.read_text(encoding="utf-8")))
    trained = train_task(ctx, model, task, splits, out_dir, seed)
    spec = input_spec(ctx.args, initial_weights(ctx.args, model))
    scores = image_scores(trained.model, splits.test, task, spec, ctx.args.batch_size, seed)
    labels = [record.labels[task] for record in splits.test]
    result = TaskResult(
        scores=classification_scores(labels, scores, threshold=ctx.args.threshold),
        image_scores={r.image_id: float(s) for r, s in zip(splits.test, scores)},
        history=trained.history, best_epoch=trained.best_epoch,
        params=count_parameters(trained.model).pytorch_style,
        keras_params=trained.model.count_params())
    result_file.write_text(json.dumps(report.json_safe(dataclasses.asdict(result)), indent=1),
                           encoding="utf-8")
    return result


# --------------------------------------------------------------------------- rows


@dataclasses.dataclass
class RowScores:
    """Both sub-task models of a row, scored on the same test images."""

    tasks: dict[str, TaskResult]
    test: Sequence[Record]

    def values(self) -> dict[str, float]:
        """The eight score columns of Tables III-V (:data:`SCORE_COLUMNS`)."""
        return {f"{TASK_ABBREVIATIONS[task]} {header}": result.scores[key]
                for task, result in self.tasks.items() for header, key in SCORE_KEYS.items()}

    def challenge_scores(self) -> dict[str, float]:
        """ISIC 2017 Part 3's AUCs and their mean, the challenge's ranking score."""
        truth = [[r.labels[task] for task in TASKS] for r in self.test]
        scores = [[self.tasks[task].image_scores[r.image_id] for task in TASKS]
                  for r in self.test]
        return isic2017_average_auc(np.array(truth), np.array(scores))

    def write_predictions(self, path: Path) -> Path:
        """The test scores as an ISIC 2017 Part 3 submission CSV."""
        ids = [r.image_id for r in self.test]
        columns = [[self.tasks[task].image_scores[i] for i in ids] for task in TASKS]
        return write_isic2017_classification_csv(path, ids, *columns)

    def extra(self) -> dict[str, Any]:
        """What a row keeps besides its columns: every score, epochs, sizes, histories."""
        return {"params": self.tasks[TASKS[0]].params, "keras_params": self.tasks[TASKS[0]].keras_params,
                "challenge": self.challenge_scores(),
                "test_images": len(self.test),
                **{task: {"scores": r.scores, "best_epoch": r.best_epoch, "history": r.history}
                   for task, r in self.tasks.items()}}


def score_model(ctx: RowContext, model: ArlModel, splits: Splits, *,
                out_dir: Path | None = None, seed: int | None = None) -> RowScores:
    """Trains and scores the two sub-task models of one row (or one run of a row).

    Files go to ``out_dir/<task>/`` (default: the row's folder); ``seed`` defaults
    to ``--seed``. Writes ``out_dir/predictions.csv``.
    """
    out_dir = ctx.out_dir if out_dir is None else out_dir
    seed = ctx.args.seed if seed is None else seed
    tasks = {task: train_and_score(ctx, model, task, splits, out_dir / task, seed)
             for task in TASKS}
    row = RowScores(tasks, splits.test)
    row.write_predictions(out_dir / PREDICTIONS_FILE)
    return row


def row_result(row: RowScores, values: Mapping[str, float]) -> RowResult:
    """A frame row from ``values`` (the table's columns); the curves show the melanoma
    model's training (the other's history is in ``extra``)."""
    return RowResult(dict(values), history=row.tasks[TASKS[0]].history, monitor=MONITOR,
                     extra=row.extra())


def table_values(row: RowScores, *, params: bool = False, average_auc: bool = False
                 ) -> dict[str, float]:
    """The score columns, plus ``Params`` (x10^7) and ``Average AUC`` when asked."""
    values = row.values()
    if params:
        values[PARAMS.name] = row.tasks[TASKS[0]].params / 1e7
    if average_auc:
        values[AVERAGE_AUC.name] = row.challenge_scores()["average_auc"]
    return values
