"""SANet Table 3: UNet, DeepLab, DANet, ResUNet and ResUNet with RSM and/or SAM, all with GBL.

    python reproduce/sanet_table3.py --data-dir data/isic2018
    python reproduce/sanet_table3.py --smoke                       # synthetic data, minutes on a CPU
    python reproduce/sanet_table3.py --rows "ResUNet+RSM+SAM"      # SANet alone

Every row trains a registered model with its registered recipe as it is
(:data:`zoo.sanet.SANET_RECIPE`: the global balancing loss with gamma = 1, the best of
Table 2; AMSGrad with PyTorch-style coupled weight decay 1e-4,
:class:`zoo.optimizers.L2Adam`, the rate decaying polynomially to 0, batch 5, 100
epochs, the paper's augmentation; see :mod:`reproduce.sanet_recipe`). Rows:

* UNet: ``sanet_unet``, the shared U-Net (:func:`zoo.sanet.models.build_attribute_unet`),
  no pretrained weights;
* DeepLab (DeepLabv3+) and DANet: ``sanet_deeplab`` and ``sanet_danet``, dilated
  ImageNet ResNet101 backbones (``--dilated-backbone``) with their heads from
  :mod:`zoo.common.segmentation_heads` (DANet's channel attention: Fu et al.'s eq. 3,
  ``--danet-energy reference`` the authors' code's ``max - energy``);
* ResUNet: ``resunet``, ImageNet ResNet101 + U-Net decoder;
* +RSM: the random shuffle module (:class:`zoo.sanet.region_shuffle.RegionShuffle`) on
  the training batches (:data:`RSM_ROWS`; a change of the data, recorded in the run
  card): each sampled image followed by its destructed copy (1:1; ``--batch-size 5``
  trains on 10 images per step), regions moving at most one cell;
* +SAM: ``sanet`` (:func:`zoo.sanet.models.build_sanet`) fed the cached SLIC maps.

Every row scores its final epoch (``--keep best-val``: the best validation Jaccard).
Each row folder is the run folder of its model (``zoo.load_run``).
"""

from __future__ import annotations

from typing import Sequence

from reproduce.frame import DANET_ENERGY_NOTE, PaperRow, PaperTable, RowContext, RowResult, run_table
from reproduce.sanet_recipe import (
    AVERAGE_COLUMNS,
    AVG_DICE,
    AVG_JA,
    DATASET,
    PROTOCOL_NOTES,
    RSM_NOTE,
    SMOKE,
    add_recipe_arguments,
    run_average_row,
)

RSM_ROWS = frozenset({"ResUNet+RSM", "ResUNet+RSM+SAM"})
"""The rows that train on RSM-shuffled batches."""

TABLE = PaperTable(
    key="sanet_table3",
    title="SANet Table 3: networks on ISIC 2018 Task 2, all trained with GBL",
    source="SANet, Table 3",
    columns=AVERAGE_COLUMNS,
    rows=[
        PaperRow("UNet", {AVG_JA: 23.7, AVG_DICE: 37.4}, model="sanet_unet"),
        PaperRow("DeepLab", {AVG_JA: 18.6, AVG_DICE: 28.8}, model="sanet_deeplab"),
        PaperRow("DANet (Fu et al. 2018)", {AVG_JA: 19.1, AVG_DICE: 29.6}, model="sanet_danet"),
        PaperRow("ResUNet", {AVG_JA: 29.3, AVG_DICE: 43.7}, model="resunet"),
        PaperRow("ResUNet+RSM", {AVG_JA: 34.3, AVG_DICE: 48.7}, model="resunet"),
        PaperRow("ResUNet+SAM", {AVG_JA: 36.2, AVG_DICE: 51.8}, model="sanet"),
        PaperRow("ResUNet+RSM+SAM", {AVG_JA: 37.4, AVG_DICE: 53.1}, model="sanet"),
    ],
    notes=[
        "Avg JA / Avg Dice: mean of the five attribute scores and the micro average "
        "(ISIC 2018 Task 2 scoring), on the test split.",
        "All rows: GBL with alpha = 0.2, gamma = 1. DeepLab and DANet backbones: dilated "
        "ResNet101 (the paper does not name them).",
        "SAM rows read SLIC superpixel maps cached beside the images (computed on first use).",
        RSM_NOTE,
        *PROTOCOL_NOTES,
        DANET_ENERGY_NOTE,
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    return run_average_row(ctx, rsm=ctx.row.name in RSM_ROWS)


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_recipe_arguments, smoke_overrides=SMOKE
    )


if __name__ == "__main__":
    main()
