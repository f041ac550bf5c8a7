"""ARL-CNN Table V: ARL-CNN50 with the three attention normalisations of eq. 4-6.

    python reproduce/arl_table5.py --data-dir data/isic2017
    python reproduce/arl_table5.py --smoke

Zhang et al., "Attention Residual Learning for Skin Lesion Classification", IEEE TMI
2019, Table V. Each row is the registered ``arl_cnn50`` with the builder argument
``attention`` (ImageNet-initialised, fine-tuned with the registered recipe at the
learning rate 1e-4 of Sec. IV-B, the protocol of :mod:`reproduce.arl_common`; a run
folder per sub-task model) whose ARL blocks normalise the residual map F(x)
into the attention mask with a channel-wise softmax (eq. 5), an element-wise
sigmoid ("mixed", eq. 6) or a spatial softmax (eq. 4, the paper's choice and the
ARL-CNN50 of Tables III-VII).
"""

from __future__ import annotations

from typing import Sequence

from reproduce.arl_common import (
    DATASET,
    EXTRAS_NOTE,
    OPTIMISER_NOTE,
    SCORE_COLUMNS,
    SMOKE,
    add_recipe_arguments,
    extras_variant,
    imagenet_row,
    paper_scores,
    read_splits,
    row_result,
    score_model,
    table_values,
)
from reproduce.frame import PaperTable, RowContext, RowResult, run_table

PAPER_ROWS = {  # Table V: row name -> (attention of zoo.arl_cnn.models, M scores, SK scores)
    "Channel-wise softmax": ("channel", (0.861, 0.847, 0.607, 0.905), (0.952, 0.852, 0.867, 0.849)),
    "Mixed Sigmoid": ("mixed", (0.851, 0.832, 0.641, 0.878), (0.951, 0.898, 0.811, 0.913)),
    "Spatial-wise softmax": ("spatial", (0.875, 0.850, 0.658, 0.896), (0.958, 0.868, 0.878, 0.867)),
}

TABLE = PaperTable(
    key="arl_table5",
    title="ARL-CNN Table V: ARL-CNN50 with different attention normalisations",
    source="Zhang et al., IEEE TMI 2019, Table V",
    columns=SCORE_COLUMNS,
    rows=[
        imagenet_row(name, paper_scores(melanoma, keratosis), "arl_cnn50", attention=attention)
        for name, (attention, melanoma, keratosis) in PAPER_ROWS.items()
    ],
    notes=[
        EXTRAS_NOTE,
        OPTIMISER_NOTE,
        "ARL-CNN50 initialised from ImageNet ResNet50, alpha = 0.001 (Sec. IV-B).",
        "ACC, sensitivity and specificity at a score threshold of 0.5 (--threshold).",
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    row = score_model(ctx, read_splits(ctx))
    return row_result(row, table_values(row))


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE,
        run_row,
        dataset=DATASET,
        argv=argv,
        add_arguments=add_recipe_arguments,
        smoke_overrides=SMOKE,
        variant=extras_variant,
    )


if __name__ == "__main__":
    main()
