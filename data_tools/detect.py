"""Which dataset layout a folder holds: the ISIC years and tasks, mask folders, Labelme.

``python -m zoo.train --data DIR`` reads any layout the readers know; this module
tells which one ``DIR`` holds by the official folder and file names of
:mod:`data_tools.layouts` (nothing is decoded), so that the command needs no
``--layout`` for a dataset unpacked as distributed:

- ``isic2016-part1``: ``ISBI2016_ISIC_Part1_Training_Data`` and ``..._GroundTruth`` (reader:
  :func:`~data_tools.isic.read_isic2016_part1`)
- ``isic2016-part3``: ``ISBI2016_ISIC_Part3_Training_Data`` and ``..._GroundTruth.csv`` (reader:
  :func:`~data_tools.isic.read_isic2016_part3`)
- ``isic2017-part1``: ``ISIC-2017_Training_Data`` and ``..._Part1_GroundTruth`` (reader:
  :func:`~data_tools.isic.read_isic2017`)
- ``isic2017-part3``: ``ISIC-2017_Training_Data`` and ``..._Part3_GroundTruth.csv`` (reader:
  :func:`~data_tools.isic.read_isic2017`)
- ``isic2018-task1``: ``ISIC2018_Task1-2_Training_Input`` and ``..._Task1_Training_GroundTruth``
  (reader: :func:`~data_tools.isic.read_isic2018`)
- ``isic2018-task2``: ``ISIC2018_Task1-2_Training_Input`` and
  ``..._Task2_Training_GroundTruth_v3`` (reader: :func:`~data_tools.isic.read_isic2018`)
- ``mask-folder``: ``images/`` and ``masks/`` (reader: :func:`~data_tools.folders.read_mask_folder`)
- ``labelme``: ``*.json`` files in the folder itself (reader: :func:`~data_tools.folders.read_labelme`)

A folder may hold several (ISIC 2017 has lesion masks and diagnoses; an ISIC root
may hold every year): :func:`detect_layout` keeps those whose targets fit the model
(``"masks"`` or ``"labels"``, and the number of mask channels when given) and asks
for ``--layout`` when more than one is left. An ISIC layout whose official
validation split is present too (2017, 2018) says so (:attr:`Layout.validation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from data_tools import layouts
from data_tools.records import DatasetError

Target = Literal["masks", "labels"]


class LayoutError(DatasetError):
    """No known layout, or several, in a dataset folder; the message lists what was looked for."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """One dataset layout a reader knows.

    Attributes:
        name: ``--layout`` value, e.g. ``"isic2018-task1"``.
        target: ``"masks"`` (segmentation) or ``"labels"`` (image classification).
        train: the paths, relative to the dataset folder, that must all exist
            (folders end with ``/``).
        validation: the official validation split's paths (empty: the dataset has none).
        channels: the mask channels the layout gives (``None``: labels, or class
            indices whose count depends on the data).
        description: a line for messages and ``--help``.
    """

    name: str
    target: Target
    train: tuple[str, ...]
    validation: tuple[str, ...] = ()
    channels: int | None = None
    description: str = ""

    def present(self, folder: Path) -> bool:
        """Whether every training path exists under ``folder``."""
        if self.name == "labelme":
            return _has_json(folder)
        return all(_exists(folder, path) for path in self.train)

    def has_validation(self, folder: Path) -> bool:
        """Whether the official validation split is under ``folder`` too."""
        return bool(self.validation) and all(_exists(folder, path) for path in self.validation)

    def looked_for(self) -> str:
        return " and ".join(self.train)


def _exists(folder: Path, path: str) -> bool:
    return (folder / path).is_dir() if path.endswith("/") else (folder / path).is_file()


def _has_json(folder: Path) -> bool:
    try:
        return any(path.suffix.lower() == ".json" and path.is_file() for path in folder.iterdir())
    except OSError:
        return False


_2016, _2017, _2018 = layouts.ISIC2016_LAYOUT, layouts.ISIC2017_LAYOUT, layouts.ISIC2018_LAYOUT

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "isic2016-part1",
            "masks",
            (_2016["train"]["part1_images"] + "/", _2016["train"]["part1"] + "/"),
            channels=1,
            description="ISIC 2016 Part 1, lesion masks",
        ),
        Layout(
            "isic2016-part3",
            "labels",
            (_2016["train"]["part3_images"] + "/", _2016["train"]["part3"]),
            description="ISIC 2016 Part 3, melanoma labels",
        ),
        Layout(
            "isic2017-part1",
            "masks",
            (_2017["train"]["images"] + "/", _2017["train"]["part1"] + "/"),
            (_2017["validation"]["images"] + "/", _2017["validation"]["part1"] + "/"),
            channels=1,
            description="ISIC 2017 Part 1, lesion masks",
        ),
        Layout(
            "isic2017-part3",
            "labels",
            (_2017["train"]["images"] + "/", _2017["train"]["part3"]),
            (_2017["validation"]["images"] + "/", _2017["validation"]["part3"]),
            description="ISIC 2017 Part 3, melanoma and seborrheic keratosis labels",
        ),
        Layout(
            "isic2018-task1",
            "masks",
            (_2018["train"]["images"] + "/", _2018["train"]["task1"] + "/"),
            (_2018["validation"]["images"] + "/", _2018["validation"]["task1"] + "/"),
            channels=1,
            description="ISIC 2018 Task 1, lesion masks",
        ),
        Layout(
            "isic2018-task2",
            "masks",
            (_2018["train"]["images"] + "/", _2018["train"]["task2"] + "/"),
            (_2018["validation"]["images"] + "/", _2018["validation"]["task2"] + "/"),
            channels=len(layouts.ISIC2018_ATTRIBUTES),
            description="ISIC 2018 Task 2, five attribute masks",
        ),
        Layout(
            "mask-folder",
            "masks",
            ("images/", "masks/"),
            description="an image folder and a mask folder paired by file stem",
        ),
        Layout(
            "labelme",
            "masks",
            ("*.json",),
            description="Labelme annotations (polygons, rectangles, circles) rasterised to class masks",
        ),
    )
}
"""Every layout, in the order they are tried."""


def find_layouts(folder: str | Path) -> list[str]:
    """The names of every layout present in ``folder``, in :data:`LAYOUTS` order.

    Raises:
        DatasetError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "no such data folder" if not folder.exists() else "not a folder")
    return [name for name, layout in LAYOUTS.items() if layout.present(folder)]


