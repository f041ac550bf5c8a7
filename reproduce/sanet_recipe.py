"""The SANet training recipe shared by Tables 2-4 (``sanet_table{2,3,4}.py``).

:class:`Variant` says what a row trains (model, loss, RSM), :func:`run_attribute_row`
runs it (data, training, Task 2 predictions and scores), :func:`add_recipe_arguments`
adds the flags.

The recipe (sanet.txt, "Experiment setting", "Data augmentation", "Metrics"):

* data: ISIC 2018 Task 2; training on the 2594 training images ("2594 samples
  for training"), evaluation on the 1000 test images ("1000 images for
  testing"; their ground truth was released after the challenge). The best epoch
  is chosen on the 100 validation images by the thresholded Jaccard (the paper
  does not say how it picks its epoch);
* input: RGB in [0, 1] at 256x256 (:data:`zoo.sanet.models.SANET_INPUT`; the paper
  gives no size); augmentation :data:`zoo.sanet.recipe.SANET_AUGMENTATION`, the paper's
  list only: Gaussian noise of three kinds, random contrast, Gaussian blur, CLAHE and
  emboss (``--geometric-augmentation`` adds flips and 90-degree rotations);
* training (:data:`zoo.sanet.SANET_RECIPE`): "ADSGrad, a variant of Adam" with batch 5,
  weight decay 1e-4 and momentum 0.9, on PyTorch: AMSGrad (beta_1 = 0.9) with
  PyTorch-style weight decay 1e-4 added to the gradient (:class:`zoo.optimizers.L2Adam`;
  Keras' decoupled weight decay would be effectively none at this rate); learning
  rate 1e-4 with polynomial decay of power 0.9 to 0 over the run; 100 epochs;
* loss: GBL (eq. 9, :class:`zoo.losses.GlobalBalancingLoss`, alpha = 0.2 as in
  Fig. 3) or the CE+JAL baseline (eq. 2, :class:`zoo.losses.CrossEntropyJaccardLoss`,
  multi-channel Jaccard averaged over channels);
* RSM rows: the random shuffle module (:mod:`zoo.sanet.region_shuffle`, see
  :data:`RSM_NOTE`); ``--batch-size`` counts the sampled images, each followed
  in its batch by its destructed copy;
* evaluation: test predictions thresholded at 0.5 and written as Task 2 attribute
  PNGs at the original image size (``rows/<row>/predictions/``, ready for a
  submission); the table's scores are those files scored against the full-size
  ground truth as the official ISIC 2018 Task 2 scorer does
  (:func:`zoo.evaluate.evaluate`). "Avg JA"/"Avg Dice" are the mean of the five
  attribute values and
  the micro average (REFERENCE_NOTES).

Deviations and gaps: the paper gives no ranges or probabilities for its
augmentations (:data:`zoo.sanet.recipe.SANET_AUGMENTATION` documents ours); SLIC
settings, SANet's decoder widths and the baselines' backbones are ours
(documented in :mod:`zoo.sanet.models`).
"""
from __future__ import annotations

import argparse
import shutil
import dataclasses
import functools
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from data_tools.augment import Augmentation
from data_tools.isic import read_isic2018
from data_tools.layouts import ISIC2018_ATTRIBUTES
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import Record
from data_tools.synthetic import make_isic2018
from reproduce.datasets import DatasetNeed
from reproduce.frame import Column, RowContext, RowResult, number_in_range, weights_argument
from zoo.losses import SANET_ALPHA, CrossEntropyJaccardLoss, GlobalBalancingLoss
from zoo.metrics import DiceCoefficient, JaccardIndex
from zoo.common.encoders import ENCODERS
from zoo.sanet.models import (DILATED_BACKBONES, RESUNET_BACKBONE, SANET_INPUT, build_attribute_danet,
                              build_attribute_unet, build_deeplab, build_resunet, build_sanet)
from zoo.sanet.recipe import (LR_POWER, SANET_AUGMENTATION, SANET_GEOMETRIC_AUGMENTATION, SANET_RECIPE,
                              WEIGHT_DECAY, sanet_optimizer)
