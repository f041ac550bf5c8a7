"""The SANet training recipe shared by Tables 2-4 (``sanet_table{2,3,4}.py``).

Each trained row of those tables names a registered model (``zoo.list_models(paper="sanet")``:
``sanet_unet``, ``sanet_deeplab``, ``sanet_danet``, ``resunet``, ``sanet``) and its
changes to the registered recipe in its :class:`~reproduce.frame.PaperRow` (Table 2's
losses); :func:`run_attribute_row` runs it (data, training through
:meth:`~reproduce.frame.RowContext.fit`, Task 2 predictions and scores, the run
folder); :func:`add_recipe_arguments` adds the flags.

The recipe is :data:`zoo.sanet.SANET_RECIPE`, the one source of the hyperparameters
(SANet paper, "Experiment setting", "Data augmentation", "Metrics"):

* data: ISIC 2018 Task 2; training on the 2594 training images ("2594 samples
  for training"), evaluation on the 1000 test images ("1000 images for
  testing"; their ground truth was released after the challenge). The final
  epoch's model is scored: "The total epoch is 100", the rate decaying to 0,
  and the paper names no epoch selection (``--keep best-val``: the epoch of best thresholded
  Jaccard on the 100 validation images; :data:`PROTOCOL_NOTES`);
* input: RGB in [0, 1] at 256x256 (:data:`zoo.sanet.models.SANET_INPUT`; the paper
  gives no size, :data:`PROTOCOL_NOTES` says why ours); augmentation
  :data:`zoo.sanet.recipe.SANET_AUGMENTATION`, the paper's list only
  (``--geometric-augmentation`` adds flips and 90-degree rotations, ``--no-augment``
  none: both recipe overrides, recorded in the run card);
* training: "ADSGrad, a variant of Adam" with batch 5, weight decay 1e-4 and
  momentum 0.9, on PyTorch: AMSGrad (beta_1 = 0.9) with PyTorch-style weight decay
  1e-4 added to the gradient (:class:`zoo.optimizers.L2Adam`; Keras' decoupled weight
  decay would be effectively none at this rate); learning rate 1e-4 with polynomial
  decay of power 0.9 to 0 over the run; 100 epochs. ``--weight-decay`` and
  ``--lr-power`` replace the optimiser by :func:`zoo.sanet.recipe.sanet_optimizer`
  with those values (a recipe override);
* loss: GBL (eq. 9, :class:`zoo.losses.GlobalBalancingLoss`, alpha = 0.2 as in
  Fig. 3, gamma 1: the registered recipe's), Table 2's other gammas (:class:`GBL`)
  or the CE+JAL baseline (eq. 2, :func:`ce_jal`, multi-channel Jaccard averaged over
  channels) as row overrides; ``--alpha`` changes GBL's alpha;
* RSM rows (``rsm=True`` of :func:`run_attribute_row`): the random shuffle module
  (:mod:`zoo.sanet.region_shuffle`, see :data:`RSM_NOTE`) on the training batches, a
  change of the data, not of the model or the recipe (recorded in the run card's
  ``training``); the batch size counts the sampled images, each followed in its
  batch by its destructed copy (the paper's batch of 5 at a 1:1 ratio; see
  :data:`RSM_NOTE`);
* evaluation: test predictions thresholded at 0.5 and written as Task 2 attribute
  PNGs at the original image size (``rows/<row>/predictions/``, ready for a
  submission); the table's scores are those files scored against the full-size
  ground truth as the official ISIC 2018 Task 2 scorer does
  (:func:`zoo.evaluate.evaluate`). "Avg JA"/"Avg Dice" are the mean of the five
  attribute values and the micro average (our reading of the paper's averages).

Every row trains one model (five sigmoid attribute maps), so its row folder is its
run folder (:mod:`zoo.run`): ``zoo.load_run("results/sanet_table3/rows/resunet-rsm-sam")``
gives the model that was scored, its input spec and its recipe.

Deviations and gaps: the paper gives no ranges or probabilities for its
augmentations (:data:`zoo.sanet.recipe.SANET_AUGMENTATION` documents ours); SLIC
settings, SANet's decoder widths and the baselines' backbones are ours
(documented in :mod:`zoo.sanet.models`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

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
from reproduce.frame import (
    Column,
    RowContext,
    RowResult,
    add_danet_energy_argument,
    danet_builder_args,
    number_in_range,
    weights_argument,
)
from zoo.common.encoders import ENCODERS
from zoo.evaluate import evaluate
from zoo.losses import SANET_ALPHA, SANET_GAMMA, CrossEntropyJaccardLoss, GlobalBalancingLoss
from zoo.metrics import DiceCoefficient, JaccardIndex
from zoo.recipe import TrainingRecipe
from zoo.sanet.models import DILATED_BACKBONES, SANET_INPUT
from zoo.sanet.recipe import LR_POWER, SANET_GEOMETRIC_AUGMENTATION, WEIGHT_DECAY, sanet_optimizer
from zoo.sanet.region_shuffle import DCL_NEIGHBOURHOOD, RSM_GRID, RSM_NEIGHBOURHOOD, RegionShuffle
from zoo.sanet.superpixels import SlicParams, cache_superpixels, superpixel_segmentation_dataset
from zoo.submission import original_size, write_attribute_masks
from zoo.train import TrainResult

ATTRIBUTES = ISIC2018_ATTRIBUTES
THRESHOLD = 0.5

AVG_JA, AVG_DICE = "Avg JA", "Avg Dice"
AVERAGE_COLUMNS = (Column(AVG_JA, "%", True), Column(AVG_DICE, "%", True))

DATASET = DatasetNeed(
    name="ISIC 2018 Task 2",
    default_dir="data/isic2018",
    how_to_get="python -m data_tools.download isic2018 --dest data/isic2018",
    make_synthetic=functools.partial(make_isic2018, n_train=10, n_val=4, n_test=4, image_size=(48, 64)),
)

SMOKE = {
    "epochs": 2,
    "batch_size": 2,
    "image_size": 64,
    "encoder_weights": None,
    "backbone": "vgg16",
    "dilated_backbone": "resnet14",
    "unet_base_filters": 8,
    "slic_segments": 16,
    "max_segments": 32,
}
"""``--smoke``: 64x64 synthetic images, small random-weight encoders (no download),
2 epochs of batch 2 (command-line overrides of the recipe, recorded as such)."""

NO_AUGMENTATION = Augmentation()
"""``--no-augment``'s recipe override: every transform off."""

