"""Readers for generic layouts: an image folder with a mask folder, and Labelme JSON.

These serve private data sets such as the renal ultrasound of A-PSPNet (Sec. 4.1:
Labelme-annotated, users bring their own). Both return
:class:`~data_tools.records.Record` lists sorted by image id and check their files
like the ISIC readers (``skip_bad``, ``validate``: see :mod:`data_tools.imageio`).

The tf.data pipelines decode with ``tf.io.decode_image`` (JPEG, PNG, BMP, GIF). Files
it would misread (TIFF and DICOM images, palette BMPs, masks that are not grey-level
PNGs, palette PNG masks among them) are therefore converted once to PNG in
``cache_dir`` and the records point at the PNGs (see
:func:`data_tools.imageio.validate_records`); DICOM in RGB, YBR or palette colour
becomes 8-bit RGB, palette masks keep their indices.

Multi-frame DICOM (ultrasound cine loops): an annotation names the frame it annotates
as :func:`data_tools.layouts.frame_stem` does, frames numbered from 1 as in DICOM. In a
mask folder, ``cine_frame012<mask_suffix>.png`` is frame 12 of ``cine.dcm``; in
Labelme, an ``imagePath`` of ``cine_frame012.png`` that is not there is frame 12 of
``cine.dcm`` beside it (the name of the frame exported for Labelme). Each annotated
frame is a record (id ``cine_frame012``) whose image is that frame as a PNG in
``cache_dir``; frames without an annotation are left out, and a multi-frame file with
a mask or an ``imagePath`` naming no frame is refused, naming the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from data_tools.imageio import (
    DICOM_SUFFIXES,
    IMAGE_SUFFIXES,
    Validation,
    as_policy,
    check_validation_level,
    frame_count,
    frame_image_file,
    is_up_to_date,
    list_folder,
    read_image_header,
    read_json_object,
    save_png,
    validate_records,
)
from data_tools.layouts import frame_stem, split_frame_stem
from data_tools.records import BadInputPolicy, DatasetError, Record

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")
LABELME_SHAPES = ("polygon", "rectangle", "circle")
#: Labelme coordinates beyond this many pixels (either sign) are rejected as garbage.
MAX_COORDINATE = 1 << 20


def read_mask_folder(
    image_dir: str | Path,
    mask_dir: str | Path,
    *,
    mask_suffix: str = "",
    binary: bool = True,
    classes: int | Sequence[str] | None = None,
    mask_name: str = "mask",
    cache_dir: str | Path | None = None,
    skip_bad: bool | BadInputPolicy = False,
    validate: Validation = "full",
) -> list[Record]:
    """Images paired with masks by file stem: ``a.jpg`` with ``a<mask_suffix>.png``;
    frame 12 of a multi-frame ``cine.dcm`` with ``cine_frame012<mask_suffix>.png``
    (module docstring).

    Args:
        image_dir: PNG, JPEG, BMP, TIFF or DICOM images (DICOM needs pydicom).
        mask_dir: single-channel PNG, BMP or TIFF masks of the same sizes.
        mask_suffix: what the mask stems add to the image stems, e.g. ``"_mask"``;
            a mask whose stem lacks it is rejected (with ``skip_bad``: listed).
        binary: masks hold 0/255 (ignored when ``classes`` is given).
        classes: class-index masks: the number of classes or their names (index =
            pixel value); values must then lie in ``[0, classes)``.
        mask_name: the key of the masks in ``Record.mask_paths``.
        cache_dir: where converted files go (default ``<image_dir>/.converted``).
        skip_bad, validate: as in :func:`data_tools.isic.read_isic2016_part1`.
    """
    check_validation_level(validate)
    policy = as_policy(skip_bad)
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    images = _files_by_stem(image_dir, IMAGE_SUFFIXES, "images")
    masks = {}
    for stem, path in _files_by_stem(mask_dir, MASK_SUFFIXES, "masks").items():
        if stem.endswith(mask_suffix):
            masks[stem[: len(stem) - len(mask_suffix)]] = path
        else:
            policy.reject(path, f"mask name does not end with mask_suffix {mask_suffix!r}; its image would be {stem}.*")
    cache_dir = Path(cache_dir) if cache_dir is not None else image_dir / ".converted"
    frames = _frame_counts(images, policy)
    framed = _frame_masks(masks, images, frames)
    for stem in sorted(set(masks) - set(images) - {mask for named in framed.values() for mask in named.values()}):
        policy.reject(masks[stem], f"mask without an image {stem}.* in {image_dir}")
    records = []
    for stem in sorted(frames):
        if frames[stem] > 1:
            records += _frame_records(
                images[stem], frames[stem], framed.get(stem, {}), masks, mask_suffix, mask_name, cache_dir, policy
            )
        elif stem not in masks:
            policy.reject(images[stem], f"no mask {stem}{mask_suffix}.png (or .bmp/.tif) in {mask_dir}")
        else:
            records.append(Record(stem, images[stem], mask_paths={mask_name: masks[stem]}))
    records.sort(key=lambda record: record.image_id)
    num_classes = classes if isinstance(classes, int) or classes is None else len(classes)
    return validate_records(
        records,
        policy,
        cache_dir=cache_dir,
        validate=validate,
        binary=binary and num_classes is None,
        num_classes=num_classes,
        description=f"masks in {mask_dir.name}",
    )


def _frame_counts(images: Mapping[str, Path], policy: BadInputPolicy) -> dict[str, int]:
    """Frames per image stem (1 but for multi-frame DICOM); unreadable headers to ``policy``."""
    counts = {}
    for stem, path in images.items():
        try:
            counts[stem] = frame_count(path)
        except DatasetError as error:
            policy.reject(error.path, error.problem)
    return counts


def _frame_masks(
    masks: Mapping[str, Path], images: Mapping[str, Path], frames: Mapping[str, int]
) -> dict[str, dict[int, str]]:
    """``{image stem: {frame: mask stem}}`` of the masks that name a frame of a
    multi-frame image. Two masks naming one frame (``_frame7``, ``_frame007``) are an
    error naming both, as two files for one id are."""
    framed: dict[str, dict[int, str]] = {}
    for stem in sorted(set(masks) - set(images)):
        named = split_frame_stem(stem)
        if named is None or frames.get(named[0], 1) == 1:
            continue
        image, frame = named
        other = framed.setdefault(image, {}).setdefault(frame, stem)
        if other != stem:
            raise DatasetError(
                masks[stem],
                f"two masks for frame {frame} of {images[image].name}: "
                f"{masks[other].name} and {masks[stem].name}; keep one",
            )
    return framed


def _frame_records(
    image: Path,
    count: int,
    framed: Mapping[int, str],
    masks: Mapping[str, Path],
    mask_suffix: str,
    mask_name: str,
    cache_dir: Path,
    policy: BadInputPolicy,
) -> list[Record]:
    """A record per annotated frame of the multi-frame ``image`` (module docstring)."""
    example = f"{frame_stem(image.stem, 1, count)}{mask_suffix}.png"
    if image.stem in masks:
        policy.reject(
            masks[image.stem],
            f"{image.name} has {count} frames: name the frame the mask annotates, "
            f"e.g. {example} (frames numbered from 1)",
        )
    if not framed:
        policy.reject(
            image,
            f"multi-frame DICOM ({count} frames) without a mask naming one of its frames, "
            f"e.g. {example} (frames numbered from 1)",
        )
    records = []
    for frame, mask_stem in sorted(framed.items()):
        if not 1 <= frame <= count:
            policy.reject(
                masks[mask_stem], f"names frame {frame} of {image.name}, which has {count} frames (numbered from 1)"
            )
            continue
        try:
            frame_file = frame_image_file(image, frame, cache_dir / "images")
        except DatasetError as error:
            policy.reject(error.path, error.problem)
            continue
        records.append(
            Record(frame_stem(image.stem, frame, count), frame_file, mask_paths={mask_name: masks[mask_stem]})
        )
    return records


def read_labelme(
    folder: str | Path,
    label_map: Mapping[str, int],
    cache_dir: str | Path | None = None,
    *,
    skip_bad: bool | BadInputPolicy = False,
    validate: Validation = "full",
) -> list[Record]:
    """Labelme annotations rasterised to class-index masks: ``mask_paths["classes"]``.

    Reads every ``*.json`` in ``folder`` (any case; two for one id are an error). Each holds ``shapes`` (``label``,
    ``points`` in pixel x/y, ``shape_type`` polygon, rectangle or circle),
    ``imageHeight``/``imageWidth``, and ``imagePath`` (relative to the JSON; a frame
    of a multi-frame DICOM as ``<stem>_frame<NNN>.png``, module docstring) or
    ``imageData`` (the image embedded in base64). Shapes are drawn in file order
    with ``label_map[label]`` as pixel value (later shapes overwrite earlier ones,
    as Labelme's own export does), on background 0, and written once as ``uint8``
    PNGs under ``cache_dir`` (default ``<folder>/.masks``), in a subfolder per
    label map so that a changed map never reuses stale masks. Embedded images are
    written there too.

    Args:
        folder: the Labelme folder.
        label_map: label -> class index (1..255; 0 is the background).
        cache_dir: where masks go.
        skip_bad, validate: as in :func:`data_tools.isic.read_isic2016_part1`.

    Raises:
        DatasetError: unreadable JSON or image, size mismatch with
            ``imageHeight``/``imageWidth``, unknown labels (the label map is listed),
            unsupported shapes, points that are not finite [x, y] numbers, a shape
            covering no pixel of the image (wholly outside it; a shape partly outside
            is clipped); with ``skip_bad`` the sample is left out instead.
    """
    check_validation_level(validate)
    _check_label_map(label_map)
    policy = as_policy(skip_bad)
    folder = Path(folder)
    annotations = _files_by_stem(folder, (".json",), "Labelme annotations").values()
    cache_dir = Path(cache_dir) if cache_dir is not None else folder / ".masks"
    cache_dir = cache_dir / _label_map_key(label_map)
    records = []
    for annotation in annotations:
        try:
            records.append(_labelme_record(annotation, label_map, cache_dir))
        except DatasetError as error:
            policy.reject(error.path, error.problem)
    return validate_records(
        records,
        policy,
        cache_dir=cache_dir,
        validate=validate,
        binary=False,
        num_classes=max(label_map.values()) + 1,
        description=f"Labelme {folder.name}",
    )


def _labelme_record(annotation: Path, label_map: Mapping[str, int], cache_dir: Path) -> Record:
    content = read_json_object(annotation)
    image = _labelme_image(annotation, content, cache_dir)
    height, width = _labelme_size(annotation, content, image)
    mask_path = cache_dir / f"{annotation.stem}.png"
    if not is_up_to_date(mask_path, (annotation,)):
        save_png(mask_path, rasterise_labelme(annotation, content, label_map, (height, width)))
    return Record(annotation.stem, image, mask_paths={"classes": mask_path})


def rasterise_labelme(
    annotation: str | Path,
    content: Mapping,
    label_map: Mapping[str, int],
    size: tuple[int, int],
) -> np.ndarray:
    """Draws a Labelme file's shapes, in file order, into a ``uint8`` class-index mask.

    Args:
        annotation: the JSON file (named in errors).
        content: its parsed content.
        label_map: label -> class index.
        size: ``(height, width)`` of the mask.
    """
    annotation = Path(annotation)
    mask = np.zeros(size, np.uint8)
    shapes = content.get("shapes")
    if not isinstance(shapes, list):
        raise DatasetError(annotation, "no 'shapes' list: not a Labelme annotation")
    for number, shape in enumerate(shapes, start=1):
        if not isinstance(shape, Mapping):
            raise DatasetError(
                annotation, f"shape {number}: expected an object with 'label' and 'points', got {shape!r}"
            )
        label = shape.get("label")
        if not isinstance(label, str) or label not in label_map:
            raise DatasetError(
                annotation,
                f"shape {number}: unknown label {label!r}; label_map has "
                + ", ".join(f"{name!r}: {index}" for name, index in label_map.items()),
            )
        kind = shape.get("shape_type") or "polygon"
        if kind not in LABELME_SHAPES:
            raise DatasetError(
                annotation,
                f"shape {number} ({label!r}): shape_type {kind!r} is not supported; use one of {LABELME_SHAPES}",
            )
        where = f"shape {number} ({label!r})"
        drawn = np.zeros(size, np.uint8)
        _draw(drawn, kind, _shape_points(annotation, where, kind, shape.get("points", [])))
        if not drawn.any():
            raise DatasetError(
                annotation,
                f"{where}: covers no pixel of the {size[0]}x{size[1]} image (height x width); "
                f"its points {shape.get('points')} lie outside it",
            )
        mask[drawn > 0] = label_map[label]
    return mask


def _shape_points(annotation: Path, where: str, kind: str, raw: object) -> np.ndarray:
    """A shape's ``[x, y]`` points as float64 ``[n, 2]``; named errors for anything else."""
    needed = 3 if kind == "polygon" else 2
    numbers = isinstance(raw, list) and all(
        isinstance(point, list)
        and len(point) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
        for point in raw
    )
    if not numbers:
        raise DatasetError(annotation, f"{where}: points must be [x, y] numbers, got {raw}")
    points = np.asarray(raw, np.float64).reshape(-1, 2)
    if len(points) < needed:
        raise DatasetError(annotation, f"{where}: a {kind} needs at least {needed} [x, y] points, got {raw}")
    if not np.isfinite(points).all() or np.abs(points).max() > MAX_COORDINATE:
        raise DatasetError(
            annotation,
            f"{where}: points must be finite numbers of at most {MAX_COORDINATE} pixels in magnitude, got {raw}",
        )
    return points


def _draw(mask: np.ndarray, kind: str, points: np.ndarray) -> None:
    """Fills one Labelme shape with 1 (points are pixel x, y), clipped to the mask."""
    corners = np.rint(points).astype(np.int32)
    if kind == "polygon":
        cv2.fillPoly(mask, [corners], 1)
    elif kind == "rectangle":
        cv2.rectangle(mask, tuple(map(int, corners[0])), tuple(map(int, corners[1])), 1, -1)
    else:  # circle: centre, then a point on the circumference
        radius = int(round(float(np.linalg.norm(points[1] - points[0]))))
        cv2.circle(mask, tuple(map(int, corners[0])), radius, 1, -1)


def _labelme_image(annotation: Path, content: Mapping, cache_dir: Path) -> Path:
    """The annotated image: ``imagePath`` beside the JSON, else ``imageData`` written out."""
    relative = content.get("imagePath")
    if relative:
        path = annotation.parent / str(relative).replace("\\", "/")
        if path.is_file():
            count = frame_count(path)
            if count > 1:
                raise DatasetError(
                    annotation,
                    f"imagePath {relative!r} has {count} frames: name the annotated one, "
                    f"e.g. {frame_stem(path.stem, 1, count)}.png (frames numbered from 1)",
                )
            return path
        frame = _labelme_frame(annotation, relative, path, cache_dir)
        if frame is not None:
            return frame
    data = content.get("imageData")
    if not data:
        raise DatasetError(annotation, f"image {relative!r} not found beside the JSON and no imageData embedded")
    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as embedded:
            pixels = np.asarray(embedded.convert("RGB"))
    except (binascii.Error, OSError, ValueError) as error:
        raise DatasetError(annotation, f"imageData is not a readable base64 image ({error})") from None
    path = cache_dir / "embedded" / f"{annotation.stem}.png"
    if not is_up_to_date(path, (annotation,)):
        save_png(path, pixels)
    return path


def _labelme_frame(annotation: Path, relative: str, path: Path, cache_dir: Path) -> Path | None:
    """The frame an absent ``imagePath`` ``<stem>_frame<NNN>.*`` names of a multi-frame
    ``<stem>.dcm`` beside it, as a PNG in ``cache_dir``; ``None`` if it names none."""
    named = split_frame_stem(path.stem)
    if named is None:
        return None
    stem, frame = named
    sources = [
        candidate for candidate in (path.with_name(stem + suffix) for suffix in DICOM_SUFFIXES) if candidate.is_file()
    ]
    if not sources or (count := frame_count(sources[0])) == 1:
        return None
    if not 1 <= frame <= count:
        raise DatasetError(
            annotation,
            f"imagePath {relative!r} names frame {frame} of {sources[0].name}, which has "
            f"{count} frames (numbered from 1)",
        )
    return frame_image_file(sources[0], frame, cache_dir / "frames")


def _labelme_size(annotation: Path, content: Mapping, image: Path) -> tuple[int, int]:
    height, width, _ = read_image_header(image)
    stated = (content.get("imageHeight"), content.get("imageWidth"))
    if None not in stated and tuple(stated) != (height, width):
        raise DatasetError(
            annotation,
            f"imageHeight x imageWidth {stated[0]}x{stated[1]} differs from the image {image.name}'s {height}x{width}",
        )
    return height, width


def _files_by_stem(folder: Path, suffixes: Sequence[str], what: str) -> dict[str, Path]:
    """Files of ``folder`` with one of ``suffixes`` (any case), by stem; hidden files skipped.

    Two files for one id (one stem, or stems differing only in case) are an error
    naming both, even with ``skip_bad``: which is meant is not for a reader to guess.
    """
    if not folder.is_dir():
        raise DatasetError(folder, f"missing folder: expected a folder of {what}")
    found: dict[str, Path] = {}
    by_key: dict[str, Path] = {}
    for path in list_folder(folder):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        other = by_key.setdefault(path.stem.casefold(), path)
        if other != path:
            raise DatasetError(path, f"two {what} for one id: {other.name} and {path.name}; keep one")
        found[path.stem] = path
    if not found:
        raise DatasetError(folder, f"empty folder: no {what} ({', '.join(suffixes)})")
    return found


def _check_label_map(label_map: Mapping[str, int]) -> None:
    if not label_map:
        raise ValueError("label_map is empty: map each Labelme label to a class index")
    bad = {k: v for k, v in label_map.items() if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255}
    if bad:
        raise ValueError(f"label_map values must be integers in 1..255, got {bad}")
    background = sorted(k for k, v in label_map.items() if v == 0)
    if background:
        raise ValueError(
            f"label_map maps {', '.join(map(repr, background))} to 0, the background: those shapes "
            "would be drawn as background and vanish from the masks; map every label to 1..255."
        )


def _label_map_key(label_map: Mapping[str, int]) -> str:
    text = json.dumps(sorted(label_map.items()))
    return "labels-" + hashlib.sha1(text.encode()).hexdigest()[:10]
