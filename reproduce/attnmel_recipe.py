"""The AttnMel training recipe shared by Tables 1-3 (``attnmel_table{1,2,3}.py``).

The recipe (paper Sec. 3.1 and the authors' code, REFERENCE_NOTES):

* input: centre square of 0.8 x the shorter side, resized to 256x256, random 224x224
  crop (centred at test), random 90-degree rotation and flips
  (:data:`zoo.attnmel.models.ATTNMEL_INPUT`, ``ATTNMEL_AUGMENTATION``);
* class balance: every melanoma repeated 4x in the training list, focal loss
  (gamma 2);
* the optimiser of :data:`zoo.attnmel.ATTNMEL_RECIPE`: SGD, lr 0.01, Nesterov momentum
  0.9, PyTorch-style weight decay 1e-4 (added to the gradient, as the authors' PyTorch
  code does: :class:`zoo.optimizers.L2SGD`), lr x0.1 every 10 epochs, 50 epochs of
  batch 32, each epoch passing over the data 5x (ISIC 2016) or 2x (ISIC 2017);
* best epoch by validation AUC, reported on the test set (scikit-learn AP and AUC,
  footnote 1);
* ``--batch-norm`` (the code's VGG-16-BN): the input standardised with the training
  images' channel statistics, as the code's ``transforms.Normalize`` does
  (:func:`row_input_spec`, written to the row's ``input_spec.json`` for evaluation and
  Table 3).

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
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from zoo.attnmel.recipe import ATTNMEL_AUGMENTATION
from data_tools.isic import read_isic2017, write_isic2017_feature_masks
from data_tools.pipeline import classification_dataset, oversample_positives
from data_tools.preprocess import InputSpec
from data_tools.records import Record
from data_tools.statistics import standardised_spec
from data_tools.synthetic import make_isic2017
from reproduce.datasets import DatasetNeed
from reproduce.frame import Column, RowContext, RowResult, weights_argument
from zoo.losses import attnmel_losses, focal_loss
from zoo.metrics import classification_scores
from zoo.attnmel.models import (ATTNMEL_INPUT, build_attnmel_cnn, build_mel_cnn,
                                build_vgg16_classifier, build_vgg16_gap)
from zoo.attnmel.recipe import ATTNMEL_RECIPE
from zoo.attnmel.roi import attention_targets, roi_dataset
from zoo.train import TrainResult, fit

LABEL = "melanoma"
OVERSAMPLING = 4          # REFERENCE_NOTES: every melanoma row 4x in the training list
AUC_METRIC = "auc"

BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "VGG-16": build_vgg16_classifier,
    "VGG-16-GAP": build_vgg16_gap,
    "Mel-CNN": build_mel_cnn,
    "AttnMel-CNN": build_attnmel_cnn,
}
"""Row name -> builder (the rows of Tables 1-2 without ROI regularisation)."""

AP_AUC = (Column("AP", higher_is_better=True, decimals=3),
          Column("AUC", higher_is_better=True, decimals=3))

SMOKE = {"epochs": 1, "batch_size": 4, "image_size": 32, "resize": 40, "passes_per_epoch": 1,
         "weights": None}
"""``--smoke`` settings: tiny images, one epoch, random weights (no download)."""


# --------------------------------------------------------------------------- flags


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the AttnMel recipe, with the paper's values as defaults."""
    parser.add_argument("--image-size", type=int, default=224,
                        help="model input side, a multiple of 32 (default: %(default)s)")
    parser.add_argument("--resize", type=int, default=256,
                        help="side the centre crop is resized to before the random crop "
                             "(default: %(default)s)")
    parser.add_argument("--weights", type=weights_argument, default="imagenet",
                        help="VGG-16 weights: imagenet, none, or a keras.applications weights "
                             "file (default: %(default)s)")
    parser.add_argument("--batch-norm", action="store_true",
                        help="VGG-16-BN backbone of the authors' code (no ImageNet weights), its input "
                             "standardised with the training images' channel statistics")
    parser.add_argument("--learning-rate", type=float, default=ATTNMEL_RECIPE.learning_rate,
                        help="initial SGD learning rate (default: %(default)s)")
    parser.add_argument("--passes-per-epoch", type=int,
                        help="passes over the training list per epoch (the authors' code: "
                             "5 for ISIC 2016, 2 for ISIC 2017)")


BACKBONE_NOTE = ("VGG-16 with ImageNet weights, as the paper (the model rescales its [0, 1] input to the "
                 "weights' Caffe statistics); --batch-norm trains the authors' VGG-16-BN from scratch on "
                 "input standardised with the training images' channel statistics, written to each row's "
                 "input_spec.json and used for its test set (the title then names it).")