RSM_NOTE = (
    f'RSM: {RSM_GRID}x{RSM_GRID} regions, each moving at most one cell per axis ("nearest neighbors"; '
    f"--rsm-neighbourhood {DCL_NEIGHBOURHOOD} for DCL's wider moves). The paper trains with \"mini-batch "
    'size = 5" and sets "the ratio of the destructed images in batch to 1:1"; no split of 5 images is '
    "1:1, so the 5 count sampled images and each is followed by its destructed copy, as DCL (Chen et al. "
    "2019, whose shuffle the paper adopts) pairs them: an RSM row's step holds 10 images (5 intact + "
    "5 destructed), a plain row's 5, and both see every training image once an epoch. Masks and "
    "superpixels move with their regions; each piece of a shuffled superpixel becomes its own superpixel "
    "(the smallest merged into a neighbour beyond --max-segments)."
)
"""The table notes on the random shuffle module (Tables 3 and 4)."""

KEEP = {"last": "last", "best-val": "best"}
"""``--keep`` -> :attr:`zoo.train.TrainConfig.keep` (the recipe monitors the validation Jaccard)."""

PROTOCOL_NOTES = (
    'The final epoch\'s model is scored (--keep last, the default): "The total epoch is 100", '
    "the learning rate decaying polynomially (power 0.9) to 0, and the paper names no epoch selection, so its model "
    "reads as the last. --keep best-val keeps the epoch of best thresholded Jaccard on the 100 validation "
    "images instead (recorded in each run card's training.keep).",
    f"Input size and SLIC settings are ours: the paper gives no input size and names SLIC (Achanta et al. "
    f"2012) without its settings. Input {SANET_INPUT.image_size[0]}x{SANET_INPUT.image_size[1]} "
    "(--image-size): a multiple of 32, which the five-level encoder-decoders need, and small enough for "
    f"RSM's 10-image steps with a ResNet101 on one GPU. SLIC: about {SlicParams.n_segments} superpixels per "
    f"image (compactness {SlicParams.compactness:g}, sigma {SlicParams.sigma:g}, at most "
    f"{SlicParams.max_side} pixels on the longer side; --slic-segments), small enough that an attribute "
    '"may appear on only one superpixel" as the paper says, and at most '
    f"{SlicParams.max_segments} labels (--max-segments), the superpixel pooling's bound.",
)
"""The notes every SANet table (2-4) prints on its protocol: the kept epoch, the input size and SLIC."""


