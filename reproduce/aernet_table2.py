"""AER-Net Table 2: the ablation from U-Net to AER-Net on ISIC 2018 Task 1 (JSI, DC).

    python reproduce/aernet_table2.py --data-dir data/isic2018
    python reproduce/aernet_table2.py --smoke            # synthetic data, minutes on a CPU
    python reproduce/aernet_table2.py --rows aer-net     # one row

Rows: the registered models ``unet``, ``attention_unet``, ``attention_residual_unet``
and ``aernet`` (:mod:`zoo.common.unet`, :mod:`zoo.aernet.models`; ``python -m zoo
list``), each trained with the registered recipe
:data:`zoo.aernet.recipe.AERNET_RECIPE` unchanged (Adam 1e-3, Dice loss of eq. 1,
batch 16, 100 epochs; Lima & Braz Júnior, sections 3.1-3.3) and evaluated as
:mod:`reproduce.aernet_recipe` says (fixed 2094/500 split, CIELAB [0, 1] at 256x256,
scored at each image's original size as the official ISIC 2018 Task 1 scorer;
its docstring lists the deviations). Each row folder ``rows/<row>/`` is the run folder
of the scored model: ``zoo.load_run(folder)``.
"""

from __future__ import annotations

from typing import Sequence

from reproduce.aernet_recipe import DATASET, JSI_DC, SCORING_NOTE, SMOKE, add_recipe_arguments, run_segmentation_row
from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table

UNET = "U-Net"
ATTENTION_UNET = "Attention + U-Net"
ATTENTION_RESIDUAL_UNET = "Attention + Residual connections + U-Net"
AERNET = "Attention + EfficientNetB1 + Residual + U-Net (AER-Net)"

TABLE = PaperTable(
    key="aernet_table2",
    title="AER-Net Table 2: ablation on ISIC 2018 Task 1 (mean JSI and DC over test images)",
    source="Lima & Braz Junior, AER-Net, Table 2",
    columns=JSI_DC,
    rows=[
        PaperRow(UNET, {"JSI": "55,5", "DC": "67,4"}, model="unet"),  # the paper's printed text
        PaperRow(ATTENTION_UNET, {"JSI": "70", "DC": "79,6"}, model="attention_unet"),
        PaperRow(ATTENTION_RESIDUAL_UNET, {"JSI": "70,6", "DC": "79,9"}, model="attention_residual_unet"),
        PaperRow(AERNET, {"JSI": "77,2", "DC": "85,25"}, model="aernet"),
    ],
    notes=[
        "Split: 80.72 % of the ISIC 2018 Task 1 training set trains, the rest tests (the paper's "
        "2094 training / 500 test images of its 2594), seeded and saved to split.json (the paper's "
        "split is not published); 'This run' below gives the images this run used.",
        "No validation split in the paper: the epoch with the lowest training loss is "
        "evaluated (normally one of the last).",
        SCORING_NOTE,
        "Training: every row the registered AER-Net recipe unchanged (Adam 1e-3, Dice loss, batch 16, "
        "100 epochs; --smoke and the recipe flags change them, config.json records what ran); each row "
        "folder is the run folder of the scored model (run.json, model.weights.h5).",
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
