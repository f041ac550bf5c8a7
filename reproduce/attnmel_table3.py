"""AttnMel Table 3 and Fig. 3: how well attention maps and CAMs cover the lesion.

    python reproduce/attnmel_table3.py --data-dir data/isic2017
    python reproduce/attnmel_table3.py --data-dir data/isic2017 --trained results/attnmel_table2
    python reproduce/attnmel_table3.py --smoke

Sec. 3.3: "we re-normalize each attention map to [0,1] and binarize it using a
threshold of 0.5. Then we compute the Jaccard index with respect to the ground truth
lesion segmentation", for each attention map ``A`` (eq. 2) of AttnMel-CNN, -Dermo
and -Lesion, and the class activation map (Zhou et al.) of VGG-16-GAP: the mean
Jaccard index over the ISIC 2017 test images.

The paper does not say on which pixels, with which comparison, in which order nor, for
the CAM, of which class. The authors' scoring (SaoYan/IPMI2019-AttnMel,
``ISIC/archive_for_test/test_jaccard.py`` and ``test_cam.py``), which produced the
paper's numbers, is the default:

* ``--score-region crop`` (default, the authors'): on the model's 224x224 input, the
  lesion mask cropped with the image (square of 0.8 x the shorter side, resized to
  256, centre 224; the mask by nearest neighbour). An attention map is upsampled
  bilinearly to the input, min-max re-normalised and kept where ``>= 0.5``
  (test_jaccard.py); the CAM is re-normalised and binarised at its own 7x7 and the
  binary mask then upsampled bilinearly (test_cam.py), so its edges stay soft.
  Each image scores the authors' Jaccard, sum(min(map, mask)) / sum(max(map, mask))
  (:func:`soft_jaccard`: the usual index for binary maps; 1 when both are empty),
  averaged over the test images. ``--score-region original``: each map upsampled,
  re-normalised (min-max per image), mapped back through the input's geometry
  (:func:`data_tools.preprocess.restore_geometry`, bilinear), the pixels the model
  never sees counted as not attended (0), binarised at ``>= 0.5`` and scored
  against the full-size mask;
* ``--cam-class melanoma`` (default, the authors'): the CAM of the melanoma class
  (their ``weights[1]``) for every image; ``--cam-class predicted``: of the class
  each image is predicted as (Zhou et al.).

Each row also writes ``attention_maps.png`` (Fig. 3: the first test images with their
pool-3 and pool-4 maps, or CAMs, overlaid).

The models are those of Table 2 (the same registered models and recipe overrides):
``--trained`` loads the run folders written by ``attnmel_table2.py``
(``<dir>/rows/<row>/``, :func:`zoo.load_run`: the model Table 2 scored and the input
spec it was trained on, with ``--batch-norm`` the training images' statistics);
otherwise each row trains its model first and its row folder becomes its run folder,
with the Jaccard indices as its scores.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Sequence

import keras
import matplotlib.pyplot
import numpy as np

from data_tools.imageio import load_mask
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec, restore_geometry
from reproduce.attnmel_recipe import (
    BACKBONE_NOTE,
    ISIC2017,
    SMOKE,
    UNREGULARISED,
    add_recipe_arguments,
    backbone_variant,
    input_spec,
    read_isic2017_split,
    train_table2_row,
)
from reproduce.frame import Column, PaperRow, PaperTable, RowContext, RowResult, row_dir, run_table
from zoo.cam import class_activation_map, normalize_map, plot_class_activation_maps
from zoo.common.run_card import RunError
from zoo.metrics import mean_segmentation_scores
from zoo.run import load_run

FIGURE_IMAGES = 6
FIGURE_FILE = "attention_maps.png"
COLUMNS = {"pool3": "attention_pool3", "pool4": "attention_pool4", "CAM": None}
"""Table 3 column -> the AttnMel-CNN output it scores (``None``: the CAM)."""

TABLE = PaperTable(
    key="attnmel_table3",
    title="AttnMel Table 3: Jaccard of binarised attention maps and CAMs vs lesion masks (ISIC 2017 test)",
    source="Yan et al., IPMI 2019, Table 3",
    columns=[Column(name, higher_is_better=True, decimals=4) for name in COLUMNS],
    rows=[
        PaperRow(
            "AttnMel-CNN", {"pool3": 0.3105, "pool4": 0.3186}, model="attnmel_cnn", recipe_overrides=UNREGULARISED
        ),
        PaperRow("AttnMel-CNN-Dermo", {"pool3": 0.3621, "pool4": 0.4767}, model="attnmel_cnn"),
        PaperRow("AttnMel-CNN-Lesion", {"pool3": 0.5533, "pool4": 0.6560}, model="attnmel_cnn"),
        PaperRow("VGG-16-GAP", {"CAM": 0.2825}, model="vgg16_gap"),
    ],
    notes=[
        "Scored as the authors' test_jaccard.py and test_cam.py (SaoYan/IPMI2019-AttnMel), which produced "
        "the paper's numbers; the paper names none of these choices: on the model's 224x224 crop (the mask "
        "cropped alike), each map min-max normalised per image and attended where >= 0.5 (attention maps "
        "upsampled first, the CAM binarised at its 7x7 and then upsampled), Jaccard sum(min)/sum(max) averaged "
        "over images, the CAM of the melanoma class for every image. --score-region original scores against "
        "the full-size masks (pixels outside the crop not attended); --cam-class predicted takes the "
        "predicted class's CAM.",
        BACKBONE_NOTE,
    ],
)


@dataclasses.dataclass
class RowModel:
    """The model a row scores, the input it was trained on, and, when trained here,
    what its run folder records (``None`` for a model loaded from ``--trained``)."""

    model: keras.Model
    input_spec: InputSpec
    trained: Any = None


def trained_model(ctx: RowContext) -> RowModel:
    """The row's Table 2 model: loaded from ``--trained``'s run folder, or trained here."""
    if ctx.args.trained is None:
        row = train_table2_row(ctx)
        return RowModel(row.model, row.input_spec, row)
    folder = trained_row_dir(ctx)
    try:
        run = load_run(folder, attention=True)  # AttnMel-CNN with its maps (the CAM rows: the model alone)
    except RunError as error:
        raise RunError(
            f"--trained: {error} Run attnmel_table2.py --rows {ctx.row.name!r} first, or leave out "
            f"--trained to train here."
        ) from None
    check_trained_run(ctx, run)
    return RowModel(run.model, run.input_spec)


def check_trained_run(ctx: RowContext, run) -> None:
    """A ``--trained`` run must be this row's model, trained on this command line's
    input (``--image-size``, ``--resize``, ``--batch-norm``): otherwise the table
    would print one model's numbers under another's settings."""
    args, card = ctx.args, run.card
    problems = []
    if card.model != ctx.row.model:
        problems.append(f"it is model {card.model!r}, this row's is {ctx.row.model!r}")
    if card.builder_args.get("batch_norm") != args.batch_norm:
        problems.append(
            f"it was trained with batch_norm={card.builder_args.get('batch_norm')}, this run asks for {args.batch_norm}"
        )
    expected = dataclasses.replace(
        input_spec(args), scale=run.input_spec.scale, mean=run.input_spec.mean, std=run.input_spec.std
    )
    if run.input_spec != expected:
        problems.append(f"its input is {run.input_spec.to_json()}, this run's {expected.to_json()}")
    if problems:
        raise ValueError(f"--trained: {run.folder}: {'; '.join(problems)}.")


def trained_row_dir(ctx: RowContext) -> Path:
    """Where the row's Table 2 model was trained: ``--trained``'s row folder, or this one."""
    return ctx.out_dir if ctx.args.trained is None else row_dir(Path(ctx.args.trained), ctx.row)


MELANOMA_CLASS = 1
"""The softmax column of melanoma (rest, melanoma), the authors' ``weights[1]``."""
THRESHOLD = 0.5
"""Sec. 3.3's binarisation threshold; a pixel at it counts as attended (the authors' ``ge(0.5)``)."""


