"""zoo.train.fit and zoo.runtime on a tiny segmenter (tests/_train_worker.py).

Checks that need a fresh process (a crash, a split CPU, a two-worker cluster) run
tests/_train_worker.py in subprocesses and compare with in-process references.
"""

import csv
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests._train_worker import (
    KILL_EXIT_CODE,
    EpochRecorder,
    build_tiny_model,
    load_weights,
    tiny_arrays,
    tiny_datasets,
    tiny_fit_kwargs,
)
from zoo import runtime
from zoo import train as zoo_train
from zoo.train import BACKUP_DIR, LOG_FILE, TrainConfig, fit, read_log

WORKER = Path(__file__).with_name("_train_worker.py")
SUBPROCESS_TIMEOUT = 240


def _csv_rows(path: Path) -> list[dict[str, float]]:
    """The CSV log read with the csv module alone (independent of read_log)."""
    with path.open(newline="") as file:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(file)]


def _run_worker(*args: str, expected_rc: int = 0) -> None:
    done = subprocess.run(
        [sys.executable, str(WORKER), *args], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )
    assert done.returncode == expected_rc, done.stderr[-3000:]


def _assert_same_weights(actual: list[np.ndarray], expected: list[np.ndarray], atol: float) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def xla_run(tmp_path_factory):
    """Three epochs under XLA, keeping the epoch with the *highest* val_loss.

    Monitoring val_loss with mode="max" makes the kept epoch an early one, so the
    restored weights are not simply the last ones.
    """
    train, val = tiny_datasets()
    config = TrainConfig(tmp_path_factory.mktemp("xla"), epochs=3, monitor="val_loss", mode="max", xla=True, verbose=0)
    return config, fit(build_tiny_model, train, val, config, **tiny_fit_kwargs())


def test_xla_training_lowers_the_loss(xla_run):
    _, result = xla_run
    assert result.model.jit_compile is True
    assert result.history["loss"][-1] < 0.7 * result.history["loss"][0]


