"""The frame every paper-table script runs in.

A table script declares three things: the paper's table (:class:`PaperTable`), the
dataset it is computed on (:class:`~reproduce.datasets.DatasetNeed`), and a function
that computes one of the table's rows (``run_row(ctx) -> RowResult``).
:func:`run_table` does everything else: the command line, finding or generating the
data, running the rows (each once: finished rows are kept and skipped on the next
run), and writing our numbers beside the paper's. A script::

    TABLE = PaperTable(
        key="aernet_table2", title="AER-Net Table 2: ablation on ISIC 2018 Task 1",
        source="AER-Net, Table 2",
        columns=[Column("JSI", "%", higher_is_better=True), Column("DC", "%", True)],
        rows=[PaperRow("U-Net", {"JSI": 70.1, "DC": 80.2}),
              PaperRow("Literature X [12]", {"JSI": 75.0}, quoted=True)],
    )
    DATASET = DatasetNeed(name="ISIC 2018 Task 1", default_dir="data/isic2018",
                          how_to_get="python -m data_tools.download isic2018 --dest data/isic2018",
                          make_synthetic=functools.partial(make_isic2018, n_train=8, ...))

    def run_row(ctx: RowContext) -> RowResult:
        config = ctx.train_config(monitor="val_dice", mode="max")
        trained = fit(build, train, val, config, optimizer=..., loss=...)
        return RowResult({"JSI": ..., "DC": ...}, history=trained.history, monitor="val_dice")

    if __name__ == "__main__":
        run_table(TABLE, run_row, dataset=DATASET, defaults={"epochs": 50, "batch_size": 8},
                  smoke_overrides={"epochs": 1, "batch_size": 2})

Output folder (``--out``; default ``results/<key>/``, ``results/<key>-smoke/`` under
``--smoke`` so that synthetic numbers never mix with real ones)::

    config.json          flags, data folder, versions, devices, date, git commit
    table.md .csv .json  our numbers, the paper's and the differences
    curves.png           loss and monitored metric per epoch of every trained row
    rows/<row>/          the row's ctx.out_dir (checkpoints, logs) and result.json
    synthetic_data/      --smoke only: the generated dataset

A row's ``result.json`` records the settings it ran with. Running the script again
skips rows finished with the same settings (``--force`` reruns them) and refuses to
mix rows finished with other settings into one table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import numbers
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Sequence

import keras

from data_tools.preprocess import InputSpec
from data_tools.records import BadInputPolicy, DatasetError
from reproduce import report
from reproduce.datasets import DatasetNeed, MissingDataError, find_real_data, prepare_synthetic_data
from zoo.common.validation import check_encoder_weights
from zoo.recipe import TrainingRecipe, add_override_flags, overrides_from_flags
from zoo.registry import ModelEntry, get_model
from zoo.run import git_commit, now, save_run
from zoo.runtime import STRATEGIES, describe_runtime, is_chief, make_strategy, task_name
from zoo.train import TrainConfig, TrainResult, fit

#: Flags that do not change a trained row's numbers, only where and how it runs: the
#: output folder, the rows chosen, rerunning, XLA compilation and the distribution
#: strategy. A row finished with other values of these is still reused; every other
#: flag is one of the row's settings (recorded in its ``result.json``).
NON_RESULT_FLAGS = frozenset({"out", "rows", "force", "xla", "strategy"})
#: Exit status for errors the user fixes by changing the command or the data.
EXIT_USAGE = 2


def slug(name: str) -> str:
    """``"Attention U-Net"`` -> ``"attention-u-net"``: a row's folder name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclasses.dataclass(frozen=True)
class Column:
    """One of the paper's metric columns.

    Attributes:
        name: the paper's column header, e.g. ``"JSI"``; the key of row values.
        unit: printed after the name, e.g. ``"%"``. Values (the paper's and
            ``RowResult.values``) are in this unit: a Jaccard of 0.701 is 70.1 %.
        higher_is_better: ``True``/``False`` marks the header with ↑/↓; ``None``
            for columns that are not scores (parameters, MACs).
        decimals: digits printed after the point (the paper's precision).
    """

    name: str
    unit: str = ""
    higher_is_better: bool | None = None
    decimals: int = 1

    @property
    def label(self) -> str:
        unit = f" ({self.unit})" if self.unit else ""
        arrow = {True: " ↑", False: " ↓", None: ""}[self.higher_is_better]
        return f"{self.name}{unit}{arrow}"


