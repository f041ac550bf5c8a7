"""The benchmark's report: summary, targets, ``benchmark.{md,csv,json,png}``.

:mod:`reproduce.benchmark` measures; this module turns its rows into the files a
person reads: the per-setting measurements, the XLA and pipeline ratios per model,
what attention costs over each model's baseline, the issue's GPU targets met or
missed, and the custom-layer XLA checks of :mod:`reproduce.bench_layers`.
"""

from __future__ import annotations

import csv
import json
import math
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reproduce.report import json_safe

OK = "ok"
XLA_FAILED = "xla failed"
FAILED = "failed"
BUILD_FAILED = "build failed"
NOT_INSTALLED = "not installed"

BACKENDS: tuple[str, ...] = ("tensorflow", "jax", "torch")
"""The Keras backends ``--backend`` runs, each in its own process."""

COLUMNS: tuple[str, ...] = (
    "model",
    "paper",
    "family",
    "backend",
    "status",
    "precision",
    "xla",
    "input_shape",
    "params",
    "train_batch",
    "compile_s",
    "train_step_ms",
    "train_img_s",
    "latency_batch",
    "latency_ms",
    "infer_batch",
    "infer_img_s",
    "infer_compile_s",
    "peak_memory_mb",
    "memory_kind",
    "builder",
    "error",
)
"""Columns of ``benchmark.csv``: one line per model, precision and XLA setting."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "model",
    "paper",
    "precision",
    "train_img_s_xla_off",
    "train_img_s_xla_on",
    "train_xla_ratio",
    "infer_img_s_xla_off",
    "infer_img_s_xla_on",
    "infer_xla_ratio",
    "mixed_xla_speedup",
    "pipeline_img_s",
    "pipeline_model_ratio",
)
"""Per model and precision; ``mixed_xla_speedup`` (on the mixed row): training images/s
with mixed precision and XLA over float32 without XLA."""
PIPELINE_COLUMNS: tuple[str, ...] = (
    "paper",
    "image_size",
    "source_size",
    "images_per_pass",
    "batch",
    "img_s",
    "description",
    "error",
)
PIPELINE_TARGET = 2.0
"""The input pipeline must deliver at least this many times the model's training images/s."""
MIXED_TARGET = 1.5
"""Mixed precision + XLA must train at least this many times faster than float32 without XLA..."""
MIXED_TARGET_FAMILIES = ("resnet", "vgg", "efficientnet")
"""... for models of these families (``ModelEntry.family``)."""
TARGET_COLUMNS: tuple[str, ...] = ("target", "model", "precision", "value", "threshold", "met")
ATTENTION_COLUMNS: tuple[str, ...] = (
    "model",
    "baseline",
    "precision",
    "xla",
    "train_step_ms",
    "baseline_train_step_ms",
    "step_ratio",
    "goal",
    "met",
)
"""Per attention model with a baseline, precision and XLA setting: training step times
of both, measured in the same run, their ratio (what the attention costs) and, where
:data:`ATTENTION_GOALS` sets one, the goal and whether the ratio meets it."""
ATTENTION_GOALS: dict[str, float] = {"arl_cnn50": 1.05}
"""Largest training step time over the baseline's an attention model may have (ARL adds
no parameters: ARL-CNN50 at most 1.05x ResNet50, issue 23, tightened from issue 18's 1.10)."""


# ----------------------------------------------------------------------- summary


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _column_of(by_xla: Mapping[bool, Mapping[str, Any]], xla: bool, column: str) -> float | None:
    """``column`` of the row measured with XLA ``xla``, None where that row is missing."""
    row = by_xla.get(xla)
    return None if row is None else row[column]


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

    def train_speed(model: str, precision: str, xla: bool) -> float | None:
        row = grouped.get((model, precision), {}).get(xla)
        return None if row is None else row["train_img_s"]

    for (model, precision), by_xla in grouped.items():
        value = partial(_column_of, by_xla)

        fastest = max((r["train_img_s"] for r in by_xla.values() if r["train_img_s"] is not None), default=None)
        pipeline = pipelines.get(papers[model], {}).get("img_s")
        summary.append(
            {
                "model": model,
                "paper": papers[model],
                "precision": precision,
                "train_img_s_xla_off": value(False, "train_img_s"),
                "train_img_s_xla_on": value(True, "train_img_s"),
                "train_xla_ratio": ratio(value(True, "train_img_s"), value(False, "train_img_s")),
                "infer_img_s_xla_off": value(False, "infer_img_s"),
                "infer_img_s_xla_on": value(True, "infer_img_s"),
                "infer_xla_ratio": ratio(value(True, "infer_img_s"), value(False, "infer_img_s")),
                "mixed_xla_speedup": None
                if precision != "mixed"
                else ratio(train_speed(model, "mixed", True), train_speed(model, "float32", False)),
                "pipeline_img_s": pipeline,
                "pipeline_model_ratio": ratio(pipeline, fastest),
            }
        )
    return summary


