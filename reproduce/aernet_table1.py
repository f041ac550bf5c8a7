"""AER-Net Table 1: the five best pretrained encoders under a U-Net decoder (JSI).

    python reproduce/aernet_table1.py --data-dir data/isic2018
    python reproduce/aernet_table1.py --smoke            # synthetic data, random encoders

Each row is a segmentation_models U-Net over one ImageNet-pretrained encoder
(:func:`zoo.aernet.encoder_sweep.build_sm_unet`; Lima & Braz Júnior, section 4.3),
trained with AER-Net's registered recipe :data:`zoo.aernet.recipe.AERNET_RECIPE`
unchanged (Adam 1e-3, Dice loss of eq. 1, batch 16, 100 epochs) through
:meth:`reproduce.frame.RowContext.fit`, and evaluated as :mod:`reproduce.aernet_recipe`
says (same split file, CIELAB [0, 1] at 256x256). The paper reports only the Jaccard
index of the five best of its sweep; the other encoders it tried are available
through ``build_sm_unet`` but not rows here.

The named exception to "every row is a registered model": these U-Nets are built by
the optional third-party segmentation_models 1.0.1 (its own custom layers, TensorFlow
only, no ``.keras`` export), so they are no registry entries, which promise all of
that (the registry harness checks it). Their rows therefore name no model
(``PaperRow.model`` is ``None``), build with :data:`BACKBONES` and, not being run
folders, keep the weights they were scored with in ``scored.weights.h5`` (after any
``--recalibrate-bn``), with the builder arguments in ``result.json``.
"""

from __future__ import annotations

from typing import Sequence

from reproduce.aernet_recipe import DATASET, SMOKE, add_recipe_arguments, input_shape, run_segmentation_row
from reproduce.frame import Column, PaperRow, PaperTable, RowContext, RowResult, run_table
from zoo.aernet.encoder_sweep import TABLE1_BACKBONES, build_sm_unet

BACKBONES = TABLE1_BACKBONES
"""Row name -> segmentation_models backbone: the builder map of this table's named
exception (its models are not registered; module docstring)."""

TABLE = PaperTable(
    key="aernet_table1",
    title="AER-Net Table 1: best pretrained encoders (U-Net decoder) on ISIC 2018 Task 1",
    source="Lima & Braz Junior, AER-Net, Table 1",
    columns=[Column("JSI", "%", higher_is_better=True, decimals=2)],
    rows=[
        # As printed (Table 1 mixes one and two decimals, and decimal commas in its last rows).
        PaperRow("EfficientNetb1", {"JSI": "76.1"}),
        PaperRow("Se-ResNeXt101", {"JSI": "75.7"}),
        PaperRow("EfficientNetb3", {"JSI": "75.65"}),
        PaperRow("SeResNet152", {"JSI": "75,6"}),
        PaperRow("EfficientNetb0", {"JSI": "75,4"}),
    ],
    notes=[
        "segmentation_models 1.0.1 U-Nets; the CIELAB [0, 1] input is scaled inside each model as its "
        "encoder's ImageNet weights expect (x 255, then the backbone's own normalisation), as AER-Net's "
        "EfficientNetB1 in Table 2.",
        "Split, training and evaluation as in aernet_table2 (see its notes): the registered AER-Net recipe unchanged.",
        "These U-Nets are not registered models (segmentation_models, no .keras export): their row folders are "
        "no run folders; each keeps its scored weights in scored.weights.h5.",
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    backbone = BACKBONES[ctx.row.name]
    builder_args = {
        "input_shape": input_shape(ctx.args),
        "encoder_weights": ctx.args.encoder_weights,
        "backbone": backbone,
    }
    result = run_segmentation_row(ctx, lambda: build_sm_unet(**builder_args), builder_args=builder_args)
    result.values = {"JSI": result.values["JSI"]}  # Table 1 reports the Jaccard index only
    result.extra = {**result.extra, "backbone": backbone}
    return result


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_recipe_arguments, smoke_overrides=SMOKE
    )


if __name__ == "__main__":
    main()