_MAX_PAPER_DECIMALS = 6  # a computed float (a mean of the paper's values) is not printed to 17 digits


@dataclasses.dataclass(frozen=True)
class PaperRow:
    """One row of the paper's table and the paper's values in it.

    Attributes:
        name: the row's method name as the paper prints it.
        values: the paper's value per column name; a column the paper leaves
            empty is left out (or ``None``). A string is the paper's printed text
            (``"70"``, ``"75,6"``) and prints with exactly its digits (a decimal
            comma as a point), an int without a point (``93``); a float prints with
            the column's decimals (its trailing zeros, which a float cannot hold:
            13.70 in a 2-decimal column) or, if it has more, its own (77.29 in a
            1-decimal column prints 77.29, not 77.3). A value printed with fewer
            digits than its column (76.1 in a 2-decimal column) is a string.
        quoted: ``True`` for a result the paper quotes from another publication:
            printed and marked "quoted from the paper", never run.
        model: the registered model (``zoo.get_model`` name) the row trains; ``None``
            for quoted rows and rows that train nothing.
        builder_args: the row's builder arguments beyond the registered model's
            (its variant, e.g. ``{"attention": "channel"}``).
        recipe_overrides: the row's changes to the model's registered recipe (e.g.
            the paper's 50 epochs of one table); listed in the row's run card and
            the table's notes.

    After construction ``values`` holds floats; :meth:`decimals` gives the digits
    each paper value prints with.
    """

    name: str
    values: Mapping[str, float | str | None]
    quoted: bool = False
    model: str | None = None
    builder_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    recipe_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.model is not None:
            get_model(self.model)  # a KeyError listing the registered names
        if self.quoted and self.model is not None:
            raise ValueError(f"PaperRow {self.name!r}: a quoted row is never run and names no model.")
        values, decimals = {}, {}
        for column, value in self.values.items():
            if value is None:
                values[column] = None
                continue
            exact = isinstance(value, str) or (isinstance(value, numbers.Integral) and not isinstance(value, bool))
            text = value.replace(",", ".") if isinstance(value, str) else str(value) if exact else repr(float(value))
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"PaperRow {self.name!r}: {column}={value!r} is not a number") from None
            if not math.isfinite(number):
                raise ValueError(f"PaperRow {self.name!r}: {column}={value!r} is not finite")
            values[column] = number
            digits = 0 if "e" in text else min(len(text.partition(".")[2]), _MAX_PAPER_DECIMALS)
            decimals[column] = (digits, exact)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_decimals", decimals)

    def decimals(self, column: Column) -> int:
        """Digits after the point that the paper's value in ``column`` prints with."""
        digits, exact = self._decimals.get(column.name, (0, False))
        return digits if exact else max(digits, column.decimals)

    def printed(self, column: Column) -> str | None:
        """The paper's value in ``column`` as the paper prints it (a decimal comma as a
        point); ``None`` where the paper leaves the cell empty."""
        value = self.values.get(column.name)
        return None if value is None else f"{value:.{self.decimals(column)}f}"

    @property
    def slug(self) -> str:
        return slug(self.name)


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """A table of the paper, as the paper prints it.

    Attributes:
        key: names the script and its output folder, e.g. ``"aernet_table2"``.
        title: a one-line title for the outputs.
        source: where the numbers come from, e.g. ``"AER-Net, Table 2"``.
        columns: the metric columns.
        rows: the rows in the paper's order.
        notes: deviations and reading notes printed under the table.
    """

    key: str
    title: str
    source: str
    columns: Sequence[Column]
    rows: Sequence[PaperRow]
    notes: Sequence[str] = ()

    def __post_init__(self) -> None:
        for field in ("columns", "rows", "notes"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.key):
            raise ValueError(f"PaperTable key {self.key!r} must be usable as a folder name")
        _require_unique("column", [c.name for c in self.columns])
        _require_unique("row", [r.name for r in self.rows])
        _require_unique("row folder name", [r.slug for r in self.runnable_rows])
        names = {c.name for c in self.columns}
        for row in self.rows:
            unknown = sorted(set(row.values) - names)
            if unknown:
                raise ValueError(
                    f"{self.key}: row {row.name!r} has values for {unknown}, "
                    f"which are not columns; columns: {sorted(names)}"
                )
        if not self.runnable_rows:
            raise ValueError(f"{self.key}: every row is quoted; nothing to run")

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return next(column for column in self.columns if column.name == name)

    @property
    def runnable_rows(self) -> tuple[PaperRow, ...]:
        """The rows we compute (all rows but the quoted ones), in order."""
        return tuple(row for row in self.rows if not row.quoted)


