"""AttnMel Table 2: melanoma vs rest on the ISIC 2017 test set (AP, AUC), with the
attention maps regularised by ROIs (eq. 5).

    python reproduce/attnmel_table2.py --data-dir data/isic2017
    python reproduce/attnmel_table2.py --smoke

Rows 6-9 train the registered models of Table 1 on ISIC 2017 (validation split: the
official one). Rows 10-12 train ``attnmel_cnn`` with its registered recipe, eq. 5,
``focal + 0.001 Dice(A3, ROI) + 0.01 Dice(A4, ROI)`` (:func:`zoo.losses.attnmel_losses`),
the ROI being:

* -Dermo: the union of the four ISIC 2017 Part 2 dermoscopic-feature masks
  (written once under ``<out>/feature_masks``);
* -Lesion: the Part 1 lesion segmentation;
* -Bkg: the background, the inverse of the lesion segmentation.

Rows 1-5 are quoted from the paper. The recipes are the registry's, as
:mod:`reproduce.attnmel_recipe` describes (each epoch passes over the training list
twice, as the authors' code does for 2017). Each row folder is the run folder of its
model (``zoo.load_run``), which Table 3's ``--trained`` reads.
"""

from __future__ import annotations

from typing import Sequence

from reproduce.attnmel_recipe import (
    AP_AUC,
    BACKBONE_NOTE,
    ISIC2017,
    SMOKE,
    UNREGULARISED,
    add_recipe_arguments,
    backbone_variant,
    evaluate_classifier,
    read_isic2017_split,
    train_table2_row,
)
from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table

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
        PaperRow("VGG-16", {"AP": 0.600, "AUC": 0.824}, model="vgg16"),
        PaperRow("VGG-16-GAP", {"AP": 0.627, "AUC": 0.834}, model="vgg16_gap"),
        PaperRow("Mel-CNN", {"AP": 0.653, "AUC": 0.854}, model="mel_cnn"),
        PaperRow("AttnMel-CNN", {"AP": 0.655, "AUC": 0.872}, model="attnmel_cnn", recipe_overrides=UNREGULARISED),
        PaperRow("AttnMel-CNN-Dermo", {"AP": 0.665, "AUC": 0.864}, model="attnmel_cnn"),
        PaperRow("AttnMel-CNN-Lesion", {"AP": 0.672, "AUC": 0.883}, model="attnmel_cnn"),
        PaperRow("AttnMel-CNN-Bkg", {"AP": 0.647, "AUC": 0.849}, model="attnmel_cnn"),
    ],
    notes=["Rows 1-5 are quoted from the paper (other publications; no AP reported).", BACKBONE_NOTE],
)


def run_row(ctx: RowContext) -> RowResult:
    trained = train_table2_row(ctx)
    return evaluate_classifier(ctx, trained, read_isic2017_split(ctx, "test"))


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE,
        run_row,
        dataset=ISIC2017,
        argv=argv,
        add_arguments=add_recipe_arguments,
        defaults={"passes_per_epoch": 2},
        smoke_overrides=SMOKE,
        variant=backbone_variant,
    )


if __name__ == "__main__":
    main()