from zoo.sanet.region_shuffle import DCL_NEIGHBOURHOOD, RSM_GRID, RSM_NEIGHBOURHOOD, RegionShuffle
from zoo.sanet.superpixels import SlicParams, cache_superpixels, superpixel_segmentation_dataset
from zoo.evaluate import evaluate
from zoo.submission import original_size, write_attribute_masks
from zoo.train import TrainResult, fit

ATTRIBUTES = ISIC2018_ATTRIBUTES
MONITOR = SANET_RECIPE.monitor
THRESHOLD = 0.5
MODELS = ("unet", "deeplab", "danet", "resunet", "sanet")
LOSSES = ("gbl", "ce_jal")

AVG_JA, AVG_DICE = "Avg JA", "Avg Dice"
AVERAGE_COLUMNS = (Column(AVG_JA, "%", True), Column(AVG_DICE, "%", True))

DATASET = DatasetNeed(
    name="ISIC 2018 Task 2",
    default_dir="data/isic2018",
    how_to_get="python -m data_tools.download isic2018 --dest data/isic2018",
    make_synthetic=functools.partial(make_isic2018, n_train=10, n_val=4, n_test=4, image_size=(48, 64)),
)

PAPER_SETTINGS = {"epochs": SANET_RECIPE.epochs, "batch_size": SANET_RECIPE.batch_size}
SMOKE = {"epochs": 2, "batch_size": 2, "image_size": 64, "encoder_weights": None, "backbone": "vgg16",
         "dilated_backbone": "resnet14", "unet_base_filters": 8, "slic_segments": 16, "max_segments": 32}
"""``--smoke``: 64x64 synthetic images, small random-weight encoders (no download)."""

RSM_NOTE = (
    f"RSM: {RSM_GRID}x{RSM_GRID} regions, each moving at most one cell per axis (\"nearest neighbors\"; "
    f"--rsm-neighbourhood {DCL_NEIGHBOURHOOD} for DCL's wider moves). \"Destructed images in batch 1:1\" "
    "as in DCL: each sampled image is followed by its destructed copy, so a batch of --batch-size 5 "
    "trains on 10 images. Masks and superpixels move with their regions; each piece of a shuffled "
    "superpixel becomes its own superpixel (the smallest merged into a neighbour beyond --max-segments)."
)
"""The table notes on the random shuffle module (Tables 3 and 4)."""


@dataclasses.dataclass(frozen=True)
class Variant:
    """What a table row trains: the network, the loss and whether RSM shuffles the batches.

    Attributes:
        model: one of :data:`MODELS` (``"sanet"`` is ResUNet + SAM).
        loss: ``"gbl"`` (eq. 9) or ``"ce_jal"`` (eq. 2).
        gamma: GBL's focusing parameter (eq. 8).
        rsm: the random shuffle module on the training batches.
    """

    model: str
    loss: str = "gbl"
    gamma: float = 1.0
    rsm: bool = False

    @property
    def needs_superpixels(self) -> bool:
        return self.model == "sanet"


