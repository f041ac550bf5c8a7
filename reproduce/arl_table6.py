"""ARL-CNN Table VI: ResNet50 and ARL-CNN50 with and without lesion segmentation.

    python reproduce/arl_table6.py --data-dir data/isic2017
    python reproduce/arl_table6.py --data-dir data/isic2017 --segmenter my_segmenter.keras
    python reproduce/arl_table6.py --smoke

Zhang et al., "Attention Residual Learning for Skin Lesion Classification", IEEE TMI
2019, Table VI and Sec. V-D. Each row names its registered classifier (``resnet50``
or ``arl_cnn50``, ImageNet-initialised and fine-tuned with the registered recipe at
the learning rate 1e-4 of Sec. IV-B, the protocol of :mod:`reproduce.arl_common`; a
run folder per sub-task model, ``rows/<row>/<task>/``).

Sec. V-D: a lesion segmenter trained on the ISIC 2017 Part 1 training masks
segments every image; the classifiers are then trained and tested on the region
of interest (ROI) "cropped according to segmentation masks" (Fig. 8), from which
the patches are drawn as in Sec. IV-B. The rows without segmentation repeat
Table III's ResNet50* and ARL-CNN50*.

* Segmenter: DeepLabv3+, as the paper ("a state-of-the-art segmentation model
  deeplabV3+ ... trained by using the ISIC 2017 Skin Lesion Segmentation dataset"):
  the zoo's registered DeepLabv3+ (``sanet_deeplab``, :func:`zoo.sanet.build_deeplab`:
  dilated ResNet at output stride 16, ASPP, the DeepLabv3+ decoder) with one sigmoid
  lesion map (builder argument ``classes=1``), on [0, 1] RGB images stretched to
  ``--segmenter-size``, its ResNet (``--segmenter-backbone``, default ResNet50; the
  paper names none) from ImageNet (``--segmenter-weights``). It trains with its
  registered recipe overridden by what this table chose (:func:`segmenter_recipe`,
  recorded in its run card): Adam at a constant 1e-3, the Dice loss, no
  augmentation, keeping the epoch with the best validation Dice (Part 1 validation
  masks). It is trained once per output folder, into the run folder
  ``<out>/segmenter/`` (``zoo.load_run`` reloads it), and shared by both segmented
  rows; or ``--segmenter`` names another run folder or any ``.keras`` model mapping
  such images to a lesion probability map (its input size is read from the model).
* ROI: the bounding box of the predicted mask (probability > 0.5) in the full-size
  image, grown by ``--roi-margin`` of its height and width on each side (the paper
  gives no margin) and clipped to the image. An image whose mask is empty keeps
  its whole area (counted in the row's ``extra``). The crops are written once to
  ``<out>/roi/<split>/`` (JPEG, quality 95) with their boxes in
  ``<out>/roi/boxes.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
from PIL import Image

from data_tools.augment import Augmentation
from data_tools.imageio import load_image
from data_tools.isic import read_isic2017
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec, preprocess_images
from data_tools.records import Record
from reproduce.arl_common import (
    AVERAGE_AUC,
    DATASET,
    EXTRAS_NOTE,
    OPTIMISER_NOTE,
    SMOKE,
    Splits,
    add_recipe_arguments,
    claim_folder,
    extras_variant,
    imagenet_row,
    number_in_range,
    read_splits,
    row_result,
    score_model,
)
from reproduce.frame import Column, PaperTable, RowContext, RowResult, run_table, weights_argument
from zoo.common.run_card import WEIGHTS_FILE, is_run_folder
from zoo.losses import DiceLoss
from zoo.metrics import DiceCoefficient
from zoo.recipe import TrainingRecipe, constant
from zoo.registry import get_model
from zoo.run import load_run, save_run
from zoo.sanet.models import DILATED_BACKBONES
from zoo.train import fit

MASK_THRESHOLD = 0.5
ROI_MARGIN = 0.1
SEGMENTER_MODEL = "sanet_deeplab"
"""The registered DeepLabv3+ the segmenter is (Sec. V-D names DeepLabv3+)."""
SEGMENTER_LEARNING_RATE = 1e-3
JPEG_QUALITY = 95
Box = tuple[int, int, int, int]
"""``(top, left, height, width)`` in image pixels."""

MELANOMA_AUC = Column("AUC of M", higher_is_better=True, decimals=3)
KERATOSIS_AUC = Column("AUC of SK", higher_is_better=True, decimals=3)

PAPER_ROWS = {  # Table VI: row name -> (registered model, segmented, AUC of M, AUC of SK, average AUC)
    "ResNet50*, no segmentation": ("resnet50", False, 0.857, 0.948, 0.903),
    "ResNet50*, segmented ROI": ("resnet50", True, 0.864, 0.955, 0.910),
    "ARL-CNN50*, no segmentation": ("arl_cnn50", False, 0.875, 0.958, 0.917),
    "ARL-CNN50*, segmented ROI": ("arl_cnn50", True, 0.876, "0.96", 0.918),  # printed with two decimals
}

TABLE = PaperTable(
    key="arl_table6",
    title="ARL-CNN Table VI: ResNet50 and ARL-CNN50 with and without lesion segmentation",
    source="Zhang et al., IEEE TMI 2019, Table VI",
    columns=[MELANOMA_AUC, KERATOSIS_AUC, AVERAGE_AUC],
    rows=[
        imagenet_row(name, {MELANOMA_AUC.name: m, KERATOSIS_AUC.name: sk, AVERAGE_AUC.name: mean}, model)
        for name, (model, _, m, sk, mean) in PAPER_ROWS.items()
    ],
    notes=[
        EXTRAS_NOTE,
        OPTIMISER_NOTE,
        "Segmenter: DeepLabv3+ as the paper (Sec. V-D: 'deeplabV3+'), the registered sanet_deeplab with one "
        "lesion map, trained on the ISIC 2017 Part 1 training masks (or --segmenter); its backbone, ImageNet "
        "ResNet50 at output stride 16, and its training (Adam 1e-3, Dice loss) are ours: the paper names none.",
        f"ROI: bounding box of the predicted mask plus {ROI_MARGIN:.0%} of its size on each "
        "side (--roi-margin; the paper gives none).",
    ],
)


# --------------------------------------------------------------------------- segmenter


def segmenter_spec(size: int) -> InputSpec:
    """The segmenter's input: [0, 1] RGB stretched to ``size`` x ``size``."""
    return InputSpec(image_size=(size, size))