def default_out_dir(table: PaperTable, *, smoke: bool) -> Path:
    """A table's output folder when ``--out`` is not given: ``results/<key>/``, and
    ``results/<key>-smoke/`` under ``--smoke``, so that synthetic numbers never mix
    with real ones."""
    return Path("results") / (f"{table.key}-smoke" if smoke else table.key)


def row_dir(out_dir: Path, row: PaperRow) -> Path:
    """A row's folder under the table's output folder (a run folder where the row trains
    a registered model: ``python -m zoo.predict --run`` takes it)."""
    return out_dir / "rows" / row.slug


def synthetic_data_dir(out_dir: Path) -> Path:
    """Where ``--smoke`` generates the table's synthetic dataset."""
    return out_dir / "synthetic_data"


def _require_unique(what: str, names: Sequence[str]) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what}s must be unique; repeated: {repeated}")


@dataclasses.dataclass
class RowResult:
    """What ``run_row`` returns for one row.

    Attributes:
        values: our value per column name, in the column's unit (see
            :class:`Column`); columns we do not compute are left out.
        history: per-epoch metrics (``TrainResult.history``), plotted in
            ``curves.png``; ``None`` for rows that do not train.
        monitor: the metric training monitored (e.g. ``"val_dice"``), plotted
            beside the loss.
        extra: anything else worth keeping, e.g. ``{"params": 6_575_239}``;
            written to the row's ``result.json`` and ``table.json``.
    """

    values: Mapping[str, float]
    history: Mapping[str, Sequence[float]] | None = None
    monitor: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return report.json_safe(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RowResult:
        values = {k: (float("nan") if v is None else v) for k, v in data["values"].items()}
        return cls(values, data["history"], data["monitor"], data["extra"])


@dataclasses.dataclass(frozen=True)
class RowContext:
    """Everything ``run_row`` needs for one row.

    Attributes:
        args: all parsed flags, the common ones and the script's own.
        row: the row to compute.
        data_dir: the dataset folder (real, or generated under ``--smoke``).
        out_dir: this row's own folder, for checkpoints and logs.
        smoke: ``True`` under ``--smoke`` (synthetic data, tiny settings).
        bad_inputs: the ``--skip-bad`` policy to hand to the dataset readers;
            the samples it skips are recorded in the row's ``extra``.
    """

    args: argparse.Namespace
    row: PaperRow
    data_dir: Path
    out_dir: Path
    smoke: bool
    bad_inputs: BadInputPolicy

    @property
    def entry(self) -> ModelEntry:
        """The registered model the row trains (``row.model``)."""
        if self.row.model is None:
            raise ValueError(f"row {self.row.name!r} names no registered model (PaperRow.model).")
        return get_model(self.row.model)

    def recipe(self, **script_overrides: Any) -> TrainingRecipe:
        """The row's recipe: the model's registered recipe, then the row's
        ``recipe_overrides``, then ``script_overrides`` (what the script's own flags
        choose, e.g. another momentum), then the command line's ``--epochs``,
        ``--batch-size``, ``--learning-rate``, ``--monitor`` (and ``--smoke``'s)."""
        return (
            self.entry.recipe.with_overrides(**self.row.recipe_overrides)
            .with_overrides(**script_overrides)
            .with_overrides(**overrides_from_flags(self.args))
        )

    def builder_args(self, **script_args: Any) -> dict[str, Any]:
        """The row's builder arguments with the script's (input shape, classes, encoder
        weights from its flags) over them."""
        return {**self.entry.kwargs, **self.row.builder_args, **script_args}

    def build(self, builder_args: Mapping[str, Any], **outputs: Any) -> keras.Model:
        """The row's registered model built with ``builder_args`` (from
        :meth:`builder_args`); ``outputs``: e.g. ``return_attention=True``."""
        return self.entry.build(**builder_args, **outputs)

    def fit(
        self,
        train_data: Any,
        val_data: Any,
        *,
        builder_args: Mapping[str, Any],
        recipe: TrainingRecipe,
        steps_per_epoch: int,
        metrics: Any = None,
        return_attention: bool = False,
        repeated: bool = False,
        build: Callable[[], keras.Model] | None = None,
        **settings: Any,
    ) -> TrainResult:
        """Trains the row's model: the only way the tables train.

        The model is ``self.build(builder_args)``; the optimiser, loss and loss
        weights are ``recipe``'s (from :meth:`recipe`), for ``steps_per_epoch``
        batches an epoch over ``recipe.epochs``; ``settings`` go to
        :meth:`train_config` (``monitor`` defaults to the recipe's). ``repeated``:
        ``train_data`` repeats without end, and an epoch is ``steps_per_epoch`` of
        its batches (``TrainConfig.steps_per_epoch``). ``build``: only for a row
        whose model is deliberately not registered (a table's named exception, e.g.
        a third-party network), the function that builds it instead (``builder_args``
        are then only recorded by the caller)."""
        epoch = {"steps_per_epoch": steps_per_epoch} if repeated else {}
        config = self.train_config(**{"epochs": recipe.epochs, "monitor": recipe.monitor, **epoch, **settings})
        outputs = {"return_attention": True} if return_attention else {}
        if build is None:
            build = lambda: self.build(builder_args, **outputs)  # noqa: E731
        return fit(
            build,
            train_data,
            val_data,
            config,
            optimizer=lambda: recipe.make_optimizer(steps_per_epoch),
            loss=recipe.loss,
            loss_weights=None if recipe.loss_weights is None else dict(recipe.loss_weights()),
            metrics=metrics,
        )

    def save_run(
        self,
        model: keras.Model,
        *,
        builder_args: Mapping[str, Any],
        recipe: TrainingRecipe,
        input_spec: InputSpec,
        scores: Mapping[str, Any],
        training: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        folder: Path | None = None,
    ) -> Path:
        """Makes the row's folder (or ``folder`` under it, for rows that train several
        models) a run folder holding ``model`` exactly as it was scored
        (:func:`zoo.run.save_run`); ``data`` defaults to the dataset folder."""
        data = {"dir": str(self.data_dir), "synthetic": self.smoke, **(data or {})}
        return save_run(
            folder or self.out_dir,
            model,
            entry=self.entry,
            builder_args=builder_args,
            input_spec=input_spec,
            recipe=recipe,
            training=training,
            data=data,
            scores={**scores, "table": self.row.name},
        )

    def train_config(self, **settings: Any) -> TrainConfig:
        """A :class:`zoo.train.TrainConfig` for this row, filled from the flags.

        Args:
            **settings: the script's own settings (``monitor``, ``mode``, ...); they
                override the flag-derived ones.
        """
        if self.args.epochs is None and "epochs" not in settings:
            raise ValueError("this script sets no default for --epochs; pass --epochs N")
        from_flags = dict(
            out_dir=self.out_dir,
            epochs=self.args.epochs,
            xla=self.args.xla,
            mixed_precision=self.args.mixed_precision,
            strategy=self.args.strategy,
            seed=self.args.seed,
        )
        return TrainConfig(**{**from_flags, **settings})


@dataclasses.dataclass(frozen=True)
class TableResult:
    """What :func:`run_table` returns: our results and where they were written."""

    table: PaperTable
    results: Mapping[str, RowResult]
    out_dir: Path
    synthetic: bool
    files: Sequence[Path]


class _Stop(Exception):
    """An error the user fixes; reported without a traceback."""


def build_parser(
    table: PaperTable,
    dataset: DatasetNeed,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    smoke_overrides: Mapping[str, Any] | None = None,
) -> argparse.ArgumentParser:
    """The command line every table script shares, plus the script's own flags."""
    parser = argparse.ArgumentParser(
        prog=f"python {sys.argv[0]}",
        description=f"Reproduces {report.described(table)}.",
        epilog="rows: " + ", ".join(repr(row.name) for row in table.runnable_rows),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data-dir",
        type=Path,
        help=f"the {dataset.name} folder (default: {dataset.default_dir})",
    )
    tiny = ", ".join(f"{k}={v}" for k, v in (smoke_overrides or {}).items())
    source.add_argument(
        "--smoke",
        action="store_true",
        help="run the whole path on small synthetic data; the output says SYNTHETIC"
        + (f" (defaults: {tiny})" if tiny else ""),
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default: results/{table.key}, results/{table.key}-smoke with --smoke)",
    )
    add_override_flags(parser)  # --learning-rate, --batch-size, --epochs, --monitor: the recipe's by default
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile with XLA (default: on with a GPU, off on a CPU)",
    )
    parser.add_argument("--mixed-precision", action="store_true", help="train in mixed_float16 (GPU)")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy (multi_worker reads TF_CONFIG; default: %(default)s)",
    )
    example = min(table.runnable_rows, key=lambda row: len(row.name))  # a row of this table: the example runs
    parser.add_argument(
        "--rows",
        nargs="+",
        metavar="ROW",
        help="run only these rows, by name or folder name (e.g. "
        + f"{shlex.quote(example.name)} or {example.slug}; the rows are listed below)".replace("%", "%%"),
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable or inconsistent samples (listed in result.json) instead of stopping",
    )
    parser.add_argument("--force", action="store_true", help="rerun rows that have finished")
    if add_arguments is not None:
        add_arguments(parser)
    return parser