# --------------------------------------------------------------------------- flags


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The SANet recipe's flags, with the paper's values (or ours, where it has none) as defaults."""
    parser.add_argument("--image-size", type=int, default=SANET_INPUT.image_size[0],
                        help="model input side, a multiple of 32 (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=SANET_RECIPE.learning_rate,
                        help="initial learning rate (default: %(default)s)")
    parser.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY,
                        help="PyTorch-style weight decay, added to the gradient (default: %(default)s)")
    parser.add_argument("--lr-power", type=float, default=LR_POWER,
                        help="power of the polynomial learning-rate decay (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=SANET_ALPHA,
                        help="GBL truncation point alpha, eq. 7 (default: %(default)s)")
    parser.add_argument("--encoder-weights", type=weights_argument, default="imagenet",
                        help="pretrained encoders: imagenet, none, or a keras.applications no-top "
                             "weights file (default: %(default)s)")
    parser.add_argument("--backbone", choices=sorted(ENCODERS), default=RESUNET_BACKBONE,
                        help="ResUNet/SANet encoder (default: %(default)s, the paper's)")
    parser.add_argument("--dilated-backbone", choices=sorted(DILATED_BACKBONES), default="resnet101",
                        help="DeepLab/DANet backbone (default: %(default)s)")
    parser.add_argument("--unet-base-filters", type=int, default=64,
                        help="channels of U-Net's first level (default: %(default)s)")
    parser.add_argument("--slic-segments", type=int, default=SlicParams.n_segments,
                        help="SLIC superpixels per image (default: %(default)s)")
    parser.add_argument("--max-segments", type=int, default=SlicParams.max_segments,
                        help="bound on the superpixel labels, also of the RSM-shuffled maps "
                             "(default: %(default)s)")
    parser.add_argument("--rsm-neighbourhood", type=number_in_range(float, 0.0), default=RSM_NEIGHBOURHOOD,
                        help="RSM rows: DCL's jitter range k; regions move fewer than 2k cells per axis "
                             f"(default: %(default)s, nearest neighbours; DCL's: {DCL_NEIGHBOURHOOD})")
    parser.add_argument("--superpixel-cache", type=Path,
                        help="where SLIC maps are cached (default: beside the images, "
                             "<image folder>_superpixels/)")
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="train without the paper's augmentation")
    parser.add_argument("--geometric-augmentation", action="store_true",
                        help="also random flips and 90-degree rotations, which the paper's list of "
                             "augmentations does not name (default: the paper's list only)")


def input_spec(args: argparse.Namespace) -> InputSpec:
    return dataclasses.replace(SANET_INPUT, image_size=(args.image_size, args.image_size))


def training_augmentation(args: argparse.Namespace) -> Augmentation | None:
    """The paper's augmentation list, with ``--geometric-augmentation`` flips and rotations."""
    if not args.augment:
        return None
    return SANET_GEOMETRIC_AUGMENTATION if args.geometric_augmentation else SANET_AUGMENTATION


def slic_params(args: argparse.Namespace) -> SlicParams:
    return SlicParams(n_segments=args.slic_segments, max_segments=args.max_segments)


def build_model(variant: Variant, args: argparse.Namespace) -> keras.Model:
    """The row's network with five sigmoid attribute maps, for ``args``' input size."""
    shape = (args.image_size, args.image_size, 3)
    if variant.model == "unet":
        return build_attribute_unet(shape, base_filters=args.unet_base_filters)
    if variant.model == "deeplab":
        return build_deeplab(shape, encoder_weights=args.encoder_weights, backbone=args.dilated_backbone)
    if variant.model == "danet":
        return build_attribute_danet(shape, encoder_weights=args.encoder_weights, backbone=args.dilated_backbone)
    if variant.model == "resunet":
        return build_resunet(shape, encoder_weights=args.encoder_weights, backbone=args.backbone)
    return build_sanet(shape, encoder_weights=args.encoder_weights, backbone=args.backbone,
                       max_segments=args.max_segments)


def make_loss(variant: Variant, args: argparse.Namespace) -> keras.losses.Loss:
    if variant.loss == "ce_jal":
        return CrossEntropyJaccardLoss(per_channel=True)
    return GlobalBalancingLoss(alpha=args.alpha, gamma=variant.gamma)


# --------------------------------------------------------------------------- data


def load_records(ctx: RowContext, variant: Variant) -> dict[str, list[Record]]:
    """Train, validation and test records with their attribute masks (and superpixel maps)."""
    splits = {split: read_isic2018(ctx.data_dir, split, tasks=(2,), skip_bad=ctx.bad_inputs)
              for split in ("train", "validation", "test")}
    if variant.needs_superpixels:
        splits = {split: cache_superpixels(records, slic_params(ctx.args), cache_dir=ctx.args.superpixel_cache,
                                           skip_bad=ctx.bad_inputs)
                  for split, records in splits.items()}
    return splits


def make_dataset(records: Sequence[Record], variant: Variant, args: argparse.Namespace, *,
                 training: bool) -> tf.data.Dataset:
    """Batches for the row's model: ``(image, masks)``, or ``({"image", "superpixels"}, masks)``;
    in training with RSM, ``2 * args.batch_size`` images (each sample and its destructed copy)."""
    common = dict(mask_names=ATTRIBUTES, batch_size=args.batch_size, training=training,
                  augment=training_augmentation(args) if training else None, seed=args.seed,
                  cache=training)
    shuffle = (RegionShuffle(neighbourhood=args.rsm_neighbourhood, max_segments=args.max_segments)
               if training and variant.rsm else None)
    if variant.needs_superpixels:
        return superpixel_segmentation_dataset(records, input_spec(args), max_segments=args.max_segments,
                                               region_shuffle=shuffle, **common)
    dataset = segmentation_dataset(records, input_spec(args), **common)
    return dataset if shuffle is None else shuffle.apply(dataset, args.seed)


