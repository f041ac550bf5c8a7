"""Paper cells print as the paper prints them (issue 25.12), in the console/markdown grid,
``table.csv`` and ``table.json``.

The expected texts are copied by hand from the papers' tables: SANet (Table 1, "The
percentage of blank images" and the pixel ratio, whose 13.70 keeps its zero) and
ARL-CNN (Zhang et al., IEEE TMI 2019, Table IV, the "External data" counts).
"""

from __future__ import annotations

import csv
import json

import pytest

from reproduce import arl_table4, report, sanet_table1
from reproduce.frame import Column, PaperRow

SANET_TABLE1_AS_PRINTED = {  # row: (percentage of blank images, pixel ratio)
    "Pigment network": ("41", "13.70"),
    "Negative network": ("93", "0.67"),
    "Milia like cyst": ("74", "1.27"),
    "Globules": ("77", "3.09"),
    "Streaks": ("96", "0.42"),
}

ARL_TABLE4_EXTERNAL_DATA_AS_PRINTED = {
    "ARL-CNN50*, 1320 ISIC Archive images": "1320",
    "#1 Matsunaga et al. [31], ensemble": "1444",
    "#2 Diaz [32]": "900",
    "#3 Menegola et al. [33], ensemble": "7544",
    "#4 Bi et al. [34], ensemble": "1600",
    "#5 DeVries & Ramachandram [36], ensemble": "1341",
    "ARL-CNN50*, no external data": "0",
    "#6 Yang et al. [35]": "0",
}


def _paper_cells(table) -> dict[str, list[str]]:
    """``{row: [paper cell per column]}`` as the console and table.md print them."""
    header, body = report.comparison_grid(table, {})
    paper = [i for i, name in enumerate(header) if name.endswith(" paper")]
    return {cells[0]: [cells[i] for i in paper] for cells in body}


def test_sanet_table1_prints_as_the_paper():
    """SANet Table 1 prints "93" (a float 93.0 printed 93.0 before) and "13.70"."""
    assert _paper_cells(sanet_table1.TABLE) == {row: list(cells) for row, cells in SANET_TABLE1_AS_PRINTED.items()}


def test_arl_table4_external_data_prints_as_the_paper():
    cells = _paper_cells(arl_table4.TABLE)
    column = [column.name for column in arl_table4.TABLE.columns].index("External data")
    assert {
        row: cells[row][column] for row in ARL_TABLE4_EXTERNAL_DATA_AS_PRINTED
    } == ARL_TABLE4_EXTERNAL_DATA_AS_PRINTED


def test_written_tables_carry_the_printed_text(tmp_path):
    """table.md, table.csv and table.json's ``paper_printed`` hold the paper's text; the
    json's ``paper`` stays the number."""
    report.write_report(sanet_table1.TABLE, {}, tmp_path, synthetic=True)
    markdown = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert "| Pigment network | — | 41 | — | — | 13.70 | — |" in markdown
    with open(tmp_path / "table.csv", newline="", encoding="utf-8") as stream:
        rows = {row["method"]: row for row in csv.DictReader(stream)}
    assert {
        name: (row["Blank images paper"], row["Pixel ratio paper"]) for name, row in rows.items()
    } == SANET_TABLE1_AS_PRINTED
    rows = {row["name"]: row for row in json.loads((tmp_path / "table.json").read_text())["rows"]}
    assert {name: tuple(row["paper_printed"].values()) for name, row in rows.items()} == SANET_TABLE1_AS_PRINTED
    assert rows["Pigment network"]["paper"] == {"Blank images": 41.0, "Pixel ratio": 13.7}


@pytest.mark.parametrize(
    "value, decimals, printed",
    [
        (93, 2, "93"),  # an int: printed without a point, whatever the column
        ("76.10", 1, "76.10"),  # a string: exactly its digits
        ("75,6", 2, "75.6"),  # a decimal comma as a point
        (13.7, 2, "13.70"),  # a float: the column's digits (the zero a float cannot hold)
        (77.29, 1, "77.29"),  # or its own where it has more
    ],
)
def test_a_cell_prints_as_transcribed(value, decimals, printed):
    column = Column("A", decimals=decimals)
    row = PaperRow("r", {"A": value})
    assert row.printed(column) == printed
    assert row.values["A"] == float(printed)
    assert PaperRow("r", {}).printed(column) is None
