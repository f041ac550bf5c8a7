"""The one place that opens image and mask files to check them.

Readers record paths; pixels are decoded for training by the tf.data pipelines.
Before that, every reader validates its files here so that a truncated JPEG, a mask
of the wrong size or a grey-level mask stops the read with a :class:`DatasetError`
naming the file and the problem, instead of surfacing later as a TensorFlow
traceback or as silently wrong targets.

Validation levels (``validate=`` of every reader):

``"full"`` (the default)
    Decodes every image and mask. JPEGs are decoded at 1/8 scale (Pillow's
    ``draft`` mode): the whole entropy-coded stream is still read, so truncated and
    corrupt files are caught, at a fraction of the cost of a full-size decode. Masks are
    decoded in full and their values checked. Measured per image and mask (on a
    busy 2-core machine): 0.04 s at 1022x767, 0.55 s at 4000x3000; files are
    checked on one thread per core, so the 2594 ISIC 2018 Task 1 training images
    (1022x767 up to 6688x4439) take one to a few minutes.
``"header"``
    Reads headers only: image and mask sizes, channel counts; about 1 ms per
    image, seconds for a whole ISIC release, but a truncated file or a grey-level
    mask goes unnoticed (degenerate sizes are still caught, and masks TensorFlow
    would misread still converted).

Supported files: JPEG, PNG, BMP, TIFF through Pillow, and DICOM through pydicom
(ultrasound DICOMs in RGB, YBR or palette colour are converted to RGB). A multi-frame
DICOM (a cine loop) is read one frame at a time, numbered from 1 as DICOM numbers them
(:func:`frame_count`, ``load_image(path, frame=k)``, :func:`frame_image_file`); its
frames' names are :func:`data_tools.layouts.frame_stem`'s.

What is checked is what trains: :func:`validate_records` points every record at files
that ``tf.io.decode_image`` decodes to the pixels checked here, converting once to PNG
those it would misread (a palette PNG mask's indices would become its colours).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from data_tools.atomic import atomic_path
from data_tools.layouts import frame_stem
from data_tools.records import BadInputPolicy, DatasetError, Record

Validation = Literal["full", "header"]
VALIDATION_LEVELS = ("full", "header")
DICOM_SUFFIXES = (".dcm", ".dicom")
#: Image files the readers take (TIFF and DICOM are converted for TensorFlow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", *DICOM_SUFFIXES)
#: Fewer samples than this read without a progress bar.
PROGRESS_MIN_ITEMS = 50
#: Images with a side shorter than this are rejected as degenerate.
MIN_IMAGE_SIDE = 2
# A JPEG's end-of-image marker must lie within its last bytes (padding may follow).
_JPEG_TAIL_BYTES = 1024
_MAX_LISTED_VALUES = 10


def read_image_header(path: str | Path) -> tuple[int, int, int]:
    """``(height, width, channels)`` of an image or mask, from its header only.

    ``channels`` counts the stored bands: 1 for grey-level and palette images,
    3 for RGB, 4 for RGBA (for DICOM: ``SamplesPerPixel``, palette colour as 3).
    """
    path = Path(path)
    if _is_dicom(path):
        dataset = _read_dicom(path, pixels=False)
        channels = 3 if dataset.PhotometricInterpretation == "PALETTE COLOR" else int(dataset.SamplesPerPixel)
        return int(dataset.Rows), int(dataset.Columns), channels
    with _open_pil(path) as image:
        return image.height, image.width, len(image.getbands())


def frame_count(path: str | Path) -> int:
    """The frames of a DICOM file (``NumberOfFrames``, from its header); 1 for any other image."""
    path = Path(path)
    if not _is_dicom(path):
        return 1
    return _frames(_read_dicom(path, pixels=False), path)


def load_image(path: str | Path, frame: int | None = None) -> np.ndarray:
    """Decodes an image in full to ``uint8`` of shape ``(height, width, 3)``.

    Grey-level, palette and RGBA images are converted to RGB (alpha dropped).
    ``frame``: the frame of a multi-frame DICOM, from 1 (only that frame is
    decoded); a multi-frame file needs one, other images take ``None`` or 1.
    Raises :class:`DatasetError` for missing, unreadable, truncated or 16-bit files,
    and for a frame the file lacks.
    """
    path = Path(path)
    if _is_dicom(path):
        return _dicom_to_rgb(path, frame)
    if frame not in (None, 1):
        raise DatasetError(path, f"frame {frame} asked of an image of one frame")
    with _open_pil(path) as image:
        _decode(image, path)
        _require_8bit(image, path)
        return np.asarray(image.convert("RGB"))


def load_mask(
    path: str | Path,
    *,
    expected_size: tuple[int, int] | None = None,
    binary: bool = True,
    num_classes: int | None = None,
) -> np.ndarray:
    """Decodes a single-channel 8-bit mask to ``uint8`` of shape ``(height, width)``.

    Args:
        path: a PNG/BMP/TIFF mask (palette images give their indices).
        expected_size: ``(height, width)`` of the mask's image; a mask of another
            size is an error that states both sizes.
        binary: the mask must hold only 0 and 255 (the ISIC convention).
        num_classes: a class-index mask: values must lie in ``[0, num_classes)``.
            Requires ``binary=False``.

    Raises:
        DatasetError: unreadable or truncated file, several channels, wrong size,
            or values outside the allowed set (the offending values are listed).
    """
    if binary and num_classes is not None:
        raise ValueError("load_mask: pass either binary=True or num_classes, not both")
    path = Path(path)
    with _open_pil(path) as image:
        _check_mask_header(image, path, expected_size)
        _decode(image, path)
        mask = np.asarray(image.convert("L") if image.mode == "1" else image)
    _check_mask_values(mask, path, binary=binary, num_classes=num_classes)
    return mask


def validate_records(
    records: Iterable[Record],
    policy: BadInputPolicy,
    *,
    cache_dir: str | Path,
    validate: Validation = "full",
    binary: bool = True,
    num_classes: int | None = None,
    description: str = "checking",
    workers: int | None = None,
) -> list[Record]:
    """Checks each record's image and masks; returns the good ones, in order.

    Every mask must match its image's size and hold the allowed values (see
    :func:`load_mask`). A bad record goes to ``policy.reject``: it raises, or, with
    ``skip_bad``, is logged and left out. Files are decoded on ``workers`` threads
    (default: one per CPU; Pillow decodes without the GIL). Shows a progress bar on
    a terminal when there are at least :data:`PROGRESS_MIN_ITEMS` records.

    The records returned point at files that ``tf.io.decode_image`` decodes to the
    pixels checked here: a file it would read otherwise is converted once to PNG
    under ``cache_dir`` (``images/`` and ``masks/``), and the record
    points at the copy. Converted: TIFF and DICOM images, palette and 1-bit BMP
    images (TF misreads their colours), and every mask that is not a grey-level PNG
    (palette PNGs, whose indices TF would turn into colours; BMP and TIFF masks).
    """
    check_validation_level(validate)
    records = list(records)
    cache_dir = Path(cache_dir)

    def checked(record: Record) -> Record | DatasetError:
        try:
            return _checked_record(
                record, validate=validate, binary=binary, num_classes=num_classes, cache_dir=cache_dir
            )
        except DatasetError as error:
            return error

    pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    try:
        results = tqdm(
            pool.map(checked, records),
            total=len(records),
            desc=description,
            unit="image",
            disable=len(records) < PROGRESS_MIN_ITEMS or not sys.stderr.isatty(),
        )
        good = []
        for result in results:
            if isinstance(result, DatasetError):
                policy.reject(result.path, result.problem)  # raises unless skip_bad
            else:
                good.append(result)
    finally:
        pool.shutdown(cancel_futures=True)  # stop at the first error, not after all
    return good


def save_png(path: str | Path, pixels: np.ndarray) -> Path:
    """Writes ``uint8`` pixels (HxW or HxWx3) as PNG atomically: no half-written files."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as temporary:  # the umask's mode (0644), not mkstemp's 0600
        Image.fromarray(pixels).save(temporary, format="PNG")
    return path