# --------------------------------------------------------------------------- losses (row overrides)


@dataclasses.dataclass(frozen=True)
class GBL:
    """A recipe ``loss`` factory: the global balancing loss (SANet eq. 9) with the
    focusing parameter ``gamma`` (eq. 8) and truncation point ``alpha`` (eq. 7).
    Table 2's rows other than gamma = 1 override the registered recipe's loss with it;
    the run card names it by :attr:`description`."""

    gamma: float = SANET_GAMMA
    alpha: float = SANET_ALPHA

    def __call__(self) -> keras.losses.Loss:
        return GlobalBalancingLoss(alpha=self.alpha, gamma=self.gamma)

    @property
    def description(self) -> str:
        return f"GlobalBalancingLoss(alpha={self.alpha}, gamma={self.gamma}), eq. 9"


def ce_jal() -> keras.losses.Loss:
    """A recipe ``loss`` factory: the CE+JAL baseline of Table 2 (eq. 2), the Jaccard
    term per attribute channel, averaged."""
    return CrossEntropyJaccardLoss(per_channel=True)


ce_jal.description = "CrossEntropyJaccardLoss(per_channel=True), eq. 2"


def with_alpha(loss: Callable[[], Any], alpha: float) -> Callable[[], Any]:
    """``loss`` (a GBL factory: the registered :class:`~zoo.losses.GlobalBalancingLoss`
    or a :class:`GBL`) with GBL's ``alpha``; other losses (CE+JAL) are returned as they are."""
    if loss is GlobalBalancingLoss:
        return GBL(alpha=alpha)
    if isinstance(loss, GBL):
        return dataclasses.replace(loss, alpha=alpha)
    return loss