def segmenter_recipe(args: argparse.Namespace) -> TrainingRecipe:
    """The segmenter's recipe: the registered DeepLabv3+'s with this table's choices
    over it (the paper gives none): Adam at a constant learning rate 1e-3, the Dice
    loss, no augmentation, ``--segmenter-epochs`` and ``--segmenter-batch-size``,
    the best validation Dice."""
    return get_model(SEGMENTER_MODEL).recipe.with_overrides(
        optimizer=constant(keras.optimizers.Adam),
        learning_rate=SEGMENTER_LEARNING_RATE,
        loss=DiceLoss,
        augmentation=Augmentation(),
        batch_size=args.segmenter_batch_size,
        epochs=args.segmenter_epochs,
        monitor="val_dice",
    )


def train_segmenter(ctx: RowContext, folder: Path) -> Path:
    """Trains the DeepLabv3+ on ISIC 2017 Part 1 once per output folder; returns its run
    folder (``folder``).

    A segmenter trained earlier with the same flags and data is reused.
    """
    args = ctx.args
    names = (
        "segmenter_size",
        "segmenter_epochs",
        "segmenter_batch_size",
        "segmenter_backbone",
        "segmenter_weights",
        "seed",
        "mixed_precision",
    )
    claim_folder(folder, {"data_dir": ctx.data_dir.resolve(), **{name: getattr(args, name) for name in names}})
    if is_run_folder(folder) and (folder / WEIGHTS_FILE).is_file():
        return folder
    train, validation = (
        read_isic2017(ctx.data_dir, split, parts=(1,), skip_bad=ctx.bad_inputs) for split in ("train", "validation")
    )
    spec = segmenter_spec(args.segmenter_size)
    recipe = segmenter_recipe(args)
    entry = get_model(SEGMENTER_MODEL)
    builder_args = {
        **entry.kwargs,
        "input_shape": spec.input_shape,
        "classes": 1,
        "encoder_weights": args.segmenter_weights,
        "backbone": args.segmenter_backbone,
        "name": "lesion_deeplabv3plus",
    }
    data = dict(spec=spec, batch_size=recipe.batch_size, seed=args.seed)
    train_data = segmentation_dataset(train, training=True, **data)
    config = ctx.train_config(out_dir=folder, epochs=recipe.epochs, monitor=recipe.monitor)
    steps = max(1, -(-len(train) // recipe.batch_size))
    trained = fit(
        lambda: entry.build(**builder_args),
        train_data,
        segmentation_dataset(validation, training=False, **data),
        config,
        optimizer=lambda: recipe.make_optimizer(steps),
        loss=recipe.loss,
        metrics=lambda: [DiceCoefficient()],
    )
    return save_run(
        folder,
        trained.model,
        entry=entry,
        builder_args=builder_args,
        input_spec=spec,
        recipe=recipe,
        training={"seed": args.seed, "kept_epoch": trained.kept_epoch},
        data={
            "dir": str(ctx.data_dir),
            "synthetic": ctx.smoke,
            "task": "ISIC 2017 Part 1 lesion masks",
            "train_images": len(train),
            "validation_images": len(validation),
        },
        scores={
            "best_val_dice": max(trained.history.get("val_dice", [float("nan")])),
            "table": "ARL-CNN Table VI segmenter",
        },
    )


def load_segmenter(path: Path, default_size: int) -> tuple[keras.Model, InputSpec]:
    """The segmenter ``path`` (a run folder, or a ``.keras`` model taking [0, 1] RGB
    images) and the input spec it takes."""
    if is_run_folder(path):
        run = load_run(path)
        return run.model, run.input_spec
    model = keras.saving.load_model(path, compile=False)
    return model, segmenter_spec(segmenter_input_size(model, default_size, path))


def segmenter_input_size(model: keras.Model, default: int, path: Path) -> int:
    """The square side the segmenter ``path`` takes (its input shape, else ``default``)."""
    height, width = model.input_shape[1:3]
    if height is None or width is None:
        return default
    if height != width:
        raise ValueError(f"{path}: the segmenter takes {height}x{width} inputs; a square input is needed")
    return int(height)


# --------------------------------------------------------------------------- ROI


def lesion_box(mask: np.ndarray, image_size: tuple[int, int], margin: float) -> Box | None:
    """The ROI of one image from its predicted mask, in full-size image pixels.

    Args:
        mask: boolean ``[h, w]`` lesion mask at the segmenter's resolution.
        image_size: ``(height, width)`` of the full-size image.
        margin: fraction of the box's height (width) added above and below (left
            and right).

    Returns:
        ``(top, left, height, width)`` clipped to the image, or None for an empty mask.
    """
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    (height, width), (mask_height, mask_width) = image_size, mask.shape
    edges = []
    for first, last, size, mask_size in (
        (rows[0], rows[-1], height, mask_height),
        (columns[0], columns[-1], width, mask_width),
    ):
        start, stop = first * size / mask_size, (last + 1) * size / mask_size
        grow = margin * (stop - start)
        start, stop = max(0, int(np.floor(start - grow))), min(size, int(np.ceil(stop + grow)))
        edges.append((start, stop - start))
    (top, box_height), (left, box_width) = edges
    return top, left, box_height, box_width


def crop_rois(ctx: RowContext, segmenter_path: Path, splits: Splits, folder: Path) -> tuple[Splits, int]:
    """Every image cropped to its ROI, as records of the crops; and the number of
    images whose mask was empty (kept whole). Written once per segmenter and margin."""
    boxes_file = folder / "boxes.json"
    weights = segmenter_path / WEIGHTS_FILE if segmenter_path.is_dir() else segmenter_path
    claim_folder(
        folder,
        {
            "segmenter": segmenter_path.resolve(),
            "segmenter_modified": weights.stat().st_mtime_ns,
            "margin": ctx.args.roi_margin,
            "data_dir": ctx.data_dir.resolve(),
        },
    )
    if not boxes_file.is_file():
        boxes = _write_crops(segmenter_path, splits, folder, ctx.args)
        boxes_file.write_text(json.dumps(boxes, indent=1), encoding="utf-8")
    boxes = json.loads(boxes_file.read_text(encoding="utf-8"))

    def cropped(split: str, records: Sequence[Record]) -> list[Record]:
        return [dataclasses.replace(r, image_path=folder / split / f"{r.image_id}.jpg") for r in records]

    empty = sum(box is None for per_split in boxes.values() for box in per_split.values())
    return Splits(
        cropped("train", splits.train), cropped("validation", splits.validation), cropped("test", splits.test)
    ), empty


def _write_crops(
    segmenter_path: Path, splits: Splits, folder: Path, args: argparse.Namespace
) -> dict[str, dict[str, Box | None]]:
    segmenter, spec = load_segmenter(segmenter_path, args.segmenter_size)
    boxes: dict[str, dict[str, Box | None]] = {}
    for split, records in (("train", splits.train), ("validation", splits.validation), ("test", splits.test)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        boxes[split] = {}
        for record in records:
            image = load_image(record.image_path)
            probabilities = np.asarray(segmenter(preprocess_images(image[None], spec), training=False))
            box = lesion_box(probabilities[0, ..., 0] > MASK_THRESHOLD, image.shape[:2], args.roi_margin)
            top, left, height, width = box or (0, 0, *image.shape[:2])
            Image.fromarray(image[top : top + height, left : left + width]).save(
                folder / split / f"{record.image_id}.jpg", quality=JPEG_QUALITY
            )
            boxes[split][record.image_id] = box
    return boxes


# --------------------------------------------------------------------------- rows


def run_row(ctx: RowContext) -> RowResult:
    segmented = PAPER_ROWS[ctx.row.name][1]
    splits, extra = read_splits(ctx), {}
    if segmented:
        table_dir = ctx.out_dir.parents[1]  # <out>/rows/<row> -> <out>
        segmenter = ctx.args.segmenter or train_segmenter(ctx, table_dir / "segmenter")
        splits, empty = crop_rois(ctx, segmenter, splits, table_dir / "roi")
        extra = {"segmenter": str(segmenter), "empty_masks": empty}
    row = score_model(
        ctx, splits, data={"roi": {"segmenter": str(segmenter), "margin": ctx.args.roi_margin}} if segmented else None
    )
    auc = row.challenge_scores()
    result = row_result(
        row,
        {
            MELANOMA_AUC.name: auc["melanoma_auc"],
            KERATOSIS_AUC.name: auc["seborrheic_keratosis_auc"],
            AVERAGE_AUC.name: auc["average_auc"],
        },
    )
    result.extra = {**result.extra, **extra}
    return result


def _segmenter_file(text: str) -> Path:
    path = Path(text)
    if is_run_folder(path) or (path.is_file() and path.suffix == ".keras"):
        return path
    raise argparse.ArgumentTypeError(f"{text} is neither a run folder nor an existing .keras file")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument(
        "--segmenter",
        type=_segmenter_file,
        help="a trained lesion segmenter (a run folder, e.g. another output's "
        "segmenter/, or a .keras model) to use instead of training the DeepLabv3+",
    )
    parser.add_argument(
        "--segmenter-size",
        type=number_in_range(int, 32),
        default=256,
        help="DeepLabv3+ input side (default: %(default)s)",
    )
    parser.add_argument(
        "--segmenter-epochs",
        type=number_in_range(int, 1),
        default=50,
        help="DeepLabv3+ training epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--segmenter-batch-size",
        type=number_in_range(int, 1),
        default=16,
        help="DeepLabv3+ batch size (default: %(default)s)",
    )
    parser.add_argument(
        "--segmenter-backbone",
        choices=sorted(DILATED_BACKBONES),
        default="resnet50",
        help="the DeepLabv3+ ResNet (default: %(default)s; the paper names none)",
    )
    parser.add_argument(
        "--segmenter-weights",
        type=weights_argument,
        default="imagenet",
        help="the DeepLabv3+ ResNet's initial weights: imagenet, none, or a "
        "keras.applications no-top file (default: %(default)s)",
    )
    parser.add_argument(
        "--roi-margin",
        type=number_in_range(float, 0.0),
        default=ROI_MARGIN,
        help="fraction of the box's size added on each side (default: %(default)s)",
    )


SMOKE_SEGMENTER = {
    "segmenter_size": 32,
    "segmenter_epochs": 1,
    "segmenter_batch_size": 4,
    "segmenter_backbone": "resnet14",
    "segmenter_weights": None,
}


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE,
        run_row,
        dataset=DATASET,
        argv=argv,
        add_arguments=add_arguments,
        smoke_overrides={**SMOKE, **SMOKE_SEGMENTER},
        variant=extras_variant,
    )


if __name__ == "__main__":
    main()