def as_policy(skip_bad: bool | BadInputPolicy) -> BadInputPolicy:
    """The readers' ``skip_bad`` argument as a policy (a policy passes through)."""
    return skip_bad if isinstance(skip_bad, BadInputPolicy) else BadInputPolicy(bool(skip_bad))


def is_up_to_date(path: Path, sources: Iterable[str | Path]) -> bool:
    """``path`` exists and is no older than any of ``sources`` (cached derived files)."""
    return path.is_file() and all(path.stat().st_mtime >= Path(s).stat().st_mtime for s in sources)


def read_json_object(path: str | Path) -> Mapping:
    """A JSON file holding an object; :class:`DatasetError` if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DatasetError(path, f"cannot read the file ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise DatasetError(path, f"not UTF-8 text, so not JSON ({error})") from None
    try:
        content = json.loads(text)
    except ValueError as error:
        raise DatasetError(path, f"not valid JSON ({error})") from None
    if not isinstance(content, dict):
        raise DatasetError(path, f"expected a JSON object, got {type(content).__name__}")
    return content


def list_folder(folder: str | Path) -> list[Path]:
    """The entries of ``folder``, sorted; :class:`DatasetError` if it cannot be listed."""
    folder = Path(folder)
    try:
        return sorted(folder.iterdir())
    except OSError as error:
        raise DatasetError(folder, f"cannot list the folder ({error.strerror or error})") from None


def check_validation_level(validate: str) -> None:
    """Raises ``ValueError`` unless ``validate`` is one of :data:`VALIDATION_LEVELS`."""
    if validate not in VALIDATION_LEVELS:
        raise ValueError(f"validate must be one of {VALIDATION_LEVELS}, got {validate!r}")


def _checked_record(
    record: Record, *, validate: Validation, binary: bool, num_classes: int | None, cache_dir: Path
) -> Record:
    """The record, checked, pointing at files TF decodes as checked (copies if need be)."""
    image_path = Path(record.image_path)
    if validate == "full":
        size = _check_image_data(image_path)
    else:
        size = read_image_header(image_path)[:2]
    if min(size) < MIN_IMAGE_SIDE:
        raise DatasetError(
            image_path,
            f"degenerate image size {size[0]}x{size[1]} (height x width): an image needs at "
            f"least {MIN_IMAGE_SIDE} pixels on each side",
        )
    masks = {
        name: _checked_mask(
            Path(path),
            size,
            validate=validate,
            binary=binary,
            num_classes=num_classes,
            cache_dir=cache_dir / "masks",
        )
        for name, path in record.mask_paths.items()
    }
    image = _tf_readable_image(image_path, cache_dir / "images")
    return dataclasses.replace(record, image_path=image, mask_paths=masks)


def _checked_mask(
    path: Path,
    size: tuple[int, int],
    *,
    validate: Validation,
    binary: bool,
    num_classes: int | None,
    cache_dir: Path,
) -> Path:
    """Checks one mask; returns it, or its grey-level PNG copy when TF would misread it."""
    with _open_pil(path) as mask:
        _check_mask_header(mask, path, size)
        grey_png = mask.format == "PNG" and mask.mode in ("1", "L")
    if validate == "header" and grey_png:
        return path
    full = validate == "full"
    values = load_mask(path, expected_size=size, binary=binary and full, num_classes=num_classes if full else None)
    return path if grey_png else _converted(path, cache_dir, lambda: values)


def _tf_readable_image(path: Path, cache_dir: Path) -> Path:
    """``path``, or its PNG copy when ``tf.io.decode_image`` would not read it as Pillow does."""
    if not _is_dicom(path):
        with _open_pil(path) as image:
            readable = image.format in ("JPEG", "PNG", "GIF") or (
                image.format == "BMP" and image.mode not in ("1", "P")
            )
        if readable:
            return path
    return _converted(path, cache_dir, lambda: load_image(path))


def frame_image_file(path: str | Path, frame: int, cache_dir: str | Path) -> Path:
    """Frame ``frame`` (from 1) of a multi-frame DICOM as an RGB PNG in ``cache_dir``
    (``<stem>_frame<NNN>-<key>.png``, written once), for the readers' records."""
    path = Path(path)
    name = frame_stem(path.stem, frame, frame_count(path))
    return _converted(path, Path(cache_dir), lambda: load_image(path, frame), name=name)