def attention_costs(rows: Sequence[Mapping[str, Any]], baselines: Mapping[str, str]) -> list[dict[str, Any]]:
    """For every ``model -> baseline`` of ``baselines`` and every precision and XLA setting
    the model was measured in: both training step times and model / baseline (None
    where the baseline was not measured in that setting), with the model's goal from
    :data:`ATTENTION_GOALS` (None: no goal) and ``met`` (ratio <= goal)."""
    steps = {
        (row["model"], row["precision"], row["xla"]): row["train_step_ms"] for row in rows if row["xla"] is not None
    }
    costs = []
    for (model, precision, xla), step in steps.items():
        if model in baselines:
            baseline_step = steps.get((baselines[model], precision, xla))
            step_ratio = ratio(step, baseline_step)
            goal = ATTENTION_GOALS.get(model)
            costs.append(
                {
                    "model": model,
                    "baseline": baselines[model],
                    "precision": precision,
                    "xla": xla,
                    "train_step_ms": step,
                    "baseline_train_step_ms": baseline_step,
                    "step_ratio": step_ratio,
                    "goal": goal,
                    "met": None if goal is None or step_ratio is None else step_ratio <= goal,
                }
            )
    return costs


def check_targets(summary: Sequence[Mapping[str, Any]], families: Mapping[str, str]) -> list[dict[str, Any]]:
    """The speed targets, one row per model and measured quantity.

    * XLA never slower: ``train_xla_ratio`` and ``infer_xla_ratio`` >= 1;
    * mixed precision + XLA >= :data:`MIXED_TARGET` x float32 without XLA, for
      models whose ``families[model]`` is in :data:`MIXED_TARGET_FAMILIES`;
    * input pipeline >= :data:`PIPELINE_TARGET` x the model's training images/s.

    They are GPU targets: on a CPU the rows are informational. Quantities that
    were not measured (a setting not run, an XLA failure) give no row.
    """
    checks = []

    def check(target: str, row: Mapping[str, Any], column: str, threshold: float) -> None:
        if row[column] is not None:
            checks.append(
                {
                    "target": target,
                    "model": row["model"],
                    "precision": row["precision"],
                    "value": row[column],
                    "threshold": threshold,
                    "met": row[column] >= threshold,
                }
            )

    for row in summary:
        check("XLA not slower (training)", row, "train_xla_ratio", 1.0)
        check("XLA not slower (inference)", row, "infer_xla_ratio", 1.0)
        if families.get(row["model"]) in MIXED_TARGET_FAMILIES:
            check(f"mixed + XLA >= {MIXED_TARGET:g}x float32", row, "mixed_xla_speedup", MIXED_TARGET)
        check(f"pipeline >= {PIPELINE_TARGET:g}x model", row, "pipeline_model_ratio", PIPELINE_TARGET)
    return checks


# ----------------------------------------------------------------------- outputs


def cell(value: Any, number_format: str = ".1f") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return format(value, number_format) if math.isfinite(value) else "—"
    return str(value).replace("|", "\\|")


