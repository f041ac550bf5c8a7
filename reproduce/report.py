"""Our numbers beside the paper's: console table, ``table.md/.csv/.json``, curves.

Every output shows, for each of the paper's columns, our value, the paper's value
and the difference ``ours - paper``. Rows the paper quotes from other publications
are shown with the paper's value only and marked ``quoted from the paper``; rows we
have not run (yet) are marked ``not run``. Output computed on synthetic data says
SYNTHETIC in its title and in every file, since its numbers only show that the
pipeline runs.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from data_tools.atomic import atomic_path, atomic_write_text

if TYPE_CHECKING:
    from reproduce.frame import Column, PaperRow, PaperTable, RowResult

SYNTHETIC_BANNER = (
    "SYNTHETIC DATA (--smoke): these numbers only show that the pipeline runs; "
    "they say nothing about the paper's results."
)
QUOTED = "quoted from the paper"
OURS = "ours"
NOT_RUN = "not run"
_MISSING = "—"


def title_of(table: PaperTable, *, synthetic: bool) -> str:
    """The table's title, prefixed with ``SYNTHETIC`` for smoke runs."""
    return f"SYNTHETIC — {table.title}" if synthetic else table.title


def described(table: PaperTable) -> str:
    """``"AER-Net Table 2: ablation .... Source: Lima & Braz Junior, AER-Net, Table 2"``:
    the title, then where the paper's values come from, as two sentences (joined by a
    colon they read "Table 2: AER-Net Table 2")."""
    return f"{table.title}. Source: {table.source}"


_IMAGE_COUNTS = (("train_images", "training"), ("validation_images", "validation"), ("test_images", "test"))
"""The keys of a row's ``extra`` that count the images it ran on, and their words."""


