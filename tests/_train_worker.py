"""A tiny training problem, and the subprocess entry points of tests/test_train.py.

The tests import the problem (:func:`build_tiny_model`, :func:`tiny_datasets`,
:func:`tiny_config`) to train in-process references; the scenarios below run the
same problem in fresh processes, which some checks need:

* ``resume``: trains, optionally killing itself with ``os._exit`` at a given
  epoch and batch (a crash that runs no cleanup);
* ``pipeline_resume``: the same with the project's own shuffled, augmented
  ``data_tools.pipeline.segmentation_dataset``, killed with a real SIGKILL;
* ``mirrored``: splits the CPU into two logical devices before TensorFlow starts,
  then trains once on one device and once with ``MirroredStrategy`` over both;
* ``multi_worker``: one worker of a ``MultiWorkerMirroredStrategy`` cluster on
  127.0.0.1.

Usage: ``python tests/_train_worker.py SCENARIO OUT_DIR [options]``; results are
written to OUT_DIR as ``.npz``/``.json`` files.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

KILL_EXIT_CODE = 3
BATCH_SIZE = 4


def build_tiny_model() -> keras.Model:
    """A two-layer fully convolutional segmenter on 8x8x2 inputs."""
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="head")(x)
    return keras.Model(inputs, outputs, name="tiny")


def tiny_arrays(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and their masks: a pixel is foreground where channel 0 > channel 1."""
    images = np.random.default_rng(seed).uniform(size=(count, 8, 8, 2)).astype("float32")
    masks = (images[..., :1] > images[..., 1:]).astype("float32")
    return images, masks


def tiny_datasets(train_count: int = 32, val_count: int = 16) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Unshuffled batches, so every epoch (and every process) sees the same order."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train = tf.data.Dataset.from_tensor_slices(tiny_arrays(train_count, seed=0))
    val = tf.data.Dataset.from_tensor_slices(tiny_arrays(val_count, seed=1))
    return tuple(data.batch(BATCH_SIZE).with_options(options) for data in (train, val))


def tiny_fit_kwargs(learning_rate: float = 0.5) -> dict:
    """The optimizer, loss and metrics, as factories (created in the strategy scope)."""
    return {
        "optimizer": lambda: keras.optimizers.SGD(learning_rate, momentum=0.9),
        "loss": keras.losses.BinaryCrossentropy,
        "metrics": lambda: [keras.metrics.BinaryAccuracy(name="acc")],
    }


class KillAt(keras.callbacks.Callback):
    """Ends the process abruptly after batch ``batch`` of epoch ``epoch``
    (``os._exit``, or with ``sigkill`` the kernel's SIGKILL)."""

    def __init__(self, epoch: int, batch: int, sigkill: bool = False):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch, self.sigkill = epoch, batch, None, sigkill

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (self.kill_epoch, self.kill_batch):
            if self.sigkill:
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(KILL_EXIT_CODE)


class EpochRecorder(keras.callbacks.Callback):
    """Remembers the epochs this process ran."""

    def __init__(self):
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def save_weights(model: keras.Model, path: Path) -> None:
    np.savez(path, *model.get_weights())


def load_weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def run_resume(out_dir: Path, kill_at: str | None, epochs: int) -> None:
    from zoo.train import TrainConfig, fit

    recorder = EpochRecorder()
    callbacks = [recorder]
    if kill_at:
        callbacks.append(KillAt(*map(int, kill_at.split(":"))))
    train, val = tiny_datasets()
    config = TrainConfig(out_dir / "run", epochs=epochs, xla=False, verbose=0)
    result = fit(build_tiny_model, train, val, config, callbacks=callbacks, **tiny_fit_kwargs())
    save_weights(result.model, out_dir / "weights.npz")
    (out_dir / "epochs_run.json").write_text(json.dumps(recorder.epochs))


