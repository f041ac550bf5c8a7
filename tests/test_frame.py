"""Tests of the reproduce frame (reproduce/frame.py, report.py, datasets.py).

A toy table with a cheap, deterministic ``run_row`` goes through the whole frame:
flags, data resolution, rows, resume, and the written md/csv/json/png/config.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from data_tools.records import DatasetError
from reproduce import frame, report
from reproduce.datasets import DatasetNeed, prepare_synthetic_data
from reproduce.frame import NON_RESULT_FLAGS, Column, PaperRow, PaperTable, RowResult, run_table
from zoo.train import TrainConfig

TABLE = PaperTable(
    key="toy_table1",
    title="Toy Table 1: two runs and a citation",
    source="Toy paper, Table 1",
    columns=[Column("JSI", "%", higher_is_better=True), Column("Params", "M", decimals=2)],
    rows=[
        PaperRow("Alpha", {"JSI": 70.0, "Params": 1.5}),
        PaperRow("Beta Net", {"JSI": 80.0}),
        PaperRow("Literature [12]", {"JSI": 90.0}, quoted=True),
    ],
    notes=["a toy note"],
)
#: What the toy run_row returns per row: JSI and Params.
OURS = {"Alpha": {"JSI": 71.25, "Params": 1.234}, "Beta Net": {"JSI": 77.5}}


def toy_history(epochs: int) -> dict[str, list[float]]:
    return {
        "loss": [1.0 / (e + 1) for e in range(epochs)],
        "val_loss": [1.5 / (e + 1) for e in range(epochs)],
        "dice": [e / epochs for e in range(epochs)],
        "val_dice": [e / (2 * epochs) for e in range(epochs)],
    }


class ToyScript:
    """A table script: records the contexts it was called with."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.calls = []
        self.synthetic_calls = 0
        self.fail_on: dict[str, BaseException] = {}
        self.dataset = DatasetNeed(
            name="Toy Dataset 2099",
            default_dir=tmp_path / "nowhere",
            how_to_get="python -m data_tools.download toy --dest data/toy",
            make_synthetic=self.make_synthetic,
        )

    def make_synthetic(self, root: Path) -> Path:
        self.synthetic_calls += 1
        (root / "images").mkdir()
        (root / "images" / "a.txt").write_text("pixels")
        return root / "images"

    def run_row(self, ctx) -> RowResult:
        self.calls.append(ctx)
        if ctx.row.name in self.fail_on:
            raise self.fail_on[ctx.row.name]
        return RowResult(
            values={k: np.float32(v) if k == "Params" else v for k, v in OURS[ctx.row.name].items()},
            history=toy_history(ctx.args.epochs),
            monitor="val_dice",
            extra={"params": np.int64(1234)},
        )

    def __call__(self, *argv: str):
        return run_table(
            TABLE,
            self.run_row,
            dataset=self.dataset,
            argv=list(argv),
            defaults={"epochs": 4, "batch_size": 8},
            smoke_overrides={"epochs": 2, "batch_size": 1},
        )

    def ran(self) -> list[str]:
        return [ctx.row.name for ctx in self.calls]


@pytest.fixture
def script(tmp_path):
    return ToyScript(tmp_path)


