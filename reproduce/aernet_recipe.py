"""What AER-Net Tables 1-3 (``aernet_table{1,2,3}.py``) share: data, split, training, scoring.

:func:`run_segmentation_row` runs one row (split, training, evaluation, figures, run
folder); :func:`add_recipe_arguments` adds the flags; :data:`DATASET` and
:data:`SMOKE` are what every table runs on.

Every hyperparameter of training is the registered recipe's,
:data:`zoo.aernet.recipe.AERNET_RECIPE` (Lima & Braz Júnior, "Attention Efficient
Residual U-Net: uma Rede Neural para a Segmentação de Lesões de Pele", sections 3.1-3.3): Adam,
learning rate 1e-3, batch
16, 100 epochs, the Dice loss of eq. 1 (:class:`zoo.losses.DiceLoss`, squared
denominators), binary lesion masks, no augmentation (the paper names none), the
lowest training loss picking the kept epoch. A row changes it only through its
``PaperRow.recipe_overrides`` and the command line's ``--epochs``, ``--batch-size``,
``--learning-rate`` and ``--monitor`` (:meth:`reproduce.frame.RowContext.recipe`);
training goes through :meth:`reproduce.frame.RowContext.fit`. The rest of the
experiment (sections 3.1, 3.3, 4.2, 4.4):

* data: the 2594 ISIC 2018 Task 1 training images with their lesion masks, split
  once into 2094 training and 500 test images (80.72 %, section 3.3). The paper does
  not publish its split: ours is a seeded permutation of the sorted image ids,
  written to ``<out>/split.json`` on the first run and read back on every later run
  (``--split`` points the three AER-Net scripts at one file);
* input: resized to 256x256, CIELAB with each channel scaled to [0, 1] (section 3.1,
  :data:`zoo.aernet.models.AERNET_INPUT`);
* evaluation: test masks predicted at 256x256, brought back to each image's original
  size (bilinear, :func:`zoo.serving.at_original_size`), thresholded at 0.5 and scored
  against the full-size ground truth, as the official ISIC 2018 Task 1 scorer does:
  JSI (eq. 4) and DC (eq. 5) per image, averaged over the test images ("JSI medio",
  section 4.4), in percent. The paper does not say at which size it scores; we take
  the challenge's. ``--score-at-input-size`` scores the 256x256 prediction against
  the resized mask instead (the earlier behaviour). The ISIC 2018 challenge score
  (thresholded Jaccard) is kept in each row's ``result.json`` and run card beside them.

Deviations: the paper has no validation split and does not say which epoch it
reports; we train the full 100 epochs and evaluate the epoch with the lowest
training loss (``fit`` keeps the best epoch by the recipe's monitor), never looking
at the test set while training. The paper does not say whether its U-Net baselines
use batch norm; ours do (``--no-batch-norm`` for Ronneberger's plain convolutions).
``--smoke`` re-estimates the batch-norm statistics before evaluating
(``--recalibrate-bn``, :func:`recalibrate_batch_norm`): its 80 training steps leave
Keras' moving averages (momentum 0.99) far from the weights' statistics.

Every row folder of Tables 2 and 3 is a run folder (:mod:`zoo.run`) of exactly the
scored model (after the best-epoch reload and any batch-norm recalibration), its card
holding the recipe, the row's overrides and the scores:
``zoo.load_run("results/aernet_table2/rows/<row>")`` or
``python -m zoo.predict --run results/aernet_table2/rows/<row>``. Table 1's
segmentation_models U-Nets are no registered models (see ``aernet_table1``); their row
folders keep the scored weights in ``scored.weights.h5``.

Outputs besides the frame's table: per row ``examples.png`` (the best, the median
and the worst test prediction by Dice: image, ground truth, prediction, as the
paper's Fig. 6) and ``test_scores.csv`` (every test image's JSI and DC).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data_tools.imageio import load_image, load_mask
from data_tools.isic import read_isic2018
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import DatasetError, Record
from data_tools.synthetic import make_isic2018
from reproduce.datasets import DatasetNeed
from reproduce.frame import Column, RowContext, RowResult, weights_argument
from zoo.aernet.models import AERNET_INPUT, AERNET_SIZE_MULTIPLE
from zoo.aernet.recipe import AERNET_RECIPE
from zoo.metrics import DiceCoefficient, JaccardIndex, segmentation_scores, threshold_jaccard
from zoo.recipe import TrainingRecipe, overrides_from_flags
from zoo.serving import at_original_size

PAPER_TRAIN_IMAGES = 2094  # section 3.3
PAPER_TOTAL_IMAGES = 2594  # section 3.1
TRAIN_FRACTION = PAPER_TRAIN_IMAGES / PAPER_TOTAL_IMAGES
SPLIT_SEED = 2018  # the split does not change with --seed
THRESHOLD = 0.5
SCORED_WEIGHTS = "scored.weights.h5"
"""Where a row of an unregistered model (Table 1) keeps the weights it was scored with."""

SCORING_NOTE = (
    "JSI and DC: per test image at the image's original size (the prediction at the model input, "
    "256x256, 64x64 in --smoke, resized back bilinearly, then thresholded at 0.5), against the full-size "
    "ground truth, as the official ISIC 2018 Task 1 scorer; averaged over the test images. The paper "
    "does not say at which size it scores; --score-at-input-size scores at the model input size instead."
)
"""The tables' note on how JSI and DC are scored (:func:`evaluate_segmenter`)."""

