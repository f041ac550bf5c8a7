"""SANet Table 2: CE+JAL versus the global balancing loss (gamma 0, 0.5, 1, 2) on ResUNet.

    python reproduce/sanet_table2.py --data-dir data/isic2018
    python reproduce/sanet_table2.py --smoke                 # synthetic data, minutes on a CPU
    python reproduce/sanet_table2.py --rows "GBL γ = 1"      # one row

Every row trains the registered ``resunet`` with its registered recipe
(:data:`zoo.sanet.SANET_RECIPE`: AMSGrad with PyTorch-style coupled weight decay 1e-4,
:class:`zoo.optimizers.L2Adam`, the rate decaying polynomially to 0, batch 5, 100
epochs, the paper's augmentation; see :mod:`reproduce.sanet_recipe`); only the loss
changes, as the row's recipe override: CE+JAL (eq. 2) or GBL (eq. 9, alpha = 0.2)
with gamma 0, 0.5 or 2 (gamma 1 is the registered recipe's loss). The final epoch is
scored (``--keep best-val``: the best validation Jaccard). Each row folder is the run
folder of its model (``zoo.load_run``).
"""

from __future__ import annotations

from typing import Sequence

from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table
from reproduce.sanet_recipe import (
    AVERAGE_COLUMNS,
    AVG_DICE,
    AVG_JA,
    DATASET,
    GBL,
    PROTOCOL_NOTES,
    SMOKE,
    add_recipe_arguments,
    ce_jal,
    run_average_row,
)

TABLE = PaperTable(
    key="sanet_table2",
    title="SANet Table 2: CE+JAL vs global balancing loss on ResUNet (ISIC 2018 Task 2)",
    source="SANet, Table 2",
    columns=AVERAGE_COLUMNS,
    rows=[
        PaperRow("CE+JAL", {AVG_JA: 26.1, AVG_DICE: 39.5}, model="resunet", recipe_overrides={"loss": ce_jal}),
        PaperRow(
            "GBL γ = 0", {AVG_JA: 28.3, AVG_DICE: 42.2}, model="resunet", recipe_overrides={"loss": GBL(gamma=0.0)}
        ),
        PaperRow(
            "GBL γ = 0.5", {AVG_JA: 28.5, AVG_DICE: 42.6}, model="resunet", recipe_overrides={"loss": GBL(gamma=0.5)}
        ),
        PaperRow("GBL γ = 1", {AVG_JA: 29.3, AVG_DICE: 43.7}, model="resunet"),  # the registered recipe's GBL
        PaperRow(
            "GBL γ = 2", {AVG_JA: 28.8, AVG_DICE: 43.1}, model="resunet", recipe_overrides={"loss": GBL(gamma=2.0)}
        ),
    ],
    notes=[
        "Avg JA / Avg Dice: mean of the five attribute scores and the micro average "
        "(ISIC 2018 Task 2 scoring), on the test split.",
        "GBL: alpha = 0.2 (Fig. 3); the paper's best gamma is 1.",
        *PROTOCOL_NOTES,
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    return run_average_row(ctx)


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_recipe_arguments, smoke_overrides=SMOKE
    )


if __name__ == "__main__":
    main()