def parse_flags(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    *,
    defaults: Mapping[str, Any] | None = None,
    smoke_overrides: Mapping[str, Any] | None = None,
) -> argparse.Namespace:
    """Parses ``argv`` with the paper's ``defaults``, and under ``--smoke`` with
    ``smoke_overrides`` in their place; flags the user gives always win."""
    dests = {action.dest for action in parser._actions}  # argparse lists them nowhere public
    for what, values in (("defaults", defaults), ("smoke_overrides", smoke_overrides)):
        unknown = sorted(set(values or {}) - dests)
        if unknown:
            raise ValueError(f"{what} names {unknown}, which are not flags; flags: {sorted(dests)}")
    parser.set_defaults(**(defaults or {}))
    args = parser.parse_args(argv)
    if args.smoke and smoke_overrides:
        parser.set_defaults(**smoke_overrides)
        args = parser.parse_args(argv)
    return args


def number_in_range(
    kind: type, low: float, high: float | None = None, *, include_low: bool = True
) -> Callable[[str], Any]:
    """An argparse ``type``: a ``kind`` value from ``low`` up to, not including, ``high``."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        too_low = value < low or (value == low and not include_low)
        if too_low or (high is not None and value >= high):
            lower = f"[{low}" if include_low else f"({low}"
            raise argparse.ArgumentTypeError(f"must be in {lower}, {high if high is not None else 'inf'}), got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names it in "invalid int value"
    return parse


def weights_argument(text: str) -> str | None:
    """argparse ``type`` of the recipes' weights flags: ``none`` (random
    initialisation), ``imagenet`` or an existing weights file, checked when parsing
    so that a typo stops before any training."""
    try:
        return check_encoder_weights(
            None if text.lower() == "none" else text, "the recipe's models", argument="weights"
        )
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


DANET_ENERGIES = {"paper": False, "reference": True}
"""``--danet-energy`` -> the DANet builders' ``max_subtracted_energy``."""