def pipeline_datasets(data_root: Path) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The project's pipeline on a synthetic ISIC 2018 set: shuffled, augmented, 16x16."""
    from data_tools.augment import Augmentation
    from data_tools.isic import read_isic2018
    from data_tools.pipeline import segmentation_dataset
    from data_tools.preprocess import InputSpec
    from data_tools.synthetic import make_isic2018

    if not (data_root / "done").is_file():
        make_isic2018(data_root, n_train=12, n_val=4, n_test=1, image_size=(32, 40))
        (data_root / "done").write_text("")
    spec = InputSpec(image_size=(16, 16))
    augment = Augmentation(horizontal_flip=True, vertical_flip=True, rotation_degrees=20.0, noise_std=(0.0, 0.05))
    train = segmentation_dataset(
        read_isic2018(data_root, "train", tasks=(1,)), spec, batch_size=4, training=True, augment=augment, seed=7
    )
    val = segmentation_dataset(read_isic2018(data_root, "validation", tasks=(1,)), spec, batch_size=4, training=False)
    return train, val


def build_pipeline_model() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="head")(x)
    return keras.Model(inputs, outputs, name="tiny_rgb")


def run_pipeline_resume(out_dir: Path, kill_at: str | None, epochs: int, data_root: Path) -> None:
    from zoo.train import TrainConfig, fit

    callbacks = [KillAt(*map(int, kill_at.split(":")), sigkill=True)] if kill_at else []
    train, val = pipeline_datasets(data_root)
    config = TrainConfig(out_dir / "run", epochs=epochs, xla=False, verbose=0)
    result = fit(build_pipeline_model, train, val, config, callbacks=callbacks, **tiny_fit_kwargs(0.2))
    save_weights(result.model, out_dir / "weights.npz")


def run_mirrored(out_dir: Path) -> None:
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from zoo.train import TrainConfig, fit

    train, _ = tiny_datasets(train_count=8)
    results = {}
    for strategy in ("default", "mirrored"):
        config = TrainConfig(out_dir / strategy, epochs=1, monitor="loss", strategy=strategy, xla=False, verbose=0)
        result = fit(build_tiny_model, train, None, config, **tiny_fit_kwargs())
        results[strategy] = {
            "loss": result.history["loss"],
            "replicas": result.model.distribute_strategy.num_replicas_in_sync,
        }
        save_weights(result.model, out_dir / f"{strategy}.npz")
    (out_dir / "results.json").write_text(json.dumps(results))


def run_multi_worker(out_dir: Path, index: int, ports: list[int]) -> None:
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )
    from zoo.runtime import make_strategy
    from zoo.train import TrainConfig, fit

    strategy = make_strategy("multi_worker")  # before any TensorFlow op
    train, _ = tiny_datasets()
    config = TrainConfig(out_dir / "run", epochs=2, monitor="loss", strategy="multi_worker", xla=False, verbose=0)
    result = fit(build_tiny_model, train, None, config, **tiny_fit_kwargs())
    save_weights(result.model, out_dir / f"weights-{index}.npz")
    (out_dir / f"replicas-{index}.json").write_text(json.dumps(strategy.num_replicas_in_sync))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=("resume", "pipeline_resume", "mirrored", "multi_worker"))
    parser.add_argument("--data", type=Path, help="synthetic data folder (pipeline_resume)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--kill-at", help="EPOCH:BATCH (resume)")
    parser.add_argument("--epochs", type=int, default=4, help="(resume)")
    parser.add_argument("--index", type=int, help="worker index (multi_worker)")
    parser.add_argument("--ports", help="comma-separated worker ports (multi_worker)")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.scenario == "resume":
        run_resume(args.out_dir, args.kill_at, args.epochs)
    elif args.scenario == "pipeline_resume":
        run_pipeline_resume(args.out_dir, args.kill_at, args.epochs, args.data)
    elif args.scenario == "mirrored":
        run_mirrored(args.out_dir)
    else:
        run_multi_worker(args.out_dir, args.index, [int(port) for port in args.ports.split(",")])


if __name__ == "__main__":
    main()
