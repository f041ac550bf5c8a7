"""Issue 24 for training (zoo.train.fit, zoo.train.state): a run killed at any moment,
also while it writes its checkpoint or backup, resumes to the weights of an
uninterrupted run, or is refused in one sentence naming the file; never an HDF5
traceback, never a silent mix of states. One test per class of fault, each failing on
the code before the fix.

Kills are simulated deterministically in-process: a writer that leaves half a file (or
a temporary file) behind and raises, as a SIGKILL mid-write would leave the disk.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tests._train_worker import build_tiny_model, tiny_datasets, tiny_fit_kwargs
from tests.test_train import _Interrupt, _RaiseAt
from zoo.train import LOG_FILE, TrainConfig, fit, read_log
from zoo.train import state as training_state
from zoo.train.state import RunLockedError, TrainingStateError

EPOCHS = 4
FINISHED = {"train_log.csv", "runtime.json", "best.weights.h5", "train_config.json"}


# A kill between writes: training raises after batch b of epoch e (tests/test_train.py's callback).
_Killed, _StopAt = _Interrupt, _RaiseAt


def _fit(out: Path, callbacks=(), build=build_tiny_model):
    train, val = tiny_datasets()
    config = TrainConfig(out, epochs=EPOCHS, xla=False, verbose=0)
    return fit(build, train, val, config, callbacks=list(callbacks), **tiny_fit_kwargs(0.2))  # a new best every epoch


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: the weights and history every resumed run must end with."""
    result = _fit(tmp_path_factory.mktemp("reference"))
    losses = result.history["val_loss"]
    assert all(b < a for a, b in itertools.pairwise(losses)), "the kill points assume a new best every epoch"
    return result


def _assert_same_run(result, reference) -> None:
    assert result.history["epoch"] == list(range(EPOCHS))
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(result.history[key], reference.history[key], rtol=1e-6)
    assert result.best_epoch == reference.best_epoch
    for actual, expected in zip(result.model.get_weights(), reference.model.get_weights(), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def _one_sentence(error: BaseException, *names: str) -> str:
    message = str(error)
    assert "\n" not in message and "Traceback" not in message, message
    for name in names:
        assert name in message, message
    return message


# --------------------------------------------------------------------------- kill points


def _save_weights_cut_at(monkeypatch, name_part: str, call: int) -> None:
    """``save_weights`` whose ``call``-th write of a file named ``*name_part*`` stops
    halfway: half the file on disk, then the kill."""
    real, calls = keras.Model.save_weights, []

    def save_weights(self, filepath, *args, **kwargs):
        real(self, filepath, *args, **kwargs)
        if name_part in Path(filepath).name:
            calls.append(filepath)
            if len(calls) == call:
                data = Path(filepath).read_bytes()
                Path(filepath).write_bytes(data[: len(data) // 2])
                raise _Killed(filepath)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)


def _text_write_cut_at(monkeypatch, name: str, call: int) -> None:
    """The ``call``-th atomic write of ``name`` killed midway: half of it in a temporary
    file beside it, the file itself untouched."""
    real, calls = training_state.atomic_write_text, []

    def atomic_write_text(path, text):
        path = Path(path)
        if name in path.name:
            calls.append(path)
            if len(calls) == call:
                (path.parent / f".{path.name}.k1ll3d.tmp").write_text(text[: len(text) // 2])
                raise _Killed(path)
        return real(path, text)

    monkeypatch.setattr(training_state, "atomic_write_text", atomic_write_text)


def _rename_cut_at(monkeypatch, source_part: str, call: int) -> None:
    """Killed at the ``call``-th rename of a staged ``*source_part*`` file: the commit
    (manifest) is written, some of the renames are not done."""
    real, calls = os.replace, []

    def replace(source, destination):
        if source_part in Path(source).name:
            calls.append(source)
            if len(calls) == call:
                raise _Killed(source)
        return real(source, destination)

    monkeypatch.setattr(os, "replace", replace)


KILLS = {
    # the 4th best checkpoint is epoch 3's, the last: the resumed run must write it again
    "checkpoint half written": lambda mp: _save_weights_cut_at(mp, "best", 4),
    "backup weights half written": lambda mp: _save_weights_cut_at(mp, "latest", 3),
    "backup metadata half written": lambda mp: _text_write_cut_at(mp, "training_metadata", 3),
    "manifest half written": lambda mp: _text_write_cut_at(mp, "manifest", 3),
    "between the manifest and the renames": lambda mp: _rename_cut_at(mp, "latest", 3),
}


@pytest.mark.parametrize("kill", KILLS)
def test_a_run_killed_while_writing_its_state_resumes_to_the_uninterrupted_weights(
    tmp_path, monkeypatch, reference, kill
):
    with monkeypatch.context() as patch:
        KILLS[kill](patch)
        with pytest.raises(_Killed):
            _fit(tmp_path)
    _assert_same_run(_fit(tmp_path), reference)
    assert set(os.listdir(tmp_path)) == FINISHED, "no backup, staged or temporary file is left"
    assert read_log(tmp_path / LOG_FILE)["epoch"] == list(range(EPOCHS))


# --------------------------------------------------------------------------- files that do not agree


def _backup_at_epoch_3(out: Path) -> None:
    with pytest.raises(_Killed):
        _fit(out, [_StopAt(3, 0)])


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _set_epoch(path: Path, epoch: int) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), "epoch": epoch}))


