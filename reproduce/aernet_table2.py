"""AER-Net Table 2: the ablation from U-Net to AER-Net on ISIC 2018 Task 1 (JSI, DC).

    python reproduce/aernet_table2.py --data-dir data/isic2018
    python reproduce/aernet_table2.py --smoke            # synthetic data, minutes on a CPU
    python reproduce/aernet_table2.py --rows aer-net     # one row

Rows: U-Net, Attention U-Net, Attention Residual U-Net, AER-Net
(:mod:`zoo.common.unet`, :mod:`zoo.aernet.models`), each trained and evaluated with
the recipe of :mod:`reproduce.aernet_recipe` (fixed 2094/500 split, CIELAB [0, 1] at
256x256, Adam 1e-3, Dice loss, batch 16, 100 epochs; its docstring lists the
deviations).
"""
from __future__ import annotations

import argparse
from typing import Callable, Sequence

import keras

from reproduce.aernet_recipe import (DATASET, JSI_DC, PAPER_SETTINGS, SMOKE, add_recipe_arguments,
                                     input_shape, run_segmentation_row)
from reproduce.frame import PaperRow, PaperTable, RowContext, RowResult, run_table
from zoo.aernet.models import build_aernet
from zoo.aernet import build_attention_residual_unet, build_attention_unet, build_unet

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
        PaperRow(UNET, {"JSI": "55,5", "DC": "67,4"}),  # the paper's printed text
        PaperRow(ATTENTION_UNET, {"JSI": "70", "DC": "79,6"}),
        PaperRow(ATTENTION_RESIDUAL_UNET, {"JSI": "70,6", "DC": "79,9"}),
        PaperRow(AERNET, {"JSI": "77,2", "DC": "85,25"}),
    ],
    notes=[
        "Split: 2094 training / 500 test images of the ISIC 2018 Task 1 training set, "
        "seeded and saved to split.json (the paper's split is not published).",
        "No validation split in the paper: the epoch with the lowest training loss is "
        "evaluated (normally one of the last).",
        "JSI and DC: per test image at the model input size (256x256; 64x64 in --smoke), "
        "thresholded at 0.5, then averaged over the test images.",
    ],
)

ROW_BUILDERS: dict[str, Callable[[argparse.Namespace], keras.Model]] = {
    UNET: lambda a: build_unet(input_shape(a), base_filters=a.base_filters,
                               batch_norm=a.batch_norm),
    ATTENTION_UNET: lambda a: build_attention_unet(input_shape(a), base_filters=a.base_filters,
                                                   batch_norm=a.batch_norm),
    ATTENTION_RESIDUAL_UNET: lambda a: build_attention_residual_unet(
        input_shape(a), base_filters=a.base_filters, batch_norm=a.batch_norm),
    AERNET: lambda a: build_aernet(input_shape(a), encoder_weights=a.encoder_weights),
}
"""Row name -> ``build(args)``."""


def run_row(ctx: RowContext) -> RowResult:
    return run_segmentation_row(ctx, lambda: ROW_BUILDERS[ctx.row.name](ctx.args))


def main(argv: Sequence[str] | None = None):
    return run_table(TABLE, run_row, dataset=DATASET, argv=argv,
                     add_arguments=add_recipe_arguments, defaults=PAPER_SETTINGS,
                     smoke_overrides=SMOKE)


if __name__ == "__main__":
    main()
