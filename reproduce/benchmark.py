"""Speed and memory of every model in the zoo, with and without XLA, and of its input pipeline.

    python reproduce/benchmark.py [--size small|paper] [--models NAME ...] [--papers PAPER ...]
                                  [--batch-sizes 1 32] [--xla both|on|off]
                                  [--precision float32|mixed|both] [--out results/benchmark]

For every model of :data:`reproduce.bench_models.ZOO_MODELS` (randomly initialised,
``weights=None``), every precision and every XLA setting:

* **training**: the paper's loss and optimiser (:class:`~reproduce.bench_models.TrainStep`)
  on random targets, ``model.compile(jit_compile=...)``, batch = the largest of
  ``--batch-sizes``. The first step (tracing and compilation) is timed apart and
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
``tf.numpy_function``) is recorded in the row (status ``xla failed``), not raised;
builders that do not exist yet are listed as ``not in the zoo yet``.

For every paper it also measures the training ``tf.data`` pipeline (decode,
paper preprocessing, augmentation, batching; no cache, so every image is decoded
as in a first epoch) on generated JPEGs of the size of real ISIC images, and
compares its images/s with the model's fastest training images/s ("pipeline /
model"; the target is >= 2, so that the accelerator never waits for data).

Writes ``benchmark.md``, ``benchmark.csv`` (one line per model, precision and XLA
setting), ``benchmark.json`` (everything, with the device, versions, settings and
date) and ``benchmark.png`` (training images/s per model with XLA off and on, and
the XLA / no-XLA ratio) into ``--out``. ``--size small`` runs the same
architectures at 64x64 with batch 2 and 3 timed steps: seconds per model on a CPU.
On CPU, XLA is known to be slower for some models (depthwise convolutions: an
EfficientNet U-Net step 8x slower, see :mod:`zoo.runtime`).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import gc
import json
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from tqdm import tqdm

from data_tools.patches import ARL_TRAIN_PATCHES
from data_tools.pipeline import classification_dataset, segmentation_dataset
from data_tools.records import Record
from reproduce.bench_models import PIPELINES, SIZES, ZOO_MODELS, BenchModel, PipelineRecipe, random_inputs, select_models
from reproduce.report import json_safe
from zoo.runtime import MIXED_POLICY, describe_runtime, gpu_available, precision_policy

PRECISIONS = {"float32": "float32", "mixed": MIXED_POLICY}
XLA_CHOICES = {"both": (False, True), "on": (True,), "off": (False,)}

OK = "ok"
MISSING = "not in the zoo yet"
XLA_FAILED = "xla failed"
FAILED = "failed"
BUILD_FAILED = "build failed"

COLUMNS: tuple[str, ...] = (
    "model", "paper", "status", "precision", "xla", "input_shape", "params",
    "train_batch", "compile_s", "train_step_ms", "train_img_s",
    "latency_batch", "latency_ms", "infer_batch", "infer_img_s", "infer_compile_s",
    "peak_memory_mb", "memory_kind", "builder", "error",
)
"""Columns of ``benchmark.csv``: one line per model, precision and XLA setting."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "model", "paper", "precision", "train_img_s_xla_off", "train_img_s_xla_on", "train_xla_ratio",
    "infer_img_s_xla_off", "infer_img_s_xla_on", "infer_xla_ratio", "pipeline_img_s", "pipeline_model_ratio",
)
PIPELINE_COLUMNS: tuple[str, ...] = (
    "paper", "image_size", "source_size", "images_per_pass", "batch", "img_s", "description", "error",
)
PIPELINE_TARGET = 2.0
_ERROR_CHARS = 400


@dataclasses.dataclass(frozen=True)
class Settings:
    """What to run and how long.

    Attributes:
        size: ``"paper"`` (the builders' defaults) or ``"small"`` (64x64).
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
    "small": {"batch_sizes": (1, 2), "warmup_steps": 1, "timed_steps": 3,
              "pipeline_images": 8, "source_size": (96, 128)},
    # ISIC images are mostly 767x1022 or larger.
    "paper": {"batch_sizes": (1, 32), "warmup_steps": 3, "timed_steps": 10,
              "pipeline_images": 64, "source_size": (767, 1022)},
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
        self.gpu = gpu_available()
        self.kind = "GPU:0 peak allocated" if self.gpu else "process peak RSS (cumulative)"

    def reset(self) -> None:
        if self.gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_mb(self) -> float:
        if self.gpu:
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def _block(outputs: Any) -> None:
    """Wait for a model call by fetching one value of its first output."""
    first = tf.nest.flatten(outputs)[0]
    np.asarray(tf.reshape(first, [-1])[:1])


def _batch(data: Any, size: int) -> Any:
    return tf.nest.map_structure(lambda array: tf.constant(array[:size]), data)


def _error_text(error: BaseException) -> str:
    """The error's type and its first line, or its last one after TensorFlow's
    "in user code:" preamble (which holds the traceback)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    line = lines[-1] if lines[0].startswith("in user code") else lines[0]
    return f"{type(error).__name__}: {line[:_ERROR_CHARS]}"


