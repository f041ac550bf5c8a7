"""AttnMel Table 2: melanoma vs rest on the ISIC 2017 test set (AP, AUC), with the
attention maps regularised by ROIs (eq. 5).

    python reproduce/attnmel_table2.py --data-dir data/isic2017
    python reproduce/attnmel_table2.py --smoke

Rows 6-9 train the models of Table 1 on ISIC 2017 (validation split: the official
one). Rows 10-12 train AttnMel-CNN with eq. 5, ``focal + 0.001 Dice(A3, ROI) +
0.01 Dice(A4, ROI)`` (:func:`zoo.losses.attnmel_losses`), the ROI being:

* -Dermo: the union of the four ISIC 2017 Part 2 dermoscopic-feature masks
  (:func:`data_tools.isic.write_isic2017_feature_masks`, written once under
  ``<out>/feature_masks``);
* -Lesion: the Part 1 lesion segmentation;
* -Bkg: the background, the inverse of the lesion segmentation.

Rows 1-5 are quoted from the paper. The recipe is :mod:`reproduce.attnmel_table1`'s
(each epoch passes over the training list twice, as the authors' code does for 2017).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

from data_tools.isic import read_isic2017, write_isic2017_feature_masks
from data_tools.records import Record
from data_tools.synthetic import make_isic2017
from reproduce.attnmel_table1 import (AP_AUC, BUILDERS, SMOKE, add_recipe_arguments,
                                      evaluate_classifier, train_classifier)
from reproduce.datasets import DatasetNeed
from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table
from zoo.models.attnmel import build_attnmel_cnn
from zoo.train import TrainResult

REGULARISED_ROWS = {
    "AttnMel-CNN-Dermo": "dermo",
    "AttnMel-CNN-Lesion": "lesion",
    "AttnMel-CNN-Bkg": "background",
}
"""Row name -> the ROI of eq. 5 (the keys of :data:`reproduce.attnmel_table1.ROI_MASKS`)."""

TABLE = PaperTable(
    key="attnmel_table2",
    title="AttnMel Table 2: melanoma vs rest on the ISIC 2017 test set",
    source="Yan et al., IPMI 2019, Table 2",
    columns=AP_AUC,
    rows=[
        PaperRow("ISIC 2017 Winner 1 [15]", {"AUC": 0.868}, quoted=True),
        PaperRow("ISIC 2017 Winner 2 [5]", {"AUC": 0.856}, quoted=True),
        PaperRow("ISIC 2017 Winner 3 [16]", {"AUC": 0.874}, quoted=True),
        PaperRow("Harangi et al. [8]", {"AUC": 0.836}, quoted=True),
        PaperRow("Mahbod et al. [14]", {"AUC": 0.873}, quoted=True),
        PaperRow("VGG-16", {"AP": 0.600, "AUC": 0.824}),
        PaperRow("VGG-16-GAP", {"AP": 0.627, "AUC": 0.834}),
        PaperRow("Mel-CNN", {"AP": 0.653, "AUC": 0.854}),
        PaperRow("AttnMel-CNN", {"AP": 0.655, "AUC": 0.872}),
        PaperRow("AttnMel-CNN-Dermo", {"AP": 0.665, "AUC": 0.864}),
        PaperRow("AttnMel-CNN-Lesion", {"AP": 0.672, "AUC": 0.883}),
        PaperRow("AttnMel-CNN-Bkg", {"AP": 0.647, "AUC": 0.849}),
    ],
    notes=["Rows 1-5 are quoted from the paper (other publications; no AP reported)."],
)

DATASET = DatasetNeed(
    name="ISIC 2017 (Parts 1-3)",
    default_dir="data/isic2017",
    how_to_get="python -m data_tools.download isic2017 --dest data/isic2017",
    make_synthetic=functools.partial(make_isic2017, n_train=12, n_val=6, n_test=6,
                                     image_size=(48, 64)),
)


def read_split(ctx: RowContext, split: str, roi: str | None = None) -> list[Record]:
    """One ISIC 2017 split with lesion masks and labels, plus the Dermo masks if needed."""
    parts = (1, 2, 3) if roi == "dermo" else (1, 3)
    records = read_isic2017(ctx.data_dir, split, parts=parts, skip_bad=ctx.bad_inputs)
    if roi == "dermo":
        cache = ctx.out_dir.parent.parent / "feature_masks" / split  # <out>/feature_masks
        records = write_isic2017_feature_masks(records, cache)
    return records


def train_row(ctx: RowContext, row_name: str) -> TrainResult:
    """Trains the model of one of Table 2's rows (plain or ROI-regularised)."""
    roi = REGULARISED_ROWS.get(row_name)
    builder = build_attnmel_cnn if roi is not None else BUILDERS[row_name]
    return train_classifier(ctx, builder, read_split(ctx, "train", roi),
                            read_split(ctx, "validation"), roi=roi)


def run_row(ctx: RowContext) -> RowResult:
    trained = train_row(ctx, ctx.row.name)
    return evaluate_classifier(ctx, trained, read_split(ctx, "test"))


def main(argv: Sequence[str] | None = None):
    return run_table(TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_recipe_arguments,
                     defaults={"epochs": 50, "batch_size": 32, "passes_per_epoch": 2},
                     smoke_overrides=SMOKE)


if __name__ == "__main__":
    main()