# --------------------------------------------------------------------------- train, evaluate


def train_attribute_model(ctx: RowContext, variant: Variant, train: Sequence[Record],
                          validation: Sequence[Record]) -> TrainResult:
    """:func:`zoo.sanet.recipe.sanet_optimizer` (AMSGrad, PyTorch-style weight decay,
    polynomial decay from ``--learning-rate`` to 0 over the run)."""
    args = ctx.args
    steps = max(1, len(train) // args.batch_size)
    make_optimizer = sanet_optimizer(args.weight_decay, args.lr_power)
    return fit(lambda: build_model(variant, args), make_dataset(train, variant, args, training=True),
               make_dataset(validation, variant, args, training=False),
               ctx.train_config(monitor=MONITOR, mode="max"),
               optimizer=lambda: make_optimizer(args.learning_rate, steps, args.epochs),
               loss=lambda: make_loss(variant, args),
               metrics=lambda: [JaccardIndex(), DiceCoefficient()])


def predict_and_score(model: keras.Model, records: Sequence[Record], variant: Variant,
                      args: argparse.Namespace, predictions_dir: Path) -> dict[str, dict[str, float]]:
    """Writes every test prediction as Task 2 PNGs at the original image size and scores
    those files against the full-size ground truth, as the official ISIC 2018 Task 2
    scorer does (:func:`zoo.evaluate.evaluate`); returns the Task 2 scores (fractions)
    with ``sanet_average`` (Avg JA / Avg Dice: the five attributes and the micro average)."""
    index = 0
    for inputs, _ in make_dataset(records, variant, args, training=False).as_numpy_iterator():
        for probability in np.asarray(model.predict_on_batch(inputs)):
            record = records[index]
            write_attribute_masks(record.image_id, probability, predictions_dir,
                                  original_size(record.image_path), ATTRIBUTES, THRESHOLD)
            index += 1
    truth_dir = predictions_dir.parent / "ground_truth"  # the scored records' own masks (--skip-bad may drop some)
    shutil.rmtree(truth_dir, ignore_errors=True)
    truth_dir.mkdir(parents=True)
    for record in records:
        for path in record.mask_paths.values():
            (truth_dir / Path(path).name).symlink_to(Path(path).resolve())
    scores = evaluate("isic2018-task2", truth_dir, predictions_dir).metrics
    groups = [*ATTRIBUTES, "micro_average"]
    scores["sanet_average"] = {metric: float(np.mean([scores[group][metric] for group in groups]))
                               for metric in ("jaccard", "dice")}
    return scores


@dataclasses.dataclass
class AttributeRun:
    """A trained row: the Task 2 scores and what the frame records."""

    scores: dict[str, dict[str, float]]
    trained: TrainResult
    extra: dict


def run_attribute_row(ctx: RowContext, variant: Variant) -> AttributeRun:
    """Data, training, test predictions (PNGs) and scores: one row of Tables 2-4."""
    records = load_records(ctx, variant)
    started = time.monotonic()
    trained = train_attribute_model(ctx, variant, records["train"], records["validation"])
    seconds = time.monotonic() - started
    scores = predict_and_score(trained.model, records["test"], variant, ctx.args, ctx.out_dir / "predictions")
    epochs = len(trained.history.get("loss", [])) or ctx.args.epochs
    extra = {"variant": dataclasses.asdict(variant), "params": trained.model.count_params(),
             "task2_scores": scores, "best_epoch": trained.best_epoch,
             "images": {split: len(r) for split, r in records.items()},
             "seconds_per_epoch": round(seconds / epochs, 2)}
    return AttributeRun(scores, trained, extra)


def average_values(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Tables 2-3: SANet's averages (five attributes and the micro average), in percent."""
    return {AVG_JA: 100.0 * scores["sanet_average"]["jaccard"],
            AVG_DICE: 100.0 * scores["sanet_average"]["dice"]}


def run_average_row(ctx: RowContext, variant: Variant) -> RowResult:
    run = run_attribute_row(ctx, variant)
    return RowResult(average_values(run.scores), history=run.trained.history, monitor=MONITOR, extra=run.extra)
