"""The AER-Net training recipe shared by Tables 1-3 (``aernet_table{1,2,3}.py``).

:func:`run_segmentation_row` runs one row (split, training, evaluation, figures) for
any ``build() -> keras.Model``; :func:`add_recipe_arguments` adds the flags;
:data:`DATASET`, :data:`PAPER_SETTINGS` and :data:`SMOKE` are what every table runs on.

The recipe (paper sections 3.1-3.4, 4.2):

* data: the 2594 ISIC 2018 Task 1 training images with their lesion masks, split
  once into 2094 training and 500 test images (80.72 %, section 3.3). The paper does
  not publish its split: ours is a seeded permutation of the sorted image ids,
  written to ``<out>/split.json`` on the first run and read back on every later run
  (``--split`` points the three AER-Net scripts at one file);
* input: resized to 256x256, CIELAB with each channel scaled to [0, 1] (section 3.1,
  :data:`zoo.aernet.models.AERNET_INPUT`); no augmentation (the paper names none);
* training: Adam, learning rate 1e-3, batch 16, 100 epochs, Dice loss of eq. 1
  (:class:`zoo.losses.DiceLoss`, squared denominators);
* evaluation: test masks predicted at 256x256, thresholded at 0.5, JSI (eq. 4) and
  DC (eq. 5) per image, averaged over the test images ("JSI medio", section 4.4),
  in percent. The ISIC 2018 challenge score (thresholded Jaccard) is kept in each
  row's ``result.json`` beside them.

Deviations: the paper has no validation split and does not say which epoch it
reports; we train the full 100 epochs and evaluate the epoch with the lowest
training loss (``fit`` keeps the best epoch by its monitor), never looking at the
test set while training. The paper does not say whether its U-Net baselines use
batch norm; ours do (``--no-batch-norm`` for Ronneberger's plain convolutions).
``--smoke`` re-estimates the batch-norm statistics before evaluating
(``--recalibrate-bn``, :func:`recalibrate_batch_norm`): its 80 training steps leave
Keras' moving averages (momentum 0.99) far from the weights' statistics.

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
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data_tools.imageio import load_image
from data_tools.isic import read_isic2018
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import DatasetError, Record
from data_tools.synthetic import make_isic2018
from reproduce.datasets import DatasetNeed
from reproduce.frame import Column, RowContext, RowResult, weights_argument
from zoo.metrics import DiceCoefficient, JaccardIndex, segmentation_scores, threshold_jaccard
from zoo.aernet.models import AERNET_INPUT, AERNET_SIZE_MULTIPLE
from zoo.aernet.recipe import AERNET_RECIPE
from zoo.train import TrainResult, fit

PAPER_TRAIN_IMAGES = 2094     # section 3.3
PAPER_TOTAL_IMAGES = 2594     # section 3.1
TRAIN_FRACTION = PAPER_TRAIN_IMAGES / PAPER_TOTAL_IMAGES
SPLIT_SEED = 2018             # the split does not change with --seed
MONITOR = AERNET_RECIPE.monitor  # no validation split in the paper: the lowest training loss
THRESHOLD = 0.5

JSI_DC = (Column("JSI", "%", higher_is_better=True, decimals=1),
          Column("DC", "%", higher_is_better=True, decimals=2))

DATASET = DatasetNeed(
    name="ISIC 2018 Task 1",
    default_dir="data/isic2018",
    how_to_get="python -m data_tools.download isic2018 --dest data/isic2018 --splits train",
    make_synthetic=functools.partial(make_isic2018, n_train=40, n_val=0, n_test=0,
                                     image_size=(64, 64)),
)

PAPER_SETTINGS = {"epochs": AERNET_RECIPE.epochs, "batch_size": AERNET_RECIPE.batch_size}
SMOKE = {"epochs": 10, "batch_size": 4, "image_size": 64, "base_filters": 8,
         "encoder_weights": None, "recalibrate_bn": True}
"""``--smoke``: 64x64 synthetic images, small U-Nets, random encoder weights (no download),
batch-norm statistics re-estimated before evaluation (80 steps are too few for them)."""


# --------------------------------------------------------------------------- flags


def _image_side(text: str) -> int:
    side = int(text)
    if side < AERNET_SIZE_MULTIPLE or side % AERNET_SIZE_MULTIPLE:
        raise argparse.ArgumentTypeError(
            f"must be a positive multiple of {AERNET_SIZE_MULTIPLE} (AER-Net pools 6 times), "
            f"got {side}")
    return side


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the AER-Net recipe, with the paper's values as defaults."""
    parser.add_argument("--image-size", type=_image_side, default=AERNET_INPUT.image_size[0],
                        help="model input side, a multiple of 64 (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=AERNET_RECIPE.learning_rate,
                        help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--encoder-weights", type=weights_argument, default="imagenet",
                        help="pretrained encoders' weights: imagenet, none, or a keras.applications "
                             "no-top weights file (default: %(default)s)")
    parser.add_argument("--base-filters", type=int, default=64,
                        help="channels of the U-Nets' first level (default: %(default)s)")
    parser.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                        help="U-Net baselines without batch norm (Ronneberger et al.)")
    parser.add_argument("--recalibrate-bn", action="store_true",
                        help="before evaluating, replace the batch-norm moving averages by the "
                             "training images' statistics (precise BN; on in --smoke, whose few "
                             "steps leave the moving averages far from converged)")
    parser.add_argument("--split", type=Path,
                        help="the train/test split file (default: <out>/split.json, written on "
                             "the first run)")


