"""Where a table script's data comes from: the real dataset, or a synthetic stand-in.

A table script declares the dataset it needs as a :class:`DatasetNeed`. The frame
(:mod:`reproduce.frame`) then either finds the real data (``--data-dir``, else the
need's default folder) or, under ``--smoke``, generates a small synthetic copy once
into ``<out>/synthetic_data/``. Missing real data is the one error a first-time user
always meets, so it stops with a message that says what to download, from where,
and how to try the script without it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Callable

#: Where the ISIC challenge datasets are distributed.
ISIC_DATA_SITE = "https://challenge.isic-archive.com/data/"

#: Written into a synthetic data folder once its generator has returned; holds the
#: data folder the generator returned, relative to the synthetic root.
_SYNTHETIC_DONE = ".synthetic-complete"


class MissingDataError(Exception):
    """The real dataset is not where the script looks; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class DatasetNeed:
    """The dataset a paper table is computed on.

    Attributes:
        name: the dataset as users know it, e.g. ``"ISIC 2018 Task 1"``.
        default_dir: where the script looks when ``--data-dir`` is not given
            (relative paths are relative to the working directory).
        how_to_get: the command that fetches it, e.g.
            ``"python -m data_tools.download isic2018 --dest data/isic2018"``, or
            for private data a sentence saying how to lay out one's own.
        make_synthetic: ``make_synthetic(root) -> data_dir``: writes a small
            synthetic dataset with the real one's layout under ``root`` and returns
            the folder to read it from (``root`` itself or a folder inside it).
        site: the official download page, printed beside ``how_to_get``; ``None``
            for data that has none (e.g. A-PSPNet's private renal ultrasound).
    """

    name: str
    default_dir: str | Path
    how_to_get: str
    make_synthetic: Callable[[Path], Path]
    site: str | None = ISIC_DATA_SITE


def find_real_data(need: DatasetNeed, data_dir: str | Path | None, *, prog: str) -> Path:
    """Returns the real dataset's folder: ``data_dir``, else ``need.default_dir``.

    Args:
        need: the dataset the table needs.
        data_dir: the user's ``--data-dir``, or ``None``.
        prog: the script's command, used in the message that shows ``--smoke``.

    Raises:
        MissingDataError: the folder does not exist, is not a folder, or is empty.
    """
    root = Path(data_dir if data_dir is not None else need.default_dir)
    if root.is_dir() and any(root.iterdir()):
        return root
    problem = "is empty" if root.is_dir() else ("is not a folder" if root.exists() else "does not exist")
    where = "given by --data-dir" if data_dir is not None else "the default location; pass --data-dir to use another"
    lines = [
        f"The {need.name} dataset was not found: {root} {problem} ({where}).",
        "Get it with:",
        f"    {need.how_to_get}",
    ]
    if need.site:
        lines.append(f"or from the official site: {need.site}")
    lines += [
        "To check that the whole pipeline runs without it, on small synthetic data",
        "(the numbers then mean nothing):",
        f"    {prog} --smoke",
    ]
    raise MissingDataError("\n".join(lines))


def prepare_synthetic_data(need: DatasetNeed, root: Path) -> Path:
    """Generates ``need``'s synthetic stand-in under ``root`` once; returns its folder.

    A later call finds the completion marker and reuses the data. A folder without
    the marker (a generation that was interrupted) is deleted and generated again.

    Raises:
        ValueError: ``need.make_synthetic`` did not return a folder inside ``root``.
    """
    done = root / _SYNTHETIC_DONE
    if done.is_file():
        return root / done.read_text(encoding="utf-8").strip()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    data_dir = Path(need.make_synthetic(root))
    if not data_dir.is_dir() or not data_dir.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"make_synthetic for {need.name} returned {data_dir!s}, which is not a folder inside {root!s}")
    done.write_text(str(data_dir.resolve().relative_to(root.resolve())), encoding="utf-8")
    return data_dir
