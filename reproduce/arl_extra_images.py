"""Select and download ARL-CNN's 1320 extra ISIC Archive images (Sec. IV-A).

    python reproduce/arl_extra_images.py --isic2017 data/isic2017 --dest data/isic_archive_extra

The paper enlarges the 2000 ISIC 2017 training images with "1320 additional
dermoscopy images, including 466 melanoma, 822 nevus and 32 seborrheic keratosis"
from the ISIC Archive, and does not list them. This command draws a seeded sample
with those class counts from the archive's dermoscopic images (through its public
search API, the one ``isic-cli`` uses: :mod:`data_tools.isic_archive`), leaving out
every ISIC 2017 challenge image (training, validation and test: found in
``--isic2017``), and writes into ``--dest``:

* ``selection.json``: the searches, counts, seed and the chosen ids; a later run
  reuses it (the same images, whatever the archive holds by then) and refuses other
  settings unless ``--reselect``;
* ``images/<isic_id>.jpg`` (resumable: existing images that decode are kept);
* ``extra_images.csv``: ``image_id,melanoma,seborrheic_keratosis,path`` in the
  ISIC 2017 Part 3 format, which the ARL table scripts read with ``--extra-images``
  (:func:`read_extra_images`; any list in that format works, with an optional
  ``path`` column, absolute or relative to the CSV's folder).

The searches follow the archive's search syntax (``isic image download --search``);
``--search CLASS=QUERY`` replaces one.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Sequence

from data_tools.download import DownloadError
from data_tools.isic_archive import download_images, read_ids, resolve_api_url, search_all, select_sample
from data_tools.layouts import ISIC_IMAGE_ID, ISIC_IMAGE_SUFFIX
from data_tools.records import BadInputPolicy, DatasetError, Record
from zoo.arl_cnn.recipe import ARL_EXTRA_IMAGES

SEARCHES = {
    "melanoma": 'diagnosis:"melanoma" AND image_type:dermoscopic',
    "nevus": 'diagnosis:"nevus" AND image_type:dermoscopic',
    "seborrheic_keratosis": 'diagnosis:"seborrheic keratosis" AND image_type:dermoscopic',
}
"""The archive searches of the three classes (the ISIC 2017 diagnoses)."""
SELECTION_FILE = "selection.json"
LIST_FILE = "extra_images.csv"
IMAGES_DIR = "images"
DEFAULT_DEST = Path("data/isic_archive_extra")
DEFAULT_LIST = DEFAULT_DEST / LIST_FILE
"""Where this command writes its list, which the ARL tables read by default."""
SYNTHETIC_LIST = Path("isic_archive") / LIST_FILE
"""Under ``--smoke``: the synthetic extras' list, relative to the synthetic data's parent."""
_SYNTHETIC_ID_OFFSET = 300_000  # beyond the synthetic ISIC 2017 splits' ids (0, 100000, 200000)
LABELS = {"melanoma": (1, 0), "nevus": (0, 0), "seborrheic_keratosis": (0, 1)}
"""Class -> (melanoma, seborrheic_keratosis), the ISIC 2017 Part 3 columns."""
TASKS = ("melanoma", "seborrheic_keratosis")
EXTRA_COLUMNS = ("image_id", *TASKS)


def _search_flag(text: str) -> tuple[str, str]:
    name, _, query = text.partition("=")
    if name not in SEARCHES or not query.strip():
        raise argparse.ArgumentTypeError(
            f"--search: expected CLASS=QUERY with CLASS one of {sorted(SEARCHES)}, got {text!r}"
        )
    return name, query.strip()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python reproduce/arl_extra_images.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--isic2017", type=Path, required=True, help="the ISIC 2017 folder: its images are never selected"
    )
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default: %(default)s)")
    parser.add_argument(
        "--search",
        type=_search_flag,
        action="append",
        default=[],
        metavar="CLASS=QUERY",
        help="replace a class's archive search",
    )
    parser.add_argument("--api-url", help="ISIC Archive API (default: $ISIC_ARCHIVE_API or the public one)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: %(default)s)")
    parser.add_argument("--reselect", action="store_true", help="draw a new sample over an existing selection")
    return parser.parse_args(argv)


def choose(args: argparse.Namespace) -> dict:
    """The selection: read from ``--dest`` when it exists with these settings, else drawn."""
    searches = {**SEARCHES, **dict(args.search)}
    settings = {"seed": args.seed, "counts": ARL_EXTRA_IMAGES, "searches": searches}
    path = args.dest / SELECTION_FILE
    if path.is_file() and not args.reselect:
        selection = json.loads(path.read_text(encoding="utf-8"))
        differing = sorted(key for key, value in settings.items() if selection.get(key) != value)
        if differing:
            raise SystemExit(
                f"error: {path} was made with other {', '.join(differing)}; pass the same "
                "settings, or --reselect to draw a new sample"
            )
        return selection
    if not args.isic2017.is_dir():
        raise SystemExit(
            f"error: --isic2017 {args.isic2017} is not a folder; its images must be left out "
            "(python -m data_tools.download isic2017 --dest data/isic2017)"
        )
    exclude = read_ids([args.isic2017])
    if not exclude:
        raise SystemExit(f"error: no ISIC image found under {args.isic2017}: is it the ISIC 2017 folder?")
    candidates = search_all(searches, api_url=args.api_url, timeout=args.timeout)
    sample = select_sample(candidates, ARL_EXTRA_IMAGES, exclude=exclude, seed=args.seed)
    selection = {
        **settings,
        "api": resolve_api_url(args.api_url),
        "excluded_challenge_images": len(exclude),
        "images": sample,
    }
    args.dest.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(selection, indent=2), encoding="utf-8")
    return selection


def write_list(selection: dict, dest: Path) -> Path:
    """``extra_images.csv`` of the selection, in the ISIC 2017 Part 3 format."""
    path = dest / LIST_FILE
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "melanoma", "seborrheic_keratosis", "path"])
        for name, images in selection["images"].items():
            for isic_id in sorted(images):
                writer.writerow([isic_id, *LABELS[name], f"{IMAGES_DIR}/{isic_id}.jpg"])
    return path


def _label(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value in (0.0, 1.0) else None


def _extra_record(row: dict[str, str], line: int, path: Path, policy: BadInputPolicy) -> Record | None:
    """One CSV row as a record, or None (after ``policy.reject``) when it is bad."""
    image_id = (row.get("image_id") or "").strip()
    if not ISIC_IMAGE_ID.match(image_id):
        policy.reject(path, f"line {line}: {image_id!r} is not an ISIC_<7 digits> image id")
        return None
    labels = {task: _label((row.get(task) or "").strip()) for task in TASKS}
    if None in labels.values() or sum(labels.values()) > 1:
        policy.reject(
            path,
            f"line {line}: labels of {image_id} must be 0 or 1 and not both 1, got {[row.get(task) for task in TASKS]}",
        )
        return None
    image = Path((row.get("path") or "").strip() or f"{image_id}{ISIC_IMAGE_SUFFIX}")
    image = image if image.is_absolute() else path.parent / image
    if not image.is_file():
        policy.reject(path, f"line {line}: image of {image_id} not found at {image}")
        return None
    return Record(image_id, image, labels=labels)


def read_extra_images(
    path: str | Path, challenge_ids: set[str], *, skip_bad: bool | BadInputPolicy = False
) -> list[Record]:
    """The extra training images listed in ``path`` (format: module docstring).

    Args:
        path: the CSV.
        challenge_ids: the ISIC 2017 image ids (every split); listed extras among
            them are refused.
        skip_bad: leave bad rows out (logged; a policy collects them) instead of raising.

    Raises:
        DatasetError: naming the CSV (and line): missing, without the columns, with a
            bad id, label, or missing image, a repeated id, or an ISIC 2017 image.
    """
    path = Path(path)
    policy = skip_bad if isinstance(skip_bad, BadInputPolicy) else BadInputPolicy(skip_bad)
    if not path.is_file():
        raise DatasetError(path, "the --extra-images list does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in EXTRA_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DatasetError(path, f"missing column(s) {missing}; expected {','.join(EXTRA_COLUMNS)}[,path]")
        records: dict[str, Record] = {}
        for line, row in enumerate(reader, start=2):
            record = _extra_record(row, line, path, policy)
            if record is None:
                continue
            if record.image_id in records:
                policy.reject(path, f"line {line}: {record.image_id} is listed twice")
            elif record.image_id in challenge_ids:
                policy.reject(
                    path,
                    f"line {line}: {record.image_id} is an ISIC 2017 challenge "
                    "image (training, validation or test): not an extra image",
                )
            else:
                records[record.image_id] = record
    if not records:
        raise DatasetError(path, "lists no usable image")
    return list(records.values())


def extra_images_argument(text: str) -> Path | None:
    """argparse ``type`` of ``--extra-images``: a list's path, or ``none`` (no extras)."""
    return None if text.lower() == "none" else Path(text)