def _converted(source: Path, cache_dir: Path, pixels: Callable[[], np.ndarray], name: str | None = None) -> Path:
    """``cache_dir/<name>-<key>.png`` holding ``pixels()``, written unless newer than ``source``
    (``name``: the source's stem by default).

    ``key`` hashes the source's full path, so that files of one stem in different
    folders (Labelme annotations may point anywhere) never share a copy.
    """
    key = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:8]
    converted = cache_dir / f"{name or source.stem}-{key}.png"
    if not is_up_to_date(converted, (source,)):
        try:
            save_png(converted, pixels())
        except OSError as error:
            raise DatasetError(
                converted,
                f"cannot write the PNG copy of {source.name} that TensorFlow can read "
                f"({error.strerror or error}); pass a writable cache_dir",
            ) from None
    return converted


def _open_pil(path: Path) -> Image.Image:
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise DatasetError(path, "not a readable image (unknown format or corrupt header)") from None
    except OSError as error:
        if error.errno is not None:  # from the system (permissions, I/O), not from Pillow
            raise DatasetError(path, f"cannot read the file ({error.strerror})") from None
        raise DatasetError(path, f"truncated or corrupt image header ({error})") from None


def _check_image_data(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image after decoding all its data (JPEGs at 1/8 scale)."""
    if _is_dicom(path):
        return load_image(path).shape[:2]
    with _open_pil(path) as image:
        size = image.height, image.width
        _require_8bit(image, path)
        _decode(image, path, reduced=True)
    return size


def _decode(image: Image.Image, path: Path, *, reduced: bool = False) -> None:
    """Decodes all pixel data; catches truncated and corrupt files.

    ``reduced`` decodes JPEGs at 1/8 scale (``draft`` mode): the whole compressed
    stream is still read, so truncation is still caught, several times faster.
    """
    if reduced and image.format == "JPEG":
        image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
    try:
        image.load()
        _check_complete(image.format, path)
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(path, f"truncated or corrupt image data ({error})") from None


def _check_complete(image_format: str | None, path: Path) -> None:
    """Raises ``OSError`` for a PNG or JPEG that Pillow decodes but TensorFlow refuses.

    Pillow decodes a PNG whose last chunks (``IEND``, a checksum) are cut off, and a
    JPEG without its end-of-image marker; ``tf.io.decode_image`` fails on both.
    """
    if image_format == "PNG":
        with Image.open(path) as again:
            again.verify()  # every chunk's CRC, up to IEND
    elif image_format == "JPEG":
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - _JPEG_TAIL_BYTES))
            if b"\xff\xd9" not in handle.read():
                raise OSError("no end-of-image marker: the file is cut short")


def _require_8bit(image: Image.Image, path: Path) -> None:
    if image.mode not in ("1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "PA"):
        raise DatasetError(path, f"unsupported pixel format {image.mode!r}; expected 8-bit images")


def _check_mask_header(image: Image.Image, path: Path, expected_size: tuple[int, int] | None) -> None:
    if image.mode not in ("1", "L", "P"):
        raise DatasetError(
            path,
            f"mask has {len(image.getbands())} channel(s) in mode {image.mode!r}; expected a single-channel 8-bit mask",
        )
    if expected_size is not None and (image.height, image.width) != tuple(expected_size):
        raise DatasetError(
            path,
            f"mask size {image.height}x{image.width} differs from its image's "
            f"{expected_size[0]}x{expected_size[1]} (height x width)",
        )


def _check_mask_values(mask: np.ndarray, path: Path, *, binary: bool, num_classes: int | None) -> None:
    if binary:
        outside = (mask != 0) & (mask != 255)  # elementwise: far cheaper than np.unique
        allowed = "{0, 255}"
    elif num_classes is not None:
        outside = mask >= num_classes
        allowed = f"class indices 0..{num_classes - 1}"
    else:
        return
    if outside.any():
        bad = np.unique(mask[outside])
        listed = ", ".join(str(v) for v in bad[:_MAX_LISTED_VALUES])
        more = f" and {bad.size - _MAX_LISTED_VALUES} more" if bad.size > _MAX_LISTED_VALUES else ""
        raise DatasetError(path, f"mask values must be {allowed}; found {listed}{more}")


def _is_dicom(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES


def _read_dicom(path: Path, *, pixels: bool):
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:
        raise DatasetError(path, "reading DICOM needs pydicom: pip install pydicom") from None
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except (InvalidDicomError, OSError, ValueError) as error:
        raise DatasetError(path, f"not a readable DICOM file ({error})") from None


def _frames(dataset, path: Path) -> int:
    try:
        frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        raise DatasetError(path, f"NumberOfFrames {dataset.NumberOfFrames!r} is not a number") from None
    if frames < 1:
        raise DatasetError(path, f"NumberOfFrames is {frames}: no frame to read")
    return frames


def _dicom_to_rgb(path: Path, frame: int | None = None) -> np.ndarray:
    """DICOM pixels (one frame of a multi-frame file) as 8-bit RGB: palette and YBR
    colour converted, MONOCHROME1 inverted."""
    from pydicom.pixels import apply_color_lut

    dataset = _read_dicom(path, pixels=True)
    frames = _frames(dataset, path)
    if frames > 1 and frame is None:
        raise DatasetError(
            path,
            f"multi-frame DICOM ({frames} frames): read one frame at a time (numbered from 1; "
            "zoo.predict --frames, masks or Labelme imagePath named <stem>_frame<NNN>)",
        )
    if frame is not None and not 1 <= frame <= frames:
        raise DatasetError(path, f"no frame {frame}: the file has {frames} frame(s), numbered from 1")
    interpretation = dataset.PhotometricInterpretation
    try:
        if frames > 1:
            dataset.pixel_array_options(index=frame - 1)  # decode this frame only
        pixels = dataset.pixel_array  # pydicom >= 3 returns YBR data as RGB
    except Exception as error:  # pydicom raises many types for bad pixel data
        raise DatasetError(path, f"cannot decode DICOM pixel data ({error})") from None
    if interpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, dataset)
        bits = 8 if pixels.dtype == np.uint8 else 16
    else:
        bits = int(dataset.BitsStored)
    pixels = _to_uint8(pixels, bits)
    if interpretation == "MONOCHROME1":
        pixels = 255 - pixels
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    return pixels


def _to_uint8(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Rescales ``bits``-bit integers linearly to 0..255."""
    if bits == 8:
        return pixels.astype(np.uint8)
    scaled = pixels.astype(np.float64) * (255.0 / (2**bits - 1))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
