"""The AttnMel training recipe shared by Tables 1-3 (``attnmel_table{1,2,3}.py``).

Yan, Kawahara and Hamarneh, "Melanoma Recognition via Visual Attention" (IPMI 2019),
Sec. 3.1, and the authors' code (github.com/SaoYan/IPMI2019-AttnMel) for what the
paper leaves out. Each trained row names a registered model (``zoo.list_models(
paper="attnmel")``: ``vgg16``, ``vgg16_gap``, ``mel_cnn``, ``attnmel_cnn``) and its
changes to the registered recipe in its :class:`~reproduce.frame.PaperRow`; the
recipe the registry holds for the model (:data:`zoo.attnmel.ATTNMEL_RECIPE` for the
baselines, :data:`zoo.attnmel.ATTNMEL_REGULARISED_RECIPE`, eq. 5, for AttnMel-CNN) is
the one source of every hyperparameter:

* the optimiser: SGD, lr 0.01, Nesterov momentum 0.9, PyTorch-style weight decay 1e-4
  (added to the gradient, as the authors' PyTorch code does: :class:`zoo.optimizers.L2SGD`),
  lr x0.1 every 10 epochs, 50 epochs of batch 32;
* the loss: the focal loss (gamma 2); AttnMel-CNN eq. 5, ``focal + 0.001 Dice(A3, ROI)
  + 0.01 Dice(A4, ROI)``; the AttnMel-CNN rows without ROI override its loss weights
  with lambda1 = lambda2 = 0 (:data:`UNREGULARISED`, Sec. 3.2);
* augmentation: random 90-degree rotation and flips (:data:`zoo.attnmel.ATTNMEL_AUGMENTATION`),
  after the input's centre square of 0.8 x the shorter side resized to 256x256 and its
  random 224x224 crop (centred at test; :data:`zoo.attnmel.models.ATTNMEL_INPUT`);
* the best epoch by the validation AUC (the recipe's monitor; the three-output
  AttnMel-CNN logs it as ``val_probabilities_auc``).

The tables' own protocol, beside the recipe: every melanoma repeated 4x in the
training list (the authors' code), each epoch passing over it 5x (ISIC 2016) or 2x
(ISIC 2017) (``--passes-per-epoch``); test AP and AUC by scikit-learn (the paper's
footnote 1). ``--batch-norm`` (the code's VGG-16-BN): the input standardised with the
training images' channel statistics, as the code's ``transforms.Normalize`` does
(:func:`row_input_spec`).

Every trained model ends in a run folder (:mod:`zoo.run`): the row folder holds the
weights that were scored, and its card (``run.json``) the builder arguments, the input
spec the model was trained and tested with (with ``--batch-norm`` the training
images' statistics), the recipe with its overrides, and the test scores.
``zoo.load_run("results/attnmel_table2/rows/attnmel-cnn-lesion")`` gives the model
back; Table 3's ``--trained`` reads Table 2's run folders so.

It also holds what Tables 2 and 3 share on ISIC 2017: the data set
(:data:`ISIC2017`), the ROI of each regularised row (eq. 5,
:data:`REGULARISED_ROWS`), reading a split (:func:`read_isic2017_split`) and
training one of Table 2's models (:func:`train_table2_row`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from data_tools.augment import Augmentation
from data_tools.isic import read_isic2017, write_isic2017_feature_masks
from data_tools.pipeline import classification_dataset, oversample_positives
from data_tools.preprocess import InputSpec
from data_tools.records import Record
from data_tools.statistics import standardised_spec
from data_tools.synthetic import make_isic2017
from reproduce.datasets import DatasetNeed
from reproduce.frame import Column, RowContext, RowResult, weights_argument
from zoo.attnmel.models import ATTNMEL_INPUT
from zoo.attnmel.recipe import ATTNMEL_RECIPE
from zoo.attnmel.roi import attention_targets, roi_dataset
from zoo.losses import attnmel_losses
from zoo.metrics import classification_scores
from zoo.recipe import TrainingRecipe
from zoo.train import TrainResult

LABEL = "melanoma"
OVERSAMPLING = 4  # the authors' code: every melanoma row 4x in the training list
AUC_METRIC = "auc"
CLASSES = 2  # softmax over (rest, melanoma)

AP_AUC = (Column("AP", higher_is_better=True, decimals=3), Column("AUC", higher_is_better=True, decimals=3))

SMOKE = {"epochs": 1, "batch_size": 4, "image_size": 32, "resize": 40, "passes_per_epoch": 1, "weights": None}
"""``--smoke`` settings: tiny images, one epoch of batch 4 (command-line overrides of
the recipe, recorded as such), random weights (no download)."""


def unregularised_loss_weights() -> dict[str, float]:
    """Eq. 5's loss weights with lambda1 = lambda2 = 0: AttnMel-CNN without ROI (Sec. 3.2)."""
    return attnmel_losses(lambda1=0.0, lambda2=0.0)[1]


