"""A-PSPNet Table I: the four arrangements of the CBAM attention units, 50 epochs.

    python reproduce/apspnet_table1.py --data-dir data/renal_ultrasound
    python reproduce/apspnet_table1.py --data-dir my_data --data-format folders
    python reproduce/apspnet_table1.py --smoke        # synthetic data, minutes on a CPU

Each row trains A-PSPNet (attention ResNet50 + PSPNet head) with one arrangement
of :data:`zoo.apspnet.layers.CBAM_ORDERS` and reports the test-set MIoU (eq. 7) and
"MPA" (eq. 8), with the recipe of :mod:`reproduce.apspnet_recipe` (9:1 split,
473x473 grey-padded input, Combo loss, Adam 1e-3, batch 8; its docstring lists the
reading notes and deviations).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

from reproduce.apspnet_recipe import (DATASET, MIOU_MPA, RECIPE_NOTES, SMOKE, paper_values,
                                      add_recipe_arguments, run_segmentation_row)
from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table
from zoo.apspnet.recipe import APSPNET_RECIPE
from zoo.apspnet.models import build_apspnet

PAPER_SETTINGS = {"epochs": 50, "batch_size": APSPNET_RECIPE.batch_size}   # section IV-B

ORDERS = {
    "ResNet50 + Spatial attention unit": "spatial",
    "ResNet50 + Channel attention unit": "channel",
    "ResNet50 + Spatial&Channel attention units": "spatial_channel",
    "ResNet50 + Channel&Spatial attention units": "channel_spatial",
}
"""Table I row -> ``cbam_order`` of :func:`zoo.apspnet.models.build_apspnet`."""

TABLE = PaperTable(
    key="apspnet_table1",
    title="A-PSPNet Table I: the comparison of the arrangement of attention units",
    source="Wen et al., A-PSPNet, Table I",
    columns=MIOU_MPA,
    rows=[
        PaperRow("ResNet50 + Spatial attention unit", paper_values("87.39", "93.03")),
        PaperRow("ResNet50 + Channel attention unit", paper_values("87.16", "93.05")),
        PaperRow("ResNet50 + Spatial&Channel attention units", paper_values("87.17", "92.78")),
        PaperRow("ResNet50 + Channel&Spatial attention units", paper_values("87.43", "93.53")),
    ],
    notes=[
        *RECIPE_NOTES,
        "Each row: A-PSPNet (CBAM before and after ResNet50, PSPNet head) with the row's "
        "arrangement, trained 50 epochs with Combo loss, Adam 1e-3, batch 8, 473x473.",
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    return run_segmentation_row(ctx, functools.partial(build_apspnet,
                                                       cbam_order=ORDERS[ctx.row.name]))


def main(argv: Sequence[str] | None = None):
    return run_table(TABLE, run_row, dataset=DATASET, argv=argv,
                     add_arguments=add_recipe_arguments, defaults=PAPER_SETTINGS,
                     smoke_overrides=SMOKE)


if __name__ == "__main__":
    main()
