"""ARL-CNN Table IV: ARL-CNN50 beside the top ISIC 2017 challenge records.

    python reproduce/arl_extra_images.py --isic2017 data/isic2017   # once: the 1320 extra images
    python reproduce/arl_table4.py --data-dir data/isic2017
    python reproduce/arl_table4.py --data-dir data/isic2017 --rows arl-cnn50-no-external-data
    python reproduce/arl_table4.py --smoke              # synthetic data and synthetic extras

Zhang et al., "Attention Residual Learning for Skin Lesion Classification", IEEE TMI
2019, Table IV. Two rows are ours: the registered ``arl_cnn50`` (ImageNet-initialised,
fine-tuned with the registered recipe at the learning rate 1e-4 of Sec. IV-B, the
protocol of :mod:`reproduce.arl_common`; a run folder per sub-task model) trained on
the 2000 ISIC 2017 training images plus the paper's 1320 ISIC Archive images (466 melanomas, 822 nevi, 32 seborrheic
keratoses, Sec. IV-A), and trained on the 2000 alone. The six challenge entries
are quoted from the paper. "Average AUC", the mean of the two sub-tasks' AUCs,
is the challenge's ranking score.

The paper does not list its 1320 images: ``reproduce/arl_extra_images.py`` draws a
seeded sample with its class counts from the ISIC Archive, and ``--extra-images``
(default: that command's list) takes any CSV in the ISIC 2017 Part 3 format
(:func:`reproduce.arl_extra_images.read_extra_images`). An image that is also in
the ISIC 2017 training, validation or test set is refused: in the validation or test
set it would leak, in the training set it would count twice.
"""

from __future__ import annotations

from typing import Sequence

from reproduce.arl_common import (
    AVERAGE_AUC,
    DATASET,
    OPTIMISER_NOTE,
    SCORE_COLUMNS,
    SMOKE,
    add_extra_images,
    add_recipe_arguments,
    colour_constancy_variant,
    imagenet_row,
    paper_scores,
    read_splits,
    row_result,
    score_model,
    table_values,
)
from reproduce.datasets import MissingDataError
from reproduce.frame import Column, PaperRow, PaperTable, RowContext, RowResult, run_table, slug

PAPER_EXTRA_IMAGES = 1320

EXTERNAL = Column("External data", "images", decimals=0)
WITH_EXTRAS = f"ARL-CNN50*, {PAPER_EXTRA_IMAGES} ISIC Archive images"
WITHOUT_EXTRAS = "ARL-CNN50*, no external data"


def _paper(external: int, melanoma: Sequence[float], keratosis: Sequence[float], average: float) -> dict[str, float]:
    """One row of Table IV: external images, 4 + 4 sub-task scores, average AUC."""
    return {EXTERNAL.name: external, **paper_scores(melanoma, keratosis), AVERAGE_AUC.name: average}


TABLE = PaperTable(
    key="arl_table4",
    title="ARL-CNN Table IV: ARL-CNN50 and the top six ISIC 2017 challenge records",
    source="Zhang et al., IEEE TMI 2019, Table IV",
    columns=[EXTERNAL, *SCORE_COLUMNS, AVERAGE_AUC],
    rows=[
        imagenet_row(
            WITH_EXTRAS, _paper(1320, (0.875, 0.850, 0.658, 0.896), (0.958, 0.868, 0.878, 0.867), 0.917), "arl_cnn50"
        ),
        PaperRow(
            "#1 Matsunaga et al. [31], ensemble",
            _paper(1444, (0.868, 0.828, 0.735, 0.851), (0.953, 0.803, 0.978, 0.773), 0.911),
            quoted=True,
        ),
        PaperRow(
            "#2 Diaz [32]", _paper(900, (0.856, 0.823, 0.103, 0.998), (0.965, 0.875, 0.178, 0.998), 0.910), quoted=True
        ),
        PaperRow(
            "#3 Menegola et al. [33], ensemble",
            _paper(7544, (0.874, 0.872, 0.547, 0.950), (0.943, 0.895, 0.356, 0.990), 0.908),
            quoted=True,
        ),
        PaperRow(
            "#4 Bi et al. [34], ensemble",
            _paper(1600, (0.870, 0.858, 0.427, 0.963), (0.921, 0.918, 0.589, 0.976), 0.896),
            quoted=True,
        ),
        PaperRow(
            "#5 DeVries & Ramachandram [36], ensemble",
            _paper(1341, (0.836, 0.845, 0.350, 0.965), (0.935, 0.913, 0.556, 0.976), 0.886),
            quoted=True,
        ),
        imagenet_row(
            WITHOUT_EXTRAS, _paper(0, (0.859, 0.837, 0.590, 0.896), (0.951, 0.908, 0.778, 0.931), 0.905), "arl_cnn50"
        ),
        PaperRow(
            "#6 Yang et al. [35]",
            _paper(0, (0.830, 0.830, 0.436, 0.925), (0.942, 0.917, 0.700, 0.995), 0.886),
            quoted=True,
        ),
    ],
    notes=[
        OPTIMISER_NOTE,
        "Challenge records are quoted from the paper; ours are single models (no ensemble).",
        "The paper's 1320 ISIC Archive images are not listed: pass your own list with "
        "--extra-images; 'External data' shows how many we used.",
        "ACC, sensitivity and specificity at a score threshold of 0.5 (--threshold).",
        "Images as the paper's Table IV, without colour normalisation; --colour-constancy gray_world runs "
        "Sec. V-F's variant (gray-world normalised images, average AUC 0.918 in the paper), named in the title.",
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    with_extras = ctx.row.name == WITH_EXTRAS
    if with_extras and ctx.args.extra_images is None:
        raise MissingDataError(
            f"the row {WITH_EXTRAS!r} trains with the extra images; --extra-images none "
            f"leaves only --rows {slug(WITHOUT_EXTRAS)}"
        )
    challenge = read_splits(ctx, extras=False)
    splits = add_extra_images(ctx, challenge) if with_extras else challenge
    row = score_model(ctx, splits, data=None if with_extras else {"extra_images": None})
    values = {EXTERNAL.name: float(len(splits.train) - len(challenge.train)), **table_values(row, average_auc=True)}
    return row_result(row, values)


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE,
        run_row,
        dataset=DATASET,
        argv=argv,
        add_arguments=add_recipe_arguments,
        smoke_overrides=SMOKE,
        variant=colour_constancy_variant,
    )


if __name__ == "__main__":
    main()
