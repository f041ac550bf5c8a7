"""Readers for the ISIC 2016, 2017 and 2018 challenge datasets, as distributed.

Each reader takes the folder into which the official archives were unpacked (the
folder and file names are in :mod:`data_tools.layouts`) and returns one
:class:`~data_tools.records.Record` per image, sorted by image id. It checks as it
reads: every image has its ground truth and every ground-truth file or CSV row has
its image; every image-like file is named ``ISIC_<7 digits><official suffix>`` and
no two files name one id (``.jpg`` beside ``.JPG``); CSVs are UTF-8 (or UTF-16 with
a byte-order mark), have the expected columns and values, one row per id and no
contradiction (2017: melanoma and seborrheic keratosis both 1); and (see
:mod:`data_tools.imageio` for the ``validate`` levels and their cost) images decode,
masks are single-channel 0/255 and the size of their image. A problem raises
:class:`~data_tools.records.DatasetError` naming the file; with ``skip_bad=True``
the sample is logged and left out instead (pass a
:class:`~data_tools.records.BadInputPolicy` to collect what was skipped).

Files the challenges ship among the images (``ISIC_<id>_superpixels.png``,
metadata CSVs, ``LICENSE.txt``, ``ATTRIBUTION.txt``) are ignored.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from data_tools import layouts
from data_tools.imageio import (
    IMAGE_SUFFIXES,
    PROGRESS_MIN_ITEMS,
    Validation,
    as_policy,
    check_validation_level,
    is_up_to_date,
    list_folder,
    load_image,
    read_image_header,
    read_json_object,
    save_png,
    validate_records,
)
from data_tools.records import BadInputPolicy, DatasetError, Record

#: Name of the union of the four ISIC 2017 Part 2 feature masks (AttnMel's "Dermo" ROI).
DERMO_UNION = "dermo"


# ----------------------------------------------------------------------------- ISIC 2016


def read_isic2016_part1(
    root: str | Path,
    split: str = "train",
    *,
    skip_bad: bool | BadInputPolicy = False,
    validate: Validation = "full",
    cache_dir: str | Path | None = None,
) -> list[Record]:
    """ISIC 2016 Part 1 (lesion segmentation): ``mask_paths={"lesion": ...}``.

    Args:
        root: folder holding ``ISBI2016_ISIC_Part1_{Training,Test}_Data`` and
            ``..._GroundTruth`` (masks ``ISIC_<id>_Segmentation.png``).
        split: ``"train"`` (900 images) or ``"test"`` (379).
        skip_bad: log and leave out bad samples instead of raising; a
            ``BadInputPolicy`` also collects them in ``.skipped``.
        validate: ``"full"`` or ``"header"`` (see :mod:`data_tools.imageio`).
        cache_dir: where files that TensorFlow would misread (palette PNG masks,
            whose indices it turns into colours) are converted to PNG once
            (default ``<root>/.converted``; see
            :func:`data_tools.imageio.validate_records`).
    """
    dataset, folders = _open_split(
        "ISIC 2016 Part 1", layouts.ISIC2016_LAYOUT, root, split, skip_bad, validate, cache_dir
    )
    images = dataset.images(dataset.scan(folders["part1_images"], layouts.ISIC_IMAGE_SUFFIX))
    truths = {"lesion": dataset.files(folders["part1"], layouts.ISIC2016_MASK_SUFFIX)}
    return _read(dataset, images, truths, validate=validate)


def read_isic2016_part3(
    root: str | Path,
    split: str = "train",
    *,
    skip_bad: bool | BadInputPolicy = False,
    validate: Validation = "full",
    cache_dir: str | Path | None = None,
) -> list[Record]:
    """ISIC 2016 Part 3 (melanoma classification): ``labels={"melanoma": 0.0 | 1.0}``.

    The ground-truth CSVs have no header; the training one holds
    ``ISIC_<id>,benign|malignant``, the test one ``ISIC_<id>,0.0|1.0``. Both
    spellings are accepted in either file. Arguments as in :func:`read_isic2016_part1`.
    """
    dataset, folders = _open_split(
        "ISIC 2016 Part 3", layouts.ISIC2016_LAYOUT, root, split, skip_bad, validate, cache_dir
    )
    images = dataset.images(dataset.scan(folders["part3_images"], layouts.ISIC_IMAGE_SUFFIX))
    truths = {"labels": dataset.isic2016_labels(folders["part3"])}
    return _read(dataset, images, truths, validate=validate)


# ----------------------------------------------------------------------------- ISIC 2017


def read_isic2017(
    root: str | Path,
    split: str = "train",
    *,
    parts: Sequence[int] = (1, 3),
    skip_bad: bool | BadInputPolicy = False,
    validate: Validation = "full",
    cache_dir: str | Path | None = None,
) -> list[Record]:
    """ISIC 2017 (2000 training, 150 validation, 600 test images).

    Args:
        root: folder holding the ``ISIC-2017_{Training,Validation,Test_v2}_*``
            folders and CSVs.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        parts: ground truth to attach; ``()`` reads the images alone.
            1: ``mask_paths["lesion"]`` (``ISIC_<id>_segmentation.png``).
            2: ``extra["superpixels"]`` (``ISIC_<id>_superpixels.png`` beside the
            images) and ``extra["features"]`` (``ISIC_<id>_features.json``); turn
            them into masks with :func:`write_isic2017_feature_masks`.
            3: ``labels`` ``{"melanoma", "seborrheic_keratosis"}`` (0.0/1.0;
            nevus is both 0) from the CSV with header
            ``image_id,melanoma,seborrheic_keratosis``.
        skip_bad, validate, cache_dir: as in :func:`read_isic2016_part1`.
    """
    parts = _check_choices("parts", parts, (1, 2, 3))
    dataset, folders = _open_split("ISIC 2017", layouts.ISIC2017_LAYOUT, root, split, skip_bad, validate, cache_dir)
    image_folder = dataset.scan(folders["images"], layouts.ISIC_IMAGE_SUFFIX, layouts.ISIC2017_SUPERPIXELS_SUFFIX)
    images = dataset.images(image_folder)
    truths: dict[str, _GroundTruth] = {}
    if 1 in parts:
        truths["lesion"] = dataset.files(folders["part1"], layouts.ISIC2017_MASK_SUFFIX)
    if 2 in parts:
        truths["superpixels"] = image_folder.truth(layouts.ISIC2017_SUPERPIXELS_SUFFIX, "extra")
        truths["features"] = dataset.files(folders["part2"], layouts.ISIC2017_FEATURES_SUFFIX, "extra")
    if 3 in parts:
        truths["labels"] = dataset.isic2017_labels(folders["part3"])
    return _read(dataset, images, truths, validate=validate)


def rasterise_isic2017_features(superpixels_png: str | Path, features_json: str | Path) -> dict[str, np.ndarray]:
    """ISIC 2017 Part 2 dermoscopic features as ``uint8`` 0/255 masks.

    The superpixel PNG encodes each pixel's superpixel index as
    ``R + (G << 8) + (B << 16)``; the JSON maps each feature (``pigment_network``,
    ``negative_network``, ``milia_like_cyst``, ``streaks``) to one 0/1 value per
    superpixel. A pixel is 255 in a feature's mask when its superpixel has it.

    Raises:
        DatasetError: unreadable files, a missing feature, lists of unequal length,
            values other than 0/1, or superpixel indices beyond the lists.
    """
    superpixels_png, features_json = Path(superpixels_png), Path(features_json)
    rgb = load_image(superpixels_png).astype(np.int64)
    index = rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)
    features = _read_features_json(features_json)
    count = len(next(iter(features.values())))
    if index.max() >= count:
        raise DatasetError(
            superpixels_png,
            f"superpixel index {index.max()} out of range: {features_json.name} labels {count} superpixels",
        )
    return {name: np.where(values[index], 255, 0).astype(np.uint8) for name, values in features.items()}


def write_isic2017_feature_masks(records: Iterable[Record], cache_dir: str | Path) -> list[Record]:
    """Writes each record's Part 2 feature masks once as PNGs; returns updated records.

    For every record read with ``parts`` including 2, writes
    ``<cache_dir>/<id>_<feature>.png`` for the four features of
    :data:`~data_tools.layouts.ISIC2017_FEATURES` and ``<id>_dermo.png``, their
    union (AttnMel's "Dermo" attention ROI, AttnMel Sec. 2.2), and adds them to
    ``mask_paths`` under those names. Masks newer than their sources are reused.

    Raises:
        ValueError: a record without Part 2 files.
        DatasetError: bad Part 2 files, or superpixels whose size differs from the image.
    """
    cache_dir = Path(cache_dir)
    records = list(records)
    names = (*layouts.ISIC2017_FEATURES, DERMO_UNION)
    updated = []
    for record in tqdm(
        records, desc="ISIC 2017 feature masks", unit="image", disable=len(records) < PROGRESS_MIN_ITEMS
    ):
        if not {"superpixels", "features"} <= set(record.extra):
            raise ValueError(
                f"record {record.image_id} has no Part 2 files: read it with read_isic2017(..., parts=(..., 2))"
            )
        sources = (record.extra["superpixels"], record.extra["features"])
        paths = {name: cache_dir / f"{record.image_id}_{name}.png" for name in names}
        if not all(is_up_to_date(path, sources) for path in paths.values()):
            _write_feature_masks(record, paths)
        updated.append(dataclasses.replace(record, mask_paths={**record.mask_paths, **paths}))
    return updated


# ----------------------------------------------------------------------------- ISIC 2018


def read_isic2018(
    root: str | Path,
    split: str = "train",
    *,
    tasks: Sequence[int] = (1,),
    skip_bad: bool | BadInputPolicy = False,
    validate: Validation = "full",
    cache_dir: str | Path | None = None,
) -> list[Record]:
    """ISIC 2018 Tasks 1-2 (2594 training, 100 validation, 1000 test images).

    Args:
        root: folder holding ``ISIC2018_Task1-2_{Training,Validation,Test}_Input``
            and the ground-truth folders.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        tasks: ground truth to attach; ``()`` reads the images alone.
            1: ``mask_paths["lesion"]`` (``ISIC_<id>_segmentation.png``).
            2: one mask per attribute of
            :data:`~data_tools.layouts.ISIC2018_ATTRIBUTES`
            (``ISIC_<id>_attribute_<name>.png``; many are all zero).
        skip_bad, validate, cache_dir: as in :func:`read_isic2016_part1`.
    """
    tasks = _check_choices("tasks", tasks, (1, 2))
    dataset, folders = _open_split("ISIC 2018", layouts.ISIC2018_LAYOUT, root, split, skip_bad, validate, cache_dir)
    images = dataset.images(dataset.scan(folders["images"], layouts.ISIC_IMAGE_SUFFIX))
    truths: dict[str, _GroundTruth] = {}
    if 1 in tasks:
        truths["lesion"] = dataset.files(folders["task1"], layouts.ISIC2018_MASK_SUFFIX)
    if 2 in tasks:
        suffixes = {a: layouts.isic2018_attribute_suffix(a) for a in layouts.ISIC2018_ATTRIBUTES}
        task2 = dataset.scan(folders["task2"], *suffixes.values())
        for attribute, suffix in suffixes.items():
            truths[attribute] = task2.truth(suffix)
    return _read(dataset, images, truths, validate=validate)


# ----------------------------------------------------------------------------- shared


@dataclasses.dataclass(frozen=True)
class _GroundTruth:
    """One kind of per-image ground truth, found in one folder or CSV.

    ``found`` maps image id -> file path or label dict; ``None`` marks a CSV row
    that was already rejected. ``expected`` names what an id should have.
    """

    source: Path
    found: Mapping[str, Any]
    expected: Callable[[str], str]
    kind: Literal["mask", "extra", "labels"] = "mask"  # where it goes in the Record


@dataclasses.dataclass(frozen=True)
class _Folder:
    """A scanned official folder: its files ``ISIC_<id><suffix>`` by suffix, then id."""

    path: Path
    by_suffix: Mapping[str, Mapping[str, Path]]

    def truth(self, suffix: str, kind: str = "mask") -> _GroundTruth:
        return _GroundTruth(self.path, self.by_suffix[suffix], lambda i: f"{i}{suffix}", kind)


@dataclasses.dataclass(frozen=True)
class _DatasetSplit:
    """One split of one dataset under ``root``: finds its folders and files."""

    name: str
    split: str
    root: Path
    policy: BadInputPolicy
    cache_dir: Path

    def folder(self, name: str) -> Path:
        """The official folder ``name`` under root; an error says which was expected."""
        path = self.root / name
        if not path.is_dir():
            raise DatasetError(
                path,
                f"missing folder: {self.name} {self.split} expects the official folder {name!r} under {self.root}",
            )
        return path

    def csv_file(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise DatasetError(
                path,
                f"missing file: {self.name} {self.split} expects the official CSV {name!r} under {self.root}",
            )
        return path

    def scan(self, folder_name: str, *suffixes: str) -> _Folder:
        """The files ``ISIC_<7 digits><suffix>`` of an official folder, for each of its
        official ``suffixes`` (their case ignored).

        Nothing is dropped without a word: any other file with an image extension (or
        the extension of one of the suffixes) is rejected as off the naming pattern,
        and two files for one id (names differing only in case, as ``.jpg`` and
        ``.JPG``) are an error naming both, even with ``skip_bad``: which one is meant
        is not for a reader to guess. Other files (``LICENSE.txt``, metadata CSVs) are
        ignored.
        """
        folder = self.folder(folder_name)
        official = {suffix.lower(): suffix for suffix in suffixes}
        either = "|".join(re.escape(suffix) for suffix in suffixes)
        pattern = re.compile(rf"^(ISIC_\d{{7}})((?i:{either}))$")
        watched = {*IMAGE_SUFFIXES, ".gif", *(Path(suffix).suffix.lower() for suffix in suffixes)}
        found: dict[str, dict[str, Path]] = {suffix: {} for suffix in suffixes}
        for path in list_folder(folder):
            if path.name.startswith(".") or not path.is_file():
                continue
            match = pattern.match(path.name)
            if match is None:
                if path.suffix.lower() in watched:
                    expected = " or ".join(f"ISIC_<7 digits>{suffix}" for suffix in suffixes)
                    self.policy.reject(
                        path, f"not an official ISIC file name: {self.name} expects {expected} in {folder.name}"
                    )
                continue
            image_id, files = match.group(1), found[official[match.group(2).lower()]]
            if image_id in files:
                raise DatasetError(
                    path,
                    f"two files for {image_id}: {files[image_id].name} and {path.name} (names "
                    "differ only in case); keep one",
                )
            files[image_id] = path
        return _Folder(folder, found)

    def images(self, folder: _Folder) -> tuple[Path, dict[str, Path]]:
        """The ``ISIC_<7 digits>.jpg`` images of a scanned folder, by id; none is an error."""
        found = folder.by_suffix[layouts.ISIC_IMAGE_SUFFIX]
        if not found:
            raise DatasetError(folder.path, f"empty folder: no ISIC_<7 digits>.jpg images ({self.name} {self.split})")
        return folder.path, found

    def files(self, folder_name: str, suffix: str, kind: str = "mask") -> _GroundTruth:
        """Files ``ISIC_<id><suffix>`` of an official folder holding only those."""
        return self.scan(folder_name, suffix).truth(suffix, kind)

    def isic2016_labels(self, csv_name: str) -> _GroundTruth:
        """2016 Part 3 CSV without header: ``id,benign|malignant`` or ``id,0.0|1.0``."""
        path = self.csv_file(csv_name)

        def labels(row: list[str]) -> dict[str, float] | str:
            if len(row) != 2:
                return f"expected 2 cells (ISIC_<id>,label), got {len(row)}: {','.join(row)}"
            value = layouts.ISIC2016_PART3_CLASSES.get(row[1].lower(), _as_binary(row[1]))
            if value is None:
                return f"label {row[1]!r} for {row[0]} is not benign, malignant, 0 or 1"
            return {"melanoma": float(value)}

        found = _labels_by_id(path, _csv_rows(path), self.policy, 0, labels)
        return _GroundTruth(path, found, lambda i: f"a row for {i}", "labels")

    def isic2017_labels(self, csv_name: str) -> _GroundTruth:
        """2017 Part 3 CSV with header ``image_id,melanoma,seborrheic_keratosis``."""
        path = self.csv_file(csv_name)
        rows = _csv_rows(path)
        _, header = next(rows)
        missing = [c for c in layouts.ISIC2017_PART3_COLUMNS if c not in header]
        if missing:
            raise DatasetError(
                path,
                f"missing column(s) {', '.join(missing)}; header is {','.join(header)}; "
                f"expected {','.join(layouts.ISIC2017_PART3_COLUMNS)}",
            )
        id_column, *label_columns = (header.index(c) for c in layouts.ISIC2017_PART3_COLUMNS)
        names = layouts.ISIC2017_PART3_COLUMNS[1:]

        def labels(row: list[str]) -> dict[str, float] | str:
            if len(row) != len(header):
                return f"expected {len(header)} cells ({','.join(header)}), got {len(row)}"
            values = [_as_binary(row[c]) for c in label_columns]
            if None in values:
                return f"labels for {row[id_column]} must be 0 or 1, got {row}"
            if all(values):
                return (
                    f"{row[id_column]} is labelled both {' and '.join(names)}: a lesion is one of "
                    "melanoma, seborrheic keratosis or nevus (both 0)"
                )
            return {name: float(value) for name, value in zip(names, values, strict=True)}

        found = _labels_by_id(path, rows, self.policy, id_column, labels)
        return _GroundTruth(path, found, lambda i: f"a row for {i}", "labels")


def _labels_by_id(
    path: Path,
    rows: Iterable[tuple[int, list[str]]],
    policy: BadInputPolicy,
    id_column: int,
    labels: Callable[[list[str]], dict[str, float] | str],
) -> dict[str, dict[str, float] | None]:
    """Each CSV row's labels by image id; ``labels(row)`` returns them or the problem.

    A row whose id is off the ISIC pattern, whose labels are bad, or whose id came
    before (with other labels: "conflicting rows"; the same: "duplicate row") goes to
    ``policy.reject``; its id then maps to ``None`` (already rejected), so that with
    ``skip_bad`` an image with contradicting rows is left out, not given either.
    """
    found: dict[str, dict[str, float] | None] = {}
    first_line: dict[str, int] = {}
    for line, row in rows:
        image_id = row[id_column] if len(row) > id_column else ""
        if not layouts.ISIC_IMAGE_ID.match(image_id):
            policy.reject(path, f"line {line}: {image_id!r} is not an ISIC_<7 digits> image id")
            continue
        first = first_line.setdefault(image_id, line)
        given = labels(row)
        if first != line:
            previous = found[image_id]
            problem = (
                f"conflicting rows for {image_id}: line {first} gives {previous}, line {line} gives {given}"
                if isinstance(given, dict) and previous is not None and previous != given
                else f"duplicate row for {image_id} (also line {first})"
            )
        elif isinstance(given, str):
            problem = given
        else:
            found[image_id] = given
            continue
        found[image_id] = None
        policy.reject(path, f"line {line}: {problem}")
    return found


def _read(
    dataset: _DatasetSplit,
    image_files: tuple[Path, Mapping[str, Path]],
    truths: Mapping[str, _GroundTruth],
    *,
    validate: Validation,
) -> list[Record]:
    """Joins images (folder, files by id) with their ground truth; validates records."""
    folder, images = image_files
    records = []
    for image_id, found in _join(folder, images, truths, dataset.policy).items():
        by_kind = {
            kind: {name: found[name] for name, t in truths.items() if t.kind == kind} for kind in ("mask", "extra")
        }
        records.append(
            Record(
                image_id=image_id,
                image_path=images[image_id],
                mask_paths=by_kind["mask"],
                labels=found.get("labels", {}),
                extra=by_kind["extra"],
            )
        )
    return validate_records(
        records,
        dataset.policy,
        cache_dir=dataset.cache_dir,
        validate=validate,
        description=f"{dataset.name} {dataset.split}",
    )


def _join(
    image_folder: Path,
    images: Mapping[str, Path],
    truths: Mapping[str, _GroundTruth],
    policy: BadInputPolicy,
) -> dict[str, dict[str, Any]]:
    """Per image id (sorted), its ground truth by name; orphans on either side rejected."""
    for truth in truths.values():
        for image_id in sorted(set(truth.found) - set(images)):
            where = truth.source if truth.kind == "labels" else truth.found[image_id]
            policy.reject(
                where,
                f"ground truth for {image_id} but no image {image_id}{layouts.ISIC_IMAGE_SUFFIX} in {image_folder}",
            )
    joined = {}
    for image_id in sorted(images):
        missing = [t for t in truths.values() if image_id not in t.found]
        if missing:
            policy.reject(
                images[image_id],
                "no ground truth: expected " + "; ".join(f"{t.expected(image_id)} in {t.source}" for t in missing),
            )
            continue
        found = {name: truth.found[image_id] for name, truth in truths.items()}
        if all(value is not None for value in found.values()):  # None: row already rejected
            joined[image_id] = found
    return joined


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Non-empty CSV rows (cells stripped) with their 1-based line numbers.

    UTF-8 with or without a byte-order mark, or UTF-16 with one (either byte order);
    anything else, an unreadable file or an empty one is a :class:`DatasetError`.
    """
    reader = csv.reader(io.StringIO(_csv_text(path), newline=""))
    empty = True
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                empty = False
                yield reader.line_num, [cell.strip() for cell in row]
    except csv.Error as error:
        raise DatasetError(path, f"line {reader.line_num}: not valid CSV ({error})") from None
    if empty:
        raise DatasetError(path, "empty CSV: no rows")


def _csv_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(path, f"cannot read the file ({error.strerror or error})") from None
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DatasetError(
            path,
            f"line {line}: not {'UTF-16' if utf16 else 'UTF-8'} text (byte "
            f"0x{data[error.start]:02x} at offset {error.start}); save the CSV as UTF-8",
        ) from None
    if "\0" in text:
        raise DatasetError(path, "NUL characters (UTF-16 without a byte-order mark?); save the CSV as UTF-8")
    return text


def _as_binary(text: str) -> int | None:
    """0 or 1 from ``"0"``, ``"1.0"`` and the like; ``None`` for anything else."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value in (0.0, 1.0) else None


def _read_features_json(path: Path) -> dict[str, np.ndarray]:
    content = read_json_object(path)
    missing = [name for name in layouts.ISIC2017_FEATURES if name not in content]
    if missing:
        raise DatasetError(path, f"missing feature(s) {', '.join(missing)}")
    features = {}
    for name in layouts.ISIC2017_FEATURES:
        values = np.asarray(content[name])
        if values.ndim != 1 or not np.isin(values, (0, 1)).all():
            raise DatasetError(path, f"feature {name!r} must be a list of 0/1 values")
        features[name] = values.astype(bool)
    lengths = {name: len(values) for name, values in features.items()}
    if len(set(lengths.values())) != 1:
        raise DatasetError(path, f"feature lists differ in length: {lengths}")
    return features


def _write_feature_masks(record: Record, paths: Mapping[str, Path]) -> None:
    superpixels = record.extra["superpixels"]
    map_size = read_image_header(superpixels)[:2]
    image_size = read_image_header(record.image_path)[:2]
    if map_size != image_size:
        raise DatasetError(
            superpixels,
            f"superpixel map size {map_size[0]}x{map_size[1]} differs from its image "
            f"{record.image_path.name}'s {image_size[0]}x{image_size[1]} (height x width)",
        )
    masks = rasterise_isic2017_features(superpixels, record.extra["features"])
    masks[DERMO_UNION] = np.maximum.reduce(list(masks.values()))
    for name, path in paths.items():
        save_png(path, masks[name])


def _open_split(
    name: str,
    layout: Mapping[str, Mapping[str, str]],
    root: str | Path,
    split: str,
    skip_bad: bool | BadInputPolicy,
    validate: str,
    cache_dir: str | Path | None,
) -> tuple[_DatasetSplit, Mapping[str, str]]:
    """Checks a reader's arguments; returns the split and its official names."""
    if split not in layout:
        raise ValueError(f"split for {name} must be one of {tuple(layout)}, got {split!r}")
    check_validation_level(validate)
    root = Path(root)
    cache = Path(cache_dir) if cache_dir is not None else root / ".converted"
    return _DatasetSplit(name, split, root, as_policy(skip_bad), cache), layout[split]


def _check_choices(argument: str, given: Sequence[int], allowed: Sequence[int]) -> tuple[int, ...]:
    chosen = tuple(given)
    if not set(chosen) <= set(allowed):
        raise ValueError(f"{argument} must be drawn from {tuple(allowed)}, got {chosen}")
    return chosen
