"""ARL-CNN Table IV: ARL-CNN50 beside the top ISIC 2017 challenge records.

    python reproduce/arl_table4.py --data-dir data/isic2017 --extra-images archive/extra.csv
    python reproduce/arl_table4.py --data-dir data/isic2017 --rows arl-cnn50-no-external-data
    python reproduce/arl_table4.py --smoke              # synthetic data and synthetic extras

Two rows are ours: ARL-CNN50 (ImageNet-initialised, the recipe of
:mod:`reproduce.arl_common`) trained on the 2000 ISIC 2017 training images plus
the paper's 1320 ISIC Archive images (466 melanomas, 822 nevi, 32 seborrheic
keratoses, Sec. IV-A), and trained on the 2000 alone. The six challenge entries
are quoted from the paper. "Average AUC", the mean of the two sub-tasks' AUCs,
is the challenge's ranking score.

The paper does not list its 1320 images. ``--extra-images`` takes a CSV in the
ISIC 2017 Part 3 format, ``image_id,melanoma,seborrheic_keratosis`` (nevus: both
0), with an optional ``path`` column (absolute, or relative to the CSV's folder;
default ``<CSV folder>/<image_id>.jpg``). An image that is also in the ISIC 2017
training, validation or test set is refused: in the validation or test set it
would leak, in the training set it would count twice.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
from pathlib import Path
from typing import Sequence

from data_tools.isic import read_isic2017
from data_tools.records import Record
from data_tools.synthetic import make_isic2017
from reproduce.arl_common import (AVERAGE_AUC, DATASET, MODELS, PAPER_SETTINGS, SCORE_COLUMNS,
                                  SMOKE, TASKS, Splits, add_recipe_arguments, paper_scores,
                                  read_splits, row_result, score_model, table_values)
from reproduce.datasets import MissingDataError
from reproduce.arl_extra_images import EXTRA_COLUMNS, read_extra_images
from reproduce.frame import Column, PaperRow, PaperTable, RowContext, RowResult, run_table, slug

PAPER_EXTRA_IMAGES = 1320
SYNTHETIC_EXTRAS = Path("isic_archive") / "extra_images.csv"
"""Under ``--smoke``: the synthetic extras list, relative to the synthetic data's parent."""
_SYNTHETIC_ID_OFFSET = 300_000  # beyond the synthetic splits' ids (0, 100000, 200000)

EXTERNAL = Column("External data", "images", decimals=0)
WITH_EXTRAS = f"ARL-CNN50*, {PAPER_EXTRA_IMAGES} ISIC Archive images"
WITHOUT_EXTRAS = "ARL-CNN50*, no external data"


def _paper(external: int, melanoma: Sequence[float], keratosis: Sequence[float],
           average: float) -> dict[str, float]:
    """One row of Table IV: external images, 4 + 4 sub-task scores, average AUC."""
    return {EXTERNAL.name: external, **paper_scores(melanoma, keratosis),
            AVERAGE_AUC.name: average}


