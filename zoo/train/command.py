"""``python -m zoo.train``: train one registered model on a dataset folder, leave a run folder.

    python -m zoo.train --model unet --data data/isic2018 --out runs/unet
    python -m zoo.train --model unet --data data/isic2018 --out runs/unet-small --small --epochs 2

The dataset's layout is detected (:mod:`data_tools.detect`: the ISIC 2016/2017/2018
folders as distributed, an ``images/`` + ``masks/`` folder, a Labelme folder) or given
with ``--layout``; the model is trained with its paper's recipe (loss, optimiser and
schedule, augmentation, batch size, epochs, the monitored quantity), whose
``--learning-rate``, ``--batch-size``, ``--epochs`` and ``--monitor`` may be changed
(:func:`zoo.recipe.add_override_flags`). Validation: the dataset's official
validation split (ISIC 2017, 2018) or, without one or with ``--validation-fraction``,
a seeded hold-out of the training images (stratified by label for classifiers), whose
image ids the run records.

What the models need beyond images and masks or labels:

* ARL-CNN and its baselines (``resnet14`` ... ``ran50``) train on 60 random central
  patches per image and are scored on the mean over 9 patches per image (Sec. IV-B),
  through :func:`data_tools.pipeline.classification_dataset`'s ``expand`` hook;
* the AttnMel paper's classifiers repeat every melanoma 4 times in the training list
  (its authors' class balance), as ``reproduce/attnmel_recipe.py`` does;
* AttnMel-CNN (``attnmel_cnn``) regularises its attention maps with an ROI mask
  (eq. 5, ``--roi``: the lesion mask of ISIC 2017 Part 1, its background, or the
  Part 2 "dermo" union); data without such masks is refused (train it without the
  regulariser with ``reproduce/attnmel_table1.py``);
* SANet (``sanet``) gets SLIC superpixel maps, computed once and cached
  (:func:`zoo.sanet.superpixels.cache_superpixels`), as a second input. The random
  shuffle module of the SANet tables (RSM) is not applied: ``reproduce/sanet_table*.py``
  train the RSM rows.

Everything lands in ``--out``, a run folder (:mod:`zoo.run`): training's checkpoints,
log and backup while it runs, then ``run.json`` and ``model.weights.h5`` with the kept
(best) epoch, the data (layout, folder, split, counts), the validation scores (Dice and
Jaccard for masks, AUC and accuracy for probabilities) and the recipe with its
overrides. Killed, the same command resumes where the backup left off; an ``--out``
holding another run (other settings) is refused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from data_tools import layouts
from data_tools.atomic import atomic_write_text
from data_tools.detect import LAYOUTS, Layout, LayoutError, detect_layout, labelme_labels
from data_tools.folders import read_labelme, read_mask_folder
from data_tools.isic import (
    read_isic2016_part1,
    read_isic2016_part3,
    read_isic2017,
    read_isic2018,
    write_isic2017_feature_masks,
)
from data_tools.lazy_tensorflow import require_tensorflow
from data_tools.pipeline import classification_dataset, oversample_positives, segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import BadInputPolicy, DatasetError, Record
from zoo.common.run_card import RUN_FILE, WEIGHTS_FILE, RunError, read_card, resolved_arguments
from zoo.metrics import DiceCoefficient, JaccardIndex, classification_scores, segmentation_scores
from zoo.recipe import TrainingRecipe, add_override_flags, overrides_from_flags
from zoo.registry import ModelEntry, get_model
from zoo.run import save_run
from zoo.runtime import STRATEGIES
from zoo.serving import spec_for_model
from zoo.train import (
    BACKUP_DIR,
    BEST_WEIGHTS_FILE,
    CONFIG_FILE,
    LOG_FILE,
    RUNTIME_FILE,
    TENSORBOARD_DIR,
    TrainConfig,
    TrainResult,
    fit,
)

tf = require_tensorflow("python -m zoo.train (its tf.data pipelines)")

PROG = "python -m zoo.train"
SETTINGS_FILE = "train_settings.json"
"""The settings of the run in a folder (written before training starts): a rerun with the
same settings resumes, one with others is refused unless ``--overwrite``."""
SKIPPED_FILE = "skipped.txt"
TRAINING_FILES = (
    RUN_FILE,
    WEIGHTS_FILE,
    BEST_WEIGHTS_FILE,
    LOG_FILE,
    CONFIG_FILE,
    RUNTIME_FILE,
    SETTINGS_FILE,
    SKIPPED_FILE,
    BACKUP_DIR,
    TENSORBOARD_DIR,
)
"""What ``--overwrite`` removes from ``--out`` (nothing else there is touched)."""
DEFAULT_VALIDATION_FRACTION = 0.2
CLASSIFICATION_LABELS = ("melanoma", "seborrheic_keratosis")
ALL_LABELS = "all"
THRESHOLD = 0.5
AUC_METRIC = "auc"
ARL_PAPER = "arl_cnn"
ATTNMEL_OVERSAMPLING = 4
"""AttnMel's class balance (the authors' code, ``reproduce/attnmel_recipe.py``): every
melanoma 4x in the training list."""

TABLE_SCRIPTS: Mapping[str, str] = {
    "aernet": "reproduce/aernet_table1.py",
    "arl_cnn": "reproduce/arl_table3.py",
    "attnmel": "reproduce/attnmel_table2.py",
    "sanet": "reproduce/sanet_table1.py",
    "apspnet": "reproduce/apspnet_table1.py",
}
"""The table script that trains each paper's models (named in refusals)."""


