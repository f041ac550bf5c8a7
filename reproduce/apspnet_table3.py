"""A-PSPNet Table III: PSPNet, DeepLabv3, DANet and A-PSPNet on renal ultrasound, 100 epochs.

    python reproduce/apspnet_table3.py --data-dir data/renal_ultrasound
    python reproduce/apspnet_table3.py --smoke        # synthetic data, minutes on a CPU

The recipe, the data flags and the 9:1 split are Table I's
(:mod:`reproduce.apspnet_recipe`), with 100 epochs (section IV-B). All four models
use a dilated ResNet50 (output stride 8) with ImageNet weights; A-PSPNet uses the
paper's channel-then-spatial CBAM.
"""
from __future__ import annotations

from collections.abc import Sequence

from reproduce.apspnet_recipe import (DATASET, MIOU_MPA, RECIPE_NOTES, SMOKE, paper_values,
                                      add_recipe_arguments, run_segmentation_row)
from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table
from zoo.apspnet.recipe import APSPNET_RECIPE
from zoo.apspnet.models import build_apspnet, build_danet, build_deeplabv3, build_pspnet

PAPER_SETTINGS = {"epochs": 100, "batch_size": APSPNET_RECIPE.batch_size}   # section IV-B

BUILDERS = {
    "PSPNet": build_pspnet,
    "Deeplabv3": build_deeplabv3,
    "DANet": build_danet,
    "A-PSPNet": build_apspnet,
}

TABLE = PaperTable(
    key="apspnet_table3",
    title="A-PSPNet Table III: the comparison of effectiveness",
    source="Wen et al., A-PSPNet, Table III",
    columns=MIOU_MPA,
    rows=[
        PaperRow("PSPNet", paper_values("86.61", "92.01")),
        PaperRow("Deeplabv3", paper_values("85.47", "91.58")),
        PaperRow("DANet", paper_values("80.54", "83.14")),
        PaperRow("A-PSPNet", paper_values("87.93", "93.52")),
    ],
    notes=[
        *RECIPE_NOTES,
        "All models: dilated ResNet50 (output stride 8, ImageNet weights), Combo loss, "
        "Adam 1e-3, batch 8, 100 epochs, 473x473. DeepLabv3: ASPP rates 12, 24, 36 (output "
        "stride 8); no auxiliary heads (PSPNet, DANet), which the paper does not mention.",
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    return run_segmentation_row(ctx, BUILDERS[ctx.row.name])


def main(argv: Sequence[str] | None = None):
    return run_table(TABLE, run_row, dataset=DATASET, argv=argv,
                     add_arguments=add_recipe_arguments, defaults=PAPER_SETTINGS,
                     smoke_overrides=SMOKE)


if __name__ == "__main__":
    main()