# --------------------------------------------------------------------------- flags


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The SANet tables' flags. The recipe's numbers (learning rate, batch size, epochs:
    the frame's ``--learning-rate``, ``--batch-size``, ``--epochs``; weight decay, decay
    power, GBL alpha here) default to the registered recipe's; the rest choose the
    input, the networks' variants and the data."""
    parser.add_argument(
        "--image-size",
        type=int,
        default=SANET_INPUT.image_size[0],
        help="model input side, a multiple of 32 (default: %(default)s)",
    )
    parser.add_argument(
        "--weight-decay",
        type=number_in_range(float, 0.0),
        default=None,
        help=f"PyTorch-style weight decay, added to the gradient (default: the recipe's, {WEIGHT_DECAY})",
    )
    parser.add_argument(
        "--lr-power",
        type=number_in_range(float, 0.0, include_low=False),
        default=None,
        help=f"power of the polynomial learning-rate decay (default: the recipe's, {LR_POWER})",
    )
    parser.add_argument(
        "--alpha",
        type=number_in_range(float, 0.0, 1.0),
        default=None,
        help=f"GBL truncation point alpha, eq. 7 (default: the recipe's, {SANET_ALPHA})",
    )
    parser.add_argument(
        "--encoder-weights",
        type=weights_argument,
        default="imagenet",
        help="pretrained encoders: imagenet, none, or a keras.applications no-top weights file (default: %(default)s)",
    )
    parser.add_argument(
        "--backbone",
        choices=sorted(ENCODERS),
        default=None,
        help="ResUNet/SANet encoder (default: the registered model's, the paper's ResNet101)",
    )
    parser.add_argument(
        "--dilated-backbone",
        choices=sorted(DILATED_BACKBONES),
        default=None,
        help="DeepLab/DANet backbone (default: the registered model's, a dilated ResNet101)",
    )
    add_danet_energy_argument(parser)
    parser.add_argument(
        "--unet-base-filters",
        type=int,
        default=None,
        help="channels of U-Net's first level (default: the registered model's, 64)",
    )
    parser.add_argument(
        "--slic-segments",
        type=int,
        default=SlicParams.n_segments,
        help="SLIC superpixels per image (default: %(default)s)",
    )
    parser.add_argument(
        "--max-segments",
        type=int,
        default=SlicParams.max_segments,
        help="bound on the superpixel labels, also of the RSM-shuffled maps (default: %(default)s)",
    )
    parser.add_argument(
        "--rsm-neighbourhood",
        type=number_in_range(float, 0.0),
        default=RSM_NEIGHBOURHOOD,
        help="RSM rows: DCL's jitter range k; regions move fewer than 2k cells per axis "
        f"(default: %(default)s, nearest neighbours; DCL's: {DCL_NEIGHBOURHOOD})",
    )
    parser.add_argument(
        "--keep",
        choices=tuple(KEEP),
        default="last",
        help="the epoch scored: last (the paper's 100 epochs, the rate decayed to 0) or "
        "best-val (the best validation Jaccard) (default: %(default)s)",
    )
    parser.add_argument(
        "--superpixel-cache",
        type=Path,
        help="where SLIC maps are cached (default: beside the images, <image folder>_superpixels/)",
    )
    augmentation = parser.add_mutually_exclusive_group()
    augmentation.add_argument(
        "--no-augment",
        dest="augment",
        action="store_false",
        help="train without the paper's augmentation (a recipe override)",
    )
    augmentation.add_argument(
        "--geometric-augmentation",
        action="store_true",
        help="also random flips and 90-degree rotations, which the paper's list of "
        "augmentations does not name (a recipe override; default: the paper's "
        "list only)",
    )


def input_spec(args: argparse.Namespace) -> InputSpec:
    return dataclasses.replace(SANET_INPUT, image_size=(args.image_size, args.image_size))


def slic_params(args: argparse.Namespace) -> SlicParams:
    return SlicParams(n_segments=args.slic_segments, max_segments=args.max_segments)


def script_recipe_overrides(args: argparse.Namespace, recipe: TrainingRecipe) -> dict[str, Any]:
    """What the script's flags change in ``recipe`` (the registered recipe with the
    row's overrides): the optimiser's weight decay and decay power, GBL's alpha, the
    augmentation. Empty with the defaults: the row trains with its recipe as it is."""
    overrides: dict[str, Any] = {}
    if args.weight_decay is not None or args.lr_power is not None:
        overrides["optimizer"] = sanet_optimizer(
            WEIGHT_DECAY if args.weight_decay is None else args.weight_decay,
            LR_POWER if args.lr_power is None else args.lr_power,
        )
    if args.alpha is not None:
        overrides["loss"] = with_alpha(recipe.loss, args.alpha)
    if not args.augment:
        overrides["augmentation"] = NO_AUGMENTATION
    elif args.geometric_augmentation:
        overrides["augmentation"] = SANET_GEOMETRIC_AUGMENTATION
    return overrides


def row_recipe(ctx: RowContext) -> TrainingRecipe:
    """The row's recipe: the registered one, the row's overrides, the script's flags
    (:func:`script_recipe_overrides`), the command line's ``--epochs`` and the like."""
    row = ctx.entry.recipe.with_overrides(**ctx.row.recipe_overrides)
    return ctx.recipe(**script_recipe_overrides(ctx.args, row))