JSI_DC = (Column("JSI", "%", higher_is_better=True, decimals=1), Column("DC", "%", higher_is_better=True, decimals=2))

DATASET = DatasetNeed(
    name="ISIC 2018 Task 1",
    default_dir="data/isic2018",
    how_to_get="python -m data_tools.download isic2018 --dest data/isic2018 --splits train",
    make_synthetic=functools.partial(make_isic2018, n_train=40, n_val=0, n_test=0, image_size=(64, 64)),
)

SMOKE = {
    "epochs": 10,
    "batch_size": 4,
    "image_size": 64,
    "base_filters": 8,
    "encoder_weights": None,
    "recalibrate_bn": True,
}
"""``--smoke``: 64x64 synthetic images, 10 epochs of batch 4 (recipe overrides, in every
row's run card), small U-Nets, random encoder weights (no download), batch-norm
statistics re-estimated before evaluation (80 steps are too few for them)."""


# --------------------------------------------------------------------------- flags


def _image_side(text: str) -> int:
    side = int(text)
    if side < AERNET_SIZE_MULTIPLE or side % AERNET_SIZE_MULTIPLE:
        raise argparse.ArgumentTypeError(
            f"must be a positive multiple of {AERNET_SIZE_MULTIPLE} (AER-Net pools 6 times), got {side}"
        )
    return side


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The AER-Net tables' own flags: the input size and the models' variants. (The
    training hyperparameters are the recipe's; the frame adds ``--epochs``,
    ``--batch-size``, ``--learning-rate`` and ``--monitor`` to override them.)"""
    parser.add_argument(
        "--image-size",
        type=_image_side,
        default=AERNET_INPUT.image_size[0],
        help="model input side, a multiple of 64 (default: %(default)s)",
    )
    parser.add_argument(
        "--encoder-weights",
        type=weights_argument,
        default="imagenet",
        help="pretrained encoders' weights: imagenet, none, or a keras.applications "
        "no-top weights file (default: %(default)s)",
    )
    parser.add_argument(
        "--base-filters",
        type=int,
        default=None,
        help="channels of the U-Nets' first level (default: the builder's, 64)",
    )
    parser.add_argument(
        "--no-batch-norm",
        dest="batch_norm",
        action="store_false",
        help="U-Net baselines without batch norm (Ronneberger et al.)",
    )
    parser.add_argument(
        "--recalibrate-bn",
        action="store_true",
        help="before evaluating, replace the batch-norm moving averages by the "
        "training images' statistics (precise BN; on in --smoke, whose few "
        "steps leave the moving averages far from converged); the run folder "
        "holds the recalibrated weights",
    )
    parser.add_argument(
        "--score-at-input-size",
        action="store_true",
        help="score JSI and DC on the model-size prediction against the resized "
        "mask (256x256) instead of at each image's original size (the "
        "official ISIC 2018 Task 1 scorer's)",
    )
    parser.add_argument(
        "--split", type=Path, help="the train/test split file (default: <out>/split.json, written on the first run)"
    )


def input_spec(args: argparse.Namespace) -> InputSpec:
    """:data:`AERNET_INPUT` at ``--image-size``."""
    return dataclasses.replace(AERNET_INPUT, image_size=(args.image_size, args.image_size))


def input_shape(args: argparse.Namespace) -> tuple[int, int, int]:
    """The models' input shape at ``--image-size`` (RGB-sized: CIELAB has 3 channels)."""
    return (args.image_size, args.image_size, 3)


