"""Where training runs: devices, XLA, mixed precision and distribution strategies.

The strategies are ``tf.distribute``'s and need the TensorFlow backend; on JAX,
:func:`zoo.train.fit` runs with ``strategy="default"`` and Keras' own
``keras.distribution`` (README "Backends").

:func:`zoo.train.fit` resolves its runtime settings here, and the reproduce scripts
record :func:`describe_runtime` next to their tables so that a number can be traced
to the hardware and software that produced it.

Defaults follow measurements on this stack (TF 2.21, Keras 3.15):

* XLA (``jit_compile=True``) is on iff a GPU is present. On CPU it is slower: a
  ResNet50 training step 1.4x, an EfficientNet U-Net step 8x, because depthwise
  convolutions run 30x slower under CPU XLA.
* Mixed precision (``mixed_float16``) pays off on GPUs with tensor cores only; on
  CPU float16 is emulated and far slower (measured: a 64x64 U-Net training step
  1.2 s in float32, 223 s in mixed_float16). It is allowed on CPU so that tests can
  run forward passes with it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
import platform
import warnings
from typing import Any, Iterator, Sequence

import keras

from data_tools.lazy_tensorflow import lazy_tensorflow

tf = lazy_tensorflow("TensorFlow's device list")

STRATEGIES: tuple[str, ...] = ("default", "mirrored", "multi_worker")
MIXED_POLICY = "mixed_float16"


def gpu_available() -> bool:
    """True if the Keras backend sees at least one GPU (TensorFlow's, JAX's or PyTorch's device list)."""
    return any(device["type"] == "GPU" for device in _devices())


def _devices() -> list[dict[str, str]]:
    """The backend's devices (``name``, ``type``, TensorFlow's GPU details), importing no other framework."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [
            {"name": str(device), "type": "GPU" if device.platform == "gpu" else device.platform.upper()}
            for device in jax.devices()
        ]
    if backend == "torch":
        import torch

        gpus = [
            {"name": torch.cuda.get_device_name(index), "type": "GPU"} for index in range(torch.cuda.device_count())
        ]
        return [{"name": "cpu", "type": "CPU"}, *gpus]
    return [_describe_device(device) for device in tf.config.list_physical_devices()]


def resolve_xla(xla: bool | None) -> bool:
    """``xla=None`` means "on iff a GPU is present" (see the module docstring) on
    TensorFlow, and on under JAX, whose only compiler is XLA (``False`` there runs
    every op on its own: for debugging)."""
    if xla is None:
        return keras.backend.backend() == "jax" or gpu_available()
    if not isinstance(xla, bool):
        raise TypeError(f"xla must be True, False or None (= on iff a GPU is present), got {xla!r}.")
    return xla


@contextlib.contextmanager
def precision_policy(mixed_precision: bool) -> Iterator[str]:
    """Sets the global Keras dtype policy for the block and restores it afterwards.

    Layers take the global policy when they are created, so the model must be
    built inside the block; it keeps its policy after the block ends. Keras wraps
    the optimizer of a ``mixed_float16`` model in a ``LossScaleOptimizer`` at
    ``compile`` time. Yields the policy name in force.
    """
    previous = keras.mixed_precision.global_policy()
    name = MIXED_POLICY if mixed_precision else "float32"
    if mixed_precision and not gpu_available():
        warnings.warn(
            "mixed_precision=True without a GPU: float16 is emulated on CPU, where a "
            "training step is about 100x slower than float32; use it on CPU for tests only.",
            stacklevel=3,
        )
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_strategy(name: str = "default", devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name``.

    Args:
        name: ``"default"`` (one device, no replication), ``"mirrored"``
            (synchronous data parallelism over the devices of this machine) or
            ``"multi_worker"`` (``MultiWorkerMirroredStrategy`` over the cluster
            described by the ``TF_CONFIG`` environment variable).
        devices: for ``"mirrored"`` only: the devices to replicate over, e.g.
            ``["/gpu:0", "/gpu:1"]``. ``None`` takes every GPU, or when there is
            none every logical CPU device (one, unless the CPU was split with
            ``tf.config.set_logical_device_configuration``).

    Under a strategy the batch size of the datasets given to ``fit`` is the
    *global* batch: each of the ``strategy.num_replicas_in_sync`` replicas gets
    ``global_batch / replicas`` samples per step, and the gradients are averaged
    across replicas, so a step equals a single-device step on the global batch.

    ``"multi_worker"`` must be created before TensorFlow runs its first operation
    (TensorFlow configures the collective ops once, at start-up): call
    ``make_strategy("multi_worker")`` at the top of the script, before building
    datasets. The instance is cached, so a later call, e.g. inside ``fit``,
    returns the same strategy.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}.")
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices applies to strategy='mirrored' only, got strategy={name!r}.")
    if name != "default" and keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"strategy={name!r} is a tf.distribute strategy and needs KERAS_BACKEND=tensorflow (this process "
            f"runs Keras on {keras.backend.backend()!r}); on JAX, distribute with keras.distribution "
            f"(e.g. keras.distribution.set_distribution(keras.distribution.DataParallel())) and strategy='default'."
        )
    if name == "default":
        return tf.distribute.get_strategy() if keras.backend.backend() == "tensorflow" else LocalStrategy()
    if name == "mirrored":
        if devices is None:
            devices = [device.name for device in tf.config.list_logical_devices("GPU")]
            devices = devices or [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=list(devices))
    return _multi_worker_strategy()


class LocalStrategy:
    """``strategy="default"`` off the TensorFlow backend: one process, no replication.

    The part of ``tf.distribute.Strategy`` that :func:`zoo.train.fit` uses, so that
    JAX and PyTorch train without TensorFlow (they distribute with
    ``keras.distribution``, README "Backends").
    """

    num_replicas_in_sync = 1
    cluster_resolver = None

    def scope(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


@functools.cache
def _multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    _check_tf_config()
    from zoo.distribute import MultiWorkerMirroredStrategy

    try:
        return MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        raise RuntimeError(
            "MultiWorkerMirroredStrategy must be created before TensorFlow runs any "
            "operation: call zoo.runtime.make_strategy('multi_worker') at the top of "
            f"the script, before building datasets or models ({error})."
        ) from None


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "strategy='multi_worker' needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", "index": 0}}.'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {raw!r}") from None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError(f"TF_CONFIG needs the keys 'cluster' and 'task', got {raw!r}.")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster.

    The chief is the ``"chief"`` task if the cluster has one, otherwise worker 0.
    Only the chief should write shared outputs (checkpoints, logs).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief_task = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief_task


def task_name(strategy: tf.distribute.Strategy) -> str:
    """``"<task_type>-<task_id>"`` in a cluster, ``"local"`` otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return "local"
    return f"{resolver.task_type}-{resolver.task_id}"


def describe_runtime(
    *,
    xla: bool | None = None,
    mixed_precision: bool = False,
    strategy: tf.distribute.Strategy | None = None,
) -> dict[str, Any]:
    """A JSON-able record of the software, devices and settings of a run."""
    strategy = strategy or make_strategy("default")
    return {
        "python": platform.python_version(),
        "tensorflow": _installed_version("tensorflow", "tensorflow-cpu"),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "platform": platform.platform(),
        "devices": _devices(),
        "xla": resolve_xla(xla),
        "precision_policy": MIXED_POLICY if mixed_precision else "float32",
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "task": task_name(strategy),
    }


def _installed_version(*distributions: str) -> str | None:
    """The version of the first of ``distributions`` installed, ``None`` if none is (nothing is imported)."""
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _describe_device(device: tf.config.PhysicalDevice) -> dict[str, Any]:
    details = tf.config.experimental.get_device_details(device) if device.device_type == "GPU" else {}
    return {"name": device.name, "type": device.device_type, **{key: str(value) for key, value in details.items()}}