DANET_ENERGY_NOTE = (
    "DANet's channel attention: Fu et al.'s eq. 3, softmax over A_i . A_j (--danet-energy paper, "
    "default); the authors' code (junfu1115/DANet) feeds the softmax max - A_i . A_j instead "
    "(--danet-energy reference; the run card's builder_args.max_subtracted_energy)."
)
"""The note of the tables with a DANet row."""


def add_danet_energy_argument(parser: argparse.ArgumentParser) -> None:
    """``--danet-energy`` of the tables with a DANet row (SANet Table 3, A-PSPNet
    Table III): Fu et al.'s eq. 3 by default, the reference code's ``max - energy``
    channel attention (junfu1115/DANet) as the option."""
    parser.add_argument(
        "--danet-energy",
        choices=tuple(DANET_ENERGIES),
        default="paper",
        help="DANet rows' channel attention: paper (Fu et al. eq. 3, softmax over A_i . A_j) or "
        "reference (junfu1115/DANet: softmax over max - A_i . A_j) (default: %(default)s)",
    )


def danet_builder_args(args: argparse.Namespace) -> dict[str, Any]:
    """The DANet builder arguments ``--danet-energy`` asks for (none for the default)."""
    reference = DANET_ENERGIES[args.danet_energy]
    return {"max_subtracted_energy": True} if reference else {}