def row_recipe(ctx: RowContext) -> TrainingRecipe:
    """The row's recipe: :data:`AERNET_RECIPE` (every model of the paper registers it),
    the row's ``recipe_overrides``, then the command line's overrides."""
    if ctx.row.model is not None:
        return ctx.recipe()
    # Table 1's unregistered U-Nets: the same recipe, composed as RowContext.recipe does.
    return AERNET_RECIPE.with_overrides(**ctx.row.recipe_overrides).with_overrides(**overrides_from_flags(ctx.args))


def row_builder_args(ctx: RowContext) -> dict[str, Any]:
    """The row's builder arguments: the registered model's and the row's, with the input
    size and the flags that concern this model (the U-Nets' width and batch norm, the
    pretrained encoder's weights)."""
    args = ctx.args
    script: dict[str, Any] = {"input_shape": input_shape(args)}
    if ctx.entry.family == "unet":
        script["batch_norm"] = args.batch_norm
        if args.base_filters is not None:
            script["base_filters"] = args.base_filters
    else:
        script["encoder_weights"] = args.encoder_weights
    return ctx.builder_args(**script)


# --------------------------------------------------------------------------- data


def make_split(image_ids: Sequence[str]) -> dict:
    """``{"seed", "train", "test"}``: 80.72 % of the ids for training (2094 of 2594).

    A permutation of the sorted ids seeded with :data:`SPLIT_SEED`, so the split
    depends only on the set of ids.
    """
    ids = sorted(image_ids)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(ids))
    n_train = round(TRAIN_FRACTION * len(ids))
    return {
        "seed": SPLIT_SEED,
        "train": sorted(ids[i] for i in order[:n_train]),
        "test": sorted(ids[i] for i in order[n_train:]),
    }


def split_path(ctx: RowContext) -> Path:
    """``--split``, or ``split.json`` in the table's output folder."""
    return ctx.args.split or ctx.out_dir.parents[1] / "split.json"


def load_split(ctx: RowContext) -> tuple[list[Record], list[Record]]:
    """``(train, test)`` records of the fixed split (section 3.3), made on first use.

    The split file lists image ids; a later run with other data (an id missing from
    ``--data-dir``) stops with a message naming the file.
    """
    records = read_isic2018(ctx.data_dir, "train", tasks=(1,), skip_bad=ctx.bad_inputs)
    by_id = {record.image_id: record for record in records}
    path = split_path(ctx)
    if path.is_file():
        split = json.loads(path.read_text(encoding="utf-8"))
        missing = sorted(set(split["train"] + split["test"]) - set(by_id))
        if missing:
            raise DatasetError(
                path,
                f"lists {len(missing)} images that {ctx.data_dir} does not "
                f"have (e.g. {missing[0]}); pass --split with another file "
                f"or delete it to make a new split",
            )
    else:
        split = make_split(by_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(split, indent=1), encoding="utf-8")
        print(f"    split: {len(split['train'])} train / {len(split['test'])} test images -> {path}")
    return [by_id[i] for i in split["train"]], [by_id[i] for i in split["test"]]


# --------------------------------------------------------------------------- train, evaluate


def training_data(train: Sequence[Record], spec: InputSpec, recipe: TrainingRecipe, seed: int) -> tf.data.Dataset:
    """The training batches: ``recipe.batch_size`` images at ``spec`` with their binary
    masks, shuffled, no augmentation (the recipe names none)."""
    return segmentation_dataset(
        train, spec, batch_size=recipe.batch_size, training=True, augment=recipe.augmentation, seed=seed
    )