def _drop_log_row(path: Path, epoch: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith(f"{epoch},")))


TAMPERED = {
    # what the old code resumed silently: epoch 3's weights with epoch 1's metadata
    "metadata of another epoch": (
        "backup/training_metadata.json",
        lambda out: _set_epoch(out / "backup/training_metadata.json", 1),
    ),
    "backup weights cut short": (
        "backup/latest.weights.h5",
        lambda out: _cut_in_half(out / "backup/latest.weights.h5"),
    ),
    "checkpoint cut short": ("best.weights.h5", lambda out: _cut_in_half(out / "best.weights.h5")),
    "checkpoint missing": ("best.weights.h5", lambda out: (out / "best.weights.h5").unlink()),
    "no manifest": ("backup", lambda out: (out / "backup/manifest.json").unlink()),
    "log lacks an epoch the backup ran": (LOG_FILE, lambda out: _drop_log_row(out / LOG_FILE, 1)),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_backup_whose_files_do_not_belong_together_is_refused_naming_the_file(tmp_path, case):
    _backup_at_epoch_3(tmp_path)
    name, tamper = TAMPERED[case]
    tamper(tmp_path)
    before = sorted(path.name for path in tmp_path.rglob("*"))
    with pytest.raises(TrainingStateError) as caught:
        _fit(tmp_path)
    _one_sentence(caught.value, str(tmp_path / name))
    assert sorted(path.name for path in tmp_path.rglob("*")) == before, "a refused folder is left as it was"


# --------------------------------------------------------------------------- the log cut mid line


def test_a_log_cut_mid_line_resumes_when_the_backup_does_not_need_the_row_and_is_one_sentence_otherwise(
    tmp_path, reference
):
    _backup_at_epoch_3(tmp_path)
    log = tmp_path / LOG_FILE
    with log.open("a", newline="") as file:  # killed while logging epoch 3 of the first run
        file.write("3,0.51")
    with pytest.raises(TrainingStateError) as caught:
        read_log(log)
    _one_sentence(caught.value, str(log), "line 5")
    _assert_same_run(_fit(tmp_path), reference)

    second = tmp_path / "second"
    _backup_at_epoch_3(second)
    lines = (second / LOG_FILE).read_text().splitlines(keepends=True)
    lines[2] = lines[2][:7] + "\r\n"  # epoch 1's row cut: the backup needs it
    (second / LOG_FILE).write_text("".join(lines))
    with pytest.raises(TrainingStateError) as caught:
        _fit(second)
    _one_sentence(caught.value, str(second / LOG_FILE), "line 3")


# --------------------------------------------------------------------------- another model's backup


def _wider_model() -> keras.Model:
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inputs)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="head")(x)
    return keras.Model(inputs, outputs, name="wider")


def test_a_backup_of_another_model_is_refused_in_one_sentence(tmp_path):
    _backup_at_epoch_3(tmp_path)
    with pytest.raises(TrainingStateError) as caught:
        _fit(tmp_path, build=_wider_model)
    _one_sentence(caught.value, str(tmp_path / "backup" / "latest.weights.h5"), "another model")
    assert (tmp_path / "backup" / "manifest.json").is_file()


# --------------------------------------------------------------------------- two runs on one folder


def test_a_second_run_on_a_folder_in_use_is_refused_and_a_dead_runs_lock_is_taken_over(tmp_path, reference):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock = tmp_path / "train.lock"
    try:
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        with pytest.raises(RunLockedError) as caught:
            _fit(tmp_path)
        _one_sentence(caught.value, str(lock), f"process {holder.pid}")
        assert sorted(os.listdir(tmp_path)) == ["train.lock"], "the refused run wrote nothing"
    finally:
        holder.kill()
        holder.wait()
    _assert_same_run(_fit(tmp_path), reference)  # the lock of a process that is gone is taken over
    assert set(os.listdir(tmp_path)) == FINISHED, "the lock is released at the end"
