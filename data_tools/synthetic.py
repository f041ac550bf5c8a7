"""Small synthetic datasets, written in the exact layouts of the official releases.

The real datasets cannot be shipped or downloaded in CI, so tests, ``--smoke`` runs
and first-time users get stand-ins that the real readers (:mod:`data_tools.isic`,
:mod:`data_tools.folders`) read unchanged: same folder and file names (taken from
:mod:`data_tools.layouts`), same file formats, same CSV and JSON conventions.

Dermoscopy images (:func:`render_dermoscopy`): skin-like texture (colour, smooth
and fine noise, the dark circular vignetting of a dermatoscope) with one
lesion-like blob: an irregular ellipse with a soft border. Its appearance depends
on its class, so that a small model can learn the labels:

* nevus: small, regular, uniformly medium brown;
* melanoma: large, irregular, dark, multi-coloured (blue-grey and black areas);
* seborrheic keratosis: light tan, striped "cerebriform" texture, milia-like cysts.

The ISIC 2018 Task 2 attributes are drawn where their masks say: pigment network
(a dark grid over part of the lesion), negative network (a light grid), globules
(dark dots), milia-like cysts (white dots), streaks (radial lines across the
border). How often each appears depends on the class; many images have none, as in
the real data.

Ultrasound images (:func:`render_ultrasound`): a grey speckled fan with an
elliptical kidney (bright sinus, grey cortex) and, in some images, a dark
lobulated hydronephrosis region inside it, annotated as Labelme polygons.

Arguments shared by the ``make_*`` writers: ``n_*`` images per split (0 leaves
the split out), ``image_size`` ``(height, width)``, each at least 32, ``seed``, and
for the ISIC sets ``vary_size``: draw each image's sides within +-25 % of
``image_size``, as the real images vary in size (masks always match their image).
Every generated root holds a ``SYNTHETIC.txt`` (:func:`is_synthetic`). Output is
deterministic under ``seed``: image ``i`` of a split depends only on ``seed``, its
split and ``i``.

Command line::

    python -m data_tools.synthetic isic2018 OUT_DIR --n-train 24 --image-size 128 128
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from data_tools.layouts import (
    ISIC2016_LAYOUT,
    ISIC2016_MASK_SUFFIX,
    ISIC2016_PART3_CLASSES,
    ISIC2017_FEATURES,
    ISIC2017_FEATURES_SUFFIX,
    ISIC2017_LAYOUT,
    ISIC2017_MASK_SUFFIX,
    ISIC2017_PART3_COLUMNS,
    ISIC2017_SUPERPIXELS_SUFFIX,
    ISIC2018_ATTRIBUTES,
    ISIC2018_LAYOUT,
    ISIC2018_MASK_SUFFIX,
    ISIC_IMAGE_SUFFIX,
    isic2018_attribute_suffix,
)

MARKER_FILE = "SYNTHETIC.txt"
#: Labelme labels of :func:`make_ultrasound_labelme` and their class indices.
ULTRASOUND_LABEL_MAP: Mapping[str, int] = MappingProxyType({"kidney": 1, "hydronephrosis": 2})
NEVUS, MELANOMA, SEBORRHEIC_KERATOSIS = "nevus", "melanoma", "seborrheic_keratosis"
LESION_KINDS = (NEVUS, MELANOMA, SEBORRHEIC_KERATOSIS)
#: Superpixel cell side of the ISIC 2017 Part 2 grid, as a fraction of the short side.
SUPERPIXEL_FRACTION = 1 / 12
JPEG_QUALITY = 95

# Where each split's image ids start, so that ids are unique across splits.
_SPLIT_ID_OFFSET = {"train": 0, "validation": 100_000, "test": 200_000}
_SPLIT_SEED = {"train": 0, "validation": 1, "test": 2}


@dataclasses.dataclass(frozen=True)
class _LesionStyle:
    """How a lesion class looks: radius range (fraction of the short side),
    border irregularity (harmonic amplitude), RGB colour, attribute probabilities."""

    radius: tuple[float, float]
    irregularity: float
    colour: tuple[float, float, float]
    attribute_probability: Mapping[str, float]


_STYLES = {
    NEVUS: _LesionStyle(
        radius=(0.15, 0.22),
        irregularity=0.03,
        colour=(150, 95, 70),
        attribute_probability={
            "globules": 0.4,
            "milia_like_cyst": 0.1,
            "negative_network": 0.05,
            "pigment_network": 0.5,
            "streaks": 0.05,
        },
    ),
    MELANOMA: _LesionStyle(
        radius=(0.28, 0.36),
        irregularity=0.12,
        colour=(85, 50, 38),
        attribute_probability={
            "globules": 0.3,
            "milia_like_cyst": 0.05,
            "negative_network": 0.35,
            "pigment_network": 0.6,
            "streaks": 0.45,
        },
    ),
    SEBORRHEIC_KERATOSIS: _LesionStyle(
        radius=(0.18, 0.26),
        irregularity=0.06,
        colour=(190, 150, 95),
        attribute_probability={
            "globules": 0.05,
            "milia_like_cyst": 0.6,
            "negative_network": 0.0,
            "pigment_network": 0.1,
            "streaks": 0.0,
        },
    ),
}


@dataclasses.dataclass(frozen=True)
class DermoscopySample:
    """One rendered dermoscopy image.

    Attributes:
        image: ``(height, width, 3)`` uint8 RGB.
        lesion: ``(height, width)`` bool lesion mask.
        attributes: bool mask per ISIC 2018 attribute name (possibly all False).
        kind: one of :data:`LESION_KINDS`.
    """

    image: np.ndarray
    lesion: np.ndarray
    attributes: dict[str, np.ndarray]
    kind: str


@dataclasses.dataclass(frozen=True)
class UltrasoundSample:
    """One rendered ultrasound image.

    Attributes:
        image: ``(height, width)`` uint8 grey levels.
        kidney: ``(n, 2)`` float polygon ``(x, y)`` of the kidney outline.
        hydronephrosis: ``(m, 2)`` polygon of the dark region, or ``None``.
    """

    image: np.ndarray
    kidney: np.ndarray
    hydronephrosis: np.ndarray | None


# --------------------------------------------------------------------------- render


def _coordinates(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Float32 row (y) and column (x) coordinate of every pixel."""
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    return yy.astype(np.float32), xx.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise in about [0, 1]: a ``cells`` grid, cubic-upsampled."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def _skin(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Skin-coloured float RGB image with blotchy low-frequency variation."""
    base = rng.uniform((205, 150, 130), (235, 185, 165)).astype(np.float32)
    blotches = (_smooth_noise(rng, size, 6) - 0.5) * 24.0
    return base[None, None, :] + blotches[..., None]