def row_builder_args(ctx: RowContext) -> dict[str, Any]:
    """The row's builder arguments: the registered model's, the row's, and the flags
    that concern this model (input size, encoder weights, backbones, DANet's channel
    energy, U-Net width, SANet's superpixel bound)."""
    args, model = ctx.args, ctx.row.model
    script: dict[str, Any] = {"input_shape": (args.image_size, args.image_size, 3)}
    if model == "sanet_unet":
        script["base_filters"] = args.unet_base_filters
    else:
        script["encoder_weights"] = args.encoder_weights
    if model in ("sanet_deeplab", "sanet_danet"):
        script["backbone"] = args.dilated_backbone
    if model == "sanet_danet":
        script.update(danet_builder_args(args))
    if model in ("resunet", "sanet"):
        script["backbone"] = args.backbone
    if "superpixels" in ctx.entry.extra_inputs:
        script["max_segments"] = args.max_segments
    return ctx.builder_args(
        **{key: value for key, value in script.items() if value is not None or key == "encoder_weights"}
    )


# --------------------------------------------------------------------------- data


def load_records(ctx: RowContext, superpixels: bool) -> dict[str, list[Record]]:
    """Train, validation and test records with their attribute masks (and superpixel maps)."""
    splits = {
        split: read_isic2018(ctx.data_dir, split, tasks=(2,), skip_bad=ctx.bad_inputs)
        for split in ("train", "validation", "test")
    }
    if superpixels:
        splits = {
            split: cache_superpixels(
                records, slic_params(ctx.args), cache_dir=ctx.args.superpixel_cache, skip_bad=ctx.bad_inputs
            )
            for split, records in splits.items()
        }
    return splits


