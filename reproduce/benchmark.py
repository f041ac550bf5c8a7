"""Speed and memory of every model in the zoo, with and without XLA, and of its input pipeline.

    python reproduce/benchmark.py [--size small|paper] [--models NAME ...] [--papers PAPER ...]
                                  [--batch-sizes 1 32] [--xla both|on|off]
                                  [--precision float32|mixed|both] [--out results/benchmark]
                                  [--backend tensorflow jax torch] [--no-pipelines]

For every registered model (:func:`zoo.list_models`, randomly initialised: ``--size
paper`` is ``entry.build()``, ``--size small`` ``entry.build(small=True)``), every
precision and every XLA setting:

* **training**: the entry's recipe (``entry.recipe``: loss, loss weights, a fresh
  optimiser, :mod:`reproduce.bench_models`) on random targets of its kinds,
  ``model.compile(jit_compile=...)``, batch = the largest of ``--batch-sizes``. The first step
  (tracing and compilation) is timed apart and
  reported as ``compile_s`` (its time minus one ordinary step); ``warmup`` more
  steps are excluded; ``train_img_s`` is batch / mean time of the timed steps.
* **inference**: ``tf.function(model call, jit_compile=...)``; latency (median ms
  per call) at the smallest batch size and images/s at the largest.
* **peak memory**: on GPU ``tf.config.experimental.get_memory_info('GPU:0')['peak']``
  over the run's training and inference (reset before each); on CPU the process's
  peak resident set size (``resource.getrusage``), which only grows during a run:
  it is labelled as such.
* **precision**: ``mixed_float16`` is set as the global policy before the model is
  built and restored after. ``--precision both`` means both on a GPU and float32
  only on a CPU (float16 is emulated there); ``mixed`` forces it.

An error under XLA (a custom layer XLA cannot compile, e.g. one that calls
``tf.numpy_function``) is recorded in the row (status ``xla failed``), not raised; an
unknown ``--models`` name is an error. Every custom
layer is also compiled on its own, forward and gradient, under XLA and under
``mixed_float16`` (:mod:`reproduce.bench_layers`; ``--no-layer-checks`` skips it),
so a layer that cannot compile is named, not just the model it breaks.

The report checks the speed targets (:func:`reproduce.benchmark_report.check_targets`):
XLA never slower than no XLA; mixed precision + XLA at least 1.5x float32 without
XLA for the ResNet-, VGG- and EfficientNet-based models (``entry.family``); the input
pipeline at least 2x the model. They are GPU targets; on a CPU they are reported as
informational. For every attention model with a ``baseline`` (``entry.baseline``) the
report gives its training step time over its baseline's, both measured in the run.

For every paper it also measures the training ``tf.data`` pipeline (decode, the
entry's ``input_spec``, its recipe's augmentation, batching:
:func:`reproduce.bench_models.pipeline_for`; no cache, so every image is decoded
as in a first epoch) on generated JPEGs of the size of real ISIC images, and
compares its images/s with the model's fastest training images/s ("pipeline /
model"; the target is >= 2, so that the accelerator never waits for data).

Writes (:mod:`reproduce.benchmark_report`) ``benchmark.md``, ``benchmark.csv`` (one line per model, precision and XLA
setting), ``benchmark.json`` (everything, with the device, versions, settings and
date) and ``benchmark.png`` (training images/s per model with XLA off and on, and
the XLA / no-XLA ratio) into ``--out``. ``--size small`` runs the registry's small
configurations (32-64 pixels) with batch 2 and 3 timed steps: seconds per model on a CPU.
On CPU, XLA is known to be slower for some models (depthwise convolutions: an
EfficientNet U-Net step 8x slower, see :mod:`zoo.runtime`).

**Backends.** Keras picks its backend when it is imported, so ``--backend tensorflow jax
torch`` runs the benchmark once per backend, each in a subprocess with ``KERAS_BACKEND``
set and the same other arguments, into ``--out``/<backend>/, and writes
``backends.{md,json}``: training images/s per model side by side (TensorFlow with XLA
off and on, JAX jit-compiled, PyTorch eager), with "not installed" for a backend
whose package is missing and "failed" (and why) for a run that failed. Without
``--backend`` the benchmark runs in this process on the current backend. On JAX the
training step is always jit-compiled (``--xla`` is ignored, the rows say XLA on), on
PyTorch it is eager; inference there is ``model.predict_on_batch``. The custom-layer
XLA checks are TensorFlow's and run only there; the input pipelines (tf.data, the same
for every backend) only on TensorFlow too.

**Attention cost goals.** :data:`reproduce.benchmark_report.ATTENTION_GOALS` holds the
step-time ratios an attention model must keep to its baseline (issue 18: ARL-CNN50 at
most 1.05x ResNet50 since issue 23, the paper's point being that ARL adds no parameters); the report
checks them in the run (both models measured in the same process, same settings).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from data_tools.pipeline import classification_dataset, segmentation_dataset
from data_tools.records import Record
from reproduce.bench_layers import LAYER_CASES, LayerCase, check_layers, uncovered_layers
from reproduce.bench_models import SIZES, Pipeline, build_model, pipeline_for, random_inputs, select_models
from reproduce.benchmark_report import (
    BACKENDS,
    BUILD_FAILED,
    COLUMNS,
    FAILED,
    NOT_INSTALLED,
    OK,
    PIPELINE_COLUMNS,
    XLA_FAILED,
    attention_costs,
    check_targets,
    render_markdown,
    summarise,
    write_backends_report,
    write_report,
)
from zoo.registry import ModelEntry
from zoo.runtime import MIXED_POLICY, describe_runtime, gpu_available, precision_policy

PRECISIONS = {"float32": "float32", "mixed": MIXED_POLICY}
XLA_CHOICES = {"both": (False, True), "on": (True,), "off": (False,)}
BACKEND_XLA = {"jax": (True,), "torch": (False,)}
"""The only ``jit_compile`` setting measured on these backends (JAX always compiles with
XLA; torch.compile is not what Keras' ``jit_compile`` should mean in a CPU benchmark)."""
ROOT = Path(__file__).resolve().parents[1]

_ERROR_CHARS = 400


@dataclasses.dataclass(frozen=True)
class Settings:
    """What to run and how long.

    Attributes:
        size: ``"paper"`` (``entry.build()``) or ``"small"`` (``entry.build(small=True)``).
        batch_sizes: inference batch sizes; the smallest gives the latency, the
            largest the inference images/s and the training batch.
        xla: the ``jit_compile`` values to run.
        precisions: keys of :data:`PRECISIONS` to run.
        warmup_steps: steps after the first, excluded from the timings.
        timed_steps: steps timed.
        pipeline_images: generated JPEGs per pipeline measurement.
        source_size: ``(height, width)`` of the generated JPEGs.
        seed: seeds the random inputs, targets and images.
    """

    size: str
    batch_sizes: tuple[int, ...]
    xla: tuple[bool, ...]
    precisions: tuple[str, ...]
    warmup_steps: int
    timed_steps: int
    pipeline_images: int
    source_size: tuple[int, int]
    seed: int = 0

    def __post_init__(self):
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {self.size!r}.")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ValueError(f"batch_sizes must be positive ints, got {self.batch_sizes!r}.")
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown or not self.precisions:
            raise ValueError(f"precisions must be among {tuple(PRECISIONS)}, got {self.precisions!r}.")
        if not self.xla:
            raise ValueError("xla: give at least one setting.")
        if self.warmup_steps < 0 or self.timed_steps < 1 or self.pipeline_images < 1:
            raise ValueError("need warmup_steps >= 0, timed_steps >= 1 and pipeline_images >= 1.")

    @property
    def train_batch(self) -> int:
        return max(self.batch_sizes)


SIZE_PRESETS: Mapping[str, Mapping[str, Any]] = {
    "small": {
        "batch_sizes": (1, 2),
        "warmup_steps": 1,
        "timed_steps": 3,
        "pipeline_images": 8,
        "source_size": (96, 128),
    },
    # ISIC images are mostly 767x1022 or larger.
    "paper": {
        "batch_sizes": (1, 32),
        "warmup_steps": 3,
        "timed_steps": 10,
        "pipeline_images": 64,
        "source_size": (767, 1022),
    },
}


def resolve_precisions(choice: str, gpu: bool) -> tuple[str, ...]:
    """``both`` is float32 and mixed on a GPU, float32 alone on a CPU."""
    if choice == "both":
        return ("float32", "mixed") if gpu else ("float32",)
    if choice not in PRECISIONS:
        raise ValueError(f"--precision must be one of {('both', *PRECISIONS)}, got {choice!r}.")
    return (choice,)


# ----------------------------------------------------------------------- timing


def time_calls(call: Callable[[], Any], warmup: int, steps: int) -> tuple[float, list[float]]:
    """Seconds of the first call, then of each of ``steps`` calls after ``warmup`` more.

    ``call`` must block until its work is done (return host values).
    """
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    for _ in range(warmup):
        call()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return first, times


class MemoryProbe:
    """Peak memory: the GPU allocator's peak, or the process's peak RSS on CPU."""

    def __init__(self) -> None:
        self.gpu = gpu_available() and keras.backend.backend() == "tensorflow"
        self.kind = "GPU:0 peak allocated" if self.gpu else "process peak RSS (cumulative)"

    def reset(self) -> None:
        if self.gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_mb(self) -> float:
        if self.gpu:
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def _tensorflow() -> bool:
    return keras.backend.backend() == "tensorflow"


def _block(outputs: Any) -> None:
    """Wait for a model call by fetching one value of its first output."""
    first = keras.tree.flatten(outputs)[0]
    if _tensorflow():
        np.asarray(tf.reshape(first, [-1])[:1])
    else:
        keras.ops.convert_to_numpy(keras.ops.reshape(first, (-1,))[:1])


def _run_forward(forward: Callable[[Any], Any], batch: Any) -> None:
    """One forward pass of ``batch``, blocking until its outputs are on the host."""
    _block(forward(batch))


def _batch(data: Any, size: int) -> Any:
    if _tensorflow():
        return tf.nest.map_structure(lambda array: tf.constant(array[:size]), data)
    return keras.tree.map_structure(lambda array: array[:size], data)


def _error_text(error: BaseException) -> str:
    """The error's type and its first line, or its last one after TensorFlow's
    "in user code:" preamble (which holds the traceback)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    line = lines[-1] if lines[0].startswith("in user code") else lines[0]
    return f"{type(error).__name__}: {line[:_ERROR_CHARS]}"


def measure_training(
    model: keras.Model, entry: ModelEntry, inputs: Any, targets: Any, xla: bool, settings: Settings
) -> dict[str, float]:
    """``compile_s``, ``train_step_ms`` and ``train_img_s`` of a step of ``entry``'s recipe."""
    entry.recipe.compile(model, jit_compile=xla)
    first, times = time_calls(
        lambda: model.train_on_batch(inputs, targets), settings.warmup_steps, settings.timed_steps
    )
    step = statistics.fmean(times)
    return {
        "compile_s": max(first - step, 0.0),
        "train_step_ms": 1e3 * step,
        "train_img_s": settings.train_batch / step,
    }


def measure_inference(model: keras.Model, inputs: Any, xla: bool, settings: Settings) -> dict[str, float]:
    """Latency at the smallest batch size, images/s and compile time at the largest."""
    if _tensorflow():
        forward = tf.function(lambda x: model(x, training=False), jit_compile=xla)
    else:  # compiled as the training step was (jit on JAX)
        forward = model.predict_on_batch
    results = {}
    for batch_size in sorted({min(settings.batch_sizes), max(settings.batch_sizes)}):
        batch = _batch(inputs, batch_size)
        first, times = time_calls(partial(_run_forward, forward, batch), settings.warmup_steps, settings.timed_steps)
        results[batch_size] = (first, times)
    smallest, largest = min(results), max(results)
    first, times = results[largest]
    return {
        "latency_batch": smallest,
        "latency_ms": 1e3 * statistics.median(results[smallest][1]),
        "infer_batch": largest,
        "infer_img_s": largest / statistics.fmean(times),
        "infer_compile_s": max(first - statistics.fmean(times), 0.0),
    }


def _row(entry: ModelEntry, status: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS)
    row.update(
        model=entry.name,
        paper=entry.paper,
        family=entry.family,
        status=status,
        builder=entry.builder_name,
        backend=keras.backend.backend(),
        **values,
    )
    return row


def measure_setting(
    model: keras.Model, entry: ModelEntry, inputs: Any, targets: Any, xla: bool, settings: Settings, memory: MemoryProbe
) -> tuple[dict[str, Any], list[str]]:
    """Training and inference numbers of one XLA setting, with the peak memory, and
    the errors met (a failed phase leaves its columns empty)."""
    values: dict[str, Any] = {}
    errors = []
    memory.reset()
    phases = (
        lambda: measure_training(
            model, entry, _batch(inputs, settings.train_batch), _batch(targets, settings.train_batch), xla, settings
        ),
        lambda: measure_inference(model, inputs, xla, settings),
    )
    for phase in phases:
        try:
            values.update(phase())
        except Exception as error:  # noqa: BLE001 (recorded, the run goes on)
            errors.append(_error_text(error))
    values["peak_memory_mb"] = memory.peak_mb()
    return values, errors


def benchmark_model(
    entry: ModelEntry, settings: Settings, memory: MemoryProbe
) -> tuple[list[dict[str, Any]], Pipeline | None]:
    """One row per precision and XLA setting, and the paper's pipeline for the model's
    input (None when no model was built); errors are recorded in the rows, never raised."""
    rows, pipeline = [], None
    for precision in settings.precisions:
        with precision_policy(precision == "mixed"):
            try:
                model = build_model(entry, settings.size)
            except Exception as error:  # noqa: BLE001 (recorded, the run goes on)
                rows.append(_row(entry, BUILD_FAILED, precision=precision, error=_error_text(error)))
                continue
            pipeline = pipeline or pipeline_for(entry, model)
            rng = np.random.default_rng(settings.seed)
            inputs = random_inputs(model, settings.train_batch, rng)
            targets = entry.recipe.random_targets(model, settings.train_batch, rng)
            common = {
                "precision": precision,
                "params": model.count_params(),
                "train_batch": settings.train_batch,
                "input_shape": "x".join(str(d) for d in model.inputs[0].shape[1:]),
                "memory_kind": memory.kind,
            }
            for xla in settings.xla:
                values, errors = measure_setting(model, entry, inputs, targets, xla, settings, memory)
                status = OK if not errors else XLA_FAILED if xla else FAILED
                rows.append(_row(entry, status, xla=xla, error=" | ".join(errors) or None, **common, **values))
            del model
        keras.backend.clear_session()
        gc.collect()
    return rows, pipeline


# --------------------------------------------------------------------- pipelines


def write_pipeline_records(
    folder: Path, pipeline: Pipeline, count: int, size: tuple[int, int], seed: int = 0
) -> list[Record]:
    """``count`` smooth random JPEGs (quality 90) of ``size`` with the pipeline's masks
    (an ellipse: 0/255 for binary masks, a class from 1 for an index mask) and a label."""
    rng = np.random.default_rng(seed)
    height, width = size
    rows, cols = np.mgrid[:height, :width]
    records = []
    for index in range(count):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image_path = folder / f"image_{index:05d}.jpg"
        Image.fromarray(coarse).resize((width, height), Image.BILINEAR).save(image_path, quality=90)
        centre, radius = rng.uniform(0.3, 0.7, 2), rng.uniform(0.1, 0.3, 2)
        inside = ((rows / height - centre[0]) / radius[0]) ** 2 + ((cols / width - centre[1]) / radius[1]) ** 2 < 1
        mask_paths = {}
        for name in pipeline.masks:
            value = 1 + index % max(pipeline.classes - 1, 1) if pipeline.mask_mode == "index" else 255
            mask_paths[name] = folder / f"image_{index:05d}_{name}.png"
            Image.fromarray((inside * value).astype(np.uint8)).save(mask_paths[name])
        records.append(Record(image_path.stem, image_path, mask_paths, labels={"label": float(index % 2)}))
    return records


def pipeline_dataset(pipeline: Pipeline, records: Sequence[Record], batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """The paper's training pipeline, repeated, without cache (every image is decoded
    every time, as in a first epoch or a dataset larger than memory)."""
    common = {
        "batch_size": batch_size,
        "training": True,
        "augment": pipeline.augment,
        "seed": seed,
        "cache": False,
        "repeat": True,
    }
    if pipeline.masks:
        return segmentation_dataset(
            records, pipeline.spec, mask_names=pipeline.masks, mask_mode=pipeline.mask_mode, **common
        )
    expand = None if pipeline.expansion is None else pipeline.expansion.make(pipeline.spec.image_size)
    return classification_dataset(records, pipeline.spec, label_names=("label",), expand=expand, **common)


def pipeline_images_per_second(dataset: tf.data.Dataset, warmup_batches: int, timed_batches: int) -> float:
    """Images/s over ``timed_batches`` batches of a repeated dataset, after
    ``warmup_batches`` (tracing, thread pools and autotuning settle there)."""
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    start = time.perf_counter()
    images = sum(int(tf.nest.flatten(next(iterator))[0].shape[0]) for _ in range(timed_batches))
    return images / (time.perf_counter() - start)


def benchmark_pipeline(paper: str, pipeline: Pipeline, settings: Settings) -> dict[str, Any]:
    """Images/s of ``pipeline`` on ``settings.pipeline_images`` generated JPEGs: one pass
    over them as warm-up, two passes timed. Errors are recorded, not raised."""
    row = dict.fromkeys(PIPELINE_COLUMNS)
    row.update(
        paper=paper,
        description=pipeline.description,
        batch=settings.train_batch,
        image_size="x".join(map(str, pipeline.spec.image_size)),
        source_size="x".join(map(str, settings.source_size)),
    )
    images = settings.pipeline_images * pipeline.samples_per_image
    batches_per_pass = math.ceil(images / settings.train_batch)
    try:
        with tempfile.TemporaryDirectory(prefix="zoo_pipeline_") as folder:
            records = write_pipeline_records(
                Path(folder), pipeline, settings.pipeline_images, settings.source_size, settings.seed
            )
            dataset = pipeline_dataset(pipeline, records, settings.train_batch, settings.seed)
            rate = pipeline_images_per_second(dataset, batches_per_pass, 2 * batches_per_pass)
        row.update(images_per_pass=images, img_s=rate)
    except Exception as error:  # noqa: BLE001 (recorded, the run goes on)
        row["error"] = _error_text(error)
    return row


# ---------------------------------------------------------------------------- run


def run_benchmark(
    entries: Sequence[ModelEntry],
    settings: Settings,
    pipelines: bool = True,
    layer_cases: Sequence[LayerCase] = LAYER_CASES,
) -> dict[str, Any]:
    """Benchmarks ``entries`` and, if ``pipelines``, each of their papers' pipelines (for
    the input of the paper's first entry), and checks the custom layers of
    ``layer_cases`` under XLA (:func:`reproduce.bench_layers.check_layers`; empty: no
    check); returns the report."""
    memory = MemoryProbe()
    rows: list[dict[str, Any]] = []
    pipeline_rows: dict[str, dict[str, Any]] = {}
    progress = tqdm(entries, desc="models", unit="model", file=sys.stderr)
    for entry in progress:
        progress.set_postfix_str(entry.name)
        model_rows, pipeline = benchmark_model(entry, settings, memory)
        rows += model_rows
        if pipelines and pipeline is not None and entry.paper not in pipeline_rows:
            pipeline_rows[entry.paper] = benchmark_pipeline(entry.paper, pipeline, settings)
    layers = check_layers(layer_cases, settings.seed) if layer_cases else []
    summary = summarise(rows, pipeline_rows)
    environment = describe_runtime()
    for key in ("xla", "precision_policy"):  # varied by the benchmark, reported per row
        environment.pop(key)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": keras.backend.backend(),
        "environment": environment,
        "settings": {**dataclasses.asdict(settings), "precisions": [PRECISIONS[p] for p in settings.precisions]},
        "memory_kind": memory.kind,
        "rows": rows,
        "summary": summary,
        "targets": check_targets(summary, {entry.name: entry.family for entry in entries}),
        "attention_costs": attention_costs(rows, {entry.name: entry.baseline for entry in entries if entry.baseline}),
        "pipelines": list(pipeline_rows.values()),
        "layers": layers,
        "uncovered_layers": uncovered_layers(layer_cases) if layer_cases else [],
    }


def parse_settings(args: argparse.Namespace) -> Settings:
    preset = dict(SIZE_PRESETS[args.size])
    if args.batch_sizes:
        preset["batch_sizes"] = tuple(args.batch_sizes)
    for name in ("warmup_steps", "timed_steps", "pipeline_images"):
        if getattr(args, name) is not None:
            preset[name] = getattr(args, name)
    xla = BACKEND_XLA.get(keras.backend.backend(), XLA_CHOICES[args.xla])
    return Settings(size=args.size, xla=xla, precisions=resolve_precisions(args.precision, gpu_available()), **preset)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--size",
        choices=SIZES,
        default="paper",
        help="paper: the paper's models; small: the registry's small test configurations, batch 2, 3 timed steps",
    )
    parser.add_argument(
        "--models", nargs="+", metavar="NAME", help="registered model names, python -m zoo list (default: all)"
    )
    parser.add_argument("--papers", nargs="+", metavar="PAPER", help="only these papers' models")
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int,
        metavar="N",
        help="inference batch sizes; the largest is also the training batch (default: 1 32; small: 1 2)",
    )
    parser.add_argument("--xla", choices=tuple(XLA_CHOICES), default="both")
    parser.add_argument(
        "--precision",
        choices=("both", *PRECISIONS),
        default="both",
        help="both: float32 and mixed_float16 on a GPU, float32 only on a CPU",
    )
    parser.add_argument("--warmup-steps", type=int, help="untimed steps after the first (default 3; small: 1)")
    parser.add_argument("--timed-steps", type=int, help="timed steps (default 10; small: 3)")
    parser.add_argument("--pipeline-images", type=int, help="generated JPEGs per pipeline (default 64; small: 8)")
    parser.add_argument(
        "--no-layer-checks",
        dest="layer_checks",
        action="store_false",
        help="skip compiling every custom layer under XLA and mixed precision",
    )
    parser.add_argument(
        "--no-pipelines", dest="pipelines", action="store_false", help="skip the input pipeline measurements"
    )
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=BACKENDS,
        metavar="BACKEND",
        help="run once per Keras backend (tensorflow, jax, torch), each in a subprocess with "
        "KERAS_BACKEND set, into OUT/<backend>/, and write OUT/backends.md: training "
        "images/s per backend side by side (default: this process's backend only)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/benchmark"), help="output folder")
    return parser


