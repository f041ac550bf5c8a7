"""SANet Table 4: SANet's Jaccard and Dice per attribute, beside the literature's rows.

    python reproduce/sanet_table4.py --data-dir data/isic2018
    python reproduce/sanet_table4.py --smoke             # synthetic data, minutes on a CPU

One row is run: SANet (the registered ``sanet``, ResUNet + SAM, trained on RSM-shuffled
batches with its registered recipe as it is, GBL gamma = 1: see
:mod:`reproduce.sanet_recipe`; its final epoch, or with ``--keep best-val`` the best
validation Jaccard); its row folder is the run folder of its model. Its
ISIC 2018 Task 2 scores are listed per attribute, with the macro average (mean of the
five attributes) and the micro average (confusions summed over the attributes), as the
official scorer computes them. The ResNet151, ResNetv2, DenseNet169 and Ensemble rows are quoted from the
paper (Koohbanani et al. 2018), never run.
"""

from __future__ import annotations

from typing import Sequence

from reproduce.frame import Column, PaperRow, PaperTable, RowContext, RowResult, run_table
from reproduce.sanet_recipe import DATASET, PROTOCOL_NOTES, RSM_NOTE, SMOKE, add_recipe_arguments, run_attribute_row

#: Column prefix -> key of zoo.metrics.isic2018_task2_scores, in the paper's order.
GROUPS = {
    "Pigment networks": "pigment_network",
    "Globules": "globules",
    "Milia like cysts": "milia_like_cyst",
    "Negative networks": "negative_network",
    "Streaks": "streaks",
    "Macro avg": "macro_average",
    "Micro avg": "micro_average",
}
METRICS = {"Jaccard": "jaccard", "Dice": "dice"}


def _row(*values: float | None) -> dict[str, float]:
    """Paper values in column order (Jaccard, Dice per group); ``None``, or no value at
    the end, where the paper has none."""
    names = [f"{group} {metric}" for group in GROUPS for metric in METRICS]
    if len(values) > len(names):
        raise ValueError(f"{len(values)} values for {len(names)} columns")
    return {name: value for name, value in zip(names, values, strict=False) if value is not None}


PAPER_ROWS = [
    PaperRow("ResNet151", _row(52.7, 69.0, 30.4, 46.6, 14.4, 25.7, 14.9, 26.0, 12.5, 22.2, 24.5, 37.9), quoted=True),
    PaperRow("ResNetv2", _row(53.9, 70.6, 31.0, 47.3, 15.9, 27.4, 18.9, 31.8, 12.1, 21.6, 26.4, 39.7), quoted=True),
    PaperRow("DenseNet169", _row(53.8, 69.9, 32.4, 49.0, 15.8, 27.3, 21.3, 35.1, 13.4, 23.6, 27.3, 41.0), quoted=True),
    PaperRow("Ensemble", _row(56.3, 72.0, 34.1, 50.8, 17.1, 28.9, 22.8, 37.1, 15.6, 27.0, 29.2, 43.2), quoted=True),
    PaperRow(
        "SANet",
        _row(57.6, 73.5, 34.6, 51.5, 25.1, 40.2, 28.6, 45.2, 24.8, 39.8, 34.14, 50.2, 53.7, 68.4),
        model="sanet",
    ),
]
ATTRIBUTE_GROUPS = [group for group in GROUPS if not group.endswith(" avg")]


def macro_inconsistencies(rows: Sequence[PaperRow], tolerance: float = 0.1) -> list[str]:
    """Notes on the paper's own rows whose printed macro average is not the mean of
    their five attribute values (beyond rounding, ``tolerance`` points)."""
    notes = []
    for row in rows:
        for metric in METRICS:
            parts = [row.values.get(f"{group} {metric}") for group in ATTRIBUTE_GROUPS]
            printed = row.values.get(f"Macro avg {metric}")
            if printed is None or None in parts:
                continue
            mean = sum(parts) / len(parts)
            if abs(mean - printed) > tolerance:
                notes.append(
                    f"The paper's own inconsistency: {row.name}'s macro {metric} is printed as "
                    f"{printed:g}, but the mean of its five attribute values is {mean:.2f}."
                )
    return notes


TABLE = PaperTable(
    key="sanet_table4",
    title="SANet Table 4: Jaccard and Dice per attribute on ISIC 2018 Task 2",
    source="SANet, Table 4",
    columns=[Column(f"{group} {metric}", "%", True, decimals=1) for group in GROUPS for metric in METRICS],
    rows=PAPER_ROWS,
    notes=[
        "ISIC 2018 Task 2 scoring: per image and attribute the confusion matrix normalised by "
        "the pixel count, summed over the test images; Macro avg: mean of the five attributes; "
        "Micro avg: confusions summed over the attributes too.",
        "The paper prints SANet's macro Jaccard with two decimals (34.14).",
        *macro_inconsistencies(PAPER_ROWS),
        "ResNet151, ResNetv2, DenseNet169 and Ensemble: Koohbanani et al. 2018, quoted.",
        RSM_NOTE,
        *PROTOCOL_NOTES,
    ],
)


def run_row(ctx: RowContext) -> RowResult:
    run = run_attribute_row(ctx, rsm=True)
    values = {
        f"{group} {metric}": 100.0 * run.scores[key][score]
        for group, key in GROUPS.items()
        for metric, score in METRICS.items()
    }
    return RowResult(values, history=run.trained.history, monitor=run.recipe.monitor, extra=run.extra)


def main(argv: Sequence[str] | None = None):
    return run_table(
        TABLE, run_row, dataset=DATASET, argv=argv, add_arguments=add_recipe_arguments, smoke_overrides=SMOKE
    )


if __name__ == "__main__":
    main()