def markdown_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], formats: Mapping[str, str]) -> list[str]:
    """A markdown table; floats formatted by ``formats[column]`` (default ``.1f``)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c], formats.get(c, ".1f")) for c in columns) + " |" for row in rows]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """``benchmark.md``: environment, measurements, XLA and pipeline summaries, the
    targets met or missed, the custom layers' XLA checks, notes."""
    env, settings = report["environment"], report["settings"]
    devices = ", ".join(f"{d['name']} ({d.get('device_name', d['type'])})" for d in env["devices"])
    measured = [c for c in COLUMNS if c not in ("paper", "family", "builder", "error", "memory_kind")]
    lines = [
        "# Zoo benchmark",
        "",
        f"Date: {report['date']}. Device(s): {devices}. TensorFlow {env['tensorflow']}, "
        f"Keras {env['keras']}, Python {env['python']}, {env['platform']}.",
        "",
        f"Settings: size {settings['size']}, batch sizes {settings['batch_sizes']} (training at "
        f"{max(settings['batch_sizes'])}), precisions {settings['precisions']}, XLA {settings['xla']}, "
        f"{settings['warmup_steps']} warm-up and {settings['timed_steps']} timed steps. "
        f"Memory: {report['memory_kind']}.",
        "",
        "## Measurements",
        "",
        "compile_s: first step minus an ordinary step (tracing + compilation); latency at the "
        "smallest batch size (median), inference images/s at the largest.",
        "",
        *markdown_table(
            measured, report["rows"], {"compile_s": ".2f", "infer_compile_s": ".2f", "peak_memory_mb": ".0f"}
        ),
        "",
        "## XLA, mixed precision and input pipeline",
        "",
        "XLA ratio: images/s with XLA / without. mixed_xla_speedup: training images/s with mixed "
        "precision and XLA / float32 without XLA. pipeline / model: the paper's tf.data pipeline "
        "images/s over the model's fastest training images/s.",
        "",
        *markdown_table(
            SUMMARY_COLUMNS,
            report["summary"],
            {
                "train_xla_ratio": ".2f",
                "infer_xla_ratio": ".2f",
                "mixed_xla_speedup": ".2f",
                "pipeline_model_ratio": ".2f",
            },
        ),
        "",
        "## What attention costs",
        "",
        "Training step time of each attention model over its baseline's (`entry.baseline`), both "
        "measured in this run (— : the baseline was not among the models run); goal: the largest "
        "ratio allowed (`ATTENTION_GOALS`, — : none set).",
        "",
        *markdown_table(
            ATTENTION_COLUMNS,
            [_yes_no(row, "met") for row in report["attention_costs"]],
            {"train_step_ms": ".1f", "baseline_train_step_ms": ".1f", "step_ratio": ".2f", "goal": ".2f"},
        ),
        "",
        "## Input pipelines (generated JPEGs, no cache)",
        "",
        *markdown_table(PIPELINE_COLUMNS, report["pipelines"], {}),
        "",
        *_targets_section(report),
    ]
    if report.get("layers"):
        from reproduce.bench_layers import LAYER_COLUMNS  # TensorFlow's layer checks: this module stays TF-free

        lines += [
            "",
            "## Custom layers under XLA and mixed precision",
            "",
            "Each layer's forward pass and gradient compiled with `jit_compile=True` (a layer XLA "
            "cannot compile fails instead of running on the host) against eager float32 "
            "(`xla_error`, `gradient_error`), and its compiled forward pass under `mixed_float16` "
            "with the same weights (`mixed_error`); errors relative to the largest value.",
            "",
            *markdown_table(
                LAYER_COLUMNS,
                report["layers"],
                {"compile_s": ".2f", "xla_error": ".1e", "gradient_error": ".1e", "mixed_error": ".1e"},
            ),
        ]
    notes = [
        f"{row['model']} ({row['precision']}, XLA {cell(row['xla'])}): {row['status']}: {row['error']}"
        for row in report["rows"]
        if row["error"]
    ]
    notes += [
        f"{layer}: a custom layer with no XLA check (add a case to reproduce.bench_layers.LAYER_CASES)"
        for layer in report.get("uncovered_layers", ())
    ]
    if notes:
        lines += ["", "## Notes", "", *[f"- {cell(note)}" for note in notes]]
    return "\n".join(lines) + "\n"


def _yes_no(row: Mapping[str, Any], column: str) -> dict[str, Any]:
    value = row.get(column)
    return {**row, column: None if value is None else "yes" if value else "NO"}


def _targets_section(report: Mapping[str, Any]) -> list[str]:
    targets = report["targets"]
    gpu = any(device["type"] == "GPU" for device in report["environment"]["devices"])
    lines = ["## Targets", ""]
    for cost in report.get("attention_costs", ()):
        if cost["goal"] is not None:
            value = (
                "not measured"
                if cost["step_ratio"] is None
                else (f"{cost['step_ratio']:.2f}: {'met' if cost['met'] else 'MISSED'}")
            )
            lines.append(
                f"- {cost['model']} / {cost['baseline']} training step <= {cost['goal']:.2f} "
                f"({cost['precision']}, XLA {cell(cost['xla'])}): {value}"
            )
    if lines[-1]:
        lines.append("")
    lines += [
        "The other targets are for a GPU."
        if gpu
        else "The other targets are for a GPU; measured on a CPU they are informational only.",
        "",
    ]
    if not targets:
        return [*lines, "Nothing measured for any target."]
    for target in dict.fromkeys(row["target"] for row in targets):
        rows = [row for row in targets if row["target"] == target]
        missed = [f"{row['model']} ({row['precision']}) {row['value']:.2f}" for row in rows if not row["met"]]
        lines.append(
            f"- {target}: met by {len(rows) - len(missed)} of {len(rows)}"
            + (f"; missed: {', '.join(missed)}" if missed else "")
        )
    return lines


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
    labels = [
        row["model"] if row["precision"] == "float32" else f"{row['model']} ({row['precision']})" for row in measured
    ]
    positions = np.arange(len(measured))
    figure = Figure(figsize=(max(6.0, 0.6 * len(measured) + 2), 7), layout="constrained")
    FigureCanvasAgg(figure)
    speed, ratio_axis = figure.subplots(2, 1, sharex=True)
    for offset, (key, label) in zip(
        (-0.2, 0.2), (("train_img_s_xla_off", "XLA off"), ("train_img_s_xla_on", "XLA on")), strict=True
    ):
        speed.bar(positions + offset, [row[key] or 0.0 for row in measured], width=0.4, label=label)
    speed.set_yscale("log")
    speed.set_ylabel("training images/s")
    speed.legend()
    ratio_axis.bar(positions, [row["train_xla_ratio"] or 0.0 for row in measured], width=0.5, color="tab:green")
    ratio_axis.axhline(1.0, color="black", linewidth=0.8)
    ratio_axis.set_ylabel("XLA / no-XLA")
    ratio_axis.set_xticks(positions, labels, rotation=60, ha="right")
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