# ---------------------------------------------------------------------- backends


def backend_installed(backend: str) -> bool:
    """Whether the backend's package can be imported."""
    return importlib.util.find_spec(backend) is not None


def child_arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` less ``--backend`` (and its values) and ``--out`` (and its value)."""
    kept: list[str] = []
    skipping = None
    for token in argv:
        if skipping == "--out":
            skipping = None
            continue
        if skipping == "--backend" and not token.startswith("-"):
            continue
        skipping = None
        if token in ("--backend", "--out"):
            skipping = token
        elif not token.startswith(("--backend=", "--out=")):
            kept.append(token)
    return kept


def run_backend(backend: str, argv: Sequence[str], out: Path) -> dict[str, Any]:
    """The benchmark on ``backend`` in a subprocess (``KERAS_BACKEND`` set, other arguments
    as given, results in ``out``): ``{"status", "report", "error"}``."""
    if not backend_installed(backend):
        return {"status": NOT_INSTALLED, "report": None, "error": f"python package {backend!r} not installed"}
    command = [sys.executable, "-m", "reproduce.benchmark", *child_arguments(argv), "--out", str(out)]
    environment = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
    }
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
    result_file = out / "benchmark.json"
    if done.returncode != 0 or not result_file.exists():
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()] or [""]
        return {
            "status": FAILED,
            "report": None,
            "error": f"exit status {done.returncode}: {lines[-1].strip()[:_ERROR_CHARS]}",
        }
    return {"status": OK, "report": json.loads(result_file.read_text(encoding="utf-8")), "error": None}


def run_backends(backends: Sequence[str], argv: Sequence[str], out: Path) -> dict[str, dict[str, Any]]:
    """One subprocess per backend (in the order given); returns their results by backend."""
    results = {}
    for backend in dict.fromkeys(backends):
        print(f"benchmark: {backend} ...", file=sys.stderr, flush=True)
        results[backend] = run_backend(backend, argv, out / backend)
    return results


def main(argv: Sequence[str] | None = None, entries: Sequence[ModelEntry] | None = None) -> dict[str, Any]:
    """Runs the command line; ``entries`` replace the registered models (tests, own models;
    not passed on to the subprocesses of ``--backend``). Returns the report, or with
    ``--backend`` the results per backend (:func:`run_backends`)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        entries = select_models(entries, args.models, args.papers)
        settings = parse_settings(args)
    except ValueError as error:
        parser.error(str(error))
    if args.backend:
        results = run_backends(args.backend, argv, args.out)
        written, markdown = write_backends_report(results, args.out)
        print(markdown)
        print("wrote " + ", ".join(str(path) for path in written))
        return results
    tensorflow = _tensorflow()
    layer_cases = LAYER_CASES if args.layer_checks and tensorflow else ()
    report = run_benchmark(entries, settings, pipelines=args.pipelines and tensorflow, layer_cases=layer_cases)
    written = write_report(report, args.out)
    print(render_markdown(report))
    print("wrote " + ", ".join(str(path) for path in written))
    return report


if __name__ == "__main__":
    main()