class CommandError(ValueError):
    """A problem with the command line or the data that the command reports in one line."""


# --------------------------------------------------------------------------- flags


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block)."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message.splitlines()[0] if message else message}\n")


def _builder_args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg} at character {error.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"classes\": 3}}', got {text!r}")
    clashing = sorted(set(value) & {"weights", "return_attention"})
    if clashing:
        raise argparse.ArgumentTypeError(f"{clashing} are set by the command, not by --builder-args")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def _label_map(text: str) -> dict[str, int]:
    """``"kidney=1,hydronephrosis=2"`` -> ``{"kidney": 1, "hydronephrosis": 2}``."""
    label_map = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, _, index = item.partition("=")
        if not label.strip() or not index.strip().isdigit() or not 1 <= int(index) <= 255:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not LABEL=INDEX with INDEX in 1..255 (0 is the "
                "background), e.g. kidney=1,hydronephrosis=2"
            )
        label_map[label.strip()] = int(index)
    if not label_map:
        raise argparse.ArgumentTypeError("is empty; e.g. kidney=1,hydronephrosis=2")
    return label_map


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _verbosity(text: str) -> str | int:
    if text in ("auto", "0", "1", "2"):
        return text if text == "auto" else int(text)
    raise argparse.ArgumentTypeError(f"must be auto, 0, 1 or 2, got {text!r}")


