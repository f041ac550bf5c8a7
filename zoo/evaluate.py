"""Score a submission folder as the official ISIC scorer (isic-challenge-scoring) does.

    python -m zoo.evaluate --task isic2018-task1 TRUTH_DIR PRED_DIR [--out DIR]
    python -m zoo.evaluate --task isic2017-part3 TRUTH.csv PRED.csv
    python -m zoo.evaluate --task masks --classes 3 TRUTH_DIR PRED_DIR

The folders are read the scorer's way (the ISIC Archive's public isic-challenge-scoring repository):

* every ground-truth file is matched with the prediction of the same image id
  (``ISIC_<7 digits>`` in the file name; for ISIC 2018 Task 2 also the attribute
  name); ``ATTRIBUTION.txt`` and ``LICENSE.txt`` are ignored;
* a prediction must be a single-channel 8-bit PNG of its ground truth's size;
  both are binarised at ``> 128``;
* ratios with a zero denominator count as perfect (1.0), e.g. the Jaccard of an
  empty mask predicted empty.

Before scoring, the whole submission is checked and **every** problem is listed in
one :class:`SubmissionError`: missing, extra and duplicate files, files that are
not PNG, cannot be decoded, have several channels or the wrong size, and masks
holding values other than 0 and 255 (the official scorer would binarise those at
> 128; ``--binarize`` scores them so instead of rejecting them).

==================  ============================================  =====================
task                metrics (official names)                      ranking metric
==================  ============================================  =====================
isic2018-task1      per-image accuracy, sensitivity, specificity, ``threshold_jaccard``
                    jaccard, threshold_jaccard (0 below 0.65),    (macro mean)
                    dice; macro means
isic2016-part1,     the same (``threshold_jaccard`` reported,      ``jaccard``
isic2017-part1      not used by those challenges)
isic2018-task2      per attribute: jaccard, dice from the sums    ``micro_average``
                    of the images' pixel-normalised confusion      jaccard
                    matrices; micro average (all attributes);
                    macro average (mean of the five, SANet Tab. 4)
isic2017-part3      per category (melanoma, seborrheic_keratosis) ``mean``
                    and their mean: accuracy, sensitivity,        area_under_roc
                    specificity (at > 0.5), average_precision,
                    spec_at_sens_82/89/95, area_under_roc
isic2016-part3      the same for melanoma                         average_precision
masks (--classes)   A-PSPNet: MIoU (eq. 7), per-class IoU, mean   ``miou``
                    pixel accuracy, pixel accuracy; index masks
==================  ============================================  =====================

Written to ``--out`` (default: the prediction folder's parent ``<pred>_scores``):
``scores.json`` (every metric, the task, the folders) and ``per_image.csv``, each
whole or not at all (:mod:`data_tools.atomic`). Part 3 CSVs with a header are read
by column name, as the official scorer does; a header without a category's column
is an error naming the file and the column.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from sklearn import metrics as sk_metrics
from tqdm import tqdm

from data_tools.atomic import atomic_path, atomic_write_text
from data_tools.layouts import ISIC2017_PART3_COLUMNS, ISIC2018_ATTRIBUTES
from zoo.metrics import (
    SEGMENTATION_METRICS,
    Confusion,
    SegmentationScores,
    classification_scores,
    confusion_matrix,
    threshold_jaccard,
)

SEGMENTATION_TASKS = ("isic2018-task1", "isic2016-part1", "isic2017-part1")
ATTRIBUTE_TASKS = ("isic2018-task2",)
CLASSIFICATION_TASKS = ("isic2017-part3", "isic2016-part3")
TASKS = (*SEGMENTATION_TASKS, *ATTRIBUTE_TASKS, *CLASSIFICATION_TASKS, "masks")
#: Files the official scorer skips in a ground-truth folder.
IGNORED_TRUTH_FILES = frozenset({"ATTRIBUTION.txt", "LICENSE.txt"})
SCORES_FILE = "scores.json"
PER_IMAGE_FILE = "per_image.csv"
#: Sensitivities of the ISIC 2017 Part 3 ``spec_at_sens_*`` metrics.
SENSITIVITY_POINTS = (0.82, 0.89, 0.95)
CLASSIFICATION_THRESHOLD = 0.5

_ID = re.compile(r"ISIC_(\d{7})")
_TRUTH_MASK = re.compile(r"^(ISIC_\d{7})_segmentation\.png$", re.IGNORECASE)
_TRUTH_ATTRIBUTE = re.compile(r"^(ISIC_\d{7})_attribute_([a-z_]+)\.png$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_LISTED = 10


class SubmissionError(ValueError):
    """A submission (or its ground truth) that cannot be scored; lists every problem."""

    def __init__(self, what: str | Path, problems: Sequence[str]):
        self.path, self.problems = Path(what), list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        count = len(self.problems)
        super().__init__(f"{self.path}: {count} problem{'s' if count > 1 else ''}; nothing was scored:\n{lines}")


@dataclasses.dataclass
class Evaluation:
    """The scores of one submission.

    Attributes:
        task: one of :data:`TASKS`.
        metrics: ``{group: {metric: value}}`` with the official group and metric
            names (``macro_average``, an attribute, ``melanoma``, ``mean``, ...).
        primary: ``(group, metric)`` of the challenge's ranking metric.
        per_image: one row per image (per image and attribute for Task 2).
        truth, prediction: what was compared.
    """

    task: str
    metrics: dict[str, dict[str, float]]
    primary: tuple[str, str]
    per_image: list[dict[str, Any]]
    truth: str = ""
    prediction: str = ""

    @property
    def score(self) -> float:
        group, metric = self.primary
        return self.metrics[group][metric]

    def to_dict(self) -> dict[str, Any]:
        group, metric = self.primary
        return {
            "task": self.task,
            "truth": self.truth,
            "prediction": self.prediction,
            "images": len({row["image_id"] for row in self.per_image}),
            "primary": {"group": group, "metric": metric, "value": self.score},
            "metrics": self.metrics,
        }

    def to_text(self) -> str:
        group, metric = self.primary
        lines = [
            f"{self.task}: {len({r['image_id'] for r in self.per_image})} images; "
            f"{group} {metric} = {self.score:.4f} (ranking metric)"
        ]
        for name, values in self.metrics.items():
            lines.append(f"  {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
        return "\n".join(lines)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """``scores.json`` and ``per_image.csv`` in ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        scores, table = out_dir / SCORES_FILE, out_dir / PER_IMAGE_FILE
        columns = list(self.per_image[0]) if self.per_image else ["image_id"]
        # each file whole or not at all (a full disk leaves the previous one); the table first, so that
        # a scores.json never stands beside a missing or older table of another scoring
        with atomic_path(table) as temporary:
            with temporary.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(self.per_image)
        atomic_write_text(scores, json.dumps(self.to_dict(), indent=2))
        return scores, table