def _vignette(size: tuple[int, int]) -> np.ndarray:
    """The dark corners of a dermatoscope's circular field of view."""
    yy, xx = _coordinates(size)
    r2 = ((yy - size[0] / 2) / (size[0] / 2)) ** 2 + ((xx - size[1] / 2) / (size[1] / 2)) ** 2
    return np.clip(1.12 - 0.4 * r2, 0.25, 1.0)


def _blob(
    rng: np.random.Generator, size: tuple[int, int], style: _LesionStyle
) -> tuple[np.ndarray, tuple[float, float]]:
    """Soft lesion opacity in [0, 1] (0.5 at the border) and the lesion centre (x, y)."""
    h, w = size
    short = min(h, w)
    radius = rng.uniform(*style.radius) * short
    a, b = radius, radius * rng.uniform(0.7, 1.0)
    cx = w / 2 + rng.uniform(-0.08, 0.08) * short
    cy = h / 2 + rng.uniform(-0.08, 0.08) * short
    rotation = rng.uniform(0, np.pi)
    yy, xx = _coordinates((h, w))
    dx, dy = xx - cx, yy - cy
    u = dx * np.cos(rotation) + dy * np.sin(rotation)
    v = -dx * np.sin(rotation) + dy * np.cos(rotation)
    distance = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    theta = np.arctan2(v, u)
    boundary = np.ones_like(distance)
    for k in range(2, 6):
        boundary += style.irregularity * rng.uniform(0.3, 1.0) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    softness = 0.15
    opacity = np.clip((boundary - distance) / softness + 0.5, 0.0, 1.0)
    return opacity, (cx, cy)


