"""README "Quick start": its commands name what the scripts write, and run as written.

A new user reaches a first synthetic table, ``zoo list``, a prediction with overlays
and the tests from the quick start alone (issue 26). The fast tests hold the commands
against the code that decides the paths (the table's output folder, its row folders,
the synthetic dataset's layout) and against CI's test command; the slow one runs the
commands in a fresh folder (about 4 minutes on a CPU) and checks every output.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_tools.layouts import ISIC2018_LAYOUT
from reproduce.frame import default_out_dir, row_dir, slug, synthetic_data_dir

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)```\s*<!-- /{marker} -->", README, re.DOTALL)
    assert match, f"README.md has no {marker} block"
    return match.group(1)


def quick_start() -> list[list[str]]:
    """The quick start's commands, continuation lines joined, comments dropped."""
    text = _block("quick-start:commands").replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip()]


def _command(commands: list[list[str]], *head: str) -> list[str]:
    found = [command for command in commands if command[: len(head)] == list(head)]
    assert len(found) == 1, f"the quick start should have one {' '.join(head)} command, has {len(found)}"
    return found[0]


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _table(command: list[str]):
    """The table module that ``python reproduce/<table>.py --smoke`` runs."""
    script = Path(command[1])
    assert script.parent == Path("reproduce") and "--smoke" in command
    return importlib.import_module(f"reproduce.{script.stem}")


def test_the_prediction_runs_the_tables_row_on_its_synthetic_images():
    commands = quick_start()
    table = _table(next(c for c in commands if c[:2] != ["python", "-m"] and c[0] == "python"))
    predict = _command(commands, "python", "-m", "zoo.predict")
    out_dir = default_out_dir(table.TABLE, smoke=True)
    rows = {row.model: row for row in table.TABLE.runnable_rows}
    assert Path(_flag(predict, "--run")) == row_dir(out_dir, rows["aernet"])
    images = synthetic_data_dir(out_dir) / ISIC2018_LAYOUT["train"]["images"]
    assert Path(_flag(predict, "--images")) == images and "--overlays" in predict


def test_the_tests_are_run_as_ci_runs_them():
    ci = [shlex.split(line) for line in _block("ci:test").splitlines() if line.startswith("python -m pytest")]
    assert _command(quick_start(), "python", "-m", "pytest") == ci[0]


def test_every_row_folder_the_readme_names_exists():
    """A path ``results/<table>[-smoke]/rows/<row>`` in the README names a row of that table."""
    named = set(re.findall(r"results/(\w+?)(?:-smoke)?/rows/([a-z0-9-]+)", README))
    assert named
    for key, row in named:
        table = importlib.import_module(f"reproduce.{key}").TABLE
        assert row in {slug(r.name) for r in table.runnable_rows}, f"README: {key} has no row folder {row}"


@pytest.mark.slow
def test_the_quick_start_runs_as_written(tmp_path):
    """Every command but the install and the tests, in a fresh folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    commands = [c for c in quick_start() if c[0] == "python" and c[:4] != ["python", "-m", "pytest", "-n"]]
    assert len(commands) == 3
    outputs = []
    for command in commands:
        argv = [sys.executable, *(str(ROOT / a) if a.startswith("reproduce/") else a for a in command[1:])]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stdout + done.stderr
        outputs.append(done.stdout)
    table = json.loads((tmp_path / "results" / "aernet_table2-smoke" / "table.json").read_text())
    assert table["synthetic"] and "SYNTHETIC" in outputs[0]
    assert "aernet" in outputs[1] and len(outputs[1].splitlines()) == 27  # a header and the 26 models
    masks = sorted((tmp_path / "predictions").glob("*.png"))
    assert len(masks) == 40
    assert set(np.unique(np.asarray(Image.open(masks[0])))) <= {0, 255}
    overlays = tmp_path / "predictions_overlays"
    assert (overlays / f"{masks[0].stem}_prediction.png").is_file()
    assert len(list(overlays.glob(f"{masks[0].stem}_attention_*.png"))) == 5  # AER-Net's five gates