def test_best_checkpoint_is_restored(xla_run):
    config, result = xla_run
    rows = _csv_rows(config.out_dir / LOG_FILE)
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    best = max(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    assert best != len(rows) - 1, "the test needs a best epoch that is not the last"
    assert result.best_epoch == best
    _, val = tiny_datasets()
    restored = result.model.evaluate(val, verbose=0, return_dict=True)
    np.testing.assert_allclose(restored["loss"], rows[best]["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(result.history["val_loss"], [row["val_loss"] for row in rows], rtol=1e-7)


def test_run_records_config_and_runtime(xla_run):
    config, result = xla_run
    assert json.loads((result.out_dir / "train_config.json").read_text()) == config.to_dict()
    recorded = json.loads((result.out_dir / "runtime.json").read_text())
    assert recorded["xla"] is True
    assert recorded["tensorflow"] == tf.__version__
    assert recorded["keras"] == keras.__version__
    assert recorded["replicas"] == 1
    assert not (result.out_dir / BACKUP_DIR).exists(), "a finished run leaves no backup"


def test_mixed_precision_builds_under_the_policy_and_restores_it(tmp_path):
    train, val = tiny_datasets(train_count=8, val_count=4)
    config = TrainConfig(tmp_path, epochs=1, mixed_precision=True, xla=False, verbose=0)
    with pytest.warns(UserWarning, match="mixed_precision=True without a GPU"):
        result = fit(build_tiny_model, train, val, config, **tiny_fit_kwargs())
    assert result.model.get_layer("conv").dtype_policy.name == "mixed_float16"
    assert result.model.get_layer("conv").compute_dtype == "float16"
    assert isinstance(result.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert np.isfinite(result.history["loss"][0])


class _Interrupt(Exception):
    pass


class _RaiseAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise _Interrupt


def test_batch_backups_resume_in_the_interrupted_epoch(tmp_path):
    """backup_freq=2 batches; interrupted twice in epoch 2, the second time before
    the resumed run finished any epoch: the third run must still start at epoch 2."""
    train, val = tiny_datasets()  # 8 batches per epoch
    config = TrainConfig(tmp_path, epochs=4, backup_freq=2, xla=False, verbose=0)
    for interrupt_at in [(2, 5), (2, 2)]:
        with pytest.raises(_Interrupt):
            fit(build_tiny_model, train, val, config, callbacks=[_RaiseAt(*interrupt_at)], **tiny_fit_kwargs())
        metadata = json.loads((tmp_path / BACKUP_DIR / "training_metadata.json").read_text())
        assert metadata["epoch"] == 2
    recorder = EpochRecorder()
    result = fit(build_tiny_model, train, val, config, callbacks=[recorder], **tiny_fit_kwargs())
    assert recorder.epochs == [2, 3]
    assert [row["epoch"] for row in _csv_rows(tmp_path / LOG_FILE)] == [0, 1, 2, 3]
    assert result.history["epoch"] == [0, 1, 2, 3]


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tmp_path):
    # Killed after batch 3 of epoch 2: the backup of the end of epoch 1 survives.
    _run_worker("resume", str(tmp_path), "--kill-at", "2:3", expected_rc=KILL_EXIT_CODE)
    run_dir = tmp_path / "run"
    assert [row["epoch"] for row in _csv_rows(run_dir / LOG_FILE)] == [0, 1]
    assert (run_dir / BACKUP_DIR).is_dir()

    _run_worker("resume", str(tmp_path))
    assert json.loads((tmp_path / "epochs_run.json").read_text()) == [2, 3]
    resumed_rows = _csv_rows(run_dir / LOG_FILE)
    assert [row["epoch"] for row in resumed_rows] == [0, 1, 2, 3]

    train, val = tiny_datasets()
    reference = fit(
        build_tiny_model, train, val, TrainConfig(tmp_path / "ref", epochs=4, xla=False, verbose=0), **tiny_fit_kwargs()
    )
    for key in ("loss", "val_loss", "acc", "val_acc"):
        np.testing.assert_allclose([row[key] for row in resumed_rows], reference.history[key], rtol=1e-5)
    _assert_same_weights(load_weights(tmp_path / "weights.npz"), reference.model.get_weights(), atol=1e-6)


def test_sigkilled_run_with_the_projects_pipeline_resumes_to_the_same_weights(tmp_path):
    """Issue 16: shuffle order and augmentation continue where they stopped. The
    project's own shuffled and augmented pipeline, the process killed with SIGKILL in
    epoch 2, resumed in a new process: the same weights as an uninterrupted run."""
    data = tmp_path / "data"
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    _run_worker("pipeline_resume", str(killed), "--data", str(data), "--kill-at", "2:1", expected_rc=-signal.SIGKILL)
    assert [row["epoch"] for row in _csv_rows(killed / "run" / LOG_FILE)] == [0, 1]
    _run_worker("pipeline_resume", str(killed), "--data", str(data))
    _run_worker("pipeline_resume", str(whole), "--data", str(data))
    resumed, reference = load_weights(killed / "weights.npz"), load_weights(whole / "weights.npz")
    for got, want in zip(resumed, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_mirrored_over_two_cpus_matches_one_device(tmp_path):
    _run_worker("mirrored", str(tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["default"]["replicas"] == 1
    assert results["mirrored"]["replicas"] == 2
    np.testing.assert_allclose(results["mirrored"]["loss"], results["default"]["loss"], rtol=1e-6)
    _assert_same_weights(load_weights(tmp_path / "mirrored.npz"), load_weights(tmp_path / "default.npz"), atol=1e-6)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_two_workers_train_to_the_single_process_weights(tmp_path):
    ports = ",".join(map(str, _free_ports(2)))
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "multi_worker", str(tmp_path), "--index", str(i), "--ports", ports],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        errors = [worker.communicate(timeout=SUBPROCESS_TIMEOUT)[1] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    for worker, error in zip(workers, errors, strict=True):
        assert worker.returncode == 0, error[-3000:]

    train, _ = tiny_datasets()
    config = TrainConfig(tmp_path / "ref", epochs=2, monitor="loss", xla=False, verbose=0)
    reference = fit(build_tiny_model, train, None, config, **tiny_fit_kwargs())
    for i in range(2):
        assert json.loads((tmp_path / f"replicas-{i}.json").read_text()) == 2
        _assert_same_weights(load_weights(tmp_path / f"weights-{i}.npz"), reference.model.get_weights(), atol=1e-6)
    # Only the chief writes to out_dir; worker 1 writes to its own folder.
    chief_log = read_log(tmp_path / "run" / LOG_FILE)
    np.testing.assert_allclose(chief_log["loss"], reference.history["loss"], rtol=1e-5)
    assert (tmp_path / "run" / "workers" / "worker-1" / LOG_FILE).is_file()


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("mode", "up"), ("strategy", "tpu"), ("backup_freq", 0), ("steps_per_epoch", -1), ("xla", "yes")],
)
def test_config_rejects_bad_values_naming_the_field(tmp_path, field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        TrainConfig(tmp_path, **{"epochs": 1, field: value})


def test_auto_mode(tmp_path):
    assert TrainConfig(tmp_path, epochs=1, monitor="val_loss").resolved_mode == "min"
    assert TrainConfig(tmp_path, epochs=1, monitor="val_dice").resolved_mode == "max"
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        _ = TrainConfig(tmp_path, epochs=1, monitor="val_hausdorff").resolved_mode


def test_fit_rejects_bad_data_before_training(tmp_path):
    train, val = tiny_datasets(train_count=4, val_count=4)
    config = TrainConfig(tmp_path, epochs=1, xla=False, verbose=0)
    with pytest.raises(ValueError, match="needs val_data"):
        fit(build_tiny_model, train, None, config, **tiny_fit_kwargs())
    with pytest.raises(TypeError, match="train_data must be a tf.data.Dataset"):
        fit(build_tiny_model, np.zeros((4, 8, 8, 2)), val, config, **tiny_fit_kwargs())
    with pytest.raises(ValueError, match=r"train_data must yield \(inputs, targets\)"):
        fit(build_tiny_model, train.map(lambda x, y: x), val, config, **tiny_fit_kwargs())
    with pytest.raises(ValueError, match="set TrainConfig.steps_per_epoch"):
        fit(build_tiny_model, train.repeat(), val, config, **tiny_fit_kwargs())


def test_unlogged_monitor_is_a_clear_error(tmp_path):
    train, val = tiny_datasets(train_count=4, val_count=4)
    config = TrainConfig(tmp_path, epochs=1, monitor="val_dice", xla=False, verbose=0)
    with pytest.raises(ValueError, match=r"monitor='val_dice' is not among the logged quantities .*'val_loss'"):
        fit(build_tiny_model, train, val, config, **tiny_fit_kwargs())


def test_runtime_helpers(monkeypatch):
    assert runtime.resolve_xla(None) is runtime.gpu_available()
    assert runtime.resolve_xla(True) is True
    description = runtime.describe_runtime(mixed_precision=True)
    assert description["precision_policy"] == "mixed_float16"
    assert description["strategy"] == type(tf.distribute.get_strategy()).__name__
    assert {device["type"] for device in description["devices"]} >= {"CPU"}
    assert runtime.is_chief(tf.distribute.get_strategy())
    with pytest.raises(ValueError, match="strategy must be one of"):
        runtime.make_strategy("tpu")
    with pytest.raises(ValueError, match="devices applies to strategy='mirrored' only"):
        runtime.make_strategy("default", ["/cpu:0"])
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        runtime.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        runtime.make_strategy("multi_worker")


# ------------------------------------------------------------------ bad data and arguments (issue 16)


def test_non_finite_loss_stops_training_naming_epoch_and_batch_and_keeps_best(tmp_path):
    """One NaN pixel in the third epoch: training stops with a message naming the
    epoch (on this CPU the ReLU maps the NaN to 0, so the loss stays finite while the
    gradient puts NaN into the first kernel), and the best checkpoint of the finite
    epochs before is kept."""
    train, val = tiny_datasets(train_count=8, val_count=4)
    images, masks = next(iter(train.unbatch().batch(8)))
    poisoned = images.numpy().copy()
    poisoned[1, 3, 3, 0] = np.nan  # sample 1: batch 0 of the epoch (batch size 4)
    clean = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)
    dirty = tf.data.Dataset.from_tensor_slices((poisoned, masks)).batch(4)
    epochs = clean.concatenate(clean).concatenate(dirty)  # epochs 0 and 1 clean, epoch 2 poisoned
    config = TrainConfig(tmp_path, epochs=3, xla=False, verbose=0, steps_per_epoch=2)
    with pytest.raises(
        zoo_train.NonFiniteLossError,
        match=r"epoch 2(, batch \d: the training loss is nan|: after its updates the weights 'conv/kernel')",
    ):
        fit(build_tiny_model, epochs, val, config, **tiny_fit_kwargs())
    assert (tmp_path / zoo_train.BEST_WEIGHTS_FILE).is_file()
    model = build_tiny_model()
    model.load_weights(tmp_path / zoo_train.BEST_WEIGHTS_FILE)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_empty_training_data_says_so_instead_of_a_monitor_error(tmp_path):
    """A batch larger than the training set with drop_remainder leaves no batch."""
    images, masks = tiny_arrays(3, seed=0)
    train = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4, drop_remainder=True)
    config = TrainConfig(tmp_path, epochs=1, monitor="loss", xla=False, verbose=0)
    with pytest.raises(ValueError, match=r"train_data yields no batch.*batch size"):
        fit(build_tiny_model, train, None, config, **tiny_fit_kwargs())
    # The same when the emptiness is only seen while training (unknown cardinality).
    unknown = train.unbatch().filter(lambda x, y: True).batch(4, drop_remainder=True)
    with pytest.raises(ValueError, match=r"no training batch ran in epoch 0"):
        fit(build_tiny_model, unknown, None, config, **tiny_fit_kwargs())


def test_non_finite_loss_names_the_batch(tmp_path):
    train, val = tiny_datasets(train_count=8, val_count=4)
    config = TrainConfig(tmp_path, epochs=1, xla=False, verbose=0)
    with pytest.raises(zoo_train.NonFiniteLossError, match=r"epoch 0, batch 0: the training loss is inf"):
        fit(
            build_tiny_model,
            train,
            val,
            config,
            optimizer=lambda: keras.optimizers.SGD(0.1),
            loss=lambda: lambda y_true, y_pred: keras.ops.mean(y_pred) / 0.0,
        )


def test_keep_last_returns_the_final_epoch_whatever_the_monitor(tmp_path):
    """Papers without a validation set report their final model (AttnMel on ISIC 2016)."""
    train, val = tiny_datasets(train_count=8, val_count=4)
    config = TrainConfig(tmp_path, epochs=3, monitor="loss", xla=False, verbose=0, keep="last")
    result = fit(build_tiny_model, train, None, config, **tiny_fit_kwargs(learning_rate=5.0))
    assert result.best_epoch == 2
    final = result.model.get_weights()
    model = build_tiny_model()
    model.load_weights(result.best_weights_path)
    for saved, kept in zip(model.get_weights(), final, strict=True):
        np.testing.assert_array_equal(saved, kept)
    with pytest.raises(ValueError, match="keep must be one of"):
        TrainConfig(tmp_path, epochs=1, keep="median")


def test_a_recipe_optimizer_factory_is_explained(tmp_path):
    """Issue 22: ``optimizer=entry.recipe.optimizer`` (a factory of the learning rate
    and the schedule's length) failed deep in Keras ("Could not interpret optimizer
    identifier"); it is a TypeError that says how to make the optimiser."""
    import zoo as zoo_package

    recipe = zoo_package.get_model("unet").recipe
    data = tf.data.Dataset.from_tensor_slices((np.zeros((2, 8), np.float32), np.zeros((2, 1), np.float32))).batch(1)
    with pytest.raises(TypeError, match=r"recipe.make_optimizer\(steps_per_epoch\)"):
        zoo_train.fit(
            lambda: keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)]),
            data,
            None,
            zoo_train.TrainConfig(tmp_path, epochs=1, monitor="loss"),
            optimizer=recipe.optimizer,
            loss="mse",
        )
    assert not any(tmp_path.iterdir())


def test_auto_verbosity_writes_a_line_per_epoch_into_a_log(tmp_path, capsys):
    """Issue 26: where the output is a file or a pipe (capsys here), ``verbose="auto"``
    prints one line per epoch; Keras' bar wrote every step's update into the log."""
    train, val = tiny_datasets()
    fit(build_tiny_model, train, val, TrainConfig(tmp_path, epochs=2, xla=False), **tiny_fit_kwargs())
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "━" not in out and "\r" not in out  # no bar, no carriage returns
    assert len([line for line in out.splitlines() if "val_loss" in line]) == 2


def test_auto_verbosity_keeps_the_bar_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert zoo_train.fit_verbosity("auto") == 1
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert zoo_train.fit_verbosity("auto") == 2 and zoo_train.fit_verbosity(1) == 1