@pytest.fixture
def real_data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ISIC_0000000.jpg").write_bytes(b"jpeg")
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One real-data run of every row, shared by the output checks."""
    tmp_path = tmp_path_factory.mktemp("full")
    data = tmp_path / "data"
    data.mkdir()
    (data / "ISIC_0000000.jpg").write_bytes(b"jpeg")
    toy = ToyScript(tmp_path)
    result = toy("--data-dir", str(data), "--out", str(tmp_path / "out"), "--no-xla")
    return toy, result


def test_runs_every_runnable_row_and_never_a_quoted_one(full_run):
    toy, result = full_run
    assert toy.ran() == ["Alpha", "Beta Net"]
    assert set(result.results) == {"Alpha", "Beta Net"}
    assert not result.synthetic


def test_json_holds_ours_paper_and_differences(full_run):
    _, result = full_run
    data = json.loads((result.out_dir / "table.json").read_text())
    assert data["synthetic"] is False and data["key"] == "toy_table1"
    rows = {row["name"]: row for row in data["rows"]}
    assert list(rows) == [r.name for r in TABLE.rows]
    alpha = rows["Alpha"]
    assert alpha["ours"]["JSI"] == 71.25
    assert alpha["ours"]["Params"] == pytest.approx(1.234, rel=1e-6)  # float32 in, float out
    assert alpha["difference"]["JSI"] == pytest.approx(71.25 - 70.0)
    assert alpha["difference"]["Params"] == pytest.approx(1.234 - 1.5, rel=1e-6)
    assert alpha["extra"] == {"params": 1234}
    beta = rows["Beta Net"]
    assert beta["difference"] == {"JSI": pytest.approx(-2.5), "Params": None}
    quoted = rows["Literature [12]"]
    assert quoted["source"] == report.QUOTED
    assert quoted["ours"] is None and quoted["paper"]["JSI"] == 90.0


def test_csv_agrees_with_json(full_run):
    _, result = full_run
    with open(result.out_dir / "table.csv", newline="") as stream:
        lines = list(csv.DictReader(stream))
    data = json.loads((result.out_dir / "table.json").read_text())
    assert [line["method"] for line in lines] == [row["name"] for row in data["rows"]]
    for line, row in zip(lines, data["rows"], strict=True):
        assert line["source"] == row["source"] and line["data"] == "real"
        for column in ("JSI", "Params"):
            ours = (row["ours"] or {}).get(column)
            for cell, expected in (
                (line[f"{column} ours"], ours),
                (line[f"{column} paper"], row["paper"][column]),
                (line[f"{column} diff"], row["difference"][column]),
            ):
                assert (cell == "") if expected is None else float(cell) == pytest.approx(expected)


def test_markdown_shows_rounded_values_and_marks(full_run):
    _, result = full_run
    text = (result.out_dir / "table.md").read_text()
    assert text.startswith("# Toy Table 1") and "SYNTHETIC" not in text
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    # JSI with 1 decimal, Params with 2, differences signed.
    assert lines["Alpha"] == (
        f"| Alpha | {71.25:.1f} | 70.0 | {71.25 - 70:+.1f} | 1.23 | 1.50 | {1.234 - 1.5:+.2f} | ours |"
    )
    assert lines["Beta Net"] == "| Beta Net | 77.5 | 80.0 | -2.5 | — | — | — | ours |"
    assert lines["Literature [12]"].endswith("| — | 90.0 | — | — | — | — | quoted from the paper |")
    assert "a toy note" in text and "Toy paper, Table 1" in text


def test_config_records_flags_versions_and_data(full_run):
    _, result = full_run
    config = json.loads((result.out_dir / "config.json").read_text())
    assert config["flags"]["epochs"] == 4 and config["flags"]["batch_size"] == 8
    assert config["flags"]["xla"] is False and config["synthetic"] is False
    assert config["runtime"]["keras"] == keras.__version__
    assert config["data_dir"].endswith("data") and "T" in config["date"]
    assert "--no-xla" in config["command"]


def test_row_result_files_hold_values_and_settings(full_run):
    _, result = full_run
    record = json.loads((result.out_dir / "rows" / "beta-net" / "result.json").read_text())
    assert record["row"] == "Beta Net"
    assert record["result"]["values"] == {"JSI": 77.5}
    assert record["result"]["history"] == toy_history(4)
    assert record["settings"]["epochs"] == 4


def test_row_settings_are_every_flag_but_the_non_result_ones(full_run):
    _, result = full_run
    flags = json.loads((result.out_dir / "config.json").read_text())["flags"]
    record = json.loads((result.out_dir / "rows" / "alpha" / "result.json").read_text())
    assert NON_RESULT_FLAGS < set(flags)  # names real flags
    assert set(record["settings"]) == (set(flags) - NON_RESULT_FLAGS) | {"data_dir"}


def test_curves_png_is_an_image_with_a_panel_pair_per_row(full_run):
    _, result = full_run
    path = result.out_dir / "curves.png"
    assert path in result.files
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    height, width = pixels.shape
    assert width > height > 0  # two rows of two panels, 10 x 6 inches
    assert pixels.std() > 5  # curves drawn, not a blank canvas


def test_curves_draw_the_score_metric_beside_the_loss_and_mark_the_kept_epoch(tmp_path, monkeypatch):
    """Issue 26: a row that monitors its training loss (no validation split: AER-Net,
    A-PSPNet) left the right half blank; validation curves that were never logged
    appeared in the legend; no axis labels; the kept epoch unmarked."""
    from matplotlib.axes import Axes

    drawn: dict[int, dict] = {}
    plot, axvline = Axes.plot, Axes.axvline

    def record_plot(axis, *args, label=None, **kwargs):
        drawn.setdefault(id(axis), {"axis": axis, "lines": [], "kept": []})["lines"].append(label)
        return plot(axis, *args, label=label, **kwargs)

    def record_kept(axis, x, *args, **kwargs):
        drawn.setdefault(id(axis), {"axis": axis, "lines": [], "kept": []})["kept"].append(x)
        return axvline(axis, x, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", record_plot)
    monkeypatch.setattr(Axes, "axvline", record_kept)
    history = {"epoch": [0, 1, 2], "dice": [0.2, 0.4, 0.5], "loss": [0.8, 0.6, 0.5], "val_loss": [math.nan] * 3}
    results = {"Alpha": RowResult({"JSI": 70.0}, history, "loss", {"kept_epoch": 3})}
    assert report.plot_curves(TABLE, results, tmp_path / "curves.png", synthetic=False)
    panels = {entry["axis"].get_title(): entry for entry in drawn.values()}
    assert sorted(panels) == ["Alpha: dice", "Alpha: loss"]
    for title, entry in panels.items():
        assert entry["lines"] == ["training"], title  # the all-NaN val_loss is not drawn
        assert entry["kept"] == [3]  # epoch 3 counted from 1
        assert entry["axis"].get_xlabel() == "epoch" and entry["axis"].get_ylabel() == title.split(": ")[1]
    assert report.score_metric(RowResult({}, {"auc": [1.0], "val_auc": [1.0], "loss": [1.0]}, "val_auc")) == "auc"


def test_console_table_lines_up_with_the_columns(full_run):
    _, result = full_run
    text = report.render_text(TABLE, result.results, synthetic=False)
    assert "Alpha" in text and "+1.2" in text and "quoted from the paper" in text
    header = next(line for line in text.splitlines() if line.startswith("Method"))
    assert header.split() == [
        "Method",
        "JSI",
        "ours",
        "JSI",
        "paper",
        "JSI",
        "diff",
        "Params",
        "ours",
        "Params",
        "paper",
        "Params",
        "diff",
        "Source",
    ]


def test_train_config_is_filled_from_flags(full_run):
    toy, _ = full_run
    ctx = toy.calls[0]
    config = ctx.train_config(monitor="val_dice", mode="max")
    assert isinstance(config, TrainConfig)
    assert (config.epochs, config.xla, config.seed, config.strategy) == (4, False, 0, "default")
    assert config.monitor == "val_dice" and config.out_dir == ctx.out_dir
    assert ctx.out_dir.name == "alpha" and ctx.out_dir.is_dir()
    assert ctx.train_config(epochs=7).epochs == 7  # the script's settings win


def test_missing_data_stops_with_instructions(tmp_path):
    """A real script, run as users run it: exit 2, no traceback, what to do."""
    script_path = tmp_path / "toy_table1.py"
    script_path.write_text(
        textwrap.dedent("""
        from reproduce.datasets import DatasetNeed
        from reproduce.frame import Column, PaperRow, PaperTable, run_table

        TABLE = PaperTable("toy", "Toy", "Toy, Table 1", [Column("JSI")], [PaperRow("A", {})])
        NEED = DatasetNeed("ISIC 2018 Task 1", "data/isic2018",
                           "python -m data_tools.download isic2018 --dest data/isic2018",
                           make_synthetic=lambda root: root)
        run_table(TABLE, lambda ctx: None, dataset=NEED)
    """)
    )
    done = subprocess.run(
        [sys.executable, str(script_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for needed in (
        "ISIC 2018 Task 1",
        "data/isic2018 does not exist",
        "--data-dir",
        "python -m data_tools.download isic2018 --dest data/isic2018",
        "https://challenge.isic-archive.com/data/",
        f"python {script_path} --smoke",
    ):
        assert needed in done.stderr
    assert not (tmp_path / "results").exists()


def test_empty_data_dir_is_missing_data(script, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as stop:
        script("--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert stop.value.code == 2
    assert f"{tmp_path / 'empty'} is empty (given by --data-dir)" in capsys.readouterr().err
    assert script.calls == []


def test_rows_selects_by_name_or_folder_name(script, real_data, tmp_path):
    out = tmp_path / "out"
    result = script("--data-dir", str(real_data), "--out", str(out), "--rows", "beta-net")
    assert script.ran() == ["Beta Net"]
    data = json.loads((out / "table.json").read_text())
    sources = {row["name"]: row["source"] for row in data["rows"]}
    assert sources == {"Alpha": report.NOT_RUN, "Beta Net": report.OURS, "Literature [12]": report.QUOTED}
    assert list(result.results) == ["Beta Net"]


@pytest.mark.parametrize(
    "names, message",
    [
        (["Gamma"], "unknown row 'Gamma'; rows: 'Alpha', 'Beta Net'"),
        (["Alpha", "Literature [12]"], "'Literature [12]': quoted from the paper, never run"),
    ],
)
def test_unknown_rows_are_refused_with_the_valid_names(script, real_data, tmp_path, capsys, names, message):
    with pytest.raises(SystemExit) as stop:
        script("--data-dir", str(real_data), "--out", str(tmp_path / "out"), "--rows", *names)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert script.calls == []


def test_smoke_is_marked_synthetic_everywhere(script, tmp_path, capsys):
    out = tmp_path / "out"
    result = script("--smoke", "--out", str(out))
    console = capsys.readouterr().out
    assert console.startswith(report.SYNTHETIC_BANNER)
    assert "SYNTHETIC — Toy Table 1" in console
    assert (out / "table.md").read_text().startswith("# SYNTHETIC — Toy Table 1")
    data = json.loads((out / "table.json").read_text())
    assert data["synthetic"] is True and data["title"].startswith("SYNTHETIC")
    with open(out / "table.csv", newline="") as stream:
        assert {line["data"] for line in csv.DictReader(stream)} == {"synthetic"}
    assert json.loads((out / "config.json").read_text())["synthetic"] is True
    assert result.synthetic


def test_smoke_uses_tiny_defaults_and_generates_data_once(script, tmp_path):
    out = tmp_path / "out"
    script("--smoke", "--out", str(out), "--rows", "Alpha")
    ctx = script.calls[0]
    assert (ctx.args.epochs, ctx.args.batch_size, ctx.smoke) == (2, 1, True)
    assert ctx.data_dir == out / "synthetic_data" / "images"
    script("--smoke", "--out", str(out), "--rows", "Beta Net")
    assert script.synthetic_calls == 1
    assert script.calls[1].data_dir == ctx.data_dir
    script("--smoke", "--out", str(tmp_path / "other"), "--rows", "Alpha", "--epochs", "3")
    assert script.calls[2].args.epochs == 3  # a flag the user gives wins over the smoke default


def test_smoke_and_data_dir_exclude_each_other(script, real_data, capsys):
    with pytest.raises(SystemExit) as stop:
        script("--smoke", "--data-dir", str(real_data))
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_interrupted_synthetic_generation_is_redone(script, tmp_path):
    root = tmp_path / "synthetic"
    root.mkdir()
    (root / "half_written.png").write_bytes(b"")
    assert prepare_synthetic_data(script.dataset, root) == root / "images"
    assert not (root / "half_written.png").exists()
    assert prepare_synthetic_data(script.dataset, root) == root / "images"
    assert script.synthetic_calls == 1


def test_resume_skips_finished_rows_and_force_reruns(script, real_data, tmp_path, capsys):
    flags = ["--data-dir", str(real_data), "--out", str(tmp_path / "out")]
    script.fail_on["Beta Net"] = KeyboardInterrupt()
    with pytest.raises(SystemExit) as stop:
        script(*flags)
    assert stop.value.code == 130
    assert "finished rows are kept" in capsys.readouterr().err
    assert script.ran() == ["Alpha", "Beta Net"]

    del script.fail_on["Beta Net"]
    result = script(*flags)
    assert script.ran()[2:] == ["Beta Net"]  # Alpha was kept
    assert "Alpha: finished earlier, kept" in capsys.readouterr().out
    assert set(result.results) == {"Alpha", "Beta Net"}

    script(*flags, "--force", "--rows", "Alpha")
    assert script.ran()[3:] == ["Alpha"]


def test_rows_finished_with_other_settings_are_not_mixed(script, real_data, tmp_path, capsys):
    flags = ["--data-dir", str(real_data), "--out", str(tmp_path / "out"), "--rows", "Alpha"]
    script(*flags)
    with pytest.raises(SystemExit) as stop:
        script(*flags, "--epochs", "5")
    assert stop.value.code == 2
    assert "Alpha: epochs=4 (now 5)" in capsys.readouterr().err
    script(*flags, "--xla")  # XLA does not change the numbers: the row is kept
    assert len(script.calls) == 1
    result = script(*flags, "--epochs", "5", "--force")
    assert [ctx.args.epochs for ctx in script.calls] == [4, 5]
    assert result.results["Alpha"].history == toy_history(5)


def test_dataset_error_stops_cleanly_keeping_finished_rows(script, real_data, tmp_path, capsys):
    bad = real_data / "ISIC_0000001.jpg"
    script.fail_on["Beta Net"] = DatasetError(bad, "not a JPEG")
    with pytest.raises(SystemExit) as stop:
        script("--data-dir", str(real_data), "--out", str(tmp_path / "out"))
    assert stop.value.code == 2
    assert f"error: {bad}: not a JPEG" in capsys.readouterr().err
    assert (tmp_path / "out" / "rows" / "alpha" / "result.json").is_file()


def test_skipped_bad_inputs_are_recorded(script, real_data, tmp_path):
    def skipping_run_row(ctx):
        ctx.bad_inputs.reject(real_data / "ISIC_0000009.jpg", "truncated")
        return RowResult({"JSI": 1.0})

    result = run_table(
        TABLE,
        skipping_run_row,
        dataset=script.dataset,
        defaults={"epochs": 1},
        argv=["--data-dir", str(real_data), "--out", str(tmp_path / "out"), "--skip-bad", "--rows", "Alpha"],
    )
    skipped = result.results["Alpha"].extra["skipped_inputs"]
    assert skipped == [f"{real_data / 'ISIC_0000009.jpg'}: truncated"]


@pytest.mark.parametrize(
    "returned, error",
    [
        (RowResult({"Dice": 1.0}), "values for ['Dice']; columns: ['JSI', 'Params']"),
        (RowResult({"JSI": "71.2"}), "value for 'JSI' is str"),
        (
            RowResult({"JSI": 1.0}, history={"loss": [1.0]}, monitor="val_auc"),
            "monitor 'val_auc' is not in the history",
        ),
        ({"JSI": 1.0}, "returned dict; expected RowResult"),
    ],
)
def test_bad_row_results_name_the_row_and_problem(script, real_data, tmp_path, returned, error):
    with pytest.raises((TypeError, ValueError), match="run_row for 'Alpha'") as raised:
        run_table(
            TABLE,
            lambda ctx: returned,
            dataset=script.dataset,
            argv=["--data-dir", str(real_data), "--out", str(tmp_path / "out"), "--rows", "Alpha"],
        )
    assert error in str(raised.value)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"rows": [PaperRow("A", {"Dice": 1.0})]}, "row 'A' has values for ['Dice']"),
        ({"rows": [PaperRow("A", {}), PaperRow("A", {})]}, "repeated: ['A']"),
        ({"rows": [PaperRow("A+B", {}), PaperRow("A B", {})]}, "row folder names must be unique"),
        ({"rows": [PaperRow("A", {}, quoted=True)]}, "every row is quoted"),
        ({"key": "toy/table"}, "usable as a folder name"),
    ],
)
def test_table_declaration_is_validated(kwargs, error):
    declaration = {"key": "t", "title": "T", "source": "S", "columns": [Column("JSI")], "rows": [PaperRow("A", {})]}
    with pytest.raises(ValueError) as raised:
        PaperTable(**{**declaration, **kwargs})
    assert error in str(raised.value)


def test_script_overrides_must_name_flags(script, real_data):
    with pytest.raises(ValueError, match=r"smoke_overrides names \['image_size'\], which are not flags"):
        run_table(
            TABLE,
            script.run_row,
            dataset=script.dataset,
            argv=["--data-dir", str(real_data)],
            smoke_overrides={"image_size": 64},
        )
    added = run_table(
        TABLE,
        script.run_row,
        dataset=script.dataset,
        argv=["--smoke", "--out", str(real_data.parent / "out"), "--rows", "Alpha"],
        add_arguments=lambda parser: parser.add_argument("--image-size", type=int, default=256),
        defaults={"epochs": 3},
        smoke_overrides={"image_size": 64},
    )
    assert script.calls[-1].args.image_size == 64 and script.calls[-1].args.epochs == 3
    assert added.results["Alpha"].values["JSI"] == OURS["Alpha"]["JSI"]


def test_weights_argument_checks_when_parsing(tmp_path):
    import argparse

    from reproduce.frame import weights_argument

    weights_file = tmp_path / "resnet50_notop.h5"
    weights_file.write_bytes(b"")
    assert weights_argument("None") is None
    assert weights_argument("imagenet") == "imagenet"
    assert weights_argument(str(weights_file)) == str(weights_file)
    with pytest.raises(argparse.ArgumentTypeError, match="no_such.h5"):
        weights_argument(str(tmp_path / "no_such.h5"))


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--epochs", "0", r"must be a positive finite number, got 0"),
        ("--batch-size", "0", r"must be a positive finite number, got 0"),
        ("--batch-size", "-3", r"must be a positive finite number, got -3"),
        ("--epochs", "two", "invalid int value"),
    ],
)
def test_training_arguments_are_checked_when_parsing(flag, value, message, capsys):
    """Before any data is read (issue 16): argparse stops with exit status 2."""
    parser = frame.build_parser(
        TABLE, DatasetNeed("Toy", "data/toy", "nothing to get", make_synthetic=lambda root: root)
    )
    with pytest.raises(SystemExit) as stop:
        frame.parse_flags(parser, [flag, value])
    assert stop.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_number_in_range_rejects_non_finite_values():
    parse = frame.number_in_range(float, 0.0, 1.0)
    assert parse("0.5") == 0.5
    for text in ("nan", "inf", "-inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="finite"):
            parse(text)


def test_paper_values_print_with_the_papers_own_digits():
    """AER-Net Table 3 prints 77.29 and 79.51: a 1-decimal column must not round them,
    a string keeps the paper's text ("70", "75,6"), and trailing zeros of the column stay."""
    column = Column("JSI", "%", decimals=1)
    table = PaperTable(
        "t",
        "T",
        "T, Table 3",
        [column, Column("AUC", decimals=3)],
        [
            PaperRow("A", {"JSI": 77.29, "AUC": 0.85}),
            PaperRow("B", {"JSI": "70"}),
            PaperRow("C", {"JSI": "75,6"}),
        ],
    )
    result = RowResult({"JSI": 76.04, "AUC": 0.8})
    _, body = report.comparison_grid(table, {"A": result})
    assert body[0][1:7] == ["76.0", "77.29", "-1.25", "0.800", "0.850", "-0.050"]
    assert body[1][2] == "70" and body[2][2] == "75.6"
    with pytest.raises(ValueError, match="is not a number"):
        PaperRow("D", {"JSI": "n/a"})
    with pytest.raises(ValueError, match="is not finite"):
        PaperRow("D", {"JSI": float("nan")})