def write_synthetic_extras(root: Path, count: int = 3) -> Path:
    """Synthetic extras for ``--smoke``: ``count`` images of an ISIC 2017 stand-in,
    listed in ``root /`` :data:`SYNTHETIC_LIST` with ids beyond the challenge's."""
    from data_tools.isic import read_isic2017
    from data_tools.synthetic import make_isic2017

    listed = root / SYNTHETIC_LIST
    archive = make_isic2017(listed.parent / IMAGES_DIR, n_train=count, n_val=0, n_test=0, image_size=(48, 64), seed=1)
    with listed.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*EXTRA_COLUMNS, "path"])
        for index, record in enumerate(read_isic2017(archive, "train", parts=(3,))):
            writer.writerow(
                [
                    f"ISIC_{_SYNTHETIC_ID_OFFSET + index:07d}",
                    *(int(record.labels[task]) for task in TASKS),
                    record.image_path.relative_to(listed.parent),
                ]
            )
    return listed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        selection = choose(args)
        urls = {isic_id: url for images in selection["images"].values() for isic_id, url in images.items()}
        download_images(urls, args.dest / IMAGES_DIR, timeout=args.timeout)
    except (DownloadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    path = write_list(selection, args.dest)
    counts = ", ".join(f"{len(images)} {name}" for name, images in selection["images"].items())
    print(f"{len(urls)} ISIC Archive images ({counts}) in {args.dest / IMAGES_DIR}; list: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