def input_spec(args: argparse.Namespace) -> InputSpec:
    """:data:`AERNET_INPUT` at ``--image-size``."""
    return dataclasses.replace(AERNET_INPUT, image_size=(args.image_size, args.image_size))


def input_shape(args: argparse.Namespace) -> tuple[int, int, int]:
    """The models' input shape at ``--image-size`` (RGB-sized: CIELAB has 3 channels)."""
    return (args.image_size, args.image_size, 3)


# --------------------------------------------------------------------------- data


def make_split(image_ids: Sequence[str]) -> dict:
    """``{"seed", "train", "test"}``: 80.72 % of the ids for training (2094 of 2594).

    A permutation of the sorted ids seeded with :data:`SPLIT_SEED`, so the split
    depends only on the set of ids.
    """
    ids = sorted(image_ids)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(ids))
    n_train = round(TRAIN_FRACTION * len(ids))
    return {"seed": SPLIT_SEED, "train": sorted(ids[i] for i in order[:n_train]),
            "test": sorted(ids[i] for i in order[n_train:])}


def load_split(ctx: RowContext) -> tuple[list[Record], list[Record]]:
    """``(train, test)`` records of the fixed split (section 3.3), made on first use.

    The split file lists image ids; a later run with other data (an id missing from
    ``--data-dir``) stops with a message naming the file.
    """
    records = read_isic2018(ctx.data_dir, "train", tasks=(1,), skip_bad=ctx.bad_inputs)
    by_id = {record.image_id: record for record in records}
    path = ctx.args.split or ctx.out_dir.parents[1] / "split.json"
    if path.is_file():
        split = json.loads(path.read_text(encoding="utf-8"))
        missing = sorted(set(split["train"] + split["test"]) - set(by_id))
        if missing:
            raise DatasetError(path, f"lists {len(missing)} images that {ctx.data_dir} does not "
                                     f"have (e.g. {missing[0]}); pass --split with another file "
                                     f"or delete it to make a new split")
    else:
        split = make_split(by_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(split, indent=1), encoding="utf-8")
        print(f"    split: {len(split['train'])} train / {len(split['test'])} test images -> {path}")
    return [by_id[i] for i in split["train"]], [by_id[i] for i in split["test"]]


# --------------------------------------------------------------------------- train, evaluate