def detect_layout(folder: str | Path, *, target: Target | None = None, channels: int | None = None) -> Layout:
    """The one layout of ``folder`` that fits a model.

    Args:
        folder: the dataset folder.
        target: the model's targets (``"masks"`` or ``"labels"``); layouts of the other
            kind are not considered.
        channels: the mask channels the model outputs: among several mask layouts,
            those that give that many (ISIC 2018 Task 1 for one channel, Task 2 for
            five) are preferred.

    Raises:
        LayoutError: no fitting layout (the message lists what was looked for), or
            several (the message lists them: pass one with ``--layout``).
    """
    folder = Path(folder)
    found = [LAYOUTS[name] for name in find_layouts(folder)]
    fitting = [layout for layout in found if target is None or layout.target == target]
    if channels is not None and len(fitting) > 1:
        exact = [layout for layout in fitting if layout.channels == channels]
        fitting = exact or fitting
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        candidates = [layout for layout in LAYOUTS.values() if target is None or layout.target == target]
        what = "; ".join(f"{layout.name}: {layout.looked_for()}" for layout in candidates)
        other = (
            f" (it holds {', '.join(layout.name for layout in found)}, whose targets are not {target})" if found else ""
        )
        raise LayoutError(
            folder, f"no dataset layout{' with ' + target if target else ''} found{other}; looked for {what}"
        )
    raise LayoutError(
        folder, f"holds several layouts ({', '.join(layout.name for layout in fitting)}); choose one with --layout"
    )


def layout_names(target: Target | None = None) -> Sequence[str]:
    """The known layout names (of one target kind)."""
    return [name for name, layout in LAYOUTS.items() if target is None or layout.target == target]


def labelme_labels(folder: str | Path) -> list[str]:
    """The shape labels of the Labelme annotations (``*.json``) in ``folder``, sorted: the
    default label map of a Labelme folder is these, indexed from 1. Files that are not
    readable Labelme JSON are passed over here (the reader reports them)."""
    import json

    labels: set[str] = set()
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() != ".json" or not path.is_file():
            continue
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        shapes = content.get("shapes") if isinstance(content, dict) else None
        for shape in shapes if isinstance(shapes, list) else ():
            if isinstance(shape, dict) and isinstance(shape.get("label"), str) and shape["label"].strip():
                labels.add(shape["label"])
    return sorted(labels)