def test_aernet_table3_runs_the_authors_attention_unet_row():
    from reproduce import aernet_table2, aernet_table3

    rows = {row.name: row for row in aernet_table3.TABLE.rows}
    oktay = rows[aernet_table3.OKTAY]
    assert not oktay.quoted  # the authors' own Attention U-Net: Table 2's numbers
    assert oktay.values == {row.name: row for row in aernet_table2.TABLE.rows}[aernet_table2.ATTENTION_UNET].values
    assert [row.name for row in aernet_table3.TABLE.rows if not row.quoted] == [aernet_table3.OKTAY, "AER-Net"]


def test_a_run_that_departs_from_the_paper_says_so_in_its_title(tmp_path):
    from reproduce import attnmel_table1

    need = DatasetNeed("Toy", "data/toy", "nothing to get", make_synthetic=lambda root: root)
    seen = {}

    def run_row(ctx):
        seen["title"] = None
        return RowResult({"JSI": 1.0, "Params": 1.0})

    result = run_table(
        TABLE,
        run_row,
        dataset=need,
        argv=["--smoke", "--out", str(tmp_path), "--rows", "Alpha"],
        variant=lambda args: "hold-out validation: 10% of the training images",
    )
    assert "[hold-out validation: 10% of the training images]" in (tmp_path / "table.md").read_text()
    assert result is not None
    parser_args = frame.build_parser(attnmel_table1.TABLE, need, attnmel_table1.add_arguments)
    defaults = parser_args.parse_args([])
    assert defaults.val_fraction == 0.0 and attnmel_table1.hold_out_variant(defaults) is None
    assert "10%" in attnmel_table1.hold_out_variant(parser_args.parse_args(["--val-fraction", "0.1"]))