def build_parser(recipe: TrainingRecipe | None = None) -> argparse.ArgumentParser:
    """The command's flags; ``recipe`` (the model's) shows its values in ``--help``."""
    parser = _Parser(
        prog=PROG,
        description="Train one registered model on a dataset folder (any layout the "
        "data_tools readers know) with its paper's recipe, and leave a run folder (zoo.run) in --out. "
        "Rerun the same command to resume an interrupted run.",
    )
    parser.add_argument("--model", required=True, help="registered model name (python -m zoo list)")
    parser.add_argument("--data", required=True, type=Path, help="the dataset folder")
    parser.add_argument("--out", required=True, type=Path, help="the run folder to write (and resume)")
    parser.add_argument(
        "--layout", choices=tuple(LAYOUTS), help="the dataset's layout (default: detected from the folder)"
    )
    parser.add_argument(
        "--validation-fraction",
        type=_fraction,
        help="hold out this share of the training images for validation (default: the "
        f"dataset's official validation split, else {DEFAULT_VALIDATION_FRACTION})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the split, the weights and the data order (default: 0)"
    )
    parser.add_argument(
        "--small", action="store_true", help="the registry's small test configuration (a quick try on a CPU)"
    )
    parser.add_argument(
        "--builder-args",
        type=_builder_args,
        default={},
        help='JSON object of builder arguments, e.g. \'{"encoder_weights": "imagenet"}\'',
    )
    training = parser.add_argument_group("recipe overrides (default: the paper's recipe)")
    add_override_flags(training, recipe)
    data = parser.add_argument_group("data")
    data.add_argument(
        "--skip-bad",
        action="store_true",
        help=f"leave out unreadable or inconsistent samples (listed in <out>/{SKIPPED_FILE})",
    )
    data.add_argument(
        "--label",
        choices=(*CLASSIFICATION_LABELS, ALL_LABELS),
        help="classifiers on ISIC 2017 Part 3: the sub-task (a 2-class softmax), or all for one "
        "3-class softmax (other, melanoma, seborrheic keratosis) (default: melanoma)",
    )
    data.add_argument(
        "--classes",
        type=_positive_int,
        help="mask-folder: the masks hold class indices 0..CLASSES-1 (default: 0/255 binary masks)",
    )
    data.add_argument("--mask-suffix", default="", help="mask-folder: what mask stems add to image stems")
    data.add_argument(
        "--label-map",
        type=_label_map,
        help="labelme: LABEL=INDEX,... (default: the labels of the annotations, sorted, from 1)",
    )
    data.add_argument(
        "--roi",
        choices=("lesion", "dermo", "background"),
        default="lesion",
        help="attnmel_cnn: the reference map of its attention maps (eq. 5) (default: lesion)",
    )
    data.add_argument(
        "--superpixel-cache", type=Path, help="sanet: where the superpixel maps are cached (default: beside the images)"
    )
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument(
        "--xla", action=argparse.BooleanOptionalAction, default=None, help="compile with XLA (default: on with a GPU)"
    )
    runtime.add_argument("--mixed-precision", action="store_true", help="mixed_float16 compute (GPUs)")
    runtime.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy (default: default, one device)",
    )
    runtime.add_argument(
        "--verbose",
        type=_verbosity,
        default="auto",
        help="Keras progress: auto (the bar on a terminal, a line per epoch into a file or pipe), 0 (silent), "
        "1 (bar), 2 (a line per epoch)",
    )
    runtime.add_argument("--overwrite", action="store_true", help="replace the training files of another run in --out")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line (the parser shows the model's recipe in ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--model")
    known, _ = probe.parse_known_args(argv)
    try:
        recipe = get_model(known.model).recipe if known.model else None
    except KeyError:
        recipe = None
    return build_parser(recipe).parse_args(argv)


# --------------------------------------------------------------------------- targets


@dataclasses.dataclass(frozen=True)
class Targets:
    """What the model learns from the layout's ground truth.

    Attributes:
        kind: ``"masks"`` or ``"labels"``.
        source: masks: ``"binary"`` (0/255 files, one channel per name) or ``"index"``
            (one class-index file); labels: ``"labels"``.
        names: mask names (``Record.mask_paths``) or label names (``Record.labels``).
        classes: the model's output channels.
        encoding: ``"binary"`` (sigmoid channels) or ``"one_hot"`` (softmax).
        source_classes: index masks: the classes in the files (background 0 included).
        label_map: Labelme's label -> index.
    """

    kind: str
    source: str
    names: tuple[str, ...]
    classes: int
    encoding: str
    source_classes: int | None = None
    label_map: Mapping[str, int] | None = None

    def describe(self) -> dict[str, Any]:
        record = {
            "kind": self.kind,
            "source": self.source,
            "names": list(self.names),
            "classes": self.classes,
            "encoding": self.encoding,
        }
        if self.label_map is not None:
            record["label_map"] = dict(self.label_map)
        return record

    def convert(self, target: tf.Tensor) -> tf.Tensor:
        """The pipeline's target (masks, or ``[B, n]`` labels) -> the model's."""
        if self.kind == "labels":
            if len(self.names) == 1:
                return tf.concat([1.0 - target, target], axis=-1)
            return tf.concat([1.0 - tf.reduce_sum(target, axis=-1, keepdims=True), target], axis=-1)
        if self.source == "index":
            one_hot = tf.one_hot(tf.squeeze(tf.cast(target, tf.int32), -1), self.source_classes)
            return one_hot if self.encoding == "one_hot" else one_hot[..., 1:]
        if self.encoding == "one_hot":
            return tf.concat([1.0 - target, target], axis=-1)
        return target


def _recipe_encoding(entry: ModelEntry) -> str:
    targets = entry.recipe.targets
    return (
        targets
        if isinstance(targets, str)
        else targets["probabilities" if entry.output == "probabilities" else entry.output]
    )


def plan_targets(entry: ModelEntry, layout: Layout, args: argparse.Namespace) -> Targets:
    """The targets of ``entry`` trained on ``layout`` with the flags ``args``."""
    encoding = _recipe_encoding(entry)
    if layout.target == "labels":
        if layout.name == "isic2016-part3":
            if args.label not in (None, "melanoma"):
                raise CommandError(f"--label {args.label}: ISIC 2016 Part 3 holds melanoma labels only.")
            names = ("melanoma",)
        else:
            label = args.label or "melanoma"
            names = CLASSIFICATION_LABELS if label == ALL_LABELS else (label,)
        return Targets("labels", "labels", names, len(names) + 1, "one_hot")
    if layout.name == "labelme":
        label_map = args.label_map or {label: index + 1 for index, label in enumerate(labelme_labels(args.data))}
        if not label_map:
            raise DatasetError(args.data, "the Labelme annotations hold no labelled shape; pass --label-map")
        classes = max(label_map.values()) + 1
        return Targets(
            "masks",
            "index",
            ("classes",),
            classes if encoding == "one_hot" else classes - 1,
            encoding,
            source_classes=classes,
            label_map=label_map,
        )
    if layout.name == "mask-folder" and args.classes is not None:
        if args.classes < 2:
            raise CommandError("--classes: index masks need at least 2 classes (background and one more).")
        return Targets(
            "masks",
            "index",
            ("mask",),
            args.classes if encoding == "one_hot" else args.classes - 1,
            encoding,
            source_classes=args.classes,
        )
    names = {"isic2018-task2": layouts.ISIC2018_ATTRIBUTES, "mask-folder": ("mask",)}.get(layout.name, ("lesion",))
    if encoding == "one_hot":
        if len(names) > 1:
            raise CommandError(
                f"{entry.name} learns one softmax over classes; the {len(names)} attribute masks of "
                f"{layout.name} overlap: train a model with sigmoid outputs (e.g. sanet_unet) on it."
            )
        return Targets("masks", "binary", names, 2, "one_hot")
    return Targets("masks", "binary", tuple(names), len(names), "binary")


# --------------------------------------------------------------------------- data


def _check_models_layout(entry: ModelEntry, layout: Layout, args: argparse.Namespace) -> None:
    """Refuses combinations the command cannot train properly, naming the table script."""
    wanted = "labels" if entry.output == "probabilities" else "masks"
    if layout.target != wanted:
        raise CommandError(
            f"{entry.name} outputs {entry.output} but --layout {layout.name} holds {layout.target}; "
            f"choose a layout with {wanted}."
        )
    if not isinstance(entry.recipe.targets, str) and layout.name != "isic2017-part3":
        raise CommandError(
            f"{entry.name}: its recipe regularises the attention maps with ROI masks (eq. 5), which {layout.name} "
            f"does not have; train it on ISIC 2017 (Part 3 with the Part 1 masks, --roi), or with "
            f"{TABLE_SCRIPTS[entry.paper]} / reproduce/attnmel_table1.py (no ROI)."
        )
    if "superpixels" in entry.extra_inputs and layout.target != "masks":
        raise CommandError(f"{entry.name} segments; use a mask layout.")


def read_records(
    layout: Layout,
    folder: Path,
    split: str,
    args: argparse.Namespace,
    targets: Targets,
    policy: BadInputPolicy,
    *,
    roi_parts: Sequence[int] = (),
) -> list[Record]:
    """The records of one split of ``layout`` in ``folder``."""
    name = layout.name
    if name == "isic2016-part1":
        return read_isic2016_part1(folder, split, skip_bad=policy)
    if name == "isic2016-part3":
        return read_isic2016_part3(folder, split, skip_bad=policy)
    if name == "isic2017-part1":
        return read_isic2017(folder, split, parts=(1,), skip_bad=policy)
    if name == "isic2017-part3":
        return read_isic2017(folder, split, parts=tuple(sorted({3, *roi_parts})), skip_bad=policy)
    if name == "isic2018-task1":
        return read_isic2018(folder, split, tasks=(1,), skip_bad=policy)
    if name == "isic2018-task2":
        return read_isic2018(folder, split, tasks=(2,), skip_bad=policy)
    if name == "mask-folder":
        return read_mask_folder(
            folder / "images",
            folder / "masks",
            mask_suffix=args.mask_suffix,
            classes=targets.source_classes if targets.source == "index" else None,
            skip_bad=policy,
        )
    if name == "labelme":
        return read_labelme(folder, targets.label_map, skip_bad=policy)
    raise CommandError(f"--layout {name}: no reader.")  # pragma: no cover (LAYOUTS and this agree)


def split_validation(
    records: Sequence[Record], fraction: float, seed: int, label: str | None = None
) -> tuple[list[Record], list[Record]]:
    """A seeded hold-out ``(train, validation)``: ``fraction`` of the images, at least one
    in each part; with ``label``, stratified (both classes in both parts where possible)."""
    if len(records) < 2:
        raise CommandError(f"{len(records)} image(s): too few to hold out a validation split.")
    rng = np.random.default_rng(seed)
    groups = (
        [[r.image_id for r in records if (r.labels[label] >= 0.5) == positive] for positive in (False, True)]
        if label is not None
        else [[r.image_id for r in records]]
    )
    validation: set[str] = set()
    for ids in groups:
        if len(ids) < 2:
            continue
        count = min(max(1, round(fraction * len(ids))), len(ids) - 1)
        validation.update(rng.permutation(ids)[:count].tolist())
    if not validation:
        ids = [r.image_id for r in records]
        validation.add(ids[int(rng.integers(len(ids)))])
    return ([r for r in records if r.image_id not in validation], [r for r in records if r.image_id in validation])


@dataclasses.dataclass
class Data:
    """The training and validation datasets and what the run records about them."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    steps_per_epoch: int
    record: dict[str, Any]
    patches_per_image: int | None = None


def make_datasets(
    entry: ModelEntry,
    recipe: TrainingRecipe,
    targets: Targets,
    spec: InputSpec,
    train: Sequence[Record],
    validation: Sequence[Record],
    args: argparse.Namespace,
    builder: Mapping[str, Any],
    policy: BadInputPolicy,
) -> tuple[tf.data.Dataset, tf.data.Dataset, int, int | None, list[Record], list[Record]]:
    """``(train, validation, steps_per_epoch, patches_per_image, train, validation)``."""
    batch = recipe.batch_size
    drop = len(train) >= batch
    steps = max(1, len(train) // batch) if drop else 1
    common = dict(batch_size=batch, seed=args.seed)
    augment = recipe.augmentation
    if targets.kind == "labels":
        if entry.paper == ARL_PAPER:
            from zoo.arl_cnn.patches import ARL_TEST_PATCHES, ARL_TRAIN_PATCHES, arl_test_patches, arl_training_patches

            size = spec.image_size
            train_data = classification_dataset(
                train,
                spec,
                label_names=targets.names,
                training=True,
                augment=augment,
                repeat=True,
                expand=functools.partial(arl_training_patches, size=size),
                **common,
            )
            images_per_batch = max(1, math.ceil(batch / ARL_TEST_PATCHES))
            val_data = classification_dataset(
                validation,
                spec,
                label_names=targets.names,
                training=False,
                batch_size=images_per_batch,
                seed=args.seed,
                expand=functools.partial(arl_test_patches, size=size),
            )
            val_data = val_data.map(functools.partial(_flatten_patches, count=ARL_TEST_PATCHES))
            steps = max(1, ARL_TRAIN_PATCHES * len(train) // batch)
            convert = targets.convert
            return (
                _converted(train_data, convert),
                _sized(_converted(val_data, convert), math.ceil(len(validation) / images_per_batch)),
                steps,
                ARL_TEST_PATCHES,
                list(train),
                list(validation),
            )
        if not isinstance(recipe.targets, str):  # AttnMel-CNN with its ROI (eq. 5)
            from zoo.attnmel.roi import attention_targets, roi_dataset

            if args.roi == "dermo":
                cache = args.out / "roi_masks"
                train = write_isic2017_feature_masks(train, cache)
                validation = write_isic2017_feature_masks(validation, cache)
            label = targets.names[0]
            if len(targets.names) != 1:
                raise CommandError(
                    f"{entry.name} learns one sub-task: pass --label melanoma or --label seborrheic_keratosis."
                )
            convert = targets.convert

            def roi(records, training):
                data = roi_dataset(
                    records,
                    spec,
                    args.roi,
                    label_name=label,
                    training=training,
                    augment=augment if training else None,
                    drop_remainder=drop if training else False,
                    **common,
                )
                return data.map(lambda image, t: (image, attention_targets(convert(t["labels"]), t["reference"])))

            return (
                _sized(roi(train, True), steps),
                _sized(roi(validation, False), math.ceil(len(validation) / batch)),
                steps,
                None,
                list(train),
                list(validation),
            )
        convert = targets.convert
        train_data = classification_dataset(
            train, spec, label_names=targets.names, training=True, augment=augment, drop_remainder=drop, **common
        )
        val_data = classification_dataset(validation, spec, label_names=targets.names, training=False, **common)
        return (
            _sized(_converted(train_data, convert), steps),
            _sized(_converted(val_data, convert), math.ceil(len(validation) / batch)),
            steps,
            None,
            list(train),
            list(validation),
        )
    mask_options = dict(
        mask_names=targets.names, mask_mode="index" if targets.source == "index" else "binary", **common
    )
    if "superpixels" in entry.extra_inputs:
        from zoo.sanet.superpixels import SlicParams, cache_superpixels, superpixel_segmentation_dataset

        bound = int(builder.get("max_segments") or 256)
        params = SlicParams(n_segments=min(SlicParams().n_segments, bound), max_segments=bound)
        train = cache_superpixels(train, params, cache_dir=args.superpixel_cache, skip_bad=policy)
        validation = cache_superpixels(validation, params, cache_dir=args.superpixel_cache, skip_bad=policy)
        make = functools.partial(superpixel_segmentation_dataset, max_segments=bound)
        options = {key: value for key, value in mask_options.items() if key != "mask_mode"}
    else:
        make, options = segmentation_dataset, mask_options
    if not train or not validation:
        raise DatasetError(
            args.data,
            f"{len(train)} training and {len(validation)} validation images with "
            "superpixel maps: both splits need at least one",
        )
    drop = len(train) >= batch
    steps = max(1, len(train) // batch) if drop else 1
    convert = targets.convert
    train_data = make(train, spec, training=True, augment=augment, drop_remainder=drop, **options)
    val_data = make(validation, spec, training=False, **options)
    return (
        _sized(_converted(train_data, convert), steps),
        _sized(_converted(val_data, convert), math.ceil(len(validation) / batch)),
        steps,
        None,
        list(train),
        list(validation),
    )


def _sized(dataset: tf.data.Dataset, batches: int) -> tf.data.Dataset:
    """``dataset`` with its number of batches known (Keras' progress bar shows it)."""
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def _converted(dataset: tf.data.Dataset, convert: Callable[[tf.Tensor], tf.Tensor]) -> tf.data.Dataset:
    """``dataset`` with its targets converted to the model's."""

    def pair(inputs, target):
        return inputs, convert(target)

    return dataset.map(pair)


def _flatten_patches(images: tf.Tensor, labels: tf.Tensor, count: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``[B, n, h, w, 3]`` patches -> ``[nB, h, w, 3]``, each with its image's labels."""
    shape = tf.shape(images)
    return tf.reshape(images, tf.concat([[-1], shape[2:]], axis=0)), tf.repeat(labels, count, axis=0)


# --------------------------------------------------------------------------- scores


def validation_scores(
    model: keras.Model, data: tf.data.Dataset, targets: Targets, main: str, patches_per_image: int | None = None
) -> dict[str, Any]:
    """Scores of ``model`` on the validation batches: Dice and Jaccard (mean over images,
    at the model's resolution, threshold 0.5 / argmax) for masks, AUC and accuracy for
    probabilities (per image: the mean over its patches for ARL-CNN)."""
    truths, predictions = [], []
    for inputs, target in data.as_numpy_iterator():
        output = model.predict_on_batch(inputs)
        output = output[main] if isinstance(output, Mapping) else output
        target = target[main] if isinstance(target, Mapping) else target
        truths.append(np.asarray(target))
        predictions.append(keras.ops.convert_to_numpy(output).astype(np.float32))
    truth, prediction = np.concatenate(truths), np.concatenate(predictions)
    if patches_per_image:
        truth = truth[::patches_per_image]
        prediction = prediction.reshape(-1, patches_per_image, *prediction.shape[1:]).mean(axis=1)
    if targets.kind == "labels":
        return _classification_scores(truth, prediction, targets)
    return _mask_scores(truth, prediction, targets)


def _mask_scores(truth: np.ndarray, prediction: np.ndarray, targets: Targets) -> dict[str, Any]:
    if targets.encoding == "one_hot":
        classes = truth.shape[-1]
        truth_index, predicted_index = truth.argmax(-1), prediction.argmax(-1)
        truth = np.stack([truth_index == c for c in range(1, classes)], axis=-1)
        prediction = np.stack([predicted_index == c for c in range(1, classes)], axis=-1)
        names = (
            [name for name, _ in sorted(targets.label_map.items(), key=lambda item: item[1])]
            if targets.label_map
            else [f"class_{c}" for c in range(1, classes)]
        )
    else:
        truth, prediction = truth > THRESHOLD, prediction > THRESHOLD
        names = (
            list(targets.names)
            if targets.source == "binary"
            else [name for name, _ in sorted((targets.label_map or {}).items(), key=lambda item: item[1])]
            or [f"class_{c}" for c in range(1, truth.shape[-1] + 1)]
        )
    per_channel = {}
    for channel, name in enumerate(names[: truth.shape[-1]]):
        scores = [segmentation_scores(t[..., channel], p[..., channel]) for t, p in zip(truth, prediction, strict=True)]
        per_channel[name] = {key: float(np.mean([s[key] for s in scores])) for key in ("dice", "jaccard")}
    result: dict[str, Any] = {
        key: float(np.mean([s[key] for s in per_channel.values()])) for key in ("dice", "jaccard")
    }
    result["images"] = int(len(truth))
    if len(per_channel) > 1:
        result["per_channel"] = per_channel
    return result


def _classification_scores(truth: np.ndarray, probabilities: np.ndarray, targets: Targets) -> dict[str, Any]:
    result: dict[str, Any] = {
        "images": int(len(truth)),
        "accuracy": float(np.mean(truth.argmax(-1) == probabilities.argmax(-1))),
    }
    for column, name in enumerate(targets.names, start=1):
        try:
            scores = classification_scores(truth[:, column], probabilities[:, column])
        except ValueError as error:  # one class only in the validation split
            result.setdefault("notes", []).append(f"{name}: {error}")
            continue
        if len(targets.names) == 1:
            result.update({key: value for key, value in scores.items() if key != "accuracy"})
        else:
            result[name] = scores
    if len(targets.names) > 1:
        aucs = [result[name]["auc"] for name in targets.names if name in result]
        if aucs:
            result["auc"] = float(np.mean(aucs))
    return result


# --------------------------------------------------------------------------- the run folder


def run_settings(args: argparse.Namespace, layout: Layout) -> dict[str, Any]:
    """What makes a run this run: a rerun with equal settings resumes it."""
    settings = {
        "model": args.model,
        "data": str(args.data.resolve()),
        "layout": layout.name,
        "small": args.small,
        "builder_args": args.builder_args,
        "overrides": overrides_from_flags(args),
        "seed": args.seed,
        "validation_fraction": args.validation_fraction,
        "skip_bad": args.skip_bad,
        "mixed_precision": args.mixed_precision,
        "label": args.label,
        "classes": args.classes,
        "mask_suffix": args.mask_suffix,
        "label_map": args.label_map,
        "roi": args.roi,
    }
    return json.loads(json.dumps(settings))


def _previous_settings(out: Path) -> dict[str, Any] | None:
    path = out / SETTINGS_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
    if (out / RUN_FILE).is_file():
        try:
            return dict(read_card(out).training).get("settings")
        except (RunError, OSError, ValueError):
            return None
    return None


def prepare_out(out: Path, settings: Mapping[str, Any], overwrite: bool) -> str:
    """Checks ``--out``: ``"new"``, ``"resume"`` (a run of these settings is there) or
    ``"overwrite"`` (another run's training files removed).

    Raises:
        CommandError: ``out`` holds another run, or other files, without ``overwrite``.
    """
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: a file, not a folder.")
    if not out.is_dir() or not any(out.iterdir()):
        return "new"
    previous = _previous_settings(out)
    if previous == settings:
        return "resume"
    if not overwrite:
        if previous is None:
            raise CommandError(
                f"--out {out} holds files that are not a run of python -m zoo.train; choose another "
                f"--out, or pass --overwrite to replace training's files there."
            )
        changed = ", ".join(
            f"{key} {previous.get(key)!r} -> {value!r}" for key, value in settings.items() if previous.get(key) != value
        )
        raise CommandError(
            f"--out {out} holds another run ({changed}); choose another --out, or pass --overwrite to replace it."
        )
    for name in TRAINING_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return "overwrite"


# --------------------------------------------------------------------------- training


@dataclasses.dataclass
class Outcome:
    """What :func:`train` did: the run folder, the kept model and its scores."""

    folder: Path
    model: keras.Model
    result: TrainResult
    scores: dict[str, Any]
    data: dict[str, Any]


def _resolve_layout(entry: ModelEntry, args: argparse.Namespace, channels: int | None) -> Layout:
    wanted = "labels" if entry.output == "probabilities" else "masks"
    if args.layout is None:
        return detect_layout(args.data, target=wanted, channels=channels)
    layout = LAYOUTS[args.layout]
    if not args.data.is_dir():
        raise DatasetError(args.data, "no such data folder" if not args.data.exists() else "not a folder")
    if not layout.present(args.data):
        raise LayoutError(args.data, f"--layout {layout.name}: expected {layout.looked_for()} under the folder")
    return layout


def train(
    args: argparse.Namespace, *, callbacks: Sequence[keras.callbacks.Callback] = (), log: Callable[[str], None] = print
) -> Outcome:
    """Trains ``args.model`` on ``args.data`` into the run folder ``args.out`` (the command)."""
    entry = get_model(args.model)
    recipe = entry.recipe.with_overrides(**overrides_from_flags(args))
    requested = {**entry.kwargs, **(entry.test_kwargs if args.small else {}), **args.builder_args}
    resolved = resolved_arguments(entry.builder, requested)
    layout = _resolve_layout(entry, args, resolved.get("classes"))
    _check_models_layout(entry, layout, args)
    settings = run_settings(args, layout)
    state = prepare_out(args.out, settings, args.overwrite)
    targets = plan_targets(entry, layout, args)
    builder_args = dict(requested)
    if "classes" not in args.builder_args and resolved.get("classes") != targets.classes:
        builder_args["classes"] = targets.classes
    elif resolved.get("classes") != targets.classes:
        raise CommandError(
            f"--builder-args classes={resolved.get('classes')}: {layout.name} gives "
            f"{targets.classes} target channels ({', '.join(targets.names)})."
        )
    resolved = resolved_arguments(entry.builder, builder_args)
    shape = resolved.get("input_shape") or [*entry.input_spec.image_size, 3]
    spec = spec_for_model(entry.input_spec, shape[:2])

    policy = BadInputPolicy(args.skip_bad)
    roi_parts = (
        {"lesion": (1,), "background": (1,), "dermo": (2,)}[args.roi] if not isinstance(recipe.targets, str) else ()
    )
    train_records = read_records(layout, args.data, "train", args, targets, policy, roi_parts=roi_parts)
    official = args.validation_fraction is None and layout.has_validation(args.data)
    if official:
        validation_records = read_records(layout, args.data, "validation", args, targets, policy, roi_parts=roi_parts)
        split: dict[str, Any] = {"kind": "official", "validation": "the dataset's validation split"}
    else:
        fraction = args.validation_fraction or DEFAULT_VALIDATION_FRACTION
        stratify = targets.names[0] if targets.kind == "labels" else None
        train_records, validation_records = split_validation(train_records, fraction, args.seed, stratify)
        split = {
            "kind": "fraction",
            "fraction": fraction,
            "seed": args.seed,
            "stratified_by": stratify,
            "validation_ids": [r.image_id for r in validation_records],
        }
    if not train_records or not validation_records:
        raise DatasetError(
            args.data,
            f"{len(train_records)} training and {len(validation_records)} validation "
            "images: both splits need at least one",
        )
    images = len(train_records)
    oversampling = (
        ATTNMEL_OVERSAMPLING
        if entry.paper == "attnmel" and targets.kind == "labels" and len(targets.names) == 1
        else None
    )
    if oversampling:  # AttnMel's class balance (the authors' code): every positive 4x in the training list
        train_records = oversample_positives(train_records, targets.names[0], oversampling)
    train_data, val_data, steps, patches, train_records, validation_records = make_datasets(
        entry, recipe, targets, spec, train_records, validation_records, args, resolved, policy
    )
    args.out.mkdir(parents=True, exist_ok=True)
    if policy.skipped:
        atomic_write_text(args.out / SKIPPED_FILE, "".join(f"{error}\n" for error in policy.skipped))
    atomic_write_text(args.out / SETTINGS_FILE, json.dumps(settings, indent=2))
    data_record = {
        "layout": layout.name,
        "description": layout.description,
        "folder": str(args.data.resolve()),
        "split": split,
        "counts": {"train": images, "validation": len(validation_records)},
        "skipped": [str(error) for error in policy.skipped],
        "targets": targets.describe(),
    }
    if oversampling:
        data_record["oversampling"] = {
            "label": targets.names[0],
            "factor": oversampling,
            "training_samples": len(train_records),
        }
    if not isinstance(recipe.targets, str):
        data_record["roi"] = args.roi
    if patches:
        data_record["patches"] = {"train_per_image": "60 random central (Sec. IV-B)", "validation_per_image": patches}
    log(
        f"{entry.name}{' (small)' if args.small else ''}: {layout.name} in {args.data}: {images} "
        f"training / {len(validation_records)} validation images ({split['kind']} split); "
        f"{'resuming' if state == 'resume' else 'training'} into {args.out}"
    )

    dict_outputs = not isinstance(recipe.targets, str)
    main = "probabilities" if entry.output == "probabilities" else entry.output
    if targets.kind == "labels":

        def metric():
            return [
                keras.metrics.AUC(num_thresholds=1000, multi_label=True, num_labels=targets.classes, name=AUC_METRIC),
                keras.metrics.CategoricalAccuracy(name="accuracy"),
            ]
    else:

        def metric():
            return [DiceCoefficient(), JaccardIndex()]

    monitor = recipe.monitor
    if dict_outputs and monitor.startswith("val_") and monitor != "val_loss":
        monitor = f"val_{main}_{monitor.removeprefix('val_')}"
    config = TrainConfig(
        out_dir=args.out,
        epochs=recipe.epochs,
        monitor=monitor,
        xla=args.xla,
        mixed_precision=args.mixed_precision,
        strategy=args.strategy,
        seed=args.seed,
        steps_per_epoch=steps if patches else None,
        verbose=args.verbose,
    )
    build_kwargs = {**builder_args, **({"return_attention": True} if dict_outputs else {})}
    with warnings.catch_warnings():
        # Keras says so at the end of every epoch of a dataset of unknown length (the pipelines' epochs)
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        result = fit(
            lambda: entry.builder(**build_kwargs),
            train_data,
            val_data,
            config,
            optimizer=lambda: recipe.make_optimizer(steps),
            loss=recipe.loss,
            loss_weights=None if recipe.loss_weights is None else dict(recipe.loss_weights()),
            metrics=(lambda: {main: metric()}) if dict_outputs else metric,
            callbacks=callbacks,
        )
    if result.out_dir != args.out:  # a multi-worker cluster's other workers: the chief writes the run
        log(f"worker {result.out_dir.name}: trained; the chief writes the run folder {args.out}")
        return Outcome(args.out, result.model, result, {}, data_record)
    scores = validation_scores(result.model, val_data, targets, main, patches)
    history = result.history
    training = {
        "settings": settings,
        "kept_epoch": result.kept_epoch,
        "epochs_run": len(history.get("epoch", [])),
        "monitor": monitor,
        "steps_per_epoch": steps,
        "config": config.to_dict(),
        "kept_epoch_logs": {
            key: values[history["epoch"].index(result.best_epoch)] for key, values in history.items() if key != "epoch"
        },
    }
    save_run(
        args.out,
        result.model,
        entry=entry,
        builder_args=builder_args,
        input_spec=spec,
        recipe=recipe,
        training=training,
        data=data_record,
        scores={"validation": scores},
    )
    shown = ", ".join(
        f"{key} {value:.4f}"
        for key, value in scores.items()
        if key in ("dice", "jaccard", "auc", "accuracy") and isinstance(value, float)
    )
    log(f"kept epoch {result.kept_epoch} of {len(history.get('epoch', []))} by {monitor}; validation: {shown}")
    log(f"run folder: {args.out} (load it with zoo.load_run)")
    return Outcome(args.out, result.model, result, scores, data_record)


def _one_line(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    if isinstance(error, tf.errors.OpError):
        text = error.message
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; errors are one line on stderr (exit status 2)."""
    args = parse_args(argv)
    try:
        train(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    except (
        CommandError,
        DatasetError,
        RunError,
        KeyError,
        ValueError,
        TypeError,
        OSError,
        FloatingPointError,
        tf.errors.OpError,
    ) as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    return 0