# ---------------------------------------------------------------------- backends


BACKEND_LABELS = {
    ("tensorflow", False): "tensorflow, XLA off",
    ("tensorflow", True): "tensorflow, XLA on",
    ("jax", True): "jax (jit)",
    ("torch", False): "torch (eager)",
}
"""The column of each backend and ``jit_compile`` setting the benchmark measures."""


def backend_table(results: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Training images/s per model (and precision), one column per backend and XLA
    setting: the number, the row's status where it failed, "not installed" or the
    backend's failure for a backend that did not run, "—" where not measured."""
    measured: list[str] = []
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for backend, result in results.items():
        for row in (result["report"] or {}).get("rows", ()):
            label = BACKEND_LABELS.get((backend, row["xla"]), f"{backend}, XLA {cell(row['xla'])}")
            measured.append(label)
            value = row["train_img_s"] if row["train_img_s"] is not None else row["status"]
            cells.setdefault((row["model"], row["precision"]), {})[label] = value
    known = [
        label
        for (backend, _), label in BACKEND_LABELS.items()
        if backend in results and (label in measured or results[backend]["report"] is None)
    ]
    columns = known + [label for label in dict.fromkeys(measured) if label not in known]
    table = []
    for (model, precision), values in cells.items():
        line = {"model": model, "precision": precision}
        for backend, result in results.items():
            for label in columns:
                if label.startswith(backend):
                    line[label] = values.get(label, result["status"] if result["report"] is None else None)
        table.append(line)
    if not table:  # no backend ran: one line saying why
        table.append(
            {
                "model": "—",
                "precision": "—",
                **{label: results[label.split(",")[0].split(" ")[0]]["status"] for label in columns},
            }
        )
    return ["model", "precision", *columns], table


def render_backends_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """``backends.md``: the training images/s table and, per backend, its run's settings or error."""
    columns, table = backend_table(results)
    lines = [
        "# Training images/s per Keras backend",
        "",
        "Each backend ran in its own process (`KERAS_BACKEND`), with the same models and settings; "
        "training images/s = batch / mean step time (`benchmark.md` of each backend's folder has "
        "the rest).",
        "",
        *markdown_table(columns, table, {}),
        "",
    ]
    for backend, result in results.items():
        report = result["report"]
        if report is None:
            lines.append(f"- {backend}: {result['status']} ({result['error']})")
            continue
        env, settings = report["environment"], report["settings"]
        devices = ", ".join(device["name"] for device in env["devices"])
        lines.append(
            f"- {backend}: {report['date']}, Keras {env['keras']}, {devices}; size {settings['size']}, "
            f"training batch {max(settings['batch_sizes'])}, {settings['timed_steps']} timed steps"
        )
    return "\n".join(lines) + "\n"


def write_backends_report(results: Mapping[str, Mapping[str, Any]], out_dir: Path) -> tuple[list[Path], str]:
    """Writes ``backends.md`` and ``backends.json`` (the table and each backend's status);
    returns the paths and the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns, table = backend_table(results)
    markdown = render_backends_markdown(results)
    written = [out_dir / "backends.md", out_dir / "backends.json"]
    written[0].write_text(markdown, encoding="utf-8")
    summary = {
        "columns": columns,
        "rows": table,
        "backends": {
            backend: {
                "status": result["status"],
                "error": result["error"],
                "folder": None if result["report"] is None else backend,
            }
            for backend, result in results.items()
        },
    }
    written[1].write_text(json.dumps(json_safe(summary), indent=2), encoding="utf-8")
    return written, markdown