# --------------------------------------------------------------------------- --help (issue 26)

TABLE_SCRIPTS = sorted(
    path.stem
    for path in (Path(__file__).resolve().parents[1] / "reproduce").glob("*_table*.py")
    if path.stem != "litert_table"
)


@pytest.mark.parametrize("name", TABLE_SCRIPTS)
def test_help_example_rows_run_and_the_title_is_not_repeated(name):
    """--help's ``--rows`` example names a row of the table (by name and by folder name),
    and the description does not join the source to the title ("Table 2: AER-Net Table 2")."""
    import importlib
    import shlex

    table = importlib.import_module(f"reproduce.{name}").TABLE
    parser = frame.build_parser(
        table, DatasetNeed("Toy", "data/toy", "nothing to get", make_synthetic=lambda root: root)
    )
    rows_help = next(action.help for action in parser._actions if "--rows" in action.option_strings)
    example = re.search(r"\(e\.g\. (.+) or (\S+); the rows are listed below\)", rows_help % {})
    assert example, rows_help
    by_name, by_folder = shlex.split(example[1]), example[2]
    assert len(by_name) == 1
    assert frame.select_rows(parser, table, by_name) == frame.select_rows(parser, table, [by_folder])
    assert len(frame.select_rows(parser, table, by_name)) == 1
    assert f"{table.source}: {table.title}" not in parser.description
    assert table.title in parser.description and table.source in parser.description