def measure_training(model: keras.Model, entry: BenchModel, inputs: Any, targets: Any, xla: bool,
                     settings: Settings) -> dict[str, float]:
    """``compile_s``, ``train_step_ms`` and ``train_img_s`` of ``entry``'s training step."""
    entry.train_step.compile(model, jit_compile=xla)
    first, times = time_calls(lambda: model.train_on_batch(inputs, targets),
                              settings.warmup_steps, settings.timed_steps)
    step = statistics.fmean(times)
    return {"compile_s": max(first - step, 0.0), "train_step_ms": 1e3 * step,
            "train_img_s": settings.train_batch / step}


def measure_inference(model: keras.Model, inputs: Any, xla: bool, settings: Settings) -> dict[str, float]:
    """Latency at the smallest batch size, images/s and compile time at the largest."""
    forward = tf.function(lambda x: model(x, training=False), jit_compile=xla)
    results = {}
    for batch_size in sorted({min(settings.batch_sizes), max(settings.batch_sizes)}):
        batch = _batch(inputs, batch_size)
        first, times = time_calls(lambda: _block(forward(batch)), settings.warmup_steps, settings.timed_steps)
        results[batch_size] = (first, times)
    smallest, largest = min(results), max(results)
    first, times = results[largest]
    return {"latency_batch": smallest, "latency_ms": 1e3 * statistics.median(results[smallest][1]),
            "infer_batch": largest, "infer_img_s": largest / statistics.fmean(times),
            "infer_compile_s": max(first - statistics.fmean(times), 0.0)}


def _row(entry: BenchModel, status: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS)
    row.update(model=entry.name, paper=entry.paper, status=status, builder=entry.builder_name, **values)
    return row


def measure_setting(model: keras.Model, entry: BenchModel, inputs: Any, targets: Any, xla: bool,
                    settings: Settings, memory: MemoryProbe) -> tuple[dict[str, Any], list[str]]:
    """Training and inference numbers of one XLA setting, with the peak memory, and
    the errors met (a failed phase leaves its columns empty)."""
    values: dict[str, Any] = {}
    errors = []
    memory.reset()
    phases = (
        lambda: measure_training(model, entry, _batch(inputs, settings.train_batch),
                                 _batch(targets, settings.train_batch), xla, settings),
        lambda: measure_inference(model, inputs, xla, settings),
    )
    for phase in phases:
        try:
            values.update(phase())
        except Exception as error:  # noqa: BLE001 (recorded, the run goes on)
            errors.append(_error_text(error))
    values["peak_memory_mb"] = memory.peak_mb()
    return values, errors


def benchmark_model(entry: BenchModel, settings: Settings, memory: MemoryProbe) -> list[dict[str, Any]]:
    """One row per precision and XLA setting (one ``not in the zoo yet`` row if the
    builder is missing); errors are recorded in the rows, never raised."""
    if entry.resolve() is None:
        return [_row(entry, MISSING)]
    rows = []
    for precision in settings.precisions:
        with precision_policy(precision == "mixed"):
            try:
                model = entry.build(settings.size)
            except Exception as error:  # noqa: BLE001 (recorded, the run goes on)
                rows.append(_row(entry, BUILD_FAILED, precision=precision, error=_error_text(error)))
                continue
            rng = np.random.default_rng(settings.seed)
            inputs = random_inputs(model, settings.train_batch, rng)
            targets = entry.train_step.make_targets(model, settings.train_batch, rng)
            common = {"precision": precision, "params": model.count_params(), "train_batch": settings.train_batch,
                      "input_shape": "x".join(str(d) for d in model.inputs[0].shape[1:]),
                      "memory_kind": memory.kind}
            for xla in settings.xla:
                values, errors = measure_setting(model, entry, inputs, targets, xla, settings, memory)
                status = OK if not errors else XLA_FAILED if xla else FAILED
                rows.append(_row(entry, status, xla=xla, error=" | ".join(errors) or None, **common, **values))
            del model
        keras.backend.clear_session()
        gc.collect()
    return rows