def evaluate(
    task: str,
    truth: str | Path,
    prediction: str | Path,
    *,
    classes: int | None = None,
    binarize: bool = False,
    truth_suffix: str = "",
    prediction_suffix: str = "",
) -> Evaluation:
    """Scores ``prediction`` against ``truth`` for ``task`` (module docs).

    Args:
        task: one of :data:`TASKS`.
        truth, prediction: folders of masks, or (Part 3) CSV files or folders
            holding exactly one CSV.
        classes: the class count of ``task="masks"`` (index masks ``0 .. classes-1``).
        binarize: accept grey-level predicted masks and binarise them at > 128
            as the official scorer does, instead of rejecting them.
        truth_suffix, prediction_suffix: ``task="masks"``: the part of the file
            names after the shared stem (``"_mask"`` in ``case1_mask.png``).

    Raises:
        SubmissionError: listing every problem of the submission or ground truth.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    truth, prediction = Path(truth), Path(prediction)
    if task in CLASSIFICATION_TASKS:
        result = _evaluate_classification(task, truth, prediction)
    elif task == "masks":
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
            raise ValueError(f"task 'masks' needs classes, an int >= 2 (the class count), got {classes!r}.")
        result = _evaluate_index_masks(truth, prediction, classes, truth_suffix, prediction_suffix)
    else:
        result = _evaluate_binary_masks(task, truth, prediction, binarize)
    result.truth, result.prediction = str(truth), str(prediction)
    return result


# --------------------------------------------------------------------------- mask folders


@dataclasses.dataclass(frozen=True)
class _Pair:
    key: tuple[str, str]  # (image id, attribute or "")
    truth: Path
    prediction: Path


def _listing(folder: Path, role: str, problems: list[str]) -> list[Path]:
    if not folder.is_dir():
        problems.append(
            f"{role} folder {folder} does not exist" if not folder.exists() else f"{role} {folder} is not a folder"
        )
        return []
    listed = []
    for path in sorted(folder.iterdir()):
        if path.is_symlink() and not path.exists():  # would fail when opened, deep in the scorer
            problems.append(f"{path.name}: a symbolic link to {os.readlink(path)}, which does not exist")
        else:
            listed.append(path)
    return listed


def _truth_keys(task: str, folder: Path, problems: list[str]) -> dict[tuple[str, str], Path]:
    pattern = _TRUTH_ATTRIBUTE if task in ATTRIBUTE_TASKS else _TRUTH_MASK
    example = "ISIC_0000000_attribute_globules.png" if task in ATTRIBUTE_TASKS else "ISIC_0000000_segmentation.png"
    keys: dict[tuple[str, str], Path] = {}
    for path in _listing(folder, "ground-truth", problems):
        if path.name in IGNORED_TRUTH_FILES:
            continue
        match = pattern.match(path.name)
        if not match or not path.is_file():
            problems.append(f"ground truth {path.name}: not a {task} ground-truth mask (expected names like {example})")
            continue
        attribute = match.group(2) if task in ATTRIBUTE_TASKS else ""
        keys[(match.group(1), attribute)] = path
    if not keys and folder.is_dir():
        problems.append(f"ground-truth folder {folder} holds no {task} masks")
    return keys


def _match_predictions(
    task: str, truth: Mapping[tuple[str, str], Path], folder: Path, problems: list[str]
) -> list[_Pair]:
    """Each ground truth's prediction, by image id (and attribute): the scorer's matching."""
    attributes = sorted({attribute for _, attribute in truth} | set(ISIC2018_ATTRIBUTES))
    found: dict[tuple[str, str], list[Path]] = {}
    for path in _listing(folder, "prediction", problems):
        if path.is_dir():
            problems.append(f"{path.name}: a folder; submissions are flat folders of PNG files")
            continue
        match = _ID.search(path.stem)
        attribute = ""
        if task in ATTRIBUTE_TASKS:
            # the longest attribute name in the stem ('network' is part of 'pigment_network')
            named = [a for a in attributes if a in path.stem]
            attribute = max(named, key=len) if named else ""
        key = (f"ISIC_{match.group(1)}", attribute) if match else None
        if key is None or key not in truth:
            if key is None:
                what = "no ISIC_<7 digits> image id in its name"
            elif task in ATTRIBUTE_TASKS and not attribute:
                what = f"no attribute name ({', '.join(ISIC2018_ATTRIBUTES)}) in its name"
            else:
                what = f"no ground truth for {key[0]}" + (f" attribute {attribute!r}" if attribute else "")
            problems.append(f"{path.name}: extra file ({what})")
            continue
        found.setdefault(key, []).append(path)
    pairs = []
    missing = []
    for key, truth_path in truth.items():
        candidates = found.get(key, [])
        if not candidates:
            missing.append(truth_path.name)
        elif len(candidates) > 1:
            problems.append(f"duplicate predictions for {truth_path.name}: {', '.join(p.name for p in candidates)}")
        else:
            pairs.append(_Pair(key, truth_path, candidates[0]))
    if missing:
        listed = ", ".join(missing[:_MAX_LISTED]) + (
            f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        )
        problems.append(f"missing predictions for {len(missing)} ground-truth file(s): {listed}")
    return pairs


def read_mask_png(path: Path, role: str, problems: list[str], *, require_png: bool = True) -> np.ndarray | None:
    """A single-channel 8-bit mask as the scorer reads it, or ``None`` with the problem recorded."""
    name = path.name if role == "prediction" else f"ground truth {path.name}"
    if require_png:
        if path.suffix.lower() != ".png":
            problems.append(f"{name}: not a PNG file (suffix {path.suffix or 'none'}); submit PNG masks")
            return None
        with path.open("rb") as handle:
            if handle.read(8) != _PNG_SIGNATURE:
                problems.append(f"{name}: named .png but its content is not PNG")
                return None
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "1":
                image = image.convert("L")
            if image.mode != "L":
                problems.append(
                    f"{name}: not a single-channel 8-bit greyscale image (PIL mode {image.mode!r}, "
                    f"{len(image.getbands())} band(s))"
                )
                return None
            return np.array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        problems.append(f"{name}: cannot be decoded ({error})")
        return None


def _check_binary(mask: np.ndarray, name: str, problems: list[str], *, fixable: bool) -> np.ndarray | None:
    """``mask`` if it holds 0 and 255 only. A ground truth of two values ``{0, k}`` is
    rescaled to 0/255 (as the scorer's ``assertBinaryImage``); anything else is a problem."""
    values = np.unique(mask)
    if set(values.tolist()) <= {0, 255}:
        return mask
    if fixable and len(values) <= 2:
        return np.where(mask > 0, 255, 0).astype(np.uint8)
    listed = ", ".join(str(v) for v in values[:_MAX_LISTED]) + (" ..." if len(values) > _MAX_LISTED else "")
    problems.append(
        f"{name}: values other than 0 and 255 ({len(values)} distinct: {listed})"
        + ("" if fixable else "; the official scorer binarises at > 128: pass --binarize to score it so")
    )
    return None


def _load_pair(pair: _Pair, binarize: bool, problems: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    truth = read_mask_png(pair.truth, "truth", problems, require_png=False)
    prediction = read_mask_png(pair.prediction, "prediction", problems)
    if truth is not None:
        truth = _check_binary(truth, f"ground truth {pair.truth.name}", problems, fixable=True)
    if prediction is not None and not binarize:
        prediction = _check_binary(prediction, pair.prediction.name, problems, fixable=False)
    if truth is None or prediction is None:
        return None
    if prediction.shape != truth.shape:
        problems.append(
            f"{pair.prediction.name}: size {prediction.shape[0]}x{prediction.shape[1]} (height x width); "
            f"its ground truth {pair.truth.name} is {truth.shape[0]}x{truth.shape[1]}"
        )
        return None
    return truth, prediction


def _evaluate_binary_masks(task: str, truth_dir: Path, prediction_dir: Path, binarize: bool) -> Evaluation:
    problems: list[str] = []
    truth = _truth_keys(task, truth_dir, problems)
    pairs = _match_predictions(task, truth, prediction_dir, problems)
    confusions: dict[tuple[str, str], Confusion] = {}
    for pair in tqdm(pairs, desc=f"scoring {task}", unit="mask", disable=None):
        loaded = _load_pair(pair, binarize, problems)
        if loaded is not None and not problems:
            # > 128 on both, as the official scorer (zoo.metrics.binarize on uint8)
            confusions[pair.key] = Confusion.of(*loaded)
    if problems:
        raise SubmissionError(prediction_dir, problems)
    if task in ATTRIBUTE_TASKS:
        return _attribute_scores(task, confusions)
    return _segmentation_scores(task, confusions)


def _segmentation_scores(task: str, confusions: Mapping[tuple[str, str], Confusion]) -> Evaluation:
    rows = []
    for (image_id, _), confusion in sorted(confusions.items()):
        scores = {name: getattr(confusion, name)() for name in SEGMENTATION_METRICS}
        scores["threshold_jaccard"] = threshold_jaccard(scores["jaccard"])
        rows.append(
            {
                "image_id": image_id,
                **scores,
                "tp": int(confusion.tp),
                "fp": int(confusion.fp),
                "fn": int(confusion.fn),
                "tn": int(confusion.tn),
            }
        )
    names = ("accuracy", "sensitivity", "specificity", "jaccard", "threshold_jaccard", "dice")
    macro = {name: float(np.mean([row[name] for row in rows])) for name in names}
    primary = ("macro_average", "threshold_jaccard" if task == "isic2018-task1" else "jaccard")
    return Evaluation(task, {"macro_average": macro}, primary, rows)


def _attribute_scores(task: str, confusions: Mapping[tuple[str, str], Confusion]) -> Evaluation:
    sums: dict[str, Confusion] = {}
    rows = []
    for (image_id, attribute), confusion in sorted(confusions.items()):
        # each image's matrix normalised by its pixel count, summed over images
        sums[attribute] = sums.get(attribute, Confusion(0.0, 0.0, 0.0, 0.0)) + confusion.normalized()
        rows.append(
            {
                "image_id": image_id,
                "attribute": attribute,
                "jaccard": confusion.jaccard(),
                "dice": confusion.dice(),
                "tp": int(confusion.tp),
                "fp": int(confusion.fp),
                "fn": int(confusion.fn),
                "tn": int(confusion.tn),
            }
        )
    metrics = {name: {"jaccard": c.jaccard(), "dice": c.dice()} for name, c in sorted(sums.items())}
    micro = sum(sums.values(), Confusion(0.0, 0.0, 0.0, 0.0))
    metrics["micro_average"] = {"jaccard": micro.jaccard(), "dice": micro.dice()}
    metrics["macro_average"] = {m: float(np.mean([metrics[a][m] for a in sums])) for m in ("jaccard", "dice")}
    return Evaluation(task, metrics, ("micro_average", "jaccard"), rows)


# --------------------------------------------------------------------------- index masks (A-PSPNet)


def _evaluate_index_masks(
    truth_dir: Path, prediction_dir: Path, classes: int, truth_suffix: str, prediction_suffix: str
) -> Evaluation:
    problems: list[str] = []

    def by_stem(folder: Path, suffix: str, role: str) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for path in _listing(folder, role, problems):
            stem = path.stem
            if path.name in IGNORED_TRUTH_FILES or not path.is_file():
                continue
            if suffix and not stem.endswith(suffix):
                problems.append(f"{role} {path.name}: name does not end with {suffix}{path.suffix}")
                continue
            key = stem[: len(stem) - len(suffix)] if suffix else stem
            if key in found:
                problems.append(f"{role} {path.name}: a second file for {key!r} (also {found[key].name})")
                continue
            found[key] = path
        return found

    truth = by_stem(truth_dir, truth_suffix, "ground truth")
    predictions = by_stem(prediction_dir, prediction_suffix, "prediction")
    missing = sorted(set(truth) - set(predictions))
    if missing:
        problems.append(
            f"missing predictions for {len(missing)} image(s): {', '.join(missing[:_MAX_LISTED])}"
            + (" ..." if len(missing) > _MAX_LISTED else "")
        )
    for extra in sorted(set(predictions) - set(truth)):
        problems.append(f"{predictions[extra].name}: extra file (no ground truth {extra!r})")
    totals = SegmentationScores(classes)
    rows = []
    for key in tqdm(sorted(set(truth) & set(predictions)), desc="scoring masks", unit="mask", disable=None):
        masks = [
            read_mask_png(truth[key], "truth", problems, require_png=False),
            read_mask_png(predictions[key], "prediction", problems),
        ]
        for role, path, mask in zip(("ground truth", "prediction"), (truth[key], predictions[key]), masks, strict=True):
            if mask is not None and mask.max() >= classes:
                bad = np.unique(mask[mask >= classes])
                problems.append(
                    f"{role} {path.name}: class indices {', '.join(map(str, bad[:_MAX_LISTED]))} "
                    f"outside 0..{classes - 1} (--classes {classes})"
                )
                masks = [None, None]
        if any(m is None for m in masks):
            continue
        if masks[0].shape != masks[1].shape:
            problems.append(
                f"{predictions[key].name}: size {masks[1].shape[0]}x{masks[1].shape[1]}; its ground "
                f"truth {truth[key].name} is {masks[0].shape[0]}x{masks[0].shape[1]}"
            )
            continue
        if problems:
            continue
        counts = confusion_matrix(masks[0], masks[1], classes)
        totals.counts += counts
        image = SegmentationScores(classes)
        image.counts += counts
        rows.append({"image_id": key, "miou": image.mean_iou(), "pixel_accuracy": _pixel_accuracy(counts)})
    if problems:
        raise SubmissionError(prediction_dir, problems)
    counts = totals.counts.astype(np.float64)
    hits = np.diag(counts)
    union = counts.sum(0) + counts.sum(1) - hits
    metrics = {
        "overall": {
            "miou": totals.mean_iou(),
            "mean_pixel_accuracy": totals.mean_pixel_accuracy(),
            "pixel_accuracy": _pixel_accuracy(totals.counts),
        },
        "iou": {f"class_{c}": float(hits[c] / union[c]) if union[c] else 1.0 for c in range(classes)},
    }
    return Evaluation("masks", metrics, ("overall", "miou"), rows)


def _pixel_accuracy(counts: np.ndarray) -> float:
    total = counts.sum()
    return float(np.trace(counts) / total) if total else 1.0


# --------------------------------------------------------------------------- classification CSVs


def _single_csv(path: Path, role: str, problems: list[str], truth_pattern: str | None = None) -> Path | None:
    """``path`` itself, or the one CSV in folder ``path`` (the scorer wants exactly one file)."""
    if path.is_file():
        return path
    if not path.is_dir():
        problems.append(f"{role} {path} does not exist")
        return None
    files = [p for p in sorted(path.iterdir()) if p.name not in IGNORED_TRUTH_FILES]
    if truth_pattern is not None:
        files = [p for p in files if re.fullmatch(truth_pattern, p.name)] or files
    csvs = [p for p in files if p.suffix.lower() == ".csv"]
    if role == "prediction" and len(files) != 1:
        problems.append(
            f"prediction folder {path} holds {len(files)} files ({', '.join(p.name for p in files[:5])}); "
            "submit exactly one CSV file"
        )
        return csvs[0] if len(csvs) == 1 else None
    if len(csvs) != 1:
        problems.append(f"{role} folder {path} holds {len(csvs)} CSV files; expected one")
        return None
    return csvs[0]


def _read_csv_rows(
    path: Path, columns: Sequence[str], role: str, problems: list[str], labels: bool
) -> tuple[dict[str, list[float]], set[str]]:
    """``({image id: values}, ids of bad rows)`` of an ISIC Part 3 CSV, values in the
    order of ``columns[1:]``.

    A first row without an ISIC id is a header, and then the columns are read by
    their names, as the official scorer does (``seborrheic_keratosis`` before
    ``melanoma`` scores as the ordered file); the image id is the ``image_id``
    column, or the first. A file without a header is read by position.

    Raises:
        ValueError: a header without one of ``columns[1:]`` (one line: the file and
            the column).
    """
    rows: dict[str, list[float]] = {}
    bad: set[str] = set()
    name = path.name if role == "prediction" else f"ground truth {path.name}"
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = [(n, row) for n, row in enumerate(csv.reader(handle), 1) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        problems.append(f"{name}: cannot be read as CSV ({error})")
        return rows, bad
    positions = list(range(len(columns)))  # image id, then the categories
    if lines and not re.fullmatch(r"ISIC_\d{7}", lines[0][1][0].strip() if lines[0][1] else ""):
        header = [cell.strip() for cell in lines[0][1]]
        lines = lines[1:]
        for column in columns[1:]:
            if column not in header:
                raise ValueError(
                    f"{path}: no column {column!r} in its header ({','.join(header)}); the columns are "
                    f"read by name, as the official scorer does: {','.join(columns)}."
                )
        positions = [
            header.index(columns[0]) if columns[0] in header else 0,
            *(header.index(column) for column in columns[1:]),
        ]
    width = max(positions) + 1
    for line, row in lines:
        image_id = row[positions[0]].strip() if len(row) > positions[0] else ""
        if not re.fullmatch(r"ISIC_\d{7}", image_id):
            problems.append(
                f"{name} line {line}: no ISIC_<7 digits> image id in the {columns[0]} field ({image_id!r})"
                if positions[0]
                else f"{name} line {line}: no ISIC_<7 digits> image id in the first field ({image_id!r})"
            )
            continue
        if len(row) < width:
            problems.append(f"{name} line {line}: {len(row)} field(s); expected {width}: {', '.join(columns)}")
            bad.add(image_id)
            continue
        texts = [row[position] for position in positions[1:]]
        try:
            values = [_label(text) if labels else float(text) for text in texts]
        except ValueError:
            problems.append(
                f"{name} line {line}: values {texts} for {image_id} are not "
                + ("labels 0/1 (or benign/malignant)" if labels else "numbers")
            )
            bad.add(image_id)
            continue
        if not all(0.0 <= v <= 1.0 for v in values):
            problems.append(f"{name} line {line}: a value for {image_id} lies outside [0, 1]: {texts}")
            bad.add(image_id)
            continue
        if image_id in rows:
            problems.append(f"{name} line {line}: duplicate row for {image_id}")
            continue
        rows[image_id] = values
    return rows, bad


def _label(text: str) -> float:
    text = text.strip().lower()
    if text in ("benign", "malignant"):
        return float(text == "malignant")
    value = float(text)
    if value not in (0.0, 1.0):
        raise ValueError(text)
    return value


def specificity_at_sensitivity(truth: np.ndarray, scores: np.ndarray, sensitivity: float) -> float:
    """The specificity at the first ROC point whose sensitivity reaches ``sensitivity``
    (ISIC 2017 Part 3 ``spec_at_sens_*``; 0 if none does).

    As the official scorer, on scikit-learn's ``roc_curve`` with its default
    ``drop_intermediate=True``: points collinear with their neighbours are not on
    that curve, so the value can be lower than on the full ROC staircase."""
    false_positive_rates, true_positive_rates, _ = sk_metrics.roc_curve(truth, scores)
    reached = np.nonzero(true_positive_rates >= sensitivity)[0]
    return float(1.0 - false_positive_rates[reached[0]]) if reached.size else 0.0


def _category_metrics(truth: np.ndarray, scores: np.ndarray, category: str, problems: list[str]) -> dict[str, float]:
    if len(np.unique(truth)) < 2:
        problems.append(f"ground truth: {category} holds only one class; AUC and AP are undefined")
        return {}
    common = classification_scores(truth, scores, threshold=CLASSIFICATION_THRESHOLD)
    values = {
        "accuracy": common["accuracy"],
        "sensitivity": common["sensitivity"],
        "specificity": common["specificity"],
        "average_precision": common["ap"],
    }
    for point in SENSITIVITY_POINTS:
        values[f"spec_at_sens_{point * 100:g}"] = specificity_at_sensitivity(truth, scores, point)
    values["area_under_roc"] = common["auc"]
    return values


def _evaluate_classification(task: str, truth_path: Path, prediction_path: Path) -> Evaluation:
    problems: list[str] = []
    categories = list(ISIC2017_PART3_COLUMNS[1:]) if task == "isic2017-part3" else ["melanoma"]
    columns = ["image_id", *categories]
    pattern = (
        r"ISIC-2017_.*Part3_GroundTruth\.csv" if task == "isic2017-part3" else r"ISBI2016_.*Part3_.*GroundTruth\.csv"
    )
    truth_file = _single_csv(truth_path, "ground truth", problems, pattern)
    prediction_file = _single_csv(prediction_path, "prediction", problems)
    truth, _ = _read_csv_rows(truth_file, columns, "truth", problems, labels=True) if truth_file else ({}, set())
    predicted, bad = (
        _read_csv_rows(prediction_file, columns, "prediction", problems, labels=False)
        if prediction_file
        else ({}, set())
    )
    if truth_file and prediction_file:
        missing = [i for i in truth if i not in predicted and i not in bad]  # bad rows are reported already
        if missing:
            problems.append(
                f"missing rows for {len(missing)} image(s): {', '.join(missing[:_MAX_LISTED])}"
                + (" ..." if len(missing) > _MAX_LISTED else "")
            )
        extra = [i for i in predicted if i not in truth]
        if extra:
            problems.append(
                f"extra rows for {len(extra)} image(s) without ground truth: {', '.join(extra[:_MAX_LISTED])}"
            )
    ids = sorted(truth)
    metrics: dict[str, dict[str, float]] = {}
    if not problems:
        for index, category in enumerate(categories):
            metrics[category] = _category_metrics(
                np.array([truth[i][index] for i in ids]),
                np.array([predicted[i][index] for i in ids]),
                category,
                problems,
            )
    if problems:
        raise SubmissionError(prediction_path, problems)
    if len(categories) > 1:
        metrics["mean"] = {
            name: float(np.mean([metrics[c][name] for c in categories])) for name in metrics[categories[0]]
        }
        primary = ("mean", "area_under_roc")
    else:
        primary = ("melanoma", "average_precision")
    rows = [
        {
            "image_id": i,
            **{f"truth_{c}": truth[i][k] for k, c in enumerate(categories)},
            **{f"prediction_{c}": predicted[i][k] for k, c in enumerate(categories)},
        }
        for i in ids
    ]
    return Evaluation(task, metrics, primary, rows)


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m zoo.evaluate",
        description="Score a submission as the official ISIC scorer does; writes scores.json and per_image.csv.",
    )
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("truth", type=Path, help="ground-truth folder (Part 3: the CSV or its folder)")
    parser.add_argument("prediction", type=Path, help="submission folder (Part 3: the CSV or its folder)")
    parser.add_argument("--classes", type=int, help="--task masks: the class count (index masks 0..N-1)")
    parser.add_argument("--truth-suffix", default="", help="--task masks: name part after the stem in truth files")
    parser.add_argument("--prediction-suffix", default="", help="--task masks: name part after the stem in predictions")
    parser.add_argument(
        "--binarize",
        action="store_true",
        help="accept grey-level predicted masks, binarised at > 128 as the official scorer does",
    )
    parser.add_argument(
        "--out", type=Path, help="where scores.json and per_image.csv go (default: <prediction>_scores)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.task == "masks" and args.classes is None:
        parser.error("--task masks needs --classes N")
    try:
        result = evaluate(
            args.task,
            args.truth,
            args.prediction,
            classes=args.classes,
            binarize=args.binarize,
            truth_suffix=args.truth_suffix,
            prediction_suffix=args.prediction_suffix,
        )
    except (SubmissionError, ValueError) as error:
        print(f"zoo.evaluate: {error}", file=sys.stderr)
        return 1
    out = args.out or args.prediction.with_name(args.prediction.stem + "_scores")
    try:
        scores, table = result.write(out)
    except OSError as error:  # a full disk, a read-only folder: the previous files (if any) are left whole
        print(f"zoo.evaluate: error: cannot write the scores to {out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(result.to_text())
    print(f"wrote {scores} and {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
