"""SANet Table 3: UNet, DeepLab, DANet, ResUNet and ResUNet with RSM and/or SAM, all with GBL.

    python reproduce/sanet_table3.py --data-dir data/isic2018
    python reproduce/sanet_table3.py --smoke                       # synthetic data, minutes on a CPU
    python reproduce/sanet_table3.py --rows "ResUNet+RSM+SAM"      # SANet alone

Every row trains with the global balancing loss (gamma = 1, the best of Table 2)
and the recipe of :mod:`reproduce.sanet_recipe` (AdamW, polynomial decay, batch 5,
100 epochs, the paper's augmentation). Rows:

* UNet: the shared U-Net (:func:`zoo.sanet.models.build_attribute_unet`), no
  pretrained weights;
* DeepLab (DeepLabv3+) and DANet: dilated ImageNet ResNet101 backbones
  (``--dilated-backbone``) with their heads from :mod:`zoo.common.segmentation_heads`;
* ResUNet: ImageNet ResNet101 + U-Net decoder;
* +RSM: the random shuffle module (:class:`zoo.sanet.region_shuffle.RegionShuffle`) on
  the training batches: each sampled image followed by its destructed copy (1:1;
  ``--batch-size 5`` trains on 10 images per step), regions moving at most one cell;
* +SAM: SANet (:func:`zoo.sanet.models.build_sanet`) fed the cached SLIC maps.
"""
from __future__ import annotations

from typing import Sequence

from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table
from reproduce.sanet_recipe import (AVERAGE_COLUMNS, AVG_DICE, AVG_JA, DATASET, PAPER_SETTINGS, RSM_NOTE, SMOKE,
                                    Variant, add_recipe_arguments, run_average_row)

VARIANTS = {
    "UNet": Variant("unet"),
    "DeepLab": Variant("deeplab"),
    "DANet (Fu et al. 2018)": Variant("danet"),
    "ResUNet": Variant("resunet"),
    "ResUNet+RSM": Variant("resunet", rsm=True),
    "ResUNet+SAM": Variant("sanet"),
    "ResUNet+RSM+SAM": Variant("sanet", rsm=True),
}

TABLE = PaperTable(
    key="sanet_table3",
    title="SANet Table 3: networks on ISIC 2018 Task 2, all trained with GBL",
    source="SANet, Table 3",
    columns=AVERAGE_COLUMNS,
    rows=[
        PaperRow("UNet", {AVG_JA: 23.7, AVG_DICE: 37.4}),
        PaperRow("DeepLab", {AVG_JA: 18.6, AVG_DICE: 28.8}),
        PaperRow("DANet (Fu et al. 2018)", {AVG_JA: 19.1, AVG_DICE: 29.6}),
        PaperRow("ResUNet", {AVG_JA: 29.3, AVG_DICE: 43.7}),
        PaperRow("ResUNet+RSM", {AVG_JA: 34.3, AVG_DICE: 48.7}),
        PaperRow("ResUNet+SAM", {AVG_JA: 36.2, AVG_DICE: 51.8}),
        PaperRow("ResUNet+RSM+SAM", {AVG_JA: 37.4, AVG_DICE: 53.1}),
    ],
    notes=[
        "Avg JA / Avg Dice: mean of the five attribute scores and the micro average "
        "(ISIC 2018 Task 2 scoring), on the test split.",
        "All rows: GBL with alpha = 0.2, gamma = 1. DeepLab and DANet backbones: dilated "
        "ResNet101 (the paper does not name them).",
        "SAM rows read SLIC superpixel maps cached beside the images (computed on first use).",
        RSM_NOTE,
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    return run_average_row(ctx, VARIANTS[ctx.row.name])


def main(argv: Sequence[str] | None = None):
    return run_table(TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_recipe_arguments,
                     defaults=PAPER_SETTINGS, smoke_overrides=SMOKE)


if __name__ == "__main__":
    main()