def select_rows(
    parser: argparse.ArgumentParser, table: PaperTable, wanted: Sequence[str] | None
) -> tuple[PaperRow, ...]:
    """The runnable rows named by ``--rows`` (by name or folder name), in table order."""
    if not wanted:
        return table.runnable_rows
    by_key = {key: row for row in table.runnable_rows for key in (row.name, row.slug)}
    unknown = [name for name in wanted if name not in by_key]
    if unknown:
        valid = ", ".join(repr(row.name) for row in table.runnable_rows)
        quoted = [name for name in unknown if name in {r.name for r in table.rows}]
        why = f" ({', '.join(map(repr, quoted))}: quoted from the paper, never run)" if quoted else ""
        parser.error(f"--rows: unknown row {', '.join(map(repr, unknown))}{why}; rows: {valid}")
    chosen = {by_key[name].name for name in wanted}
    return tuple(row for row in table.runnable_rows if row.name in chosen)


def run_table(
    table: PaperTable,
    run_row: Callable[[RowContext], RowResult],
    *,
    dataset: DatasetNeed,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    defaults: Mapping[str, Any] | None = None,
    smoke_overrides: Mapping[str, Any] | None = None,
    variant: Callable[[argparse.Namespace], str | None] | None = None,
) -> TableResult:
    """Runs a table script: flags, data, rows, and the table beside the paper's.

    Args:
        table: the paper's table.
        run_row: computes one runnable row; called once per row to run.
        dataset: the dataset the table needs.
        argv: the command line without the program name (default: ``sys.argv[1:]``).
        add_arguments: adds the script's own flags to the parser.
        defaults: the paper's settings as flag defaults, e.g. ``{"epochs": 50}``.
        smoke_overrides: the tiny defaults ``--smoke`` uses instead, e.g.
            ``{"epochs": 1, "batch_size": 2, "image_size": 64}``.
        variant: names a run that departs from the paper's protocol (an option
            the user chose), e.g. ``"hold-out validation 10 %"``, or None; it is
            appended to the title of every output, so such a table is never taken
            for the paper's experiment.

    Returns:
        The results of every finished row, and the files written.

    Exits with status 2 and a message (no traceback) when the data is missing or
    bad, or finished rows were computed with other settings.
    """
    parser = build_parser(table, dataset, add_arguments, smoke_overrides)
    args = parse_flags(parser, argv, defaults=defaults, smoke_overrides=smoke_overrides)
    departure = variant(args) if variant is not None else None
    if departure:
        table = dataclasses.replace(table, title=f"{table.title} [{departure}]")
    rows = select_rows(parser, table, args.rows)
    out_dir = args.out or default_out_dir(table, smoke=args.smoke)
    if args.strategy == "multi_worker":
        out_dir = _worker_out_dir(out_dir)
    try:
        command = [parser.prog, *(sys.argv[1:] if argv is None else argv)]
        return _run(table, run_row, dataset, command, args, rows, out_dir)
    except (_Stop, MissingDataError) as error:
        _exit(f"error: {error}", EXIT_USAGE)
    except DatasetError as error:
        hint = "if a few samples are bad, --skip-bad skips them and lists them in result.json"
        _exit(f"error: {error}\n({hint})", EXIT_USAGE)
    except KeyboardInterrupt:
        _exit(f"interrupted: finished rows are kept in {out_dir}; run again to go on", 130)