def backbone_variant(args: argparse.Namespace) -> str | None:
    """The title's note when ``--batch-norm`` replaces the paper's ImageNet VGG-16."""
    return "VGG-16-BN (authors' code), standardised input" if args.batch_norm else None


def input_spec(args: argparse.Namespace) -> InputSpec:
    """:data:`ATTNMEL_INPUT` at the sizes of ``--image-size`` and ``--resize``."""
    side, resize = args.image_size, args.resize
    return dataclasses.replace(ATTNMEL_INPUT, image_size=(side, side), pre_crop_size=(resize, resize))


INPUT_SPEC_FILE = "input_spec.json"
"""The input a ``--batch-norm`` row was trained on (its channel statistics), in its folder."""


def row_input_spec(args: argparse.Namespace, row_dir: Path, train: Sequence[Record] | None = None
                   ) -> InputSpec:
    """The row's input: :func:`input_spec`, with ``--batch-norm`` standardised by the
    channel statistics of the training images (:mod:`data_tools.statistics`; each image
    once, before the melanoma oversampling).

    With ``train`` the statistics are computed and written to ``row_dir/input_spec.json``;
    without, read from it (the test set's evaluation, Table 3's ``--trained``).

    Raises:
        FileNotFoundError: no ``input_spec.json`` in ``row_dir`` to read.
        ValueError: the file is no InputSpec, or one of another input (other sizes).
    """
    spec = input_spec(args)
    if not args.batch_norm:
        return spec
    path = Path(row_dir) / INPUT_SPEC_FILE
    if train is not None:
        spec = standardised_spec(train, spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(spec.to_json())
        return spec
    if not path.is_file():
        raise FileNotFoundError(f"{path}: this --batch-norm row has no channel statistics; they are written "
                                f"when it is trained (attnmel_table2.py --batch-norm --rows ...).")
    try:
        stored = InputSpec.from_json(path.read_text())
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: not an input description written by training: {error}") from None
    if stored.scale != "standard" or dataclasses.replace(stored, scale="unit", mean=None, std=None) != spec:
        raise ValueError(f"{path}: written for another input ({stored.to_json()}); this run's is "
                         f"{spec.to_json()} with scale 'standard' (same --image-size and --resize).")
    return stored


def build_row_model(args: argparse.Namespace, builder: Callable[..., keras.Model]) -> keras.Model:
    """``builder``'s two-class model at ``--image-size`` (VGG-16-BN: no pretrained weights)."""
    weights = None if args.batch_norm else args.weights
    return builder((args.image_size, args.image_size, 3), 2, encoder_weights=weights, batch_norm=args.batch_norm)


# --------------------------------------------------------------------------- data


def split_validation(records: Sequence[Record], fraction: float, seed: int
                     ) -> tuple[list[Record], list[Record]]:
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
    return ([r for r in records if r.image_id not in validation],
            [r for r in records if r.image_id in validation])


def _one_hot(labels: tf.Tensor) -> tf.Tensor:
    """``[B, 1]`` melanoma labels -> ``[B, 2]`` (rest, melanoma), the softmax's order."""
    return tf.concat([1.0 - labels, labels], axis=-1)


def make_dataset(records: Sequence[Record], spec: InputSpec, *, batch_size: int, training: bool,
                 seed: int, attention_outputs: bool, roi: str | None = None,
                 repeat: bool = False) -> tf.data.Dataset:
    """Batches of ``(image, target)`` for one of the four models.

    ``attention_outputs``: the model is AttnMel-CNN, whose targets are a dict keyed
    by its three outputs. With an ``roi`` both attention maps get the ROI mask as
    target (eq. 5); without, all-zero maps that eq. 5 weighs with 0 (Keras needs a
    target per output). The ROI masks and the labels come from one segmentation
    pipeline (:func:`zoo.attnmel.roi.roi_dataset`), so each image is decoded and
    augmented once and its targets cannot drift from it.
    """
    common = dict(batch_size=batch_size, training=training, seed=seed, repeat=repeat,
                  augment=ATTNMEL_AUGMENTATION if training else None)
    if roi is not None and attention_outputs:
        masked = roi_dataset(records, spec, roi, label_name=LABEL, **common)
        return masked.map(lambda image, targets: (image, attention_targets(
            _one_hot(targets["labels"]), targets["reference"])))
    labelled = classification_dataset(records, spec, label_names=(LABEL,), **common)
    if not attention_outputs:
        return labelled.map(lambda image, labels: (image, _one_hot(labels)))
    return labelled.map(lambda image, labels: (image, attention_targets(
        _one_hot(labels), tf.zeros_like(image[..., :1]))))


# --------------------------------------------------------------------------- training


def _auc_metric() -> keras.metrics.Metric:
    """Mean of the two softmax columns' ROC AUCs, which equals the melanoma AUC
    (the rest column's is the same ranking reversed): the best-epoch monitor."""
    return keras.metrics.AUC(num_thresholds=1000, multi_label=True, num_labels=2, name=AUC_METRIC)


def train_classifier(ctx: RowContext, builder: Callable[..., keras.Model],
                     train: Sequence[Record], validation: Sequence[Record] | None, *,
                     roi: str | None = None) -> TrainResult:
    """Trains one row's model with the recipe; returns the best epoch's model by the
    validation AUC, or, with no ``validation`` records, the final epoch's."""
    args = ctx.args
    attention = builder is build_attnmel_cnn
    if roi is not None and not attention:
        raise ValueError(f"roi={roi!r}: only AttnMel-CNN has attention maps to regularise.")
    spec = row_input_spec(args, ctx.out_dir, train)
    train = oversample_positives(train, LABEL, OVERSAMPLING)
    steps = max(1, math.ceil(args.passes_per_epoch * len(train) / args.batch_size))
    data = functools.partial(make_dataset, spec=spec, batch_size=args.batch_size, seed=args.seed,
                             attention_outputs=attention)
    train_data = data(train, training=True, roi=roi, repeat=True)
    val_data = data(validation, training=False) if validation else None
    if attention:  # eq. 5; AttnMel-CNN without ROI is eq. 5 with lambda1 = lambda2 = 0 (Sec. 3.2)
        loss, loss_weights = attnmel_losses() if roi is not None else attnmel_losses(lambda1=0.0,
                                                                                    lambda2=0.0)
    else:
        loss, loss_weights = focal_loss(), None
    metrics = {"probabilities": [_auc_metric]} if attention else [_auc_metric]
    if val_data is None:  # no validation set: keep the final epoch (ISIC 2016, attnmel_table1)
        config = ctx.train_config(monitor="loss", mode="min", steps_per_epoch=steps, keep="last")
    else:
        monitor = f"val_probabilities_{AUC_METRIC}" if attention else f"val_{AUC_METRIC}"
        config = ctx.train_config(monitor=monitor, mode="max", steps_per_epoch=steps)
    return fit(lambda: build_row_model(args, builder), train_data, val_data, config,
               optimizer=functools.partial(ATTNMEL_RECIPE.make_optimizer, steps,
                                           learning_rate=args.learning_rate, epochs=args.epochs),
               loss=loss,
               loss_weights=loss_weights, metrics=metrics)


def predict_melanoma(model: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """Melanoma probabilities (softmax column 1) of every image of ``dataset``."""
    outputs = model.predict(dataset.map(lambda x, y: x), verbose=0)
    probabilities = outputs["probabilities"] if isinstance(outputs, dict) else outputs
    return np.asarray(probabilities)[:, 1]


def evaluate_classifier(ctx: RowContext, trained: TrainResult, test: Sequence[Record]) -> RowResult:
    """Test-set AP and AUC (scikit-learn, footnote 1) of the best epoch."""
    args = ctx.args
    dataset = make_dataset(test, row_input_spec(args, ctx.out_dir), batch_size=args.batch_size, training=False,
                           seed=args.seed, attention_outputs=False)
    scores = classification_scores([r.labels[LABEL] for r in test],
                                    predict_melanoma(trained.model, dataset))
    logged = [key for key, values in trained.history.items()  # Keras logs val_ columns as NA without them
              if key.startswith("val_") and key.endswith(AUC_METRIC) and not np.isnan(values).all()]
    monitor = logged[0] if logged else "loss"  # no validation set: the curves show the training loss
    return RowResult({"AP": scores["ap"], "AUC": scores["auc"]}, history=trained.history,
                     monitor=monitor, extra={"best_epoch": trained.best_epoch,
                                             "params": trained.model.count_params(),
                                             "test_images": len(test), **scores})


# --------------------------------------------------------------------------- ISIC 2017 (Tables 2-3)

ISIC2017 = DatasetNeed(
    name="ISIC 2017 (Parts 1-3)",
    default_dir="data/isic2017",
    how_to_get="python -m data_tools.download isic2017 --dest data/isic2017",
    make_synthetic=functools.partial(make_isic2017, n_train=12, n_val=6, n_test=6,
                                     image_size=(48, 64)),
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


def train_table2_row(ctx: RowContext, row_name: str) -> TrainResult:
    """Trains the model of one of Table 2's rows (plain or ROI-regularised) on ISIC 2017."""
    roi = REGULARISED_ROWS.get(row_name)
    builder = build_attnmel_cnn if roi is not None else BUILDERS[row_name]
    return train_classifier(ctx, builder, read_isic2017_split(ctx, "train", roi),
                            read_isic2017_split(ctx, "validation"), roi=roi)