@dataclasses.dataclass
class Evaluation:
    """Per-image test scores and, for the examples figure, the masks and thresholded
    predictions at the model input size."""

    image_ids: list[str]
    jaccard: np.ndarray
    dice: np.ndarray
    masks: np.ndarray
    predictions: np.ndarray

    def table_values(self) -> dict[str, float]:
        """Mean JSI and DC over the test images, in percent (eq. 4-5)."""
        return {"JSI": 100.0 * float(np.mean(self.jaccard)), "DC": 100.0 * float(np.mean(self.dice))}

    def challenge_score(self) -> float:
        """ISIC 2018 Task 1 score: mean thresholded Jaccard, in percent."""
        return 100.0 * float(np.mean([threshold_jaccard(j) for j in self.jaccard]))


def recalibrate_batch_norm(model: keras.Model, train: Sequence[Record], spec: InputSpec) -> int:
    """Sets every batch norm's moving statistics to those of the training images.

    One forward pass in training mode over all of ``train`` as a single batch, with
    the momentum of every ``BatchNormalization`` set to 0 for that pass ("precise
    BN", Wu & Johnson 2021). Meant for small sets (``--smoke``): with Keras' momentum
    of 0.99 the moving averages need thousands of steps to settle, which the paper's
    100 epochs (13,100 steps) give and a smoke run does not. Returns the number of
    batch-norm layers recalibrated.
    """
    data = segmentation_dataset(train, spec, batch_size=len(train), training=False, cache=False)
    images, _ = next(iter(data))
    # _flatten_layers also reaches the batch norms inside custom layers (AttentionGate).
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        model(images, training=True)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return len(layers)


