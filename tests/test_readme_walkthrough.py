"""README "After training": its commands, in its order, run as written on synthetic data.

The commands are read from README.md (between the ``after-training:commands``
markers), so the README cannot drift from what runs: a fresh clone goes train ->
predict (with overlays) -> evaluate -> export (SavedModel) -> LiteRT with nothing
typed twice. Each output is checked, and no command may print a traceback or runpy's
"found in sys.modules" warning.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"<!-- after-training:commands -->\s*```bash\n(.*?)```\s*<!-- /after-training:commands -->", re.DOTALL
)


def readme_commands() -> list[list[str]]:
    match = BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md has no after-training:commands block"
    commands = [shlex.split(line) for line in match.group(1).splitlines() if line.strip()]
    assert all(command[0] == "python" for command in commands)
    return [[sys.executable, *command[1:]] for command in commands]


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    """Runs every command in one fresh folder; returns the folder and the outputs."""
    folder = tmp_path_factory.mktemp("walkthrough")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    outputs = []
    for command in readme_commands():
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        outputs.append((command, done))
        assert done.returncode == 0, f"{shlex.join(command[1:])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return folder, outputs


def test_commands_print_no_traceback_or_runpy_warning(walkthrough):
    _, outputs = walkthrough
    assert len(outputs) == 6
    for command, done in outputs:
        for bad in ("Traceback", "found in sys.modules"):
            assert bad not in done.stderr + done.stdout, f"{shlex.join(command[1:])} printed {bad!r}"


def test_training_left_a_run_folder(walkthrough):
    folder, _ = walkthrough
    import zoo

    run = zoo.load_run(folder / "runs" / "unet")
    card = run.card
    assert card.model == "unet" and card.builder_args["input_shape"] == [32, 32, 3]
    assert card.overrides == {"epochs": 2, "batch_size": 8}
    assert card.data["layout"] == "isic2018-task1"
    validation = card.scores["validation"]
    assert validation["images"] == len(list((folder / "data/isic2018/ISIC2018_Task1-2_Validation_Input").glob("*.jpg")))
    assert 0.0 <= validation["dice"] <= 1.0 and 0.0 <= validation["jaccard"] <= validation["dice"]


def test_prediction_overlays_and_scores(walkthrough):
    folder, _ = walkthrough
    test_ids = sorted(p.stem for p in (folder / "data/isic2018/ISIC2018_Task1-2_Test_Input").glob("*.jpg"))
    masks = sorted(p.name for p in (folder / "submission").iterdir())
    assert masks == [f"{image_id}_segmentation.png" for image_id in test_ids]
    overlays = sorted((folder / "submission_overlays").glob("*_prediction.png"))
    assert len(overlays) == len(test_ids)
    scores = json.loads((folder / "submission_scores" / "scores.json").read_text())
    assert 0.0 <= scores["metrics"]["macro_average"]["dice"] <= 1.0


def test_exports(walkthrough):
    folder, _ = walkthrough
    assert (folder / "serving/unet/1/saved_model.pb").is_file()
    assert (folder / "unet.tflite").stat().st_size > 100_000