def _lesion_colour(rng: np.random.Generator, size: tuple[int, int], kind: str) -> np.ndarray:
    """Float RGB of the lesion's pigment, per pixel, with the class's pattern."""
    colour = np.asarray(_STYLES[kind].colour, np.float32) * rng.uniform(0.92, 1.08)
    pigment = np.broadcast_to(colour, (*size, 3)).copy()
    if kind == MELANOMA:  # blue-grey and black areas: multi-coloured
        for patch_colour, threshold in (((105, 110, 135), 0.55), ((40, 30, 30), 0.6)):
            weight = np.clip((_smooth_noise(rng, size, 4) - threshold) * 5.0, 0.0, 1.0)
            pigment += weight[..., None] * (np.asarray(patch_colour, np.float32) - pigment)
    elif kind == SEBORRHEIC_KERATOSIS:  # cerebriform stripes
        yy, xx = _coordinates(size)
        angle = rng.uniform(0, np.pi)
        period = max(3.0, min(size) / 16)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
        stripes = np.sin(phase + 4.0 * _smooth_noise(rng, size, 3))
        pigment *= (1.0 + 0.15 * stripes)[..., None]
    return pigment


def _inside_points(rng: np.random.Generator, region: np.ndarray, count: int) -> np.ndarray:
    """``count`` random ``(x, y)`` pixels of a bool region (fewer if it is small)."""
    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return np.zeros((0, 2), np.int32)
    picks = rng.choice(len(xs), size=min(count, len(xs)), replace=False)
    return np.stack([xs[picks], ys[picks]], axis=1).astype(np.int32)


def _dots(rng: np.random.Generator, image: np.ndarray, lesion: np.ndarray, colour: Sequence[float]) -> np.ndarray:
    """Small filled discs inside the lesion (globules, milia-like cysts)."""
    radius = max(1, round(min(lesion.shape) / 64))
    core = cv2.erode(lesion.astype(np.uint8), np.ones((2 * radius + 3,) * 2, np.uint8)) > 0
    mask = np.zeros(lesion.shape, np.uint8)
    for x, y in _inside_points(rng, core, int(rng.integers(3, 9))):
        cv2.circle(mask, (int(x), int(y)), radius, 1, thickness=-1)
    dots = mask > 0
    image[dots] = colour
    return dots


