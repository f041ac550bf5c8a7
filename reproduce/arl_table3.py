"""ARL-CNN Table III: ResNet, RAN, SEnet and ARL-CNN, 14 and 50 layers, on ISIC 2017.

    python reproduce/arl_table3.py --data-dir data/isic2017
    python reproduce/arl_table3.py --smoke               # synthetic data, minutes on a CPU
    python reproduce/arl_table3.py --rows arl-cnn50      # one row

Zhang et al., "Attention Residual Learning for Skin Lesion Classification", IEEE TMI
2019, Table III. Each row names its registered model (``resnet14`` ... ``arl_cnn50``,
:mod:`zoo.arl_cnn`) and trains two binary models of it, melanoma vs rest and
seborrheic keratosis vs rest, with the registered recipe and the protocol of
:mod:`reproduce.arl_common` (Sec. IV-B); each trained model is a run folder
``rows/<row>/<task>/``. It reports the parameters of one model, counted as the paper
counts them, and the test AUC, accuracy, sensitivity and specificity of each
sub-task. The 14-layer models start from scratch at the recipe's learning rate 0.01;
the "*" rows start from ImageNet ResNet50 weights and override it with 1e-4
(Sec. IV-B): every layer of ResNet50 and ARL-CNN50, and the ResNet50 layers of
RAN50 and SEnet50 (Sec. IV-D).
"""

from __future__ import annotations

from typing import Sequence

from reproduce.arl_common import (
    DATASET,
    EXTRAS_NOTE,
    OPTIMISER_NOTE,
    PARAMS,
    SCORE_COLUMNS,
    SMOKE,
    add_recipe_arguments,
    extras_variant,
    imagenet_row,
    paper_scores,
    read_splits,
    row_result,
    score_model,
    scratch_row,
    table_values,
)
from reproduce.frame import PaperTable, RowContext, RowResult, run_table


def _paper(params: str, melanoma: Sequence[float], keratosis: Sequence[float]) -> dict[str, float | str]:
    """One row of Table III: Params as printed (one decimal, x10^7), then the eight sub-task scores."""
    return {PARAMS.name: params, **paper_scores(melanoma, keratosis)}


PAPER_ROWS = [  # Table III; the "*" models were initialised from ImageNet
    scratch_row("ResNet14", _paper("0.8", (0.732, 0.748, 0.538, 0.799), (0.820, 0.711, 0.800, 0.696)), "resnet14"),
    scratch_row("RAN14", _paper("1.2", (0.767, 0.762, 0.615, 0.797), (0.852, 0.758, 0.833, 0.745)), "ran14"),
    scratch_row("SEnet14", _paper("1.1", (0.758, 0.757, 0.598, 0.795), (0.847, 0.727, 0.811, 0.712)), "senet14"),
    scratch_row("ARL-CNN14", _paper("0.8", (0.777, 0.778, 0.615, 0.818), (0.875, 0.763, 0.822, 0.753)), "arl_cnn14"),
    imagenet_row("ResNet50*", _paper("2.3", (0.857, 0.838, 0.632, 0.888), (0.948, 0.842, 0.867, 0.837)), "resnet50"),
    imagenet_row("RAN50*", _paper("3.9", (0.849, 0.850, 0.624, 0.906), (0.942, 0.862, 0.878, 0.859)), "ran50"),
    imagenet_row("SEnet50*", _paper("2.6", (0.861, 0.848, 0.624, 0.903), (0.952, 0.863, 0.856, 0.865)), "senet50"),
    imagenet_row("ARL-CNN50*", _paper("2.3", (0.875, 0.850, 0.658, 0.896), (0.958, 0.868, 0.878, 0.867)), "arl_cnn50"),
]


TABLE = PaperTable(
    key="arl_table3",
    title="ARL-CNN Table III: baselines and attention models on ISIC 2017 "
    "(melanoma M and seborrheic keratosis SK vs rest)",
    source="Zhang et al., IEEE TMI 2019, Table III",
    columns=[PARAMS, *SCORE_COLUMNS],
    rows=PAPER_ROWS,
    notes=[
        EXTRAS_NOTE,
        OPTIMISER_NOTE,
        "Two binary models per row (2-way softmax, Table I), one per sub-task; Params counts one "
        "of them as the paper's PyTorch-era tables do: trainable parameters, no bias in a "
        "convolution that batch norm follows (ResNet50: 2.351e7, torchvision's count with a "
        "2-class head). Keras' count_params (with the moving statistics and those biases) is "
        "in result.json as keras_params.",
        "The paper's one-decimal Params follow no one rounding of these counts: ResNet50's 2.351e7 prints as "
        "2.3 (down), SEnet14's 1.081e7 as 1.1 (up). Without batch norm's scale and shift (ResNet50 2.346e7, "
        "SEnet14 1.079e7) every count but RAN50's rounds (to nearest) to the printed value; ours prints two decimals.",
        "'*': initialised from keras.applications ImageNet ResNet50 (the paper's SEnet50 "
        "starts from Hu et al.'s SE-ResNet50, which Keras does not ship: its SE layers "
        "start at random here).",
        "SEnet14 (SE r = 4) and RAN14 (attention in conv2-3) are the models Table III's counts "
        "identify (1.08e7, 1.20e7); Table II's layouts (r = 16; conv2-5) would give 0.87e7 and 5.60e7. "
        "RAN50 (conv2-4, Table II) counts 3.63e7 against the paper's 3.9e7 (see zoo.arl_cnn.models).",
        "ACC, sensitivity and specificity at a score threshold of 0.5 (--threshold); "
        "scores averaged over 9 random test patches per image, drawn with --seed.",
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    row = score_model(ctx, read_splits(ctx))
    return row_result(row, table_values(row, params=True))


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