def native_maps(model: keras.Model, images: np.ndarray, cam_class: str = "melanoma") -> dict[str, np.ndarray]:
    """Table 3 column -> the maps ``(batch, h, w)`` at the model's own resolution, not
    normalised: AttnMel-CNN's pool-3 and pool-4 attention maps, or VGG-16-GAP's CAM
    (pool-5) of the melanoma class or of each image's predicted class (``cam_class``)."""
    if isinstance(model.output, dict):
        outputs = model(images, training=False)
        return {column: np.asarray(outputs[output])[..., 0] for column, output in COLUMNS.items() if output is not None}
    if cam_class == "melanoma":
        return {"CAM": class_activation_map(model, images, MELANOMA_CLASS)}
    predicted = np.argmax(model(images, training=False), axis=-1)
    cams = np.stack([class_activation_map(model, images, k) for k in range(model.output.shape[-1])])
    return {"CAM": cams[predicted, np.arange(len(images))]}


def upsampled(maps: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Maps ``(batch, h, w)`` bilinearly resized to ``size`` (half-pixel centres, as
    PyTorch's ``interpolate(align_corners=False)`` and OpenCV's ``resize``)."""
    resized = keras.ops.image.resize(np.asarray(maps, np.float32)[..., None], tuple(size), interpolation="bilinear")
    return np.asarray(resized)[..., 0]


def maps_of(model: keras.Model, images: np.ndarray, cam_class: str = "melanoma") -> dict[str, np.ndarray]:
    """:func:`native_maps` upsampled to the input size (the figure, ``--score-region original``)."""
    return {
        column: upsampled(maps, images.shape[1:3]) for column, maps in native_maps(model, images, cam_class).items()
    }


def binary_map(column_map: np.ndarray) -> np.ndarray:
    """Sec. 3.3: one map re-normalised to [0, 1] (min-max) and binarised at 0.5."""
    return normalize_map(column_map) >= THRESHOLD


def soft_jaccard(prediction: np.ndarray, truth: np.ndarray) -> float:
    """sum(min) / sum(max) of two maps in [0, 1]: the Jaccard index for binary maps,
    its soft extension otherwise (the authors' ``jaccard_similarity_coefficient``); 1
    when both are empty."""
    union = float(np.maximum(prediction, truth).sum())
    return 1.0 if union == 0.0 else float(np.minimum(prediction, truth).sum()) / union


def authors_jaccard(column: str, maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """``--score-region crop``: the mean over images of :func:`soft_jaccard` between
    each map, at the model's resolution (:func:`native_maps`), and its lesion mask
    cropped as the input. An attention map is upsampled to the mask, then binarised
    (test_jaccard.py); the CAM is binarised, then the binary map upsampled (test_cam.py)."""
    scores = []
    for column_map, mask in zip(maps, masks, strict=True):
        if column == "CAM":
            attended = upsampled(binary_map(column_map)[None].astype(np.float32), mask.shape)[0]
        else:
            attended = binary_map(upsampled(column_map[None], mask.shape)[0]).astype(np.float32)
        scores.append(soft_jaccard(attended, np.asarray(mask, np.float32)))
    return float(np.mean(scores))


def original_jaccard(maps: Sequence[np.ndarray], records: Sequence, spec) -> float:
    """``--score-region original``: each map (at the input size) re-normalised, mapped
    back to the original image (unseen pixels 0), binarised at 0.5, against the
    full-size mask; the mean over images."""
    masks, attended = [], []
    for record, column_map in zip(records, maps, strict=True):
        mask = load_mask(record.mask_paths["lesion"]) > 0
        back = restore_geometry(normalize_map(column_map)[..., None], mask.shape, spec, fill=0.0)
        masks.append(mask)
        attended.append(np.asarray(back)[..., 0] >= THRESHOLD)
    return mean_segmentation_scores(masks, attended)["jaccard"]


def run_row(ctx: RowContext) -> RowResult:
    row = trained_model(ctx)
    model, spec = row.model, row.input_spec
    test = read_isic2017_split(ctx, "test")
    batch_size = ctx.recipe().batch_size
    dataset = segmentation_dataset(test, spec, mask_names=("lesion",), batch_size=batch_size, training=False)
    masks, maps, figure_images = [], {}, []
    for images, lesions in dataset.as_numpy_iterator():
        for column, batch_maps in native_maps(model, images, ctx.args.cam_class).items():
            maps.setdefault(column, []).extend(batch_maps)
        masks.extend(lesions[..., 0])
        shown = images[: FIGURE_IMAGES - len(figure_images)]
        figure_images.extend(shown if spec.scale == "unit" else shown * np.array(spec.std) + np.array(spec.mean))
    size = spec.image_size
    if ctx.args.score_region == "original":
        values = {
            column: original_jaccard(upsampled(column_maps, size), test, spec) for column, column_maps in maps.items()
        }
    else:
        values = {column: authors_jaccard(column, column_maps, masks) for column, column_maps in maps.items()}
    figure = plot_class_activation_maps(
        np.stack(figure_images),
        {
            f"{ctx.row.name} {column}": upsampled(column_maps[: len(figure_images)], size)
            for column, column_maps in maps.items()
        },
    )
    figure.savefig(ctx.out_dir / FIGURE_FILE, dpi=120)
    matplotlib.pyplot.close(figure)
    extra = {"test_images": len(masks), "figure": FIGURE_FILE, "run": str(trained_row_dir(ctx))}
    if row.trained is not None:  # trained here: this row folder is its run folder
        trained = row.trained
        ctx.save_run(
            model,
            builder_args=trained.builder_args,
            recipe=trained.recipe,
            input_spec=spec,
            scores={
                "split": "test",
                "test_images": len(masks),
                "score_region": ctx.args.score_region,
                "cam_class": ctx.args.cam_class,
                "jaccard": values,
            },
            training={"kept_epoch": trained.trained.kept_epoch, "epochs_run": len(trained.trained.history["loss"])},
            data=trained.data,
        )
    return RowResult(values, extra=extra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument(
        "--score-region",
        choices=("crop", "original"),
        default="crop",
        help="score the maps on the model's 224x224 centre crop (default, the authors' "
        "scoring), or against the full-size lesion masks",
    )
    parser.add_argument(
        "--cam-class",
        choices=("melanoma", "predicted"),
        default="melanoma",
        help="the class whose CAM VGG-16-GAP is scored with: melanoma for every image "
        "(default, the authors' test_cam.py) or each image's predicted class",
    )
    parser.add_argument(
        "--trained",
        type=Path,
        help="output folder of attnmel_table2.py whose rows' run folders to evaluate (default: train each row here)",
    )


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE,
        run_row,
        dataset=ISIC2017,
        argv=argv,
        add_arguments=add_arguments,
        defaults={"passes_per_epoch": 2},
        smoke_overrides=SMOKE,
        variant=backbone_variant,
    )


if __name__ == "__main__":
    main()
