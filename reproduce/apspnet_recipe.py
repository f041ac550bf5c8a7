"""What A-PSPNet Tables I and III (``apspnet_table{1,3}.py``) share: data, split, training, scoring.

:func:`run_segmentation_row` runs one row (split, training, evaluation, run folder);
:func:`add_recipe_arguments` adds the flags; :data:`DATASET` and :data:`SMOKE` are
what both tables run on.

Every hyperparameter of training is the registered recipe's,
:data:`zoo.apspnet.recipe.APSPNET_RECIPE` (Wen et al., "A-PSPNet: A novel
segmentation method of renal ultrasound image", section IV-B): the Combo loss of eq. 6
(:class:`zoo.losses.ComboLoss`) on one-hot class masks, Adam, learning rate 1e-3,
batch 8, 100 epochs, no augmentation named, the training loss monitored (the tables
keep the final epoch, ``--keep``). A row changes it only through its ``PaperRow.recipe_overrides`` (Table I: 50
epochs, "the final model that was trained with 50 epochs", section IV-C) and the
command line's ``--epochs``, ``--batch-size``, ``--learning-rate`` and ``--monitor``
(:meth:`reproduce.frame.RowContext.recipe`); training goes through
:meth:`reproduce.frame.RowContext.fit`. The class-index masks the readers give are
turned into the one-hot targets the recipe names (:func:`make_dataset`), so the loss
is the recipe's own. The rest of the experiment (section IV):

* data: Labelme JSON (kidney and hydronephrosis polygons, ``--label-map``) or
  image/mask folders (``--data-format folders``), PNG/JPEG/DICOM; a random 9:1
  train/test split, written once to ``--split-file`` and reused by every row and
  by both tables;
* input: padded to a square with grey borders, resized to 473x473
  (:data:`zoo.apspnet.models.APSPNET_INPUT`), ImageNet ResNet50 weights.

Every row folder is a run folder (:mod:`zoo.run`) of exactly the scored model, its
card holding the recipe, the row's overrides and the scores:
``zoo.load_run("results/apspnet_table3/rows/a-pspnet")``.

Reading notes and deviations (:data:`RECIPE_NOTES`, printed under both tables):

* The paper reports "the final model that was trained with 50 epochs" (Wen et al.,
  section IV-C; Table III likewise "the final model"): the last epoch is kept
  (``--keep last``, default). ``--keep lowest-loss`` keeps the epoch of lowest
  *training* loss instead (there is no validation split, so the test set never picks
  an epoch either way).
* "MPA": the paper names it "Mean Pixel Accuracy" but writes eq. 8 as an average
  precision, ``sum_n (R_n - R_{n-1}) P_n``. Both are printed, each beside the paper's
  MPA column: "MPA (pixel accuracy)", the per-class pixel accuracy (the mean per-class
  recall, :func:`zoo.metrics.mean_pixel_accuracy`), and "MPA (eq. 8 AP)", the eq. 8
  average precision (the
  mean per-class area under the precision-recall curve,
  :func:`zoo.metrics.mean_average_precision`). In all eight rows of Tables I and III
  the paper's MPA exceeds its MIoU, which the per-class pixel accuracy always does
  (a class's recall TP / (TP + FN) is at least its IoU TP / (TP + FN + FP)) and an
  average precision need not: the paper's numbers fit the per-class pixel accuracy.
* MIoU is eq. 7: the sum over the k + 1 classes divided by k + 1; a class neither
  in the truth nor predicted anywhere in the test set counts 1, one only predicted 0.
* Scored region: the original image at its original resolution. The model's
  473x473 softmax is mapped back through the grey padding and the resize
  (:func:`data_tools.preprocess.restore_geometry`, bilinear) and compared with the
  original mask; the padding is no pixel of the image and is not scored (scoring
  it as background would inflate background IoU and accuracy). Pixel counts are
  accumulated image by image over the whole test set
  (:class:`zoo.metrics.SegmentationScores`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from data_tools.folders import read_labelme, read_mask_folder
from data_tools.imageio import load_mask
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec, restore_geometry
from data_tools.records import DatasetError, Record
from data_tools.synthetic import ULTRASOUND_LABEL_MAP, make_ultrasound_labelme
from reproduce.datasets import DatasetNeed
from reproduce.frame import (
    Column,
    RowContext,
    RowResult,
    add_danet_energy_argument,
    danet_builder_args,
    weights_argument,
)
from zoo.apspnet.models import APSPNET_INPUT, BACKBONES
from zoo.metrics import SegmentationScores
from zoo.recipe import TrainingRecipe

MASK_NAME = "classes"
TEST_FRACTION = 0.1  # section IV-A: 9:1
SMOKE = {"epochs": 1, "batch_size": 2, "image_size": 64, "weights": None, "backbone": "resnet14"}
"""``--smoke``: 64x64 inputs, ResNet14 backbone, random weights, one epoch of batch 2
(recipe overrides, in every row's run card)."""

MIOU = Column("MIoU", "%", higher_is_better=True, decimals=2)
MPA_PIXEL_ACCURACY = Column("MPA (pixel accuracy)", "%", higher_is_better=True, decimals=2)
MPA_EQ8 = Column("MPA (eq. 8 AP)", "%", higher_is_better=True, decimals=2)
MIOU_MPA = (MIOU, MPA_PIXEL_ACCURACY, MPA_EQ8)
"""Tables I and III: the paper's MIoU, and its MPA column compared twice (module docstring)."""


def paper_values(miou: str, mpa: str) -> dict[str, str]:
    """A paper row's MIoU and its one MPA value under both MPA readings."""
    return {MIOU.name: miou, MPA_PIXEL_ACCURACY.name: mpa, MPA_EQ8.name: mpa}


RECIPE_NOTES = (
    "The paper's MPA column is compared twice: 'MPA (pixel accuracy)' is the mean per-class pixel "
    "accuracy (its name, Mean Pixel Accuracy) and 'MPA (eq. 8 AP)' the mean per-class average "
    "precision of its eq. 8 (its formula). In all its rows MPA > MIoU, which the per-class "
    "pixel accuracy always gives (recall >= IoU per class) and an average precision need not: the "
    "paper's numbers fit the per-class pixel accuracy.",
    "MIoU is eq. 7 (divided by the number of classes; a class absent from truth and prediction "
    "counts 1). Scores are computed on the original images at their original resolution; the grey "
    "padding to a square is mapped back out and not scored.",
    "The paper reports 'the final model that was trained with 50 epochs' (section IV-C): the last "
    "epoch is kept (--keep last, default; --keep lowest-loss keeps the epoch of lowest training loss; "
    "there is no validation split, the test set never picks an epoch).",
)
"""The notes both tables print first, under the table."""

DATASET = DatasetNeed(
    name="renal ultrasound (UPJO hydronephrosis, Labelme)",
    default_dir="data/renal_ultrasound",
    how_to_get=(
        "the paper's data is private (Beijing Children's Hospital): pass your own "
        "Labelme folder (*.json with kidney/hydronephrosis polygons, --label-map), or "
        "--data-format folders with images/ and class-index masks/"
    ),
    make_synthetic=functools.partial(make_ultrasound_labelme, n=10, image_size=(72, 96)),
    site=None,
)


# --------------------------------------------------------------------------- flags


def parse_label_map(text: str) -> dict[str, int]:
    """``"kidney=1,hydronephrosis=2"`` -> ``{"kidney": 1, "hydronephrosis": 2}``."""
    label_map = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, _, index = item.partition("=")
        if not label or not index.strip().isdigit() or int(index) < 1:
            raise argparse.ArgumentTypeError(
                f"--label-map: {item!r} is not LABEL=INDEX with INDEX >= 1 (0 is the "
                "background), e.g. kidney=1,hydronephrosis=2"
            )
        label_map[label.strip()] = int(index)
    if not label_map:
        raise argparse.ArgumentTypeError("--label-map is empty; e.g. kidney=1,hydronephrosis=2")
    return label_map


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The A-PSPNet tables' own flags: data layout, split, input size, backbone and its
    weights. (The training hyperparameters are the recipe's; the frame adds
    ``--epochs``, ``--batch-size``, ``--learning-rate`` and ``--monitor`` to override them.)"""
    default_map = ",".join(f"{k}={v}" for k, v in ULTRASOUND_LABEL_MAP.items())
    parser.add_argument(
        "--data-format",
        choices=("labelme", "folders"),
        default="labelme",
        help="Labelme JSON folder, or image and class-index mask folders (default: %(default)s)",
    )
    parser.add_argument(
        "--label-map",
        type=parse_label_map,
        default=parse_label_map(default_map),
        help="Labelme label -> class index, e.g. kidney=1,hydrops=2 "
        f"(default: {default_map}); with folders, the class names",
    )
    parser.add_argument(
        "--image-dir", default="images", help="folders format: image folder inside --data-dir (default: %(default)s)"
    )
    parser.add_argument(
        "--mask-dir",
        default="masks",
        help="folders format: mask folder inside --data-dir; pixel value = class index (default: %(default)s)",
    )
    parser.add_argument(
        "--mask-suffix", default="", help="folders format: what mask stems add to image stems, e.g. _mask"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=APSPNET_INPUT.image_size[0],
        help="model input side (default: %(default)s, the paper's)",
    )
    parser.add_argument(
        "--weights",
        type=weights_argument,
        default="imagenet",
        help="ResNet50 weights: imagenet, none, or a keras.applications "
        "ResNet50 no-top weights file (default: %(default)s)",
    )
    parser.add_argument(
        "--backbone",
        choices=sorted(BACKBONES),
        default=None,
        help="backbone ResNet (default: the registered model's, resnet50, the paper's)",
    )
    add_danet_energy_argument(parser)
    parser.add_argument(
        "--keep",
        choices=tuple(KEEP),
        default="last",
        help="the epoch scored: last (the paper's 'final model', section IV-C) or lowest-loss "
        "(the lowest training loss) (default: %(default)s)",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=TEST_FRACTION,
        help="share of the images in the test split (default: %(default)s)",
    )
    parser.add_argument(
        "--split-file",
        type=Path,
        help="the train/test split, written on the first run and reused "
        "(default: <data-dir>/.apspnet/split-seed<seed>.json)",
    )


KEEP = {"last": "last", "lowest-loss": "best"}
"""``--keep`` -> :attr:`zoo.train.TrainConfig.keep` (the recipe monitors the training loss)."""


def num_classes(args: argparse.Namespace) -> int:
    """Background plus the classes of ``--label-map``."""
    return max(args.label_map.values()) + 1


def input_spec(args: argparse.Namespace) -> InputSpec:
    """:data:`APSPNET_INPUT` at ``--image-size``."""
    return dataclasses.replace(APSPNET_INPUT, image_size=(args.image_size, args.image_size))


# --------------------------------------------------------------------------- data


def read_records(ctx: RowContext) -> list[Record]:
    """Every annotated image of ``--data-dir``, masks under ``mask_paths["classes"]``."""
    args = ctx.args
    if args.data_format == "labelme":
        return read_labelme(ctx.data_dir, args.label_map, skip_bad=ctx.bad_inputs)
    return read_mask_folder(
        ctx.data_dir / args.image_dir,
        ctx.data_dir / args.mask_dir,
        mask_suffix=args.mask_suffix,
        classes=num_classes(args),
        mask_name=MASK_NAME,
        skip_bad=ctx.bad_inputs,
    )


def split_records(
    records: Sequence[Record], path: Path, test_fraction: float, seed: int
) -> tuple[list[Record], list[Record]]:
    """The 9:1 random split, read from ``path`` or drawn (seeded) and written there.

    Raises:
        DatasetError: ``path`` is unreadable or names images that are not in the
            dataset (the data changed: delete the file or pass another).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"--test-fraction must be in (0, 1), got {test_fraction}")
    ids = [record.image_id for record in records]
    if path.is_file():
        try:
            split = json.loads(path.read_text(encoding="utf-8"))
            test_ids = set(split["test"])
            known = set(split["train"]) | test_ids
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DatasetError(path, f"not a split file ({error}); delete it to draw a new one") from error
        missing = sorted(known - set(ids))
        if missing:
            raise DatasetError(
                path,
                f"{len(missing)} images of the split are not in the data "
                f"(e.g. {missing[0]!r}); delete the file to draw a new split",
            )
        new = sorted(set(ids) - known)
        if new:
            raise DatasetError(
                path,
                f"{len(new)} images of the data are not in the split "
                f"(e.g. {new[0]!r}); delete the file to draw a new split",
            )
    else:
        count = min(max(1, round(test_fraction * len(ids))), len(ids) - 1)
        test_ids = set(np.random.default_rng(seed).permutation(ids)[:count].tolist())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"seed": seed, "train": sorted(set(ids) - test_ids), "test": sorted(test_ids)}, indent=2),
            encoding="utf-8",
        )
    return ([r for r in records if r.image_id not in test_ids], [r for r in records if r.image_id in test_ids])


