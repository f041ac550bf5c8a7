"""A-PSPNet Table III: PSPNet, DeepLabv3, DANet and A-PSPNet on renal ultrasound, 100 epochs.

    python reproduce/apspnet_table3.py --data-dir data/renal_ultrasound
    python reproduce/apspnet_table3.py --smoke        # synthetic data, minutes on a CPU

Rows: the registered models ``pspnet``, ``deeplabv3``, ``danet`` and ``apspnet``
(``python -m zoo list``), each trained with the registered recipe
:data:`zoo.apspnet.recipe.APSPNET_RECIPE` unchanged (Combo loss of eq. 6, Adam 1e-3,
batch 8, 100 epochs; Wen et al., section IV-B). The data flags, the 9:1 split and the
scoring are Table I's (:mod:`reproduce.apspnet_recipe`). All four models use a dilated
ResNet50 (output stride 8) with ImageNet weights; A-PSPNet uses the paper's
channel-then-spatial CBAM; DANet's channel attention is Fu et al.'s eq. 3
(``--danet-energy reference``: the authors' code's ``max - energy``). Each row folder
is the run folder of the scored model (``zoo.load_run``).
"""

from __future__ import annotations

from collections.abc import Sequence

from reproduce.apspnet_recipe import (
    DATASET,
    MIOU_MPA,
    RECIPE_NOTES,
    SMOKE,
    add_recipe_arguments,
    paper_values,
    run_segmentation_row,
)
from reproduce.frame import DANET_ENERGY_NOTE, PaperRow, PaperTable, RowContext, RowResult, run_table

TABLE = PaperTable(
    key="apspnet_table3",
    title="A-PSPNet Table III: the comparison of effectiveness",
    source="Wen et al., A-PSPNet, Table III",
    columns=MIOU_MPA,
    rows=[
        PaperRow("PSPNet", paper_values("86.61", "92.01"), model="pspnet"),
        PaperRow("Deeplabv3", paper_values("85.47", "91.58"), model="deeplabv3"),
        PaperRow("DANet", paper_values("80.54", "83.14"), model="danet"),
        PaperRow("A-PSPNet", paper_values("87.93", "93.52"), model="apspnet"),
    ],
    notes=[
        *RECIPE_NOTES,
        "All models: the registered ones, dilated ResNet50 (output stride 8, ImageNet weights), 473x473, "
        "trained with the registered recipe unchanged (Combo loss, Adam 1e-3, batch 8, 100 epochs; --smoke "
        "and the recipe flags change them, config.json records what ran); each "
        "row folder is the run folder of the scored model. DeepLabv3: ASPP rates 12, 24, 36 (output "
        "stride 8); no auxiliary heads (PSPNet, DANet), which the paper does not mention.",
        DANET_ENERGY_NOTE,
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    return run_segmentation_row(ctx)


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_recipe_arguments, smoke_overrides=SMOKE
    )


if __name__ == "__main__":
    main()