UNREGULARISED = {"loss_weights": unregularised_loss_weights}
"""The recipe override of the AttnMel-CNN rows without ROI (Tables 1-3): its registered
recipe (eq. 5) with both attention terms weighted 0."""


# --------------------------------------------------------------------------- flags


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The AttnMel tables' flags: the input, the backbone's weights and variant, and the
    passes per epoch. The recipe's numbers are the frame's ``--learning-rate``,
    ``--batch-size``, ``--epochs`` (default: the registered recipe's)."""
    parser.add_argument(
        "--image-size", type=int, default=224, help="model input side, a multiple of 32 (default: %(default)s)"
    )
    parser.add_argument(
        "--resize",
        type=int,
        default=256,
        help="side the centre crop is resized to before the random crop (default: %(default)s)",
    )
    parser.add_argument(
        "--weights",
        type=weights_argument,
        default="imagenet",
        help="VGG-16 weights: imagenet, none, or a keras.applications weights file (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-norm",
        action="store_true",
        help="VGG-16-BN backbone of the authors' code (no ImageNet weights), its input "
        "standardised with the training images' channel statistics",
    )
    parser.add_argument(
        "--passes-per-epoch",
        type=int,
        help="passes over the training list per epoch (the authors' code: 5 for ISIC 2016, 2 for ISIC 2017)",
    )


BACKBONE_NOTE = (
    "VGG-16 with ImageNet weights, as the paper (the model rescales its [0, 1] input to the "
    "weights' Caffe statistics); --batch-norm trains the authors' VGG-16-BN from scratch on "
    "input standardised with the training images' channel statistics, recorded as the input "
    "spec of each row's run card and used for its test set (the title then names it)."
)


def backbone_variant(args: argparse.Namespace) -> str | None:
    """The title's note when ``--batch-norm`` replaces the paper's ImageNet VGG-16."""
    return "VGG-16-BN (authors' code), standardised input" if args.batch_norm else None


def input_spec(args: argparse.Namespace) -> InputSpec:
    """:data:`ATTNMEL_INPUT` at the sizes of ``--image-size`` and ``--resize``."""
    side, resize = args.image_size, args.resize
    return dataclasses.replace(ATTNMEL_INPUT, image_size=(side, side), pre_crop_size=(resize, resize))


def row_input_spec(args: argparse.Namespace, train: Sequence[Record]) -> InputSpec:
    """The row's input: :func:`input_spec`, with ``--batch-norm`` standardised by the
    channel statistics of the training images ``train`` (:mod:`data_tools.statistics`;
    each image once, before the melanoma oversampling). It becomes the input spec of
    the row's run card, which every later use of the model reads."""
    spec = input_spec(args)
    return standardised_spec(train, spec) if args.batch_norm else spec


def row_builder_args(ctx: RowContext) -> dict[str, Any]:
    """The row's builder arguments: its registered model's, the row's, and the flags':
    a two-class model at ``--image-size``, VGG-16 (``--weights``) or VGG-16-BN (no
    pretrained weights)."""
    args = ctx.args
    return ctx.builder_args(
        input_shape=(args.image_size, args.image_size, 3),
        classes=CLASSES,
        encoder_weights=None if args.batch_norm else args.weights,
        batch_norm=args.batch_norm,
    )


def row_recipe(ctx: RowContext, *, validation: bool) -> TrainingRecipe:
    """The row's recipe: the registered one, the row's overrides, then the command
    line's. Without a ``validation`` set (Table 1, the paper's protocol) the final epoch
    is kept and the monitor is the training loss (a recipe override the card records)."""
    return ctx.recipe(**({} if validation else {"monitor": "loss"}))


def logged_monitor(recipe: TrainingRecipe, attention: bool) -> str:
    """The recipe's monitor as Keras logs it: the three-output AttnMel-CNN prefixes its
    metrics with the output's name (``val_auc`` -> ``val_probabilities_auc``)."""
    monitor = recipe.monitor
    if attention and monitor.startswith("val_") and monitor != "val_loss":
        return f"val_probabilities_{monitor.removeprefix('val_')}"
    return monitor


# --------------------------------------------------------------------------- data


def split_validation(records: Sequence[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """A stratified, seeded hold-out: ``(train, validation)``; both classes in each.

    Table 1 picks its best epoch on it: ISIC 2016 has no validation split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {fraction}.")
    rng = np.random.default_rng(seed)
    validation: set[str] = set()
    for positive in (False, True):
        ids = [r.image_id for r in records if (r.labels[LABEL] >= 0.5) == positive]
        count = min(max(1, round(fraction * len(ids))), len(ids) - 1)
        validation.update(rng.permutation(ids)[:count].tolist())
    return ([r for r in records if r.image_id not in validation], [r for r in records if r.image_id in validation])


def _one_hot(labels: tf.Tensor) -> tf.Tensor:
    """``[B, 1]`` melanoma labels -> ``[B, 2]`` (rest, melanoma), the softmax's order."""
    return tf.concat([1.0 - labels, labels], axis=-1)


def make_dataset(
    records: Sequence[Record],
    spec: InputSpec,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    attention_outputs: bool,
    roi: str | None = None,
    repeat: bool = False,
    augmentation: Augmentation | None = ATTNMEL_RECIPE.augmentation,
) -> tf.data.Dataset:
    """Batches of ``(image, target)`` for one of the four models.

    ``attention_outputs``: the model is AttnMel-CNN, whose targets are a dict keyed
    by its three outputs. With an ``roi`` both attention maps get the ROI mask as
    target (eq. 5); without, all-zero maps that eq. 5 weighs with 0 (Keras needs a
    target per output). The ROI masks and the labels come from one segmentation
    pipeline (:func:`zoo.attnmel.roi.roi_dataset`), so each image is decoded and
    augmented once and its targets cannot drift from it. ``augmentation`` (the
    recipe's) applies in training only.
    """
    common = dict(
        batch_size=batch_size, training=training, seed=seed, repeat=repeat, augment=augmentation if training else None
    )
    if roi is not None and attention_outputs:
        masked = roi_dataset(records, spec, roi, label_name=LABEL, **common)
        return masked.map(
            lambda image, targets: (image, attention_targets(_one_hot(targets["labels"]), targets["reference"]))
        )
    labelled = classification_dataset(records, spec, label_names=(LABEL,), **common)
    if not attention_outputs:
        return labelled.map(lambda image, labels: (image, _one_hot(labels)))
    return labelled.map(
        lambda image, labels: (image, attention_targets(_one_hot(labels), tf.zeros_like(image[..., :1])))
    )


# --------------------------------------------------------------------------- training


def _auc_metric() -> keras.metrics.Metric:
    """Mean of the two softmax columns' ROC AUCs, which equals the melanoma AUC
    (the rest column's is the same ranking reversed): the best-epoch monitor."""
    return keras.metrics.AUC(num_thresholds=1000, multi_label=True, num_labels=CLASSES, name=AUC_METRIC)


@dataclasses.dataclass
class TrainedRow:
    """A row's trained model and how it was made: what its run folder records.

    Attributes:
        trained: :class:`zoo.train.TrainResult` (the kept epoch's model, history).
        recipe: the recipe it trained with (registered, row, script and flag overrides).
        builder_args: the builder arguments it was built with.
        input_spec: the input it was trained on (and is tested on).
        data: the training data, for the run card.
    """

    trained: TrainResult
    recipe: TrainingRecipe
    builder_args: dict[str, Any]
    input_spec: InputSpec
    data: dict[str, Any]

    @property
    def model(self) -> keras.Model:
        return self.trained.model


def train_classifier(
    ctx: RowContext, train: Sequence[Record], validation: Sequence[Record] | None, *, roi: str | None = None
) -> TrainedRow:
    """Trains the row's registered model with its recipe (:meth:`RowContext.fit`);
    keeps the best epoch by the validation AUC, or, with no ``validation`` records,
    the final epoch."""
    args, entry = ctx.args, ctx.entry
    attention = entry.attention
    if roi is not None and not attention:
        raise ValueError(f"roi={roi!r}: only AttnMel-CNN has attention maps to regularise, not {entry.name!r}.")
    recipe, builder_args = row_recipe(ctx, validation=bool(validation)), row_builder_args(ctx)
    spec = row_input_spec(args, train)
    images = len(train)
    train = oversample_positives(train, LABEL, OVERSAMPLING)
    steps = max(1, math.ceil(args.passes_per_epoch * len(train) / recipe.batch_size))
    data = functools.partial(
        make_dataset,
        spec=spec,
        batch_size=recipe.batch_size,
        seed=args.seed,
        attention_outputs=attention,
        augmentation=recipe.augmentation,
    )
    train_data = data(train, training=True, roi=roi, repeat=True)
    val_data = data(validation, training=False) if validation else None
    metrics = {"probabilities": [_auc_metric]} if attention else [_auc_metric]
    keep = {"mode": "max"} if validation else {"mode": "min", "keep": "last"}
    trained = ctx.fit(
        train_data,
        val_data,
        builder_args=builder_args,
        recipe=recipe,
        steps_per_epoch=steps,
        metrics=metrics,
        repeated=True,
        monitor=logged_monitor(recipe, attention),
        **keep,
    )
    record = {
        "train_images": images,
        "oversampling": OVERSAMPLING,
        "passes_per_epoch": args.passes_per_epoch,
        "steps_per_epoch": steps,
        "validation_images": len(validation or ()),
        "roi": roi,
    }
    return TrainedRow(trained, recipe, builder_args, spec, record)


def predict_melanoma(model: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """Melanoma probabilities (softmax column 1) of every image of ``dataset``."""
    outputs = model.predict(dataset.map(lambda x, y: x), verbose=0)
    probabilities = outputs["probabilities"] if isinstance(outputs, dict) else outputs
    return np.asarray(probabilities)[:, 1]


def score_test_set(model: keras.Model, spec: InputSpec, test: Sequence[Record], *, batch_size: int) -> dict[str, float]:
    """Test-set AP and AUC (scikit-learn, the paper's footnote 1) of ``model`` on input ``spec``."""
    dataset = make_dataset(test, spec, batch_size=batch_size, training=False, seed=0, attention_outputs=False)
    return classification_scores([r.labels[LABEL] for r in test], predict_melanoma(model, dataset))


def evaluate_classifier(ctx: RowContext, row: TrainedRow, test: Sequence[Record]) -> RowResult:
    """Test-set AP and AUC of the kept epoch; the row folder becomes the run folder of
    exactly that model, with these scores in its card."""
    trained = row.trained
    scores = score_test_set(row.model, row.input_spec, test, batch_size=row.recipe.batch_size)
    folder = ctx.save_run(
        row.model,
        builder_args=row.builder_args,
        recipe=row.recipe,
        input_spec=row.input_spec,
        scores={"split": "test", "test_images": len(test), **scores},
        training={
            "kept_epoch": trained.kept_epoch,
            "epochs_run": len(trained.history["loss"]),
            "keep": "best" if row.data["validation_images"] else "last",
        },
        data=row.data,
    )
    logged = [
        key
        for key, values in trained.history.items()  # Keras logs val_ columns as NA without them
        if key.startswith("val_") and key.endswith(AUC_METRIC) and not np.isnan(values).all()
    ]
    monitor = logged[0] if logged else "loss"  # no validation set: the curves show the training loss
    return RowResult(
        {"AP": scores["ap"], "AUC": scores["auc"]},
        history=trained.history,
        monitor=monitor,
        extra={
            "kept_epoch": trained.kept_epoch,
            "model": ctx.entry.name,
            "recipe_overrides": row.recipe.overrides_from(ctx.entry.recipe),
            "params": row.model.count_params(),
            "run": str(folder),
            "test_images": len(test),
            **scores,
        },
    )


# --------------------------------------------------------------------------- ISIC 2017 (Tables 2-3)

ISIC2017 = DatasetNeed(
    name="ISIC 2017 (Parts 1-3)",
    default_dir="data/isic2017",
    how_to_get="python -m data_tools.download isic2017 --dest data/isic2017",
    make_synthetic=functools.partial(make_isic2017, n_train=12, n_val=6, n_test=6, image_size=(48, 64)),
)

REGULARISED_ROWS = {
    "AttnMel-CNN-Dermo": "dermo",
    "AttnMel-CNN-Lesion": "lesion",
    "AttnMel-CNN-Bkg": "background",
}
"""Table 2 row name -> the ROI of eq. 5 (:data:`zoo.attnmel.roi.ROIS`)."""


def read_isic2017_split(ctx: RowContext, split: str, roi: str | None = None) -> list[Record]:
    """One ISIC 2017 split with lesion masks and labels, plus the Dermo masks if needed.

    The Dermo ROI (the union of the four Part 2 dermoscopic-feature masks) is written
    once under ``<out>/feature_masks`` (:func:`data_tools.isic.write_isic2017_feature_masks`).
    """
    parts = (1, 2, 3) if roi == "dermo" else (1, 3)
    records = read_isic2017(ctx.data_dir, split, parts=parts, skip_bad=ctx.bad_inputs)
    if roi == "dermo":
        cache = ctx.out_dir.parent.parent / "feature_masks" / split  # <out>/feature_masks
        records = write_isic2017_feature_masks(records, cache)
    return records


def train_table2_row(ctx: RowContext) -> TrainedRow:
    """Trains the model of one of Table 2's rows (plain or ROI-regularised, eq. 5) on ISIC 2017."""
    roi = REGULARISED_ROWS.get(ctx.row.name)
    return train_classifier(
        ctx, read_isic2017_split(ctx, "train", roi), read_isic2017_split(ctx, "validation"), roi=roi
    )
