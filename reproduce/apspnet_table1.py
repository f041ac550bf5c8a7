"""A-PSPNet Table I: the four arrangements of the CBAM attention units, 50 epochs.

    python reproduce/apspnet_table1.py --data-dir data/renal_ultrasound
    python reproduce/apspnet_table1.py --data-dir my_data --data-format folders
    python reproduce/apspnet_table1.py --smoke        # synthetic data, minutes on a CPU

Each row trains the registered model ``apspnet`` (attention ResNet50 + PSPNet head)
with one arrangement of :data:`zoo.apspnet.layers.CBAM_ORDERS` (the row's
``builder_args``) and reports the test-set MIoU (eq. 7) and "MPA" (eq. 8). Training is
the registered recipe :data:`zoo.apspnet.recipe.APSPNET_RECIPE` (Combo loss of eq. 6,
Adam 1e-3, batch 8) with one named override on every row, 50 epochs instead of its
100: Wen et al. report Table I for "the final model that was trained with 50 epochs"
(section IV-C). Data, split and scoring are :mod:`reproduce.apspnet_recipe`'s (9:1
split, 473x473 grey-padded input; its docstring lists the reading notes and
deviations). Each row folder is the run folder of the scored model (``zoo.load_run``).
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
from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table

TABLE1_EPOCHS = {"epochs": 50}
"""Table I's departure from the registered recipe (100 epochs): "the final model that
was trained with 50 epochs" (Wen et al., section IV-C)."""

ORDERS = {
    "ResNet50 + Spatial attention unit": "spatial",
    "ResNet50 + Channel attention unit": "channel",
    "ResNet50 + Spatial&Channel attention units": "spatial_channel",
    "ResNet50 + Channel&Spatial attention units": "channel_spatial",
}
"""Table I row -> ``cbam_order`` of :func:`zoo.apspnet.models.build_apspnet` (the rows' builder arguments)."""


def _row(name: str, miou: str, mpa: str) -> PaperRow:
    """One of Table I's arrangements: the registered ``apspnet`` with its CBAM order,
    trained for the table's 50 epochs."""
    return PaperRow(
        name,
        paper_values(miou, mpa),
        model="apspnet",
        builder_args={"cbam_order": ORDERS[name]},
        recipe_overrides=TABLE1_EPOCHS,
    )


TABLE = PaperTable(
    key="apspnet_table1",
    title="A-PSPNet Table I: the comparison of the arrangement of attention units",
    source="Wen et al., A-PSPNet, Table I",
    columns=MIOU_MPA,
    rows=[
        _row(name, miou, mpa)
        for name, miou, mpa in (
            ("ResNet50 + Spatial attention unit", "87.39", "93.03"),
            ("ResNet50 + Channel attention unit", "87.16", "93.05"),
            ("ResNet50 + Spatial&Channel attention units", "87.17", "92.78"),
            ("ResNet50 + Channel&Spatial attention units", "87.43", "93.53"),
        )
    ],
    notes=[
        *RECIPE_NOTES,
        "Each row: the registered apspnet (CBAM before and after ResNet50, PSPNet head) with the row's "
        "arrangement, 473x473, trained with the registered recipe (Combo loss, Adam 1e-3, batch 8) and "
        "one override: 50 epochs instead of 100 (section IV-C: 'the final model that was trained with 50 "
        "epochs'). Each row folder is the run folder of the scored model.",
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