TABLE = PaperTable(
    key="arl_table4",
    title="ARL-CNN Table IV: ARL-CNN50 and the top six ISIC 2017 challenge records",
    source="Zhang et al., IEEE TMI 2019, Table IV",
    columns=[EXTERNAL, *SCORE_COLUMNS, AVERAGE_AUC],
    rows=[
        PaperRow(WITH_EXTRAS, _paper(1320, (0.875, 0.850, 0.658, 0.896),
                                     (0.958, 0.868, 0.878, 0.867), 0.917)),
        PaperRow("#1 Matsunaga et al. [31], ensemble", _paper(
            1444, (0.868, 0.828, 0.735, 0.851), (0.953, 0.803, 0.978, 0.773), 0.911), quoted=True),
        PaperRow("#2 Diaz [32]", _paper(
            900, (0.856, 0.823, 0.103, 0.998), (0.965, 0.875, 0.178, 0.998), 0.910), quoted=True),
        PaperRow("#3 Menegola et al. [33], ensemble", _paper(
            7544, (0.874, 0.872, 0.547, 0.950), (0.943, 0.895, 0.356, 0.990), 0.908), quoted=True),
        PaperRow("#4 Bi et al. [34], ensemble", _paper(
            1600, (0.870, 0.858, 0.427, 0.963), (0.921, 0.918, 0.589, 0.976), 0.896), quoted=True),
        PaperRow("#5 DeVries & Ramachandram [36], ensemble", _paper(
            1341, (0.836, 0.845, 0.350, 0.965), (0.935, 0.913, 0.556, 0.976), 0.886), quoted=True),
        PaperRow(WITHOUT_EXTRAS, _paper(0, (0.859, 0.837, 0.590, 0.896),
                                        (0.951, 0.908, 0.778, 0.931), 0.905)),
        PaperRow("#6 Yang et al. [35]", _paper(
            0, (0.830, 0.830, 0.436, 0.925), (0.942, 0.917, 0.700, 0.995), 0.886), quoted=True),
    ],
    notes=[
        "Challenge records are quoted from the paper; ours are single models (no ensemble).",
        "The paper's 1320 ISIC Archive images are not listed: pass your own list with "
        "--extra-images; 'External data' shows how many we used.",
        "ACC, sensitivity and specificity at a score threshold of 0.5 (--threshold).",
    ],
)


# --------------------------------------------------------------------------- extra images




def make_synthetic_data(root: Path) -> Path:
    """Synthetic ISIC 2017 in ``root/isic2017`` and extras listed in ``root/``
    :data:`SYNTHETIC_EXTRAS` (ids beyond the challenge's, files in the list's folder)."""
    data_dir = DATASET.make_synthetic(root / "isic2017")
    archive = make_isic2017(root / SYNTHETIC_EXTRAS.parent / "images", n_train=3, n_val=0,
                            n_test=0, image_size=(48, 64), seed=1)
    listed = root / SYNTHETIC_EXTRAS
    with listed.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*EXTRA_COLUMNS, "path"])
        for index, record in enumerate(read_isic2017(archive, "train", parts=(3,))):
            writer.writerow([f"ISIC_{_SYNTHETIC_ID_OFFSET + index:07d}",
                             *(int(record.labels[task]) for task in TASKS),
                             record.image_path.relative_to(listed.parent)])
    return data_dir


DATASET_WITH_EXTRAS = dataclasses.replace(DATASET, make_synthetic=make_synthetic_data)


# --------------------------------------------------------------------------- rows


def extras_list(ctx: RowContext) -> Path:
    """``--extra-images``, or the synthetic list under ``--smoke``."""
    if ctx.args.extra_images is not None:
        return ctx.args.extra_images
    if ctx.smoke:
        return ctx.data_dir.parent / SYNTHETIC_EXTRAS
    raise MissingDataError(
        f"The row {WITH_EXTRAS!r} needs the list of extra ISIC Archive images: pass "
        "--extra-images FILE.csv (columns image_id,melanoma,seborrheic_keratosis[,path]).\n"
        f"To run the other row alone: --rows {slug(WITHOUT_EXTRAS)}")


def run_row(ctx: RowContext) -> RowResult:
    splits = read_splits(ctx)
    extras: list[Record] = []
    if ctx.row.name == WITH_EXTRAS:
        challenge_ids = {r.image_id for split in (splits.train, splits.validation, splits.test)
                         for r in split}
        extras = read_extra_images(extras_list(ctx), challenge_ids, skip_bad=ctx.bad_inputs)
        splits = Splits([*splits.train, *extras], splits.validation, splits.test)
    row = score_model(ctx, MODELS["ARL-CNN50"], splits)
    values = {EXTERNAL.name: float(len(extras)), **table_values(row, average_auc=True)}
    return row_result(row, values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--extra-images", type=Path,
                        help="CSV of extra training images for the first row: "
                             "image_id,melanoma,seborrheic_keratosis[,path]")


def main(argv: Sequence[str] | None = None):
    return run_table(TABLE, run_row, dataset=DATASET_WITH_EXTRAS, argv=argv,
                     add_arguments=add_arguments, defaults=PAPER_SETTINGS,
                     smoke_overrides=SMOKE)


if __name__ == "__main__":
    main()