def train_segmenter(ctx: RowContext, build: Callable[[], keras.Model],
                    train: Sequence[Record]) -> TrainResult:
    """:data:`zoo.aernet.AERNET_RECIPE` (Adam 1e-3, Dice loss of eq. 1), ``--epochs`` of
    ``--batch-size`` (section 3.3)."""
    args = ctx.args
    data = segmentation_dataset(train, input_spec(args), batch_size=args.batch_size,
                                training=True, seed=args.seed)
    config = ctx.train_config(monitor=MONITOR, mode="min")
    steps = max(1, len(train) // args.batch_size)
    return fit(build, data, None, config,
               optimizer=lambda: AERNET_RECIPE.make_optimizer(steps, learning_rate=args.learning_rate,
                                                              epochs=args.epochs),
               loss=AERNET_RECIPE.loss, metrics=lambda: [DiceCoefficient(), JaccardIndex()])


@dataclasses.dataclass
class Evaluation:
    """Per-image test scores and the arrays needed for the examples figure."""

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


def recalibrate_batch_norm(model: keras.Model, train: Sequence[Record],
                           args: argparse.Namespace) -> None:
    """Sets every batch norm's moving statistics to those of the training images.

    One forward pass in training mode over all of ``train`` as a single batch, with
    the momentum of every ``BatchNormalization`` set to 0 for that pass ("precise
    BN", Wu & Johnson 2021). Meant for small sets (``--smoke``): with Keras' momentum
    of 0.99 the moving averages need thousands of steps to settle, which the paper's
    100 epochs (13,100 steps) give and a smoke run does not.
    """
    data = segmentation_dataset(train, input_spec(args), batch_size=len(train), training=False,
                                cache=False)
    images, _ = next(iter(data))
    # _flatten_layers also reaches the batch norms inside custom layers (AttentionGate).
    layers = [layer for layer in model._flatten_layers()
              if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        model(images, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def evaluate_segmenter(model: keras.Model, test: Sequence[Record], args: argparse.Namespace
                       ) -> Evaluation:
    """Predicts every test image and scores it (JSI eq. 4, DC eq. 5)."""
    data = segmentation_dataset(test, input_spec(args), batch_size=args.batch_size,
                                training=False, cache=False)
    masks, predictions = [], []
    for images, batch_masks in data.as_numpy_iterator():  # numpy: any Keras backend
        masks.append(batch_masks[..., 0] > 0.5)
        predictions.append(np.asarray(model.predict_on_batch(images))[..., 0] > THRESHOLD)
    masks, predictions = np.concatenate(masks), np.concatenate(predictions)
    scores = [segmentation_scores(m, p) for m, p in zip(masks, predictions)]
    return Evaluation([r.image_id for r in test], np.array([s["jaccard"] for s in scores]),
                      np.array([s["dice"] for s in scores]), masks, predictions)


def write_test_scores(evaluation: Evaluation, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["image_id", "jaccard", "dice"])
        for row in zip(evaluation.image_ids, evaluation.jaccard, evaluation.dice):
            writer.writerow([row[0], f"{row[1]:.4f}", f"{row[2]:.4f}"])


def plot_examples(evaluation: Evaluation, test: Sequence[Record], spec: InputSpec, path: Path,
                  title: str) -> Path:
    """The paper's Fig. 6: best, median and worst test image by Dice (image, truth, prediction)."""
    order = np.argsort(evaluation.dice, kind="stable")
    picks = {"best": order[-1], "median": order[len(order) // 2], "worst": order[0]}
    figure = Figure(figsize=(7.5, 7.5), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=9)
    axes = figure.subplots(3, 3)
    for row, (label, index) in enumerate(picks.items()):
        rgb = tf.image.resize(load_image(test[index].image_path), spec.image_size).numpy() / 255.0
        panels = [rgb, evaluation.masks[index],
                  evaluation.predictions[index]]
        names = [f"{label}: {evaluation.image_ids[index]}", "ground truth",
                 f"prediction (Dice {100 * evaluation.dice[index]:.1f} %)"]
        for axis, panel, name in zip(axes[row], panels, names):
            axis.imshow(np.clip(panel, 0, 1), cmap="gray" if panel.ndim == 2 else None)
            axis.set_title(name, fontsize=8)
            axis.axis("off")
    figure.savefig(path, dpi=100)
    return path


def run_segmentation_row(ctx: RowContext, build: Callable[[], keras.Model]) -> RowResult:
    """Split, train, evaluate, write the examples figure: one row of Tables 1-3."""
    train, test = load_split(ctx)
    args = ctx.args
    keras.utils.set_random_seed(args.seed)  # fit builds with the same seed: same initial weights
    untrained = evaluate_segmenter(build(), test, args).table_values()
    started = time.monotonic()
    trained = train_segmenter(ctx, build, train)
    seconds = time.monotonic() - started
    if args.recalibrate_bn:
        recalibrate_batch_norm(trained.model, train, args)
    evaluation = evaluate_segmenter(trained.model, test, args)
    write_test_scores(evaluation, ctx.out_dir / "test_scores.csv")
    title = f"{'SYNTHETIC — ' if ctx.smoke else ''}{ctx.row.name}"
    plot_examples(evaluation, test, input_spec(args), ctx.out_dir / "examples.png", title)
    epochs = len(trained.history.get("loss", [])) or args.epochs
    return RowResult(
        evaluation.table_values(), history=trained.history, monitor=MONITOR,
        extra={"params": trained.model.count_params(),
               "isic2018_threshold_jaccard": evaluation.challenge_score(),
               "untrained": untrained, "best_epoch": trained.best_epoch,
               "train_images": len(train), "test_images": len(test),
               "seconds_per_epoch": round(seconds / epochs, 2)})
