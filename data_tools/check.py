"""Check a dataset folder with its reader and print a summary.

    python -m data_tools.check isic2018 data/isic2018 --split train --tasks 1 2
    python -m data_tools.check isic2017 data/isic2017 --split validation --parts 1 2 3
    python -m data_tools.check isic2016-part3 data/isic2016 --split test
    python -m data_tools.check mask-folder data/us/images --mask-dir data/us/masks --classes 3
    python -m data_tools.check labelme data/us --label-map kidney=1 hydronephrosis=2

Exit status 0 when the read succeeds (with ``--skip-bad``: skipped samples are
listed), 1 with the first problem's message when it does not.
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable, Sequence

from data_tools import folders, isic
from data_tools.records import BadInputPolicy, DatasetError, Record

Reader = Callable[[argparse.Namespace, BadInputPolicy], list[Record]]

READERS: dict[str, Reader] = {
    "isic2016-part1": lambda a, p: isic.read_isic2016_part1(
        a.root, a.split or "train", skip_bad=p, validate=a.validate
    ),
    "isic2016-part3": lambda a, p: isic.read_isic2016_part3(
        a.root, a.split or "train", skip_bad=p, validate=a.validate
    ),
    "isic2017": lambda a, p: isic.read_isic2017(
        a.root, a.split or "train", parts=a.parts, skip_bad=p, validate=a.validate
    ),
    "isic2018": lambda a, p: isic.read_isic2018(
        a.root, a.split or "train", tasks=a.tasks, skip_bad=p, validate=a.validate
    ),
    "mask-folder": lambda a, p: folders.read_mask_folder(
        a.root,
        a.mask_dir,
        mask_suffix=a.mask_suffix,
        classes=a.classes,
        skip_bad=p,
        validate=a.validate,
    ),
    "labelme": lambda a, p: folders.read_labelme(a.root, dict(a.label_map), skip_bad=p, validate=a.validate),
}


def summarise(records: Sequence[Record], skipped: Sequence[DatasetError]) -> str:
    """Counts of records, masks and positive labels, and the skipped problems."""
    lines = [f"{len(records)} records"]
    if records:
        lines.append(f"  ids: {records[0].image_id} .. {records[-1].image_id}")
    masks = collections.Counter(name for r in records for name in r.mask_paths)
    for name, count in sorted(masks.items()):
        lines.append(f"  mask {name}: {count}")
    positives: dict[str, float] = collections.defaultdict(float)
    for record in records:
        for name, value in record.labels.items():
            positives[name] += value
    for name, count in sorted(positives.items()):
        lines.append(f"  label {name}: {count:g} positive")
    extras = collections.Counter(name for r in records for name in r.extra)
    for name, count in sorted(extras.items()):
        lines.append(f"  extra {name}: {count}")
    if skipped:
        lines.append(f"{len(skipped)} skipped:")
        lines.extend(f"  {error}" for error in skipped)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.dataset == "mask-folder" and not args.mask_dir:
        parser.error("mask-folder needs --mask-dir")
    if args.dataset == "labelme" and not args.label_map:
        parser.error("labelme needs --label-map LABEL=INDEX ...")
    labels = [label for label, _ in args.label_map]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        parser.error("--label-map: " + "; ".join(f"label {label!r} given twice" for label in twice))
    policy = BadInputPolicy(skip_bad=args.skip_bad)
    try:
        records = READERS[args.dataset](args, policy)
    except (DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summarise(records, policy.skipped))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_tools.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(READERS))
    parser.add_argument("root", help="dataset folder (mask-folder: the image folder)")
    parser.add_argument("--split", help="train (default), validation or test")
    parser.add_argument("--skip-bad", action="store_true", help="skip bad samples, list them")
    parser.add_argument("--validate", choices=("full", "header"), default="full")
    parser.add_argument("--parts", type=int, nargs="*", default=[1, 3], help="ISIC 2017 parts")
    parser.add_argument("--tasks", type=int, nargs="*", default=[1], help="ISIC 2018 tasks")
    parser.add_argument("--mask-dir", help="mask-folder: the mask folder")
    parser.add_argument("--mask-suffix", default="", help="mask-folder: mask stem suffix")
    parser.add_argument("--classes", type=int, help="mask-folder: class-index masks")
    parser.add_argument(
        "--label-map",
        type=_label_entry,
        nargs="*",
        default=[],
        metavar="LABEL=INDEX",
        help="labelme: class index per label",
    )
    return parser


def _label_entry(text: str) -> tuple[str, int]:
    label, _, index = text.rpartition("=")
    if not label or not index.isdigit():
        raise argparse.ArgumentTypeError(f"expected LABEL=INDEX, got {text!r}")
    return label, int(index)


if __name__ == "__main__":
    sys.exit(main())