def make_dataset(
    records: Sequence[Record],
    spec: InputSpec,
    *,
    batch_size: int,
    training: bool,
    superpixels: bool,
    max_segments: int,
    augmentation: Augmentation | None = None,
    rsm: RegionShuffle | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches for a model: ``(image, masks)``, or ``({"image", "superpixels"}, masks)``
    (``superpixels``: SANet's SAM input); ``augmentation`` and ``rsm`` in training only;
    with RSM ``2 * batch_size`` images a batch (each sample and its destructed copy)."""
    common = dict(
        mask_names=ATTRIBUTES,
        batch_size=batch_size,
        training=training,
        augment=augmentation if training else None,
        seed=seed,
        cache=training,
    )
    shuffle = rsm if training else None
    if superpixels:
        return superpixel_segmentation_dataset(
            records, spec, max_segments=max_segments, region_shuffle=shuffle, **common
        )
    dataset = segmentation_dataset(records, spec, **common)
    return dataset if shuffle is None else shuffle.apply(dataset, seed)


def region_shuffle(args: argparse.Namespace) -> RegionShuffle:
    """The RSM rows' random shuffle module, from the flags."""
    return RegionShuffle(neighbourhood=args.rsm_neighbourhood, max_segments=args.max_segments)


# --------------------------------------------------------------------------- evaluate


def predict_and_score(
    model: keras.Model,
    records: Sequence[Record],
    spec: InputSpec,
    predictions_dir: Path,
    *,
    batch_size: int,
    max_segments: int | None = None,
) -> dict[str, dict[str, float]]:
    """Writes every test prediction of ``model`` (input ``spec``; ``max_segments``:
    a SANet model's superpixel bound, ``None`` for the others) as Task 2 PNGs at the
    original image size and scores those files against the full-size ground truth, as
    the official ISIC 2018 Task 2 scorer does (:func:`zoo.evaluate.evaluate`); returns
    the Task 2 scores (fractions) with ``sanet_average`` (Avg JA / Avg Dice: the five
    attributes and the micro average)."""
    dataset = make_dataset(
        records,
        spec,
        batch_size=batch_size,
        training=False,
        superpixels=max_segments is not None,
        max_segments=max_segments or 0,
    )
    index = 0
    for inputs, _ in dataset.as_numpy_iterator():
        for probability in np.asarray(model.predict_on_batch(inputs)):
            record = records[index]
            write_attribute_masks(
                record.image_id, probability, predictions_dir, original_size(record.image_path), ATTRIBUTES, THRESHOLD
            )
            index += 1
    truth_dir = predictions_dir.parent / "ground_truth"  # the scored records' own masks (--skip-bad may drop some)
    shutil.rmtree(truth_dir, ignore_errors=True)
    truth_dir.mkdir(parents=True)
    for record in records:
        for path in record.mask_paths.values():
            (truth_dir / Path(path).name).symlink_to(Path(path).resolve())
    scores = evaluate("isic2018-task2", truth_dir, predictions_dir).metrics
    groups = [*ATTRIBUTES, "micro_average"]
    scores["sanet_average"] = {
        metric: float(np.mean([scores[group][metric] for group in groups])) for metric in ("jaccard", "dice")
    }
    return scores


# --------------------------------------------------------------------------- one row


@dataclasses.dataclass
class AttributeRun:
    """A trained row: the Task 2 scores, the recipe it trained with, and what the frame records."""

    scores: dict[str, dict[str, float]]
    trained: TrainResult
    recipe: TrainingRecipe
    run_folder: Path
    extra: dict


def run_attribute_row(ctx: RowContext, *, rsm: bool = False) -> AttributeRun:
    """One row of Tables 2-4: data, training (:meth:`RowContext.fit` with
    :func:`row_recipe`), test predictions (PNGs) and scores, and the row folder made a
    run folder of exactly the scored model; ``rsm``: the random shuffle module on the
    training batches."""
    args, entry = ctx.args, ctx.entry
    recipe, builder_args = row_recipe(ctx), row_builder_args(ctx)
    superpixels = "superpixels" in entry.extra_inputs
    max_segments = builder_args["max_segments"] if superpixels else None
    spec = input_spec(args)
    records = load_records(ctx, superpixels)
    data = functools.partial(
        make_dataset,
        spec=spec,
        batch_size=recipe.batch_size,
        superpixels=superpixels,
        max_segments=args.max_segments,
        seed=args.seed,
    )
    train = data(
        records["train"], training=True, augmentation=recipe.augmentation, rsm=region_shuffle(args) if rsm else None
    )
    started = time.monotonic()
    trained = ctx.fit(
        train,
        data(records["validation"], training=False),
        builder_args=builder_args,
        recipe=recipe,
        steps_per_epoch=max(1, len(records["train"]) // recipe.batch_size),
        metrics=lambda: [JaccardIndex(), DiceCoefficient()],
        mode="max",
        keep=KEEP[args.keep],
    )
    seconds = time.monotonic() - started
    scores = predict_and_score(
        trained.model,
        records["test"],
        spec,
        ctx.out_dir / "predictions",
        batch_size=recipe.batch_size,
        max_segments=max_segments,
    )
    epochs = len(trained.history.get("loss", [])) or recipe.epochs
    shuffle = (
        {
            "grid": RSM_GRID,
            "neighbourhood": args.rsm_neighbourhood,
            "max_segments": args.max_segments,
            "destructed_per_image": 1,
        }
        if rsm
        else None
    )
    counts = {split: len(r) for split, r in records.items()}
    folder = ctx.save_run(
        trained.model,
        builder_args=builder_args,
        recipe=recipe,
        input_spec=spec,
        scores={"split": "test", "threshold": THRESHOLD, "task2": scores},
        training={
            "kept_epoch": trained.kept_epoch,
            "epochs_run": epochs,
            "monitor": recipe.monitor,
            "keep": args.keep,
            "region_shuffle": shuffle,
        },
        data={"images": counts, "superpixels": dataclasses.asdict(slic_params(args)) if superpixels else None},
    )
    extra = {
        "model": entry.name,
        "recipe_overrides": recipe.overrides_from(entry.recipe),
        "region_shuffle": rsm,
        "params": trained.model.count_params(),
        "task2_scores": scores,
        "kept_epoch": trained.kept_epoch,
        "images": counts,
        "run": str(folder),
        "seconds_per_epoch": round(seconds / epochs, 2),
    }
    return AttributeRun(scores, trained, recipe, folder, extra)


def average_values(scores: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Tables 2-3: SANet's averages (five attributes and the micro average), in percent."""
    return {AVG_JA: 100.0 * scores["sanet_average"]["jaccard"], AVG_DICE: 100.0 * scores["sanet_average"]["dice"]}


def run_average_row(ctx: RowContext, *, rsm: bool = False) -> RowResult:
    run = run_attribute_row(ctx, rsm=rsm)
    return RowResult(
        average_values(run.scores), history=run.trained.history, monitor=run.recipe.monitor, extra=run.extra
    )
