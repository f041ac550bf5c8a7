"""Predictions written in the ISIC challenge submission layouts.

The files can be scored with the official tools (isic-challenge-scoring) or
uploaded, each file whole or not at all (:mod:`data_tools.atomic`): masks are 8-bit
single-channel PNGs holding 0 and 255, named like the
ground truth and as large as the original image; classification results are CSVs
with the official columns.

==========================  =====================================================
challenge                   writer
==========================  =====================================================
ISIC 2018 Task 1            :func:`write_segmentation_mask`
                            (``ISIC_<id>_segmentation.png``)
ISIC 2016/2017 Part 1       :func:`write_segmentation_mask` with
                            ``suffix="_Segmentation.png"``
ISIC 2018 Task 2            :func:`write_attribute_masks`
                            (``ISIC_<id>_attribute_<name>.png``)
ISIC 2017 Part 3            :func:`write_isic2017_classification_csv`
ISIC 2016 Part 3            :func:`write_isic2016_classification_csv`
==========================  =====================================================
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from data_tools.atomic import atomic_path
from data_tools.imageio import read_image_header, save_png
from data_tools.layouts import (
    ISIC2017_PART3_COLUMNS,
    ISIC2018_ATTRIBUTES,
    ISIC2018_MASK_SUFFIX,
    ISIC_IMAGE_ID,
    isic2018_attribute_suffix,
)

Size = tuple[int, int]


def original_size(image_path: str | Path) -> Size:
    """``(height, width)`` of an image file, read from its header."""
    height, width, _ = read_image_header(image_path)
    return height, width


def _check_image_id(image_id: str) -> str:
    if not ISIC_IMAGE_ID.match(image_id):
        raise ValueError(f"image id {image_id!r} is not an ISIC id like 'ISIC_0000000'.")
    return image_id


def _binary_mask(probabilities: np.ndarray, size: Size, threshold: float, name: str) -> np.ndarray:
    """Resize a probability map ``[h, w]`` to ``size`` (bilinear), threshold to 0/255 uint8.

    Thresholding after the resize gives smooth outlines at the original resolution
    instead of the blocks a nearest-neighbour upscaling of a binary mask would.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2:
        raise ValueError(f"{name}: expected a probability map [H, W], got shape {probabilities.shape}.")
    if not np.all(np.isfinite(probabilities)):
        raise ValueError(f"{name}: the prediction contains NaN or infinite values.")
    height, width = (int(s) for s in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"{name}: original size must be positive (height, width), got {size}.")
    resized = cv2.resize(probabilities, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(resized > threshold, 255, 0).astype(np.uint8)


def _write_png(mask: np.ndarray, path: Path) -> Path:
    return save_png(path, mask)  # whole or not at all (data_tools.atomic), with the umask's mode


def write_segmentation_mask(
    image_id: str,
    prediction: np.ndarray,
    out_dir: str | Path,
    original_size: Size,
    threshold: float = 0.5,
    suffix: str = ISIC2018_MASK_SUFFIX,
) -> Path:
    """Write one lesion mask as ``<out_dir>/<image_id><suffix>``, 0/255, at ``original_size``.

    Args:
        image_id: ``ISIC_<7 digits>``.
        prediction: probabilities ``[H, W]`` or ``[H, W, 1]`` at the model's size.
        original_size: ``(height, width)`` of the original image (see
            :func:`original_size`).
        suffix: ``"_segmentation.png"`` (ISIC 2018 Task 1) or ``"_Segmentation.png"``
            (ISIC 2016 / 2017 Part 1 ground-truth naming).
    """
    prediction = np.asarray(prediction)
    if prediction.ndim == 3 and prediction.shape[-1] == 1:
        prediction = prediction[..., 0]
    mask = _binary_mask(prediction, original_size, threshold, name=image_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _write_png(mask, out_dir / f"{_check_image_id(image_id)}{suffix}")


def write_attribute_masks(
    image_id: str,
    prediction: np.ndarray,
    out_dir: str | Path,
    original_size: Size,
    attributes: Sequence[str] = ISIC2018_ATTRIBUTES,
    threshold: float = 0.5,
) -> list[Path]:
    """Write ISIC 2018 Task 2 masks ``<image_id>_attribute_<name>.png``, one per attribute.

    Args:
        prediction: probabilities ``[H, W, len(attributes)]``, channels in the order
            of ``attributes`` (default: the order of ``data_tools.layouts``).
    """
    prediction = np.asarray(prediction)
    if prediction.ndim != 3 or prediction.shape[-1] != len(attributes):
        raise ValueError(
            f"{image_id}: expected probabilities [H, W, {len(attributes)}] for attributes "
            f"{list(attributes)}, got shape {prediction.shape}."
        )
    _check_image_id(image_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _write_png(
            _binary_mask(prediction[..., channel], original_size, threshold, name=image_id),
            out_dir / f"{image_id}{isic2018_attribute_suffix(name)}",
        )
        for channel, name in enumerate(attributes)
    ]


def _probability_column(values, count: int, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size != count:
        raise ValueError(f"{name} has {values.size} values for {count} image ids.")
    if not np.all((values >= 0) & (values <= 1)):
        raise ValueError(f"{name} must hold probabilities in [0, 1] (no NaN).")
    return values


def _check_image_ids(image_ids: Sequence[str]) -> list[str]:
    image_ids = [_check_image_id(i) for i in image_ids]
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("image ids must be unique.")
    return image_ids


def write_isic2017_classification_csv(
    path: str | Path,
    image_ids: Sequence[str],
    melanoma: Sequence[float],
    seborrheic_keratosis: Sequence[float],
) -> Path:
    """ISIC 2017 Part 3 CSV: header ``image_id,melanoma,seborrheic_keratosis``, a row per image."""
    image_ids = _check_image_ids(image_ids)
    columns = [
        _probability_column(melanoma, len(image_ids), "melanoma"),
        _probability_column(seborrheic_keratosis, len(image_ids), "seborrheic_keratosis"),
    ]
    rows = [[i, *(repr(float(c[n])) for c in columns)] for n, i in enumerate(image_ids)]
    return _write_csv(path, rows, header=ISIC2017_PART3_COLUMNS)


def write_isic2016_classification_csv(path: str | Path, image_ids: Sequence[str], melanoma: Sequence[float]) -> Path:
    """ISIC 2016 Part 3 CSV: ``ISIC_<id>,<melanoma probability>`` per line, no header."""
    image_ids = _check_image_ids(image_ids)
    probabilities = _probability_column(melanoma, len(image_ids), "melanoma")
    rows = [[i, repr(float(p))] for i, p in zip(image_ids, probabilities, strict=True)]
    return _write_csv(path, rows, header=None)


def _write_csv(path: str | Path, rows: list[list[str]], header: Sequence[str] | None) -> Path:
    path = Path(path)
    with atomic_path(path) as temporary, temporary.open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path