def _worker_out_dir(out_dir: Path) -> Path:
    """Where this process of a multi-worker run writes.

    Creates the strategy first: TensorFlow needs its collectives configured before
    it runs any operation. Only the chief writes the table into ``out_dir``; the
    other workers run the same rows (they take part in every training step) and
    write their copies under ``out_dir/workers/<task>`` so no file is written twice.
    """
    strategy = make_strategy("multi_worker")
    return out_dir if is_chief(strategy) else out_dir / "workers" / task_name(strategy)


def _exit(message: str, status: int) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(status)


def _run(
    table: PaperTable,
    run_row: Callable[[RowContext], RowResult],
    dataset: DatasetNeed,
    command: Sequence[str],
    args: argparse.Namespace,
    rows: Sequence[PaperRow],
    out_dir: Path,
) -> TableResult:
    if args.smoke:
        print(report.SYNTHETIC_BANNER)
        data_dir = prepare_synthetic_data(dataset, synthetic_data_dir(out_dir))
    else:
        data_dir = find_real_data(dataset, args.data_dir, prog=command[0])
    settings = _row_settings(args, data_dir)
    store = _RowStore(out_dir, settings)
    to_run = store.plan(rows, force=args.force)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = run_config(table, args, data_dir, command)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

    for index, row in enumerate(to_run, 1):
        ctx = RowContext(
            args=args,
            row=row,
            data_dir=data_dir,
            out_dir=store.prepare(row, fresh=args.force),
            smoke=args.smoke,
            bad_inputs=BadInputPolicy(args.skip_bad),
        )
        print(f"[{index}/{len(to_run)}] {row.name}: running in {ctx.out_dir}")
        started = time.monotonic()
        result = _checked(table, row, run_row(ctx))
        if ctx.bad_inputs.skipped:
            result.extra = {**result.extra, "skipped_inputs": [str(e) for e in ctx.bad_inputs.skipped]}
            print(f"    skipped {len(ctx.bad_inputs.skipped)} bad samples (listed in result.json)")
        seconds = time.monotonic() - started
        store.save(row, result, seconds=seconds)
        shown = ", ".join(f"{k} {v:.{table.column(k).decimals}f}" for k, v in result.values.items())
        print(f"[{index}/{len(to_run)}] {row.name}: done in {seconds:.1f} s: {shown}")

    results = store.finished(table)
    files = report.write_report(table, results, out_dir, synthetic=args.smoke)
    print()
    print(report.render_text(table, results, synthetic=args.smoke))
    print(f"\nwritten: {', '.join(str(f) for f in files)}")
    return TableResult(table, results, out_dir, args.smoke, files)


def _checked(table: PaperTable, row: PaperRow, result: Any) -> RowResult:
    """``result`` as a clean RowResult (plain floats), or a clear error for the script."""
    where = f"run_row for {row.name!r}"
    if not isinstance(result, RowResult):
        raise TypeError(f"{where} returned {type(result).__name__}; expected RowResult")
    columns = {c.name for c in table.columns}
    unknown = sorted(set(result.values) - columns)
    if unknown:
        raise ValueError(f"{where} returned values for {unknown}; columns: {sorted(columns)}")
    for name, value in result.values.items():
        if not isinstance(value, numbers.Real):
            raise TypeError(f"{where}: value for {name!r} is {type(value).__name__}; use float(...)")
    history = None
    if result.history is not None:
        history = {key: [float(v) for v in values] for key, values in result.history.items()}
        metric = (result.monitor or "").removeprefix("val_")
        if result.monitor and not {metric, f"val_{metric}"} & set(history):
            raise ValueError(f"{where}: monitor {result.monitor!r} is not in the history {sorted(history)}")
    values = {name: float(value) for name, value in result.values.items()}
    return RowResult(values, history, result.monitor, dict(result.extra))