def test_notes_say_what_ran_and_count_epochs_from_one():
    """The table's notes describe the paper's set-up; "This run" notes give the images the
    rows used and the kept epoch counted from 1, as Keras prints epochs (issue 26)."""
    results = {
        "Alpha": RowResult(
            values={"JSI": 70.0},
            history=toy_history(4),
            monitor="val_dice",
            extra={"train_images": np.int64(32), "test_images": 8, "kept_epoch": np.int64(3)},
        ),
        "Beta Net": RowResult(
            values={"JSI": 80.0},
            history=toy_history(4),
            monitor="val_dice",
            extra={"train_images": 32, "test_images": 8, "training": {"kept_epoch": 1}},
        ),
    }
    ran = "This run: 32 training / 8 test images (every row)."
    kept = "Kept epoch (counted from 1, as Keras prints epochs): Alpha: 3 of 4; Beta Net: 1 of 4."
    text = report.render_text(TABLE, results, synthetic=True)
    assert f"Note: {ran}" in text and f"Note: {kept}" in text
    markdown = report.render_markdown(TABLE, results, synthetic=True)
    assert f"- {ran}" in markdown and f"- {kept}" in markdown
    data = report.table_json(TABLE, results, synthetic=True)
    assert data["run_notes"] == [ran, kept] and data["notes"] == ["a toy note"]
    assert [row["kept_epoch"] for row in data["rows"]] == [
        {"epoch": 3, "of": 4, "counted_from": 1},
        {"epoch": 1, "of": 4, "counted_from": 1},
        None,
    ]
    assert "counts epochs from 1" in data["epoch_numbering"]
    results["Beta Net"] = RowResult(values={"JSI": 80.0}, extra={"images": {"train": 5, "test": 2}})
    assert report.run_notes(TABLE, results) == [
        "This run: Alpha: 32 training / 8 test images; Beta Net: 5 train / 2 test images.",
        "Kept epoch (counted from 1, as Keras prints epochs): Alpha: 3 of 4.",
    ]