def _network(
    rng: np.random.Generator,
    image: np.ndarray,
    lesion: np.ndarray,
    centre: tuple[float, float],
    blend: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """A grid of lines over the lesion on one side of a random line through its
    centre; ``blend`` recolours the line pixels. The mask is the whole area."""
    h, w = lesion.shape
    yy, xx = _coordinates((h, w))
    angle = rng.uniform(0, 2 * np.pi)
    area = lesion & ((xx - centre[0]) * np.cos(angle) + (yy - centre[1]) * np.sin(angle) > 0)
    spacing = max(4, round(min(h, w) / 20))
    wobble = 2.0 * _smooth_noise(rng, (h, w), 5)
    lines = (((xx + wobble) % spacing) < 1.2) | (((yy + wobble) % spacing) < 1.2)
    image[area & lines] = blend(image[area & lines])
    return area


def _streaks(
    rng: np.random.Generator, image: np.ndarray, lesion: np.ndarray, centre: tuple[float, float]
) -> np.ndarray:
    """Dark radial lines across the lesion border; the mask is each line, widened."""
    h, w = lesion.shape
    mask = np.zeros((h, w), np.uint8)
    lines = np.zeros((h, w), np.uint8)
    steps = np.arange(0.0, float(max(h, w)), 0.5)
    for angle in rng.uniform(0, 2 * np.pi, size=int(rng.integers(6, 13))):
        direction = np.array([np.cos(angle), np.sin(angle)])
        xs = np.round(centre[0] + steps * direction[0]).astype(int)
        ys = np.round(centre[1] + steps * direction[1]).astype(int)
        inside_image = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        inside = np.zeros_like(inside_image)
        inside[inside_image] = lesion[ys[inside_image], xs[inside_image]]
        if not inside.any():
            continue
        border = steps[np.nonzero(inside)[0][-1]]
        start = np.asarray(centre) + 0.8 * border * direction
        end = np.asarray(centre) + 1.2 * border * direction
        points = tuple(int(round(c)) for c in start), tuple(int(round(c)) for c in end)
        cv2.line(lines, *points, 1, thickness=1)
        cv2.line(mask, *points, 1, thickness=3)
    image[lines > 0] = (60, 38, 30)
    return mask > 0


def render_dermoscopy(rng: np.random.Generator, size: tuple[int, int], kind: str) -> DermoscopySample:
    """Renders one dermoscopy-like image of a ``kind`` lesion (see module docstring).

    Args:
        rng: the random generator (the only source of randomness).
        size: ``(height, width)``.
        kind: one of :data:`LESION_KINDS`.
    """
    if kind not in _STYLES:
        raise ValueError(f"kind={kind!r} is unknown; choose one of {LESION_KINDS}")
    style = _STYLES[kind]
    opacity, centre = _blob(rng, size, style)
    lesion = opacity >= 0.5
    image = _skin(rng, size)
    image += opacity[..., None] * (_lesion_colour(rng, size, kind) - image)

    drawers = {
        "pigment_network": lambda: _network(rng, image, lesion, centre, lambda p: p * 0.65),
        "negative_network": lambda: _network(rng, image, lesion, centre, lambda p: p + 0.4 * (245.0 - p)),
        "globules": lambda: _dots(rng, image, lesion, (55, 35, 30)),
        "milia_like_cyst": lambda: _dots(rng, image, lesion, (240, 232, 200)),
        "streaks": lambda: _streaks(rng, image, lesion, centre),
    }
    attributes = {}
    for name in ISIC2018_ATTRIBUTES:
        present = rng.random() < style.attribute_probability[name]
        attributes[name] = drawers[name]() if present else np.zeros(size, bool)

    image *= _vignette(size)[..., None]
    image += rng.normal(0.0, 3.0, image.shape).astype(np.float32)
    return DermoscopySample(
        image=np.clip(image, 0, 255).astype(np.uint8),
        lesion=lesion,
        attributes=attributes,
        kind=kind,
    )


def _outline(
    centre: tuple[float, float],
    axes: tuple[float, float],
    rotation: float,
    lobes: Sequence[tuple[int, float, float]] = (),
    points: int = 32,
) -> np.ndarray:
    """Polygon ``(points, 2)`` of an ellipse, optionally lobulated by harmonics
    ``(k, amplitude, phase)``."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    scale = 1.0 + sum(amp * np.cos(k * t + phase) for k, amp, phase in lobes)
    u, v = axes[0] * scale * np.cos(t), axes[1] * scale * np.sin(t)
    x = centre[0] + u * np.cos(rotation) - v * np.sin(rotation)
    y = centre[1] + u * np.sin(rotation) + v * np.cos(rotation)
    return np.round(np.stack([x, y], axis=1), 1)


def _fill(polygon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask > 0


def render_ultrasound(rng: np.random.Generator, size: tuple[int, int], hydronephrosis: bool) -> UltrasoundSample:
    """Renders one renal-ultrasound-like image (see module docstring).

    The regions drawn are the rasterised polygons, so the annotation is exact.
    """
    h, w = size
    yy, xx = _coordinates((h, w))
    apex_x, apex_y = w / 2, -0.05 * h
    depth = np.hypot(xx - apex_x, yy - apex_y)
    fan = (np.abs(np.arctan2(xx - apex_x, yy - apex_y)) < np.radians(40)) & (depth > 0.15 * h) & (depth < 1.02 * h)

    echo = 0.35 + 0.15 * _smooth_noise(rng, size, 5)
    centre = (w / 2 + rng.uniform(-0.08, 0.08) * w, h * rng.uniform(0.5, 0.6))
    axes = (w * rng.uniform(0.24, 0.32), h * rng.uniform(0.14, 0.2))
    rotation = rng.uniform(-0.4, 0.4)
    kidney = _outline(centre, axes, rotation)
    sinus = _outline(centre, (axes[0] * 0.55, axes[1] * 0.45), rotation)
    echo[_fill(kidney, size)] = 0.22
    echo[_fill(sinus, size)] = 0.75
    dilated = None
    if hydronephrosis:
        lobes = [(k, rng.uniform(0.05, 0.12), rng.uniform(0, 2 * np.pi)) for k in (3, 4, 5)]
        dilated = _outline(
            centre,
            (axes[0] * rng.uniform(0.45, 0.6), axes[1] * rng.uniform(0.45, 0.6)),
            rotation,
            lobes,
            points=24,
        )
        echo[_fill(dilated, size)] = 0.06

    speckle = rng.rayleigh(1.0, size).astype(np.float32) / np.sqrt(np.pi / 2)
    image = cv2.GaussianBlur(echo * speckle, (3, 3), 0) * (1.0 - 0.4 * depth / h) * fan
    return UltrasoundSample(
        image=np.clip(image * 255, 0, 255).astype(np.uint8),
        kidney=kidney,
        hydronephrosis=dilated,
    )


# ---------------------------------------------------------------------- file writers


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), params):
        raise OSError(f"{path}: could not write image")


def _write_png(path: Path, pixels: np.ndarray) -> None:
    """An 8-bit single-channel PNG: bool masks as 0/255, uint8 grey levels or class
    indices as they are."""
    values = pixels.astype(np.uint8) * 255 if pixels.dtype == bool else pixels
    if not cv2.imwrite(str(path), values):
        raise OSError(f"{path}: could not write PNG")


def _write_marker(root: Path, dataset: str, seed: int, counts: Mapping[str, int]) -> None:
    lines = [
        f"SYNTHETIC DATA: {dataset} stand-in written by data_tools.synthetic (seed={seed}).",
        "Generated images, masks and labels in the official folder layout, for tests and",
        "smoke runs only. Not medical data: numbers computed on it mean nothing clinically.",
        "Images per split: " + ", ".join(f"{k}={v}" for k, v in counts.items()),
    ]
    (root / MARKER_FILE).write_text("\n".join(lines) + "\n")


def is_synthetic(root: str | Path) -> bool:
    """Whether ``root`` was written by this module (holds ``SYNTHETIC.txt``)."""
    return (Path(root) / MARKER_FILE).is_file()


def _check_arguments(image_size: Sequence[int], counts: Mapping[str, int]) -> tuple[int, int]:
    if len(image_size) != 2 or any(int(s) != s or s < 32 for s in image_size):
        raise ValueError(f"image_size={tuple(image_size)} must be (height, width), each >= 32")
    for name, count in counts.items():
        if int(count) != count or count < 0:
            raise ValueError(f"{name}={count!r} must be a non-negative integer")
    return int(image_size[0]), int(image_size[1])


def _kinds(rng: np.random.Generator, n: int, kinds: Sequence[str]) -> list[str]:
    """Classes in (near) equal numbers, shuffled: every class appears when n >= len."""
    cycle = [kinds[i % len(kinds)] for i in range(n)]
    return [cycle[i] for i in rng.permutation(n)]


def _samples(
    seed: int,
    split: str,
    n: int,
    size: tuple[int, int],
    kinds: Sequence[str],
    vary_size: bool = False,
) -> Iterator[tuple[str, DermoscopySample]]:
    """``(image_id, sample)`` for the ``n`` images of a split; with ``vary_size``
    each side is drawn within +-25 % of ``size`` (the real images vary in size)."""
    kind_of = _kinds(np.random.default_rng([seed, _SPLIT_SEED[split]]), n, kinds)
    for i in range(n):
        rng = np.random.default_rng([seed, _SPLIT_SEED[split], i + 1])
        if vary_size:
            image_size = tuple(max(32, round(s * rng.uniform(0.75, 1.25))) for s in size)
        else:
            image_size = size
        yield f"ISIC_{_SPLIT_ID_OFFSET[split] + i:07d}", render_dermoscopy(rng, image_size, kind_of[i])


def _write_csv(path: Path, rows: Sequence[Sequence[object]], header: Sequence[str] = ()) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -------------------------------------------------------------------------- datasets


def make_isic2016(
    root: str | Path,
    *,
    n_train: int = 16,
    n_test: int = 8,
    image_size: tuple[int, int] = (96, 128),
    seed: int = 0,
    vary_size: bool = False,
) -> Path:
    """Writes an ISIC 2016 stand-in: Part 1 (lesion masks) and Part 3 (melanoma).

    Part 1 and Part 3 share their images, as in the release. Part 3 CSVs have no
    header; training labels are ``benign``/``malignant``, test labels ``0.0``/``1.0``.
    About a third of the lesions are melanomas, the rest nevi.

    Returns:
        ``root``, ready for ``read_isic2016_part1(root, split)`` and
        ``read_isic2016_part3(root, split)``.
    """
    size = _check_arguments(image_size, {"n_train": n_train, "n_test": n_test})
    root = Path(root)
    malignant = {v: k for k, v in ISIC2016_PART3_CLASSES.items()}[1]
    benign = {v: k for k, v in ISIC2016_PART3_CLASSES.items()}[0]
    counts = {"train": n_train, "test": n_test}
    for split, n in counts.items():
        if not n:
            continue
        folders = ISIC2016_LAYOUT[split]
        part1_images = _folder(root, folders["part1_images"])
        part3_images = _folder(root, folders["part3_images"])
        masks = _folder(root, folders["part1"])
        rows = []
        samples = _samples(seed, split, n, size, (NEVUS, MELANOMA, NEVUS), vary_size)
        for image_id, sample in samples:
            _write_rgb(part1_images / f"{image_id}{ISIC_IMAGE_SUFFIX}", sample.image)
            (part3_images / f"{image_id}{ISIC_IMAGE_SUFFIX}").write_bytes(
                (part1_images / f"{image_id}{ISIC_IMAGE_SUFFIX}").read_bytes()
            )
            _write_png(masks / f"{image_id}{ISIC2016_MASK_SUFFIX}", sample.lesion)
            is_melanoma = sample.kind == MELANOMA
            if split == "train":
                rows.append((image_id, malignant if is_melanoma else benign))
            else:
                rows.append((image_id, f"{float(is_melanoma):.1f}"))
        _write_csv(root / folders["part3"], rows)
    _write_marker(root, "ISIC 2016 (Parts 1 and 3)", seed, counts)
    return root


def _superpixel_grid(size: tuple[int, int]) -> np.ndarray:
    """Superpixel index per pixel: a grid of square cells (SLIC-free stand-in)."""
    cell = max(4, round(min(size) * SUPERPIXEL_FRACTION))
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    return (yy // cell) * (-(-size[1] // cell)) + xx // cell


def encode_superpixels(index: np.ndarray) -> np.ndarray:
    """Superpixel indices to the ISIC 2017 RGB encoding, R + (G << 8) + (B << 16)."""
    index = index.astype(np.uint32)
    return np.stack([index & 0xFF, (index >> 8) & 0xFF, (index >> 16) & 0xFF], -1).astype(np.uint8)


def _superpixel_features(index: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict:
    """Per feature, one 0/1 per superpixel: 1 where the superpixel touches the mask."""
    count = int(index.max()) + 1
    features = {}
    for name in ISIC2017_FEATURES:
        hits = np.bincount(index[masks[name]].ravel(), minlength=count)
        features[name] = [int(h > 0) for h in hits]
    return features


def make_isic2017(
    root: str | Path,
    *,
    n_train: int = 18,
    n_val: int = 6,
    n_test: int = 6,
    image_size: tuple[int, int] = (96, 128),
    seed: int = 0,
    vary_size: bool = False,
) -> Path:
    """Writes an ISIC 2017 stand-in: Parts 1 (masks), 2 (features), 3 (diagnosis).

    Part 2: a ``_superpixels.png`` beside each image (a grid of square cells, index
    encoded as R + (G << 8) + (B << 16)) and a ``_features.json`` listing, for
    ``pigment_network``, ``negative_network``, ``milia_like_cyst`` and ``streaks``,
    one 0/1 per superpixel. Part 3: ``image_id,melanoma,seborrheic_keratosis``
    with nevi, melanomas and seborrheic keratoses in equal numbers. Each image
    folder also holds the release's ``<folder>_metadata.csv`` (age, sex).

    Returns:
        ``root``, ready for ``read_isic2017(root, split, parts=(1, 2, 3))``.
    """
    counts = {"train": n_train, "validation": n_val, "test": n_test}
    size = _check_arguments(image_size, {"n_train": n_train, "n_val": n_val, "n_test": n_test})
    root = Path(root)
    for split, n in counts.items():
        if not n:
            continue
        folders = ISIC2017_LAYOUT[split]
        images = _folder(root, folders["images"])
        masks = _folder(root, folders["part1"])
        features = _folder(root, folders["part2"])
        labels, metadata = [], []
        metadata_rng = np.random.default_rng([seed, _SPLIT_SEED[split], 0])
        for image_id, sample in _samples(seed, split, n, size, LESION_KINDS, vary_size):
            _write_rgb(images / f"{image_id}{ISIC_IMAGE_SUFFIX}", sample.image)
            superpixels = _superpixel_grid(sample.lesion.shape)
            _write_rgb(
                images / f"{image_id}{ISIC2017_SUPERPIXELS_SUFFIX}",
                encode_superpixels(superpixels),
            )
            _write_png(masks / f"{image_id}{ISIC2017_MASK_SUFFIX}", sample.lesion)
            (features / f"{image_id}{ISIC2017_FEATURES_SUFFIX}").write_text(
                json.dumps(_superpixel_features(superpixels, sample.attributes))
            )
            labels.append((image_id, float(sample.kind == MELANOMA), float(sample.kind == SEBORRHEIC_KERATOSIS)))
            metadata.append((image_id, int(metadata_rng.integers(20, 86)), metadata_rng.choice(["male", "female"])))
        _write_csv(root / folders["part3"], labels, header=ISIC2017_PART3_COLUMNS)
        _write_csv(
            images / f"{folders['images']}_metadata.csv",
            metadata,
            header=("image_id", "age_approximate", "sex"),
        )
    _write_marker(root, "ISIC 2017 (Parts 1, 2 and 3)", seed, counts)
    return root


def make_isic2018(
    root: str | Path,
    *,
    n_train: int = 24,
    n_val: int = 6,
    n_test: int = 6,
    image_size: tuple[int, int] = (96, 128),
    seed: int = 0,
    vary_size: bool = False,
) -> Path:
    """Writes an ISIC 2018 Tasks 1-2 stand-in: lesion masks and attribute masks.

    Every image gets a lesion mask (Task 1) and the five attribute masks (Task 2),
    many of them empty, as in the release. Ground truth is written for all three
    splits (the challenge released validation and test ground truth later).

    Returns:
        ``root``, ready for ``read_isic2018(root, split, tasks=(1, 2))``.
    """
    counts = {"train": n_train, "validation": n_val, "test": n_test}
    size = _check_arguments(image_size, {"n_train": n_train, "n_val": n_val, "n_test": n_test})
    root = Path(root)
    for split, n in counts.items():
        if not n:
            continue
        folders = ISIC2018_LAYOUT[split]
        images = _folder(root, folders["images"])
        task1 = _folder(root, folders["task1"])
        task2 = _folder(root, folders["task2"])
        for image_id, sample in _samples(seed, split, n, size, LESION_KINDS, vary_size):
            _write_rgb(images / f"{image_id}{ISIC_IMAGE_SUFFIX}", sample.image)
            _write_png(task1 / f"{image_id}{ISIC2018_MASK_SUFFIX}", sample.lesion)
            for name, mask in sample.attributes.items():
                _write_png(task2 / f"{image_id}{isic2018_attribute_suffix(name)}", mask)
    _write_marker(root, "ISIC 2018 (Tasks 1 and 2)", seed, counts)
    return root


def _labelme_shape(label: str, polygon: np.ndarray) -> dict:
    return {
        "label": label,
        "points": polygon.tolist(),
        "group_id": None,
        "description": "",
        "shape_type": "polygon",
        "flags": {},
    }


def make_ultrasound_labelme(
    root: str | Path,
    *,
    n: int = 12,
    image_size: tuple[int, int] = (128, 128),
    seed: int = 0,
    label_map: Mapping[str, int] = ULTRASOUND_LABEL_MAP,
) -> Path:
    """Writes renal ultrasound stand-ins with Labelme polygon annotations.

    One ``us_0000.png`` and ``us_0000.json`` per image, in ``root`` itself.

    Each JSON holds one polygon for the kidney and, in two images of three, a
    later polygon for the hydronephrosis inside it (later shapes overwrite earlier
    ones when rasterised, so the kidney class excludes the dark region).

    Args:
        label_map: the reader's label map; its first two labels, in order, name
            the kidney and the hydronephrosis polygons.

    Returns:
        ``root``, ready for ``read_labelme(root, label_map)``.
    """
    size = _check_arguments(image_size, {"n": n})
    if len(label_map) != 2:
        raise ValueError(f"label_map={dict(label_map)} must name two labels: kidney, then hydronephrosis")
    kidney_label, hydronephrosis_label = label_map
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        sample = render_ultrasound(rng, size, hydronephrosis=i % 3 != 0)
        name = f"us_{i:04d}"
        _write_png(root / f"{name}.png", sample.image)
        shapes = [_labelme_shape(kidney_label, sample.kidney)]
        if sample.hydronephrosis is not None:
            shapes.append(_labelme_shape(hydronephrosis_label, sample.hydronephrosis))
        annotation = {
            "version": "5.4.1",
            "flags": {},
            "shapes": shapes,
            "imagePath": f"{name}.png",
            "imageData": None,
            "imageHeight": size[0],
            "imageWidth": size[1],
        }
        (root / f"{name}.json").write_text(json.dumps(annotation, indent=2))
    _write_marker(root, "renal ultrasound (Labelme)", seed, {"all": n})
    return root


def make_mask_folder(
    root: str | Path,
    *,
    n: int = 12,
    image_size: tuple[int, int] = (96, 128),
    seed: int = 0,
    kind: str = "dermoscopy",
    mask_suffix: str = "",
) -> Path:
    """Writes the generic "images + masks" layout.

    ``root/images/img_0000.png`` with ``root/masks/img_0000<mask_suffix>.png``.

    Args:
        kind: ``"dermoscopy"``: RGB lesion images, binary 0/255 lesion masks;
            ``"ultrasound"``: grey images, class-index masks (0 background,
            1 kidney, 2 hydronephrosis).

    Returns:
        ``root``, ready for ``read_mask_folder(root / "images", root / "masks",
        mask_suffix=...)`` (with ``binary=False, classes=3`` for ultrasound).
    """
    if kind not in ("dermoscopy", "ultrasound"):
        raise ValueError(f"kind={kind!r} is unknown; choose 'dermoscopy' or 'ultrasound'")
    size = _check_arguments(image_size, {"n": n})
    root = Path(root)
    images, masks = _folder(root, "images"), _folder(root, "masks")
    if kind == "dermoscopy":
        for i, (_, sample) in enumerate(_samples(seed, "train", n, size, LESION_KINDS)):
            _write_rgb(images / f"img_{i:04d}.png", sample.image)
            _write_png(masks / f"img_{i:04d}{mask_suffix}.png", sample.lesion)
    else:
        for i in range(n):
            sample = render_ultrasound(np.random.default_rng([seed, i]), size, hydronephrosis=i % 3 != 0)
            classes = _fill(sample.kidney, size).astype(np.uint8)
            if sample.hydronephrosis is not None:
                classes[_fill(sample.hydronephrosis, size)] = 2
            _write_png(images / f"img_{i:04d}.png", sample.image)
            _write_png(masks / f"img_{i:04d}{mask_suffix}.png", classes)
    _write_marker(root, f"{kind} images + masks", seed, {"all": n})
    return root


# ----------------------------------------------------------------------------- CLI

_SPLIT_OPTIONS = {
    "isic2016": ("n_train", "n_test"),
    "isic2017": ("n_train", "n_val", "n_test"),
    "isic2018": ("n_train", "n_val", "n_test"),
    "ultrasound": ("n",),
    "mask-folder": ("n",),
}
_MAKERS: dict[str, Callable[..., Path]] = {
    "isic2016": make_isic2016,
    "isic2017": make_isic2017,
    "isic2018": make_isic2018,
    "ultrasound": make_ultrasound_labelme,
    "mask-folder": make_mask_folder,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_tools.synthetic",
        description="Write a small synthetic dataset in an official layout.",
    )
    commands = parser.add_subparsers(dest="dataset", required=True)
    for dataset, options in _SPLIT_OPTIONS.items():
        command = commands.add_parser(dataset, help=_MAKERS[dataset].__doc__.splitlines()[0])
        command.add_argument("out_dir", type=Path)
        for option in options:
            command.add_argument(f"--{option.replace('_', '-')}", type=int, dest=option)
        command.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"))
        command.add_argument("--seed", type=int, default=0)
        if dataset.startswith("isic"):
            command.add_argument("--vary-size", action="store_true", help="image sizes within +-25 %%")
    args = parser.parse_args(argv)
    kwargs = {
        name: getattr(args, name)
        for name in (*_SPLIT_OPTIONS[args.dataset], "image_size", "vary_size")
        if getattr(args, name, None) is not None
    }
    root = _MAKERS[args.dataset](args.out_dir, seed=args.seed, **kwargs)
    print(f"wrote synthetic {args.dataset} to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