def _count(value: Any) -> bool:
    """An integer count (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def images_ran(extra: Mapping[str, Any]) -> str | None:
    """``"32 training / 8 test images"``: what a row's ``extra`` says it ran on
    (``train_images``, ``validation_images``, ``test_images``, or an ``images`` count
    or mapping of split to count); ``None`` where it says nothing."""
    counts = [(int(extra[key]), word) for key, word in _IMAGE_COUNTS if _count(extra.get(key))]
    images = extra.get("images")
    if not counts and isinstance(images, Mapping):
        counts = [(int(count), str(split)) for split, count in images.items() if _count(count)]
    if not counts and _count(images):
        return f"{int(images)} images"
    return " / ".join(f"{count} {word}" for count, word in counts) + " images" if counts else None


def kept_epoch(result: RowResult) -> tuple[int, int] | None:
    """``(epoch, epochs)``, both counted from 1 as Keras prints them: the epoch whose
    weights a trained row kept (its ``extra``'s ``kept_epoch``, also under
    ``extra["training"]``, :attr:`zoo.train.TrainResult.kept_epoch`)."""
    for record in (result.extra, result.extra.get("training")):
        if isinstance(record, Mapping) and _count(record.get("kept_epoch")) and record["kept_epoch"] >= 1:
            epoch = int(record["kept_epoch"])
            epochs = len(result.history.get("loss", ())) if result.history else 0
            return epoch, max(epochs, epoch)
    return None


def run_notes(table: PaperTable, results: Mapping[str, RowResult]) -> list[str]:
    """Notes on what this run did, derived from its rows' results (the table's own notes
    describe the paper's set-up): the images the rows ran on, and the epoch each
    trained row kept, counted from 1 as Keras prints epochs."""
    ran = [(row.name, results[row.name]) for row in table.rows if row.name in results]
    notes = []
    images = {name: images_ran(result.extra) for name, result in ran}
    images = {name: text for name, text in images.items() if text}
    if images and len(set(images.values())) == 1 and len(images) == len(ran):
        notes.append(f"This run: {next(iter(images.values()))} (every row).")
    elif images:
        notes.append("This run: " + "; ".join(f"{name}: {text}" for name, text in images.items()) + ".")
    kept = {name: kept_epoch(result) for name, result in ran}
    kept = {name: epochs for name, epochs in kept.items() if epochs}
    if kept:
        notes.append(
            "Kept epoch (counted from 1, as Keras prints epochs): "
            + "; ".join(f"{name}: {epoch} of {epochs}" for name, (epoch, epochs) in kept.items())
            + "."
        )
    return notes


def difference(ours: float | None, paper: float | None) -> float | None:
    """``ours - paper``, or ``None`` where either is missing."""
    if ours is None or paper is None:
        return None
    return ours - paper


def row_status(row: PaperRow, results: Mapping[str, RowResult]) -> str:
    """``quoted from the paper``, ``ours`` or ``not run``."""
    if row.quoted:
        return QUOTED
    return OURS if row.name in results else NOT_RUN


def _ours(row: PaperRow, column: Column, results: Mapping[str, RowResult]) -> float | None:
    result = results.get(row.name)
    return None if result is None else result.values.get(column.name)


def _format(value: float | None, decimals: int, *, signed: bool = False) -> str:
    if value is None:
        return _MISSING
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def comparison_grid(table: PaperTable, results: Mapping[str, RowResult]) -> tuple[list[str], list[list[str]]]:
    """The comparison as header and body cells, shared by the console and markdown."""
    header = ["Method"]
    for column in table.columns:
        header += [f"{column.name} ours", f"{column.name} paper", f"{column.name} diff"]
    header.append("Source")
    body = []
    for row in table.rows:
        cells = [row.name]
        for column in table.columns:
            ours = _ours(row, column, results)
            paper = row.values.get(column.name)
            cells += [
                _format(ours, column.decimals),
                row.printed(column) or _MISSING,
                _format(difference(ours, paper), max(column.decimals, row.decimals(column)), signed=True),
            ]
        cells.append(row_status(row, results))
        body.append(cells)
    return header, body


def _legend(table: PaperTable) -> str:
    columns = ", ".join(column.label for column in table.columns)
    return (
        f"Source: {table.source}. Columns: {columns} (↑/↓: higher/lower is better); "
        "ours: this run; paper: the paper's value; diff: ours - paper."
    )


def render_text(table: PaperTable, results: Mapping[str, RowResult], *, synthetic: bool) -> str:
    """The comparison as an aligned plain-text table for the console."""
    header, body = comparison_grid(table, results)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = [title_of(table, synthetic=synthetic)]
    if synthetic:
        lines.append(SYNTHETIC_BANNER)
    lines += [_legend(table), "", line(header), rule, *map(line, body)]
    lines += [f"Note: {note}" for note in [*table.notes, *run_notes(table, results)]]
    return "\n".join(lines)


def render_markdown(table: PaperTable, results: Mapping[str, RowResult], *, synthetic: bool) -> str:
    """The comparison as a markdown document (``table.md``)."""
    header, body = comparison_grid(table, results)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    lines = [f"# {title_of(table, synthetic=synthetic)}", ""]
    if synthetic:
        lines += [f"> **{SYNTHETIC_BANNER}**", ""]
    lines += [_legend(table), "", line(header), "|" + "---|" * len(header), *map(line, body)]
    notes = [*table.notes, *run_notes(table, results)]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_csv(table: PaperTable, results: Mapping[str, RowResult], path: Path, *, synthetic: bool) -> None:
    """``table.csv``: one line per row, unrounded; the ``data`` column says
    ``synthetic`` or ``real``."""
    header = ["method", "source", "data"]
    for column in table.columns:
        header += [f"{column.name} ours", f"{column.name} paper", f"{column.name} diff"]
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for row in table.rows:
            cells: list[Any] = [row.name, row_status(row, results), "synthetic" if synthetic else "real"]
            for column in table.columns:
                ours = _ours(row, column, results)
                paper = row.values.get(column.name)
                diff = difference(ours, paper)
                cells += [
                    "" if ours is None else repr(ours),
                    row.printed(column) or "",
                    "" if diff is None else repr(diff),
                ]
            writer.writerow(cells)


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON: numpy values as Python ones, non-finite floats as
    ``None``, paths as strings."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def table_json(table: PaperTable, results: Mapping[str, RowResult], *, synthetic: bool) -> dict[str, Any]:
    """``table.json``: the declaration, our values, the paper's and the differences."""
    rows = []
    for row in table.rows:
        result = results.get(row.name)
        ours = {c.name: _ours(row, c, results) for c in table.columns}
        kept = None if result is None else kept_epoch(result)
        rows.append(
            {
                "name": row.name,
                "source": row_status(row, results),
                "paper": {c.name: row.values.get(c.name) for c in table.columns},
                "paper_printed": {c.name: row.printed(c) for c in table.columns},
                "ours": None if result is None else ours,
                "difference": {c.name: difference(ours[c.name], row.values.get(c.name)) for c in table.columns},
                "kept_epoch": None if kept is None else {"epoch": kept[0], "of": kept[1], "counted_from": 1},
                "extra": None if result is None else result.extra,
            }
        )
    return json_safe(
        {
            "key": table.key,
            "title": title_of(table, synthetic=synthetic),
            "source": table.source,
            "synthetic": synthetic,
            "columns": [
                {"name": c.name, "unit": c.unit, "higher_is_better": c.higher_is_better} for c in table.columns
            ],
            "rows": rows,
            "notes": list(table.notes),
            "run_notes": run_notes(table, results),
            "epoch_numbering": "kept_epoch counts epochs from 1, as Keras prints them, here and in every row's "
            "result.json and run.json",
        }
    )