def full_size_pair(record: Record, probability: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(truth, prediction)`` binary masks at ``record``'s original size: its lesion
    mask as read from disk and the model-size ``probability`` ``[h, w, 1]`` brought back
    onto the original pixels (:func:`zoo.serving.at_original_size`), thresholded."""
    truth = load_mask(record.mask_paths["lesion"]) > 127
    prediction = at_original_size(probability, truth.shape, spec)[..., 0] > THRESHOLD
    return truth, prediction


def evaluate_segmenter(
    model: keras.Model, test: Sequence[Record], spec: InputSpec, *, batch_size: int, full_size: bool = True
) -> Evaluation:
    """Predicts every test image at ``spec`` and scores it (JSI eq. 4, DC eq. 5) at the
    image's original size (``full_size``, the official ISIC 2018 Task 1 scorer's) or at
    the model input size; ``batch_size`` only groups the predictions (batch norm in
    inference mode)."""
    data = segmentation_dataset(test, spec, batch_size=batch_size, training=False, cache=False)
    masks, probabilities = [], []
    for images, batch_masks in data.as_numpy_iterator():  # numpy: any Keras backend
        masks.append(batch_masks[..., 0] > 0.5)
        probabilities.append(np.asarray(model.predict_on_batch(images)))
    masks, probabilities = np.concatenate(masks), np.concatenate(probabilities)
    predictions = probabilities[..., 0] > THRESHOLD
    pairs = (
        (full_size_pair(record, probability, spec) for record, probability in zip(test, probabilities, strict=True))
        if full_size
        else zip(masks, predictions, strict=True)
    )
    scores = [segmentation_scores(truth, prediction) for truth, prediction in pairs]
    return Evaluation(
        [r.image_id for r in test],
        np.array([s["jaccard"] for s in scores]),
        np.array([s["dice"] for s in scores]),
        masks,
        predictions,
    )


def write_test_scores(evaluation: Evaluation, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["image_id", "jaccard", "dice"])
        for row in zip(evaluation.image_ids, evaluation.jaccard, evaluation.dice, strict=True):
            writer.writerow([row[0], f"{row[1]:.4f}", f"{row[2]:.4f}"])


def plot_examples(evaluation: Evaluation, test: Sequence[Record], spec: InputSpec, path: Path, title: str) -> Path:
    """The paper's Fig. 6: best, median and worst test image by Dice (image, truth, prediction)."""
    order = np.argsort(evaluation.dice, kind="stable")
    picks = {"best": order[-1], "median": order[len(order) // 2], "worst": order[0]}
    figure = Figure(figsize=(7.5, 7.5), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=9)
    axes = figure.subplots(3, 3)
    for row, (label, index) in enumerate(picks.items()):
        rgb = tf.image.resize(load_image(test[index].image_path), spec.image_size).numpy() / 255.0
        panels = [rgb, evaluation.masks[index], evaluation.predictions[index]]
        names = [
            f"{label}: {evaluation.image_ids[index]}",
            "ground truth",
            f"prediction (Dice {100 * evaluation.dice[index]:.1f} %)",
        ]
        for axis, panel, name in zip(axes[row], panels, names, strict=True):
            axis.imshow(np.clip(panel, 0, 1), cmap="gray" if panel.ndim == 2 else None)
            axis.set_title(name, fontsize=8)
            axis.axis("off")
    figure.savefig(path, dpi=100)
    return path


def run_segmentation_row(
    ctx: RowContext, build: Callable[[], keras.Model] | None = None, builder_args: dict[str, Any] | None = None
) -> RowResult:
    """Split, train, evaluate, write the examples figure: one row of Tables 1-3.

    The row's registered model (``ctx.row.model``, built with :func:`row_builder_args`)
    is trained with :func:`row_recipe` through :meth:`RowContext.fit`; after scoring,
    the row folder becomes its run folder (:meth:`RowContext.save_run`) holding the
    model exactly as scored. ``build`` and ``builder_args``: only for Table 1's
    unregistered models, the builder and the arguments recorded in ``result.json``;
    their scored weights are kept in :data:`SCORED_WEIGHTS`.
    """
    train, test = load_split(ctx)
    args = ctx.args
    recipe, spec = row_recipe(ctx), input_spec(args)
    if build is None:
        builder_args = row_builder_args(ctx)
        build_untrained = functools.partial(ctx.build, builder_args)
    else:
        build_untrained = build
    keras.utils.set_random_seed(args.seed)  # fit builds with the same seed: same initial weights
    full_size = not args.score_at_input_size
    untrained = evaluate_segmenter(
        build_untrained(), test, spec, batch_size=recipe.batch_size, full_size=full_size
    ).table_values()
    started = time.monotonic()
    trained = ctx.fit(
        training_data(train, spec, recipe, args.seed),
        None,
        builder_args=builder_args or {},
        recipe=recipe,
        steps_per_epoch=max(1, len(train) // recipe.batch_size),
        metrics=lambda: [DiceCoefficient(), JaccardIndex()],
        build=build,
    )
    seconds = time.monotonic() - started
    recalibrated = recalibrate_batch_norm(trained.model, train, spec) if args.recalibrate_bn else 0
    evaluation = evaluate_segmenter(trained.model, test, spec, batch_size=recipe.batch_size, full_size=full_size)
    write_test_scores(evaluation, ctx.out_dir / "test_scores.csv")
    title = f"{'SYNTHETIC — ' if ctx.smoke else ''}{ctx.row.name}"
    plot_examples(evaluation, test, spec, ctx.out_dir / "examples.png", title)
    epochs = len(trained.history.get("loss", [])) or recipe.epochs
    values = evaluation.table_values()
    training = {
        "kept_epoch": trained.kept_epoch,
        "epochs_run": epochs,
        "monitor": recipe.monitor,
        "batch_norm_recalibrated": {"layers": recalibrated, "images": len(train)} if recalibrated else None,
    }
    if build is None:
        run = str(
            ctx.save_run(
                trained.model,
                builder_args=builder_args,
                recipe=recipe,
                input_spec=spec,
                scores={
                    "split": "test",
                    "threshold": THRESHOLD,
                    "images": len(test),
                    **values,
                    "scored_at": "original size" if full_size else "model input size",
                    "isic2018_threshold_jaccard": evaluation.challenge_score(),
                },
                training=training,
                data={"split": str(split_path(ctx)), "train_images": len(train), "test_images": len(test)},
            )
        )
    else:
        trained.model.save_weights(ctx.out_dir / SCORED_WEIGHTS)
        run = None
    return RowResult(
        values,
        history=trained.history,
        monitor=recipe.monitor,
        extra={
            "model": ctx.row.model,
            "builder_args": builder_args,
            "run": run,
            "recipe_overrides": recipe.overrides_from(AERNET_RECIPE),
            "params": trained.model.count_params(),
            "isic2018_threshold_jaccard": evaluation.challenge_score(),
            "untrained": untrained,
            "kept_epoch": trained.kept_epoch,
            "training": training,
            "train_images": len(train),
            "test_images": len(test),
            "seconds_per_epoch": round(seconds / epochs, 2),
        },
    )
