"""The record every dataset reader returns, and the error every reader raises.

A reader turns a dataset folder, laid out as its maintainers distribute it, into a
list of :class:`Record`. Records hold paths and labels only; pixels are decoded
later by the tf.data pipelines (``data_tools.pipeline``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Mapping

log = logging.getLogger("data_tools")


class DatasetError(ValueError):
    """A dataset file or folder is missing, unreadable or inconsistent.

    The message always names the offending file or folder and the problem.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclasses.dataclass(frozen=True)
class Record:
    """One sample of a dataset.

    Attributes:
        image_id: the dataset's identifier, e.g. ``"ISIC_0000000"``.
        image_path: the image file.
        mask_paths: ground-truth masks by name, e.g. ``{"lesion": ...}`` or one
            entry per ISIC 2018 attribute; empty for classification-only data.
        labels: class labels by name, e.g. ``{"melanoma": 1.0,
            "seborrheic_keratosis": 0.0}``; empty for segmentation-only data.
        extra: other per-sample files, e.g. ``{"superpixels": ...,
            "features": ...}`` for ISIC 2017 Part 2.
    """

    image_id: str
    image_path: Path
    mask_paths: Mapping[str, Path] = dataclasses.field(default_factory=dict)
    labels: Mapping[str, float] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, Path] = dataclasses.field(default_factory=dict)


class BadInputPolicy:
    """Raise on the first bad sample, or log it and carry on (``--skip-bad``).

    Readers call :meth:`reject` for every problem they find. With
    ``skip_bad=False`` that raises :class:`DatasetError`; with ``skip_bad=True`` it
    logs a warning, remembers the problem in :attr:`skipped`, and the reader drops
    the sample.
    """

    def __init__(self, skip_bad: bool = False):
        self.skip_bad = skip_bad
        self.skipped: list[DatasetError] = []

    def reject(self, path: str | Path, problem: str) -> None:
        error = DatasetError(path, problem)
        if not self.skip_bad:
            raise error
        log.warning("skipping: %s", error)
        self.skipped.append(error)