# --------------------------------------------------------------------- pipelines


def write_pipeline_records(folder: Path, recipe: PipelineRecipe, count: int, size: tuple[int, int],
                           seed: int = 0) -> list[Record]:
    """``count`` smooth random JPEGs (quality 90) of ``size`` with the recipe's masks
    (an ellipse: 0/255 for binary masks, class 1-2 for an index mask) and a label."""
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
        for name in recipe.masks:
            value = 1 + index % 2 if recipe.mask_mode == "index" else 255
            mask_paths[name] = folder / f"image_{index:05d}_{name}.png"
            Image.fromarray((inside * value).astype(np.uint8)).save(mask_paths[name])
        records.append(Record(image_path.stem, image_path, mask_paths, labels={"label": float(index % 2)}))
    return records


def pipeline_dataset(recipe: PipelineRecipe, records: Sequence[Record], image_size: tuple[int, int],
                     batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """The paper's training pipeline, repeated, without cache (every image is decoded
    every time, as in a first epoch or a dataset larger than memory)."""
    common = {"batch_size": batch_size, "training": True, "augment": recipe.augment, "seed": seed,
              "cache": False, "repeat": True}
    spec = recipe.spec(image_size)
    if recipe.masks:
        return segmentation_dataset(records, spec, mask_names=recipe.masks, mask_mode=recipe.mask_mode, **common)
    return classification_dataset(records, spec, label_names=("label",), patches=recipe.patches, **common)


def pipeline_images_per_second(dataset: tf.data.Dataset, warmup_batches: int, timed_batches: int) -> float:
    """Images/s over ``timed_batches`` batches of a repeated dataset, after
    ``warmup_batches`` (tracing, thread pools and autotuning settle there)."""
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    start = time.perf_counter()
    images = sum(int(tf.nest.flatten(next(iterator))[0].shape[0]) for _ in range(timed_batches))
    return images / (time.perf_counter() - start)


def benchmark_pipeline(paper: str, recipe: PipelineRecipe, image_size: tuple[int, int],
                       settings: Settings) -> dict[str, Any]:
    """Images/s of ``recipe`` on ``settings.pipeline_images`` generated JPEGs: one pass
    over them as warm-up, two passes timed. Errors are recorded, not raised."""
    row = dict.fromkeys(PIPELINE_COLUMNS)
    row.update(paper=paper, description=recipe.description, batch=settings.train_batch,
               image_size="x".join(map(str, image_size)), source_size="x".join(map(str, settings.source_size)))
    images = settings.pipeline_images * (ARL_TRAIN_PATCHES if recipe.patches == "arl" else 1)
    batches_per_pass = math.ceil(images / settings.train_batch)
    try:
        with tempfile.TemporaryDirectory(prefix="zoo_pipeline_") as folder:
            records = write_pipeline_records(Path(folder), recipe, settings.pipeline_images,
                                             settings.source_size, settings.seed)
            dataset = pipeline_dataset(recipe, records, image_size, settings.train_batch, settings.seed)
            rate = pipeline_images_per_second(dataset, batches_per_pass, 2 * batches_per_pass)
        row.update(images_per_pass=images, img_s=rate)
    except Exception as error:  # noqa: BLE001 (recorded, the run goes on)
        row["error"] = _error_text(error)
    return row


# ----------------------------------------------------------------------- summary


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def summarise(rows: Sequence[Mapping[str, Any]], pipelines: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per model and precision: images/s with XLA off and on, their ratios, and the
    pipeline's images/s over the model's fastest training images/s."""
    grouped: dict[tuple[str, str], dict[bool, Mapping[str, Any]]] = {}
    papers = {}
    for row in rows:
        if row["xla"] is not None:
            grouped.setdefault((row["model"], row["precision"]), {})[row["xla"]] = row
            papers[row["model"]] = row["paper"]
    summary = []
    for (model, precision), by_xla in grouped.items():
        def value(xla: bool, column: str) -> float | None:
            row = by_xla.get(xla)
            return None if row is None else row[column]

        fastest = max((r["train_img_s"] for r in by_xla.values() if r["train_img_s"] is not None), default=None)
        pipeline = pipelines.get(papers[model], {}).get("img_s")
        summary.append({
            "model": model, "paper": papers[model], "precision": precision,
            "train_img_s_xla_off": value(False, "train_img_s"), "train_img_s_xla_on": value(True, "train_img_s"),
            "train_xla_ratio": _ratio(value(True, "train_img_s"), value(False, "train_img_s")),
            "infer_img_s_xla_off": value(False, "infer_img_s"), "infer_img_s_xla_on": value(True, "infer_img_s"),
            "infer_xla_ratio": _ratio(value(True, "infer_img_s"), value(False, "infer_img_s")),
            "pipeline_img_s": pipeline, "pipeline_model_ratio": _ratio(pipeline, fastest),
        })
    return summary


# ----------------------------------------------------------------------- outputs


def _cell(value: Any, decimals: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.{decimals}f}" if math.isfinite(value) else "—"
    return str(value).replace("|", "\\|")


def _markdown_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], decimals: Mapping[str, int]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c], decimals.get(c, 1)) for c in columns) + " |" for row in rows]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """``benchmark.md``: environment, measurements, XLA and pipeline summaries, notes."""
    env, settings = report["environment"], report["settings"]
    devices = ", ".join(f"{d['name']} ({d.get('device_name', d['type'])})" for d in env["devices"])
    measured = [c for c in COLUMNS if c not in ("paper", "builder", "error", "memory_kind")]
    lines = [
        "# Zoo benchmark", "",
        f"Date: {report['date']}. Device(s): {devices}. TensorFlow {env['tensorflow']}, "
        f"Keras {env['keras']}, Python {env['python']}, {env['platform']}.", "",
        f"Settings: size {settings['size']}, batch sizes {settings['batch_sizes']} (training at "
        f"{max(settings['batch_sizes'])}), precisions {settings['precisions']}, XLA {settings['xla']}, "
        f"{settings['warmup_steps']} warm-up and {settings['timed_steps']} timed steps. "
        f"Memory: {report['memory_kind']}.", "",
        "## Measurements", "",
        "compile_s: first step minus an ordinary step (tracing + compilation); latency at the "
        "smallest batch size (median), inference images/s at the largest.", "",
        *_markdown_table(measured, report["rows"], {"compile_s": 2, "infer_compile_s": 2, "peak_memory_mb": 0}),
        "", "## XLA and input pipeline", "",
        f"XLA ratio: images/s with XLA / without. pipeline / model: the paper's tf.data pipeline "
        f"images/s over the model's fastest training images/s (target >= {PIPELINE_TARGET:g}).", "",
        *_markdown_table(SUMMARY_COLUMNS, report["summary"],
                         {"train_xla_ratio": 2, "infer_xla_ratio": 2, "pipeline_model_ratio": 2}),
        "", "## Input pipelines (generated JPEGs, no cache)", "",
        *_markdown_table(PIPELINE_COLUMNS, report["pipelines"], {}),
    ]
    notes = [f"{row['model']} ({row['precision']}, XLA {_cell(row['xla'])}): {row['status']}: {row['error']}"
             for row in report["rows"] if row["error"]]
    notes += [f"{row['model']}: {row['status']} ({row['builder']})" for row in report["rows"]
              if row["status"] == MISSING]
    notes += [f"pipeline/model below {PIPELINE_TARGET:g}x: {row['model']} ({row['precision']}): "
              f"{row['pipeline_model_ratio']:.2f}" for row in report["summary"]
              if row["pipeline_model_ratio"] is not None and row["pipeline_model_ratio"] < PIPELINE_TARGET]
    if notes:
        lines += ["", "## Notes", "", *[f"- {_cell(note)}" for note in notes]]
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """``benchmark.csv``: :data:`COLUMNS`, unrounded, empty where not measured."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)


def plot_throughput(summary: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """Bar chart: training images/s with XLA off and on (log scale), and their ratio.

    Returns False and writes nothing when no model was measured.
    """
    measured = [row for row in summary if row["train_img_s_xla_off"] or row["train_img_s_xla_on"]]
    if not measured:
        return False
    labels = [row["model"] if row["precision"] == "float32" else f"{row['model']} ({row['precision']})"
              for row in measured]
    positions = np.arange(len(measured))
    figure = Figure(figsize=(max(6.0, 0.6 * len(measured) + 2), 7), layout="constrained")
    FigureCanvasAgg(figure)
    speed, ratio = figure.subplots(2, 1, sharex=True)
    for offset, (key, label) in zip((-0.2, 0.2), (("train_img_s_xla_off", "XLA off"), ("train_img_s_xla_on", "XLA on"))):
        speed.bar(positions + offset, [row[key] or 0.0 for row in measured], width=0.4, label=label)
    speed.set_yscale("log")
    speed.set_ylabel("training images/s")
    speed.legend()
    ratio.bar(positions, [row["train_xla_ratio"] or 0.0 for row in measured], width=0.5, color="tab:green")
    ratio.axhline(1.0, color="black", linewidth=0.8)
    ratio.set_ylabel("XLA / no-XLA")
    ratio.set_xticks(positions, labels, rotation=60, ha="right")
    figure.suptitle("Training throughput per model")
    figure.savefig(path, dpi=80)
    return True


def write_report(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Writes ``benchmark.{md,csv,json}`` and, when anything was measured, ``benchmark.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "benchmark.md", out_dir / "benchmark.csv", out_dir / "benchmark.json"]
    written[0].write_text(render_markdown(report), encoding="utf-8")
    write_csv(report["rows"], written[1])
    written[2].write_text(json.dumps(json_safe(report), indent=2), encoding="utf-8")
    if plot_throughput(report["summary"], out_dir / "benchmark.png"):
        written.append(out_dir / "benchmark.png")
    return written


# ---------------------------------------------------------------------------- run


def run_benchmark(entries: Sequence[BenchModel], settings: Settings,
                  pipelines: Mapping[str, PipelineRecipe] = PIPELINES) -> dict[str, Any]:
    """Benchmarks ``entries`` and each of their papers' pipelines; returns the report."""
    memory = MemoryProbe()
    rows: list[dict[str, Any]] = []
    pipeline_rows: dict[str, dict[str, Any]] = {}
    progress = tqdm(entries, desc="models", unit="model", file=sys.stderr)
    for entry in progress:
        progress.set_postfix_str(entry.name)
        model_rows = benchmark_model(entry, settings, memory)
        rows += model_rows
        shape = next((row["input_shape"] for row in model_rows if row["input_shape"]), None)
        if shape and entry.paper in pipelines and entry.paper not in pipeline_rows:
            image_size = tuple(int(side) for side in shape.split("x")[:2])
            pipeline_rows[entry.paper] = benchmark_pipeline(entry.paper, pipelines[entry.paper], image_size, settings)
    environment = describe_runtime()
    for key in ("xla", "precision_policy"):  # varied by the benchmark, reported per row
        environment.pop(key)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment,
        "settings": {**dataclasses.asdict(settings), "precisions": [PRECISIONS[p] for p in settings.precisions]},
        "memory_kind": memory.kind,
        "rows": rows,
        "summary": summarise(rows, pipeline_rows),
        "pipelines": list(pipeline_rows.values()),
    }


def parse_settings(args: argparse.Namespace) -> Settings:
    preset = dict(SIZE_PRESETS[args.size])
    if args.batch_sizes:
        preset["batch_sizes"] = tuple(args.batch_sizes)
    for name in ("warmup_steps", "timed_steps", "pipeline_images"):
        if getattr(args, name) is not None:
            preset[name] = getattr(args, name)
    return Settings(size=args.size, xla=XLA_CHOICES[args.xla],
                    precisions=resolve_precisions(args.precision, gpu_available()), **preset)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, default="paper",
                        help="paper: the builders' (paper) input sizes; small: 64x64, batch 2, 3 timed steps")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="model names (default: all)")
    parser.add_argument("--papers", nargs="+", metavar="PAPER", help="only these papers' models")
    parser.add_argument("--batch-sizes", nargs="+", type=int, metavar="N",
                        help="inference batch sizes; the largest is also the training batch "
                             "(default: 1 32; small: 1 2)")
    parser.add_argument("--xla", choices=tuple(XLA_CHOICES), default="both")
    parser.add_argument("--precision", choices=("both", *PRECISIONS), default="both",
                        help="both: float32 and mixed_float16 on a GPU, float32 only on a CPU")
    parser.add_argument("--warmup-steps", type=int, help="untimed steps after the first (default 3; small: 1)")
    parser.add_argument("--timed-steps", type=int, help="timed steps (default 10; small: 3)")
    parser.add_argument("--pipeline-images", type=int, help="generated JPEGs per pipeline (default 64; small: 8)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmark"), help="output folder")
    return parser


def main(argv: Sequence[str] | None = None, table: Sequence[BenchModel] = ZOO_MODELS) -> dict[str, Any]:
    """Runs the command line; ``table`` replaces the zoo's models (tests, own models)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        entries = select_models(table, args.models, args.papers)
        settings = parse_settings(args)
    except ValueError as error:
        parser.error(str(error))
    report = run_benchmark(entries, settings)
    written = write_report(report, args.out)
    print(render_markdown(report))
    print("wrote " + ", ".join(str(path) for path in written))
    return report


if __name__ == "__main__":
    main()