def test_aernet_table1_cells_print_as_the_paper_prints_them():
    """Issue 25.12: Table 1 prints 76.1 (one decimal) beside 75.65; a 2-decimal column
    printed a float 76.1 as 76.10."""
    from reproduce import aernet_table1

    (column,) = aernet_table1.TABLE.columns
    _, body = report.comparison_grid(aernet_table1.TABLE, {})
    printed = [row[2] for row in body]
    assert printed == ["76.1", "75.7", "75.65", "75.6", "75.4"], (column, printed)


def test_cells_with_fewer_digits_than_their_column_print_as_the_paper_prints_them():
    """Issue 25.12: ARL Table III prints Params with one decimal (0.8) in a 2-decimal
    column, A-PSPNet Table II 60.7178 in a 5-decimal one; neither gains a zero."""
    from reproduce import apspnet_table2, arl_table3

    _, body = report.comparison_grid(arl_table3.TABLE, {})
    assert body[0][2] == "0.8" and body[0][5] == "0.732"  # Params, then M AUC (3 decimals as printed)
    _, body = report.comparison_grid(apspnet_table2.TABLE, {})
    cells = {row[0]: row for row in body}
    assert "60.7178" in cells["ResNet152"] and "68.2407" in cells["VGG16"]
    assert "60.71780" not in cells["ResNet152"]
