"""SANet Table 1: how often each ISIC 2018 Task 2 attribute is blank, and how small it is.

    python reproduce/sanet_table1.py --data-dir data/isic2018
    python reproduce/sanet_table1.py --smoke            # synthetic data, seconds

No model and no training: each row reads every training mask of one attribute
(``ISIC_<id>_attribute_<name>.png``, binarised at > 128 as the ISIC scorer does)
and counts

* **Blank images**: the percentage of training images whose mask has no
  foreground pixel;
* **Pixel ratio**: foreground pixels over all pixels, summed over every training
  image (blank ones included), in percent.

The paper does not say over which images its pixel ratio is taken; pooling all
training pixels is the reading under which its numbers are consistent (pigment
network, blank in 41 % of the images, covers 13.7 % of all pixels). The split is
the 2594 images of ``ISIC2018_Task1-2_Training_Input`` (``--split`` for others).
"""

from __future__ import annotations

import argparse
import functools
from typing import Sequence

import numpy as np

from data_tools.imageio import load_mask
from data_tools.isic import read_isic2018
from data_tools.synthetic import make_isic2018
from reproduce.datasets import DatasetNeed
from reproduce.frame import Column, PaperRow, PaperTable, RowContext, RowResult, run_table

BLANK, RATIO = "Blank images", "Pixel ratio"

#: The paper's row names -> our attribute names (data_tools.layouts).
ATTRIBUTE_OF_ROW = {
    "Pigment network": "pigment_network",
    "Negative network": "negative_network",
    "Milia like cyst": "milia_like_cyst",
    "Globules": "globules",
    "Streaks": "streaks",
}

TABLE = PaperTable(
    key="sanet_table1",
    title="SANet Table 1: ISIC 2018 Task 2 attributes, blank images and foreground pixel ratio",
    source="SANet, Table 1",
    columns=[Column(BLANK, "%", None, decimals=0), Column(RATIO, "%", None, decimals=2)],
    rows=[
        PaperRow("Pigment network", {BLANK: 41, RATIO: 13.70}),
        PaperRow("Negative network", {BLANK: 93, RATIO: 0.67}),
        PaperRow("Milia like cyst", {BLANK: 74, RATIO: 1.27}),
        PaperRow("Globules", {BLANK: 77, RATIO: 3.09}),
        PaperRow("Streaks", {BLANK: 96, RATIO: 0.42}),
    ],
    notes=[
        "Blank images: training images whose attribute mask has no pixel > 128, in percent.",
        "Pixel ratio: foreground pixels / all pixels, pooled over every training image "
        "(blank ones included), in percent.",
    ],
)

DATASET = DatasetNeed(
    name="ISIC 2018 Task 2",
    default_dir="data/isic2018",
    how_to_get="python -m data_tools.download isic2018 --dest data/isic2018 --splits train",
    make_synthetic=functools.partial(make_isic2018, n_train=12, n_val=0, n_test=0, image_size=(48, 64)),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split",
        choices=("train", "validation", "test"),
        default="train",
        help="the ISIC 2018 split to count (default: %(default)s, the paper's)",
    )


def attribute_statistics(masks: Sequence[np.ndarray]) -> dict[str, float]:
    """``{BLANK, RATIO}`` in percent for one attribute's boolean masks."""
    if not masks:
        raise ValueError("attribute_statistics: no masks to count")
    blank = sum(not mask.any() for mask in masks)
    foreground = sum(int(mask.sum()) for mask in masks)
    pixels = sum(mask.size for mask in masks)
    return {BLANK: 100.0 * blank / len(masks), RATIO: 100.0 * foreground / pixels}


def run_row(ctx: RowContext) -> RowResult:
    attribute = ATTRIBUTE_OF_ROW[ctx.row.name]
    records = read_isic2018(ctx.data_dir, ctx.args.split, tasks=(2,), skip_bad=ctx.bad_inputs, validate="header")
    masks = [load_mask(record.mask_paths[attribute]) > 128 for record in records]
    return RowResult(attribute_statistics(masks), extra={"images": len(masks), "attribute": attribute})


def main(argv: Sequence[str] | None = None):
    return run_table(TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_arguments)


if __name__ == "__main__":
    main()