def split_path(ctx: RowContext) -> Path:
    """``--split-file``, or ``<data-dir>/.apspnet/split-seed<seed>.json``."""
    # In a subfolder: read_labelme reads every *.json of the data folder itself.
    return ctx.args.split_file or ctx.data_dir / ".apspnet" / f"split-seed{ctx.args.seed}.json"


def train_test_records(ctx: RowContext) -> tuple[list[Record], list[Record]]:
    """The records of the shared train/test split of ``ctx``'s data."""
    return split_records(read_records(ctx), split_path(ctx), ctx.args.test_fraction, ctx.args.seed)


def make_dataset(
    records: Sequence[Record],
    spec: InputSpec,
    *,
    batch_size: int,
    training: bool,
    classes: int | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """``(image, class-index mask [B, H, W, 1])`` batches at ``spec``; with ``classes``
    the masks one-hot ``[B, H, W, classes]``, the recipe's targets (training)."""
    dataset = segmentation_dataset(
        records,
        spec,
        mask_names=(MASK_NAME,),
        batch_size=batch_size,
        training=training,
        mask_mode="index",
        seed=seed,
        drop_remainder=False,
    )
    if classes is None:
        return dataset
    return dataset.map(
        lambda image, mask: (image, tf.one_hot(mask[..., 0], classes)), num_parallel_calls=tf.data.AUTOTUNE
    )


# --------------------------------------------------------------------------- the row's model and recipe


def row_recipe(ctx: RowContext) -> TrainingRecipe:
    """The row's recipe: the registered model's (:data:`zoo.apspnet.recipe.APSPNET_RECIPE`),
    the row's ``recipe_overrides``, then the command line's overrides."""
    return ctx.recipe()


def row_builder_args(ctx: RowContext) -> dict[str, Any]:
    """The row's builder arguments: the registered model's and the row's (Table I's
    arrangement of the attention units), with the input size, the classes of
    ``--label-map``, the backbone's weights, ``--backbone`` (if given) and the DANet
    row's ``--danet-energy``."""
    args = ctx.args
    script: dict[str, Any] = {
        "input_shape": (args.image_size, args.image_size, 3),
        "classes": num_classes(args),
        "encoder_weights": args.weights,
    }
    if args.backbone is not None:
        script["backbone"] = args.backbone
    if ctx.row.model == "danet":
        script.update(danet_builder_args(args))
    return ctx.builder_args(**script)


# --------------------------------------------------------------------------- scoring


def score_original_images(
    model: keras.Model, records: Sequence[Record], spec: InputSpec, classes: int, *, batch_size: int
) -> dict[str, float]:
    """Eq. 7 MIoU and both MPA readings, in percent, on the original images.

    Each softmax map of ``model`` (input ``spec``) is mapped back to its image's
    original pixels (through the padding and the resize) and compared with the
    original class-index mask; ``batch_size`` only groups the predictions.
    """
    scores = SegmentationScores(classes)
    images = make_dataset(records, spec, batch_size=batch_size, training=False).map(lambda x, y: x)
    for record, probabilities in zip(records, model.predict(images, verbose=0), strict=True):
        truth = load_mask(record.mask_paths[MASK_NAME], binary=False, num_classes=classes)
        scores.update(truth, restore_geometry(probabilities, truth.shape, spec).numpy())
    return {
        "miou": 100 * scores.mean_iou(),
        "mean_pixel_accuracy": 100 * scores.mean_pixel_accuracy(),
        "mpa_eq8": 100 * scores.mean_average_precision(),
    }


def table_values(scores: Mapping[str, float]) -> dict[str, float]:
    """The table's columns from :func:`score_original_images`' scores."""
    return {
        MIOU.name: scores["miou"],
        MPA_PIXEL_ACCURACY.name: scores["mean_pixel_accuracy"],
        MPA_EQ8.name: scores["mpa_eq8"],
    }


# --------------------------------------------------------------------------- one row


def run_segmentation_row(ctx: RowContext) -> RowResult:
    """Split, train, evaluate: one row of Table I or III.

    The row's registered model (:func:`row_builder_args`) is trained with
    :func:`row_recipe` through :meth:`RowContext.fit`, the kept epoch scored on the
    test images at their original size, and the row folder made the run folder of
    exactly that model (:meth:`RowContext.save_run`).
    """
    args = ctx.args
    train, test = train_test_records(ctx)
    recipe, builder_args, spec, classes = row_recipe(ctx), row_builder_args(ctx), input_spec(args), num_classes(args)
    trained = ctx.fit(
        make_dataset(train, spec, batch_size=recipe.batch_size, training=True, classes=classes, seed=args.seed),
        None,
        builder_args=builder_args,
        recipe=recipe,
        steps_per_epoch=max(1, len(train) // recipe.batch_size),
        keep=KEEP[args.keep],
    )
    scores = score_original_images(trained.model, test, spec, classes, batch_size=recipe.batch_size)
    epochs = len(trained.history.get("loss", [])) or recipe.epochs
    folder = ctx.save_run(
        trained.model,
        builder_args=builder_args,
        recipe=recipe,
        input_spec=spec,
        scores={"split": "test", "images": len(test), "scored_on": "original images, padding not scored", **scores},
        training={"kept_epoch": trained.kept_epoch, "epochs_run": epochs, "monitor": recipe.monitor, "keep": args.keep},
        data={
            "format": args.data_format,
            "label_map": dict(args.label_map),
            "split": str(split_path(ctx)),
            "train_images": len(train),
            "test_images": len(test),
        },
    )
    return RowResult(
        table_values(scores),
        history=trained.history,
        monitor=recipe.monitor,
        extra={
            **scores,
            "model": ctx.row.model,
            "run": str(folder),
            "recipe_overrides": recipe.overrides_from(ctx.entry.recipe),
            "kept_epoch": trained.kept_epoch,
            "train_images": len(train),
            "test_images": len(test),
            "params": trained.model.count_params(),
        },
    )
