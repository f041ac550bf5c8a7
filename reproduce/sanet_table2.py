"""SANet Table 2: CE+JAL versus the global balancing loss (gamma 0, 0.5, 1, 2) on ResUNet.

    python reproduce/sanet_table2.py --data-dir data/isic2018
    python reproduce/sanet_table2.py --smoke                 # synthetic data, minutes on a CPU
    python reproduce/sanet_table2.py --rows "GBL γ = 1"      # one row

Every row trains ResUNet with the recipe of :mod:`reproduce.sanet_recipe` (AdamW,
polynomial decay, batch 5, 100 epochs, the paper's augmentation); only the loss
changes: CE+JAL (eq. 2) or GBL (eq. 9, alpha = 0.2) with gamma 0, 0.5, 1 or 2.
"""
from __future__ import annotations

from typing import Sequence

from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table
from reproduce.sanet_recipe import (AVERAGE_COLUMNS, AVG_DICE, AVG_JA, DATASET, PAPER_SETTINGS, SMOKE, Variant,
                                    add_recipe_arguments, run_average_row)

VARIANTS = {
    "CE+JAL": Variant("resunet", loss="ce_jal"),
    "GBL γ = 0": Variant("resunet", gamma=0.0),
    "GBL γ = 0.5": Variant("resunet", gamma=0.5),
    "GBL γ = 1": Variant("resunet", gamma=1.0),
    "GBL γ = 2": Variant("resunet", gamma=2.0),
}

TABLE = PaperTable(
    key="sanet_table2",
    title="SANet Table 2: CE+JAL vs global balancing loss on ResUNet (ISIC 2018 Task 2)",
    source="SANet, Table 2",
    columns=AVERAGE_COLUMNS,
    rows=[
        PaperRow("CE+JAL", {AVG_JA: 26.1, AVG_DICE: 39.5}),
        PaperRow("GBL γ = 0", {AVG_JA: 28.3, AVG_DICE: 42.2}),
        PaperRow("GBL γ = 0.5", {AVG_JA: 28.5, AVG_DICE: 42.6}),
        PaperRow("GBL γ = 1", {AVG_JA: 29.3, AVG_DICE: 43.7}),
        PaperRow("GBL γ = 2", {AVG_JA: 28.8, AVG_DICE: 43.1}),
    ],
    notes=[
        "Avg JA / Avg Dice: mean of the five attribute scores and the micro average "
        "(ISIC 2018 Task 2 scoring), on the test split.",
        "GBL: alpha = 0.2 (Fig. 3); the paper's best gamma is 1.",
        "Best epoch by the thresholded Jaccard on the validation split (not stated in the paper).",
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    return run_average_row(ctx, VARIANTS[ctx.row.name])


def main(argv: Sequence[str] | None = None):
    return run_table(TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_recipe_arguments,
                     defaults=PAPER_SETTINGS, smoke_overrides=SMOKE)


if __name__ == "__main__":
    main()