def plot_curves(table: PaperTable, results: Mapping[str, RowResult], path: Path, *, synthetic: bool) -> bool:
    """Draws every trained row's loss and score metric per epoch into ``path``.

    One figure per table, one line of two panels per row that ran: the loss, and the
    row's monitored metric (``RowResult.monitor``) or, where training monitors the
    loss itself (no validation split), the first metric it logged (Dice, Jaccard,
    AUC); training and validation curves where both were logged (a curve never
    logged, or all NaN, is not drawn), labelled axes, epochs counted from 1 as Keras
    prints them, and the kept epoch marked. Returns ``False`` and writes nothing
    when no row has a history.
    """
    trained = [(name, r) for name, r in results.items() if r.history]
    if not trained:
        return False
    figure = Figure(figsize=(10, 0.6 + 2.8 * len(trained)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(trained), 2, squeeze=False)
    for (name, result), (loss_axis, metric_axis) in zip(trained, axes, strict=True):
        kept = kept_epoch(result)
        _plot_pair(loss_axis, result.history, "loss", title=f"{name}: loss", kept=kept)
        metric = score_metric(result)
        if metric is None:
            metric_axis.set_axis_off()
            metric_axis.text(0.5, 0.5, f"{name}: no metric was logged", ha="center", va="center")
        else:
            _plot_pair(metric_axis, result.history, metric, title=f"{name}: {metric}", kept=kept)
    figure.suptitle(title_of(table, synthetic=synthetic))
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=80, format="png")
    return True


def score_metric(result: RowResult) -> str | None:
    """The metric a row's curves show beside the loss: the monitored one, or where
    the loss is monitored, the first other quantity logged (without ``val_``)."""
    monitor = (result.monitor or "").removeprefix("val_")
    if monitor and monitor != "loss":
        return monitor
    logged = [key.removeprefix("val_") for key in result.history or {} if key != "epoch"]
    return next((key for key in logged if not key.endswith("loss")), None)


def _plot_pair(
    axis: Any, history: Mapping[str, list], metric: str, *, title: str, kept: tuple[int, int] | None
) -> None:
    for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
        values = np.asarray(history.get(key, []), dtype=float)
        if values.size and np.isfinite(values).any():
            axis.plot(range(1, len(values) + 1), values, marker=".", label=label)
    if kept is not None:
        axis.axvline(kept[0], color="grey", linestyle="--", linewidth=1, label=f"kept: epoch {kept[0]}")
    axis.set_title(title)
    axis.set_xlabel("epoch")
    axis.set_ylabel(metric)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(fontsize=8)


def write_report(table: PaperTable, results: Mapping[str, RowResult], out_dir: Path, *, synthetic: bool) -> list[Path]:
    """Writes ``table.md``, ``table.csv``, ``table.json`` and, when any row has a
    history, ``curves.png`` into ``out_dir``; returns the files written. Each file
    appears whole or not at all."""
    written = [out_dir / "table.md", out_dir / "table.csv", out_dir / "table.json"]
    atomic_write_text(written[0], render_markdown(table, results, synthetic=synthetic))
    write_csv(table, results, written[1], synthetic=synthetic)
    atomic_write_text(written[2], json.dumps(table_json(table, results, synthetic=synthetic), indent=2))
    if plot_curves(table, results, out_dir / "curves.png", synthetic=synthetic):
        written.append(out_dir / "curves.png")
    return written