def _row_settings(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """The flags that decide a row's numbers, as JSON: finished rows are reused only
    when these are equal."""
    flags = {k: v for k, v in vars(args).items() if k not in NON_RESULT_FLAGS}
    flags["data_dir"] = data_dir.resolve()
    return json.loads(json.dumps(report.json_safe(flags)))


class _RowStore:
    """Rows' folders (:func:`row_dir`) and their ``result.json`` files."""

    def __init__(self, out_dir: Path, settings: dict[str, Any]):
        self.out_dir = out_dir
        self.settings = settings

    def _result_path(self, row: PaperRow) -> Path:
        return row_dir(self.out_dir, row) / "result.json"

    def _record(self, row: PaperRow) -> dict[str, Any] | None:
        path = self._result_path(row)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise _Stop(f"{path}: unreadable ({error}); delete it or pass --force") from None

    def _differences(self, record: Mapping[str, Any]) -> list[str]:
        theirs = record["settings"]
        return [
            f"{key}={theirs.get(key)!r} (now {self.settings.get(key)!r})"
            for key in sorted(set(theirs) | set(self.settings))
            if theirs.get(key) != self.settings.get(key)
        ]

    def plan(self, rows: Sequence[PaperRow], *, force: bool) -> list[PaperRow]:
        """The rows to run: all with ``force``, else those not finished yet.

        Raises:
            _Stop: a row finished with other settings (without ``force``).
        """
        if force:
            return list(rows)
        to_run, conflicts = [], []
        for row in rows:
            record = self._record(row)
            if record is None:
                to_run.append(row)
            elif differences := self._differences(record):
                conflicts.append(f"  {row.name}: {', '.join(differences)}")
            else:
                print(f"{row.name}: finished earlier, kept (--force reruns it)")
        if conflicts:
            raise _Stop(
                f"rows in {self.out_dir} finished with other settings:\n"
                + "\n".join(conflicts)
                + "\npass --force to rerun them, or --out to write elsewhere"
            )
        return to_run

    def prepare(self, row: PaperRow, *, fresh: bool) -> Path:
        """The row's folder; emptied first when ``fresh`` (``--force``). Otherwise an
        interrupted run's files stay, so that training resumes from its backup."""
        folder = row_dir(self.out_dir, row)
        if fresh and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def save(self, row: PaperRow, result: RowResult, *, seconds: float) -> None:
        record = {
            "row": row.name,
            "settings": self.settings,
            "seconds": round(seconds, 1),
            "finished": now(),
            "result": result.to_json(),
        }
        path = self._result_path(row)
        path.write_text(json.dumps(record, indent=2), encoding="utf-8")

    def finished(self, table: PaperTable) -> dict[str, RowResult]:
        """Every runnable row finished with the current settings, in table order."""
        results = {}
        for row in table.runnable_rows:
            record = self._record(row)
            if record is None:
                continue
            if self._differences(record):
                print(f"{row.name}: finished with other settings, left out of the table")
                continue
            results[row.name] = RowResult.from_json(record["result"])
        return results


def run_config(table: PaperTable, args: argparse.Namespace, data_dir: Path, command: Sequence[str]) -> dict[str, Any]:
    """``config.json``: how this table was run, to rerun it or to cite it.

    The strategy is recorded as the flag; each row's ``runtime.json`` (written by
    :func:`zoo.train.fit`) records the strategy and replicas it actually ran on.
    """
    runtime = describe_runtime(xla=args.xla, mixed_precision=args.mixed_precision)
    for per_strategy in ("strategy", "replicas", "task"):
        del runtime[per_strategy]
    return report.json_safe(
        {
            "table": report.title_of(table, synthetic=args.smoke),
            "synthetic": args.smoke,
            "command": f"{command[0]} {shlex.join(command[1:])}",
            "flags": vars(args),
            "data_dir": data_dir.resolve(),
            "date": now(),
            "git_commit": git_commit(),
            "runtime": runtime,
        }
    )
