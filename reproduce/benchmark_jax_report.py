"""What the JAX benchmark measures, the goals it checks, and its report (no JAX, no Keras here).

:mod:`reproduce.jax_benchmark` runs the workers (:mod:`reproduce.bench_jax` on JAX,
:mod:`reproduce.bench_timm` in PyTorch), which write one JSON record per result; this
module turns the records into ``<stem>.json`` and ``<stem>.md``:

* correctness per model (finite jit training step, mixed precision against float32 on
  the same weights) and SANet's segment ops on the device against the CPU;
* per model and precision: batch, training images/s and step time, inference images/s,
  compile time, FLOPs per step (XLA's cost analysis of the compiled step), utilisation
  (:func:`utilisation`: FLOP/s over the bfloat16 and over the float32 matmul rate
  measured in the same run), the step's device memory (XLA's memory analysis);
* the peers: keras.applications under JAX (:data:`KERAS_PEERS`), timm in PyTorch
  (:data:`TIMM_PEERS`);
* ratios and the goals (:func:`goals`; GPU goals, informational on a CPU):
  ``mixed_bfloat16`` >= :data:`~reproduce.benchmark_report.MIXED_TARGET` x float32
  images/s for the ResNet, VGG and EfficientNet families; attention model / baseline
  step time within :data:`~reproduce.benchmark_report.ATTENTION_GOALS`; our resnet50 >=
  :data:`KERAS_PEER_TARGET` x keras' ResNet50 (the same network); our resnet50 ahead of
  timm's (:data:`TIMM_PEER_TARGET`); no model failing to compile or running out of
  memory at its paper's batch;
* what the time did not reach, marked ``skipped (time)`` (never started) or ``stopped
  (time)`` (running when its worker was stopped at the deadline).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from data_tools.atomic import atomic_write_text
from reproduce.benchmark_report import ATTENTION_GOALS, MIXED_TARGET, MIXED_TARGET_FAMILIES, cell, markdown_table, ratio

PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16", "mixed_float16")
KERAS_PEERS: Mapping[str, tuple[str, str]] = {
    "keras_resnet50": ("ResNet50", "resnet50"),
    "keras_efficientnetb1": ("EfficientNetB1", "aernet"),
}
"""keras.applications peers under JAX: name -> (application, the registered model whose
input size and batch it runs at; AER-Net's encoder is keras' EfficientNetB1)."""
TIMM_PEERS: Mapping[str, tuple[str, str]] = {
    "timm_resnet50": ("resnet50", "resnet50"),
    "timm_efficientnet_b1": ("efficientnet_b1", "aernet"),
}
"""timm peers in PyTorch: name -> (timm model, the registered model whose input size and
batch it runs at)."""
TIMM_FAMILY_PEERS: Mapping[str, str] = {"resnet": "timm_resnet50", "efficientnet": "timm_efficientnet_b1"}
"""The timm model a user of a family would pick instead; every model of the family is
printed beside it (images/s, our ``mixed_bfloat16`` against timm's bf16 autocast)."""
KERAS_TIMM: Mapping[str, str] = {"keras_resnet50": "timm_resnet50", "keras_efficientnetb1": "timm_efficientnet_b1"}
"""keras.applications peers beside timm's same network (Keras on JAX against PyTorch)."""
PRIORITY: tuple[str, ...] = ("resnet50", "keras_resnet50", "arl_cnn50", "aernet", "keras_efficientnetb1", "vgg16")
"""Measured first: the models the goals read."""
KERAS_PEER_TARGET = 0.97
"""Our resnet50's training images/s over keras.applications.ResNet50's (same network)."""
TIMM_PEER_TARGET = 1.0
"""Our resnet50 (mixed_bfloat16) over timm's resnet50 (bf16 autocast): ahead."""
SKIPPED, STOPPED = "skipped (time)", "stopped (time)"


def speed_items(names: Sequence[str], precisions: Sequence[str]) -> list[tuple[str, str]]:
    """(model, precision) in the order measured: every model in float32 and
    ``mixed_bfloat16`` (the goals read them), :data:`PRIORITY` models first, then every
    model in the other precisions."""
    ordered = [name for name in PRIORITY if name in names] + [name for name in names if name not in PRIORITY]
    first = [precision for precision in ("float32", "mixed_bfloat16") if precision in precisions]
    later = [precision for precision in precisions if precision not in first]
    return [(name, precision) for group in (first, later) for name in ordered for precision in group]


def utilisation(flops: float | None, step_s: float | None, peak_flops_per_s: float | None) -> float | None:
    """Achieved FLOP/s over a peak rate: ``flops / step_s / peak``; None if any is unknown."""
    if not flops or not step_s or not peak_flops_per_s:
        return None
    return flops / step_s / peak_flops_per_s


# --------------------------------------------------------------------- records


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a worker's records file; a line cut short by a stopped worker is dropped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _key(record: Mapping[str, Any]) -> tuple:
    return record["phase"], record["model"], record.get("precision")


def assemble(
    records: Iterable[Mapping[str, Any]], timm: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The report: every planned item with its result, ``stopped (time)`` where it had
    started when the worker stopped, ``skipped (time)`` where it never started."""
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": dict(settings),
        "environment": {},
        "matmul_rates": {},
        "segment_ops": None,
        "correctness": {},
        "speed": [],
        "timm": dict(timm),
        "device_memory_peak_bytes": None,
        "phases": {},
    }
    planned: dict[tuple, dict[str, Any]] = {}
    for record in records:
        kind = record["kind"]
        fields = {key: value for key, value in record.items() if key != "kind"}
        if kind == "environment":
            report["environment"] = fields
        elif kind == "matmul_rates":
            report["matmul_rates"] = fields
        elif kind == "segment_ops":
            report["segment_ops"] = fields
        elif kind == "device_memory":
            report["device_memory_peak_bytes"] = fields["peak_bytes"]
        elif kind == "plan":
            report["phases"][fields["phase"]] = "started"
            for item in fields["items"]:
                planned.setdefault(_key(item), {**item, "status": SKIPPED})
        elif kind == "start":
            planned.setdefault(_key(fields), fields)["status"] = STOPPED
        elif kind == "result":
            planned[_key(fields)] = fields
        elif kind == "end":
            report["phases"][fields["phase"]] = "ended"
    for item in planned.values():
        if item["phase"] == "correctness":
            report["correctness"][item["model"]] = item
        else:
            report["speed"].append(item)
    rates = report["matmul_rates"]
    for row in report["speed"]:
        for dtype in ("bfloat16", "float32"):
            row[f"utilisation_{dtype}"] = utilisation(row.get("flops"), row.get("train_step_s"), rates.get(dtype))
    report["ratios"] = ratios(report)
    report["goals"] = goals(report)
    return report


# ------------------------------------------------------------- ratios and goals


def _speed(report: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(row["model"], row["precision"]): row for row in report["speed"] if row.get("status") == "ok"}


def ratios(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ratio the goals read, and the informational ones, with their goals:

    * ``bf16 / float32``: a model's ``mixed_bfloat16`` training images/s over float32's;
    * ``/ baseline``: an attention model's training step time over its baseline's;
    * ``/ keras``: our model's training images/s over its keras.applications peer's;
    * ``/ timm``: training images/s over the family's timm peer's (ours ``mixed_bfloat16``,
      timm's bf16 autocast), each at its own input size and batch.
    """
    speed, rows = _speed(report), []

    def add(
        kind: str,
        name: str,
        other: str,
        precision: str,
        value: float | None,
        goal: float | None = None,
        at_most: bool = False,
    ) -> None:
        if value is not None:
            rows.append(
                {
                    "ratio": kind,
                    "model": name,
                    "over": other,
                    "precision": precision,
                    "value": value,
                    "goal": goal,
                    "met": None if goal is None else (value <= goal if at_most else value >= goal),
                }
            )

    for (name, precision), row in speed.items():
        if precision == "mixed_bfloat16" and (name, "float32") in speed:
            goal = MIXED_TARGET if row.get("family") in MIXED_TARGET_FAMILIES else None
            add(
                "bf16 / float32 images/s",
                name,
                name,
                precision,
                ratio(row["train_img_s"], speed[name, "float32"]["train_img_s"]),
                goal,
            )
        baseline = speed.get((row.get("baseline"), precision))
        if baseline:
            add(
                "step time / baseline",
                name,
                row["baseline"],
                precision,
                ratio(row["train_step_s"], baseline["train_step_s"]),
                ATTENTION_GOALS.get(name),
                at_most=True,
            )
        for peer, (_, counterpart) in KERAS_PEERS.items():
            if name == counterpart and (peer, precision) in speed:
                goal = KERAS_PEER_TARGET if name == "resnet50" else None
                add(
                    "images/s / keras.applications",
                    name,
                    peer,
                    precision,
                    ratio(row["train_img_s"], speed[peer, precision]["train_img_s"]),
                    goal,
                )
        timm_name = KERAS_TIMM.get(name) or TIMM_FAMILY_PEERS.get(row.get("family"))
        timm = report["timm"].get(timm_name, {})
        if precision == "mixed_bfloat16" and timm.get("status") == "ok":
            goal = TIMM_PEER_TARGET if name == "resnet50" else None
            add(
                "images/s / timm (bf16)",
                name,
                timm_name,
                precision,
                ratio(row["train_img_s"], timm["train_img_s"]),
                goal,
            )
    return rows


def goals(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each ratio with a goal, and per model: no failure to compile, to fit at the paper's
    batch, or to be correct (a finite step, mixed precision within tolerance)."""
    rows = [
        {
            "goal": f"{row['model']} {row['ratio']} ({row['precision']}) "
            f"{'<=' if row['ratio'].startswith('step') else '>='} {row['goal']:g}",
            "value": row["value"],
            "met": row["met"],
        }
        for row in report["ratios"]
        if row["goal"] is not None
    ]
    for row in report["speed"]:
        status = str(row.get("status", ""))
        if status.startswith("failed"):
            rows.append(
                {
                    "goal": f"{row['model']} ({row['precision']}) compiles and fits at batch {row.get('batch', '—')}",
                    "value": status,
                    "met": False,
                }
            )
    for name, row in report["correctness"].items():
        if str(row.get("status", "")).startswith("failed"):
            rows.append({"goal": f"{name} correct", "value": row["status"], "met": False})
    segments = report.get("segment_ops")
    if segments is not None and not segments["equal"]:
        rows.append(
            {
                "goal": "SANet's segment ops equal on the device and the CPU",
                "value": max(segments["differences"].values()),
                "met": False,
            }
        )
    return rows


# ----------------------------------------------------------------------- markdown

SPEED_COLUMNS = (
    "model",
    "precision",
    "batch",
    "train img/s",
    "step ms",
    "infer img/s",
    "item s",
    "GFLOP/step",
    "util bf16",
    "util fp32",
    "step GB",
    "status",
)
CORRECTNESS_COLUMNS = ("model", "finite loss", "bf16 worst", "fp16 worst", "status")
TIMM_COLUMNS = ("peer", "mode", "batch", "size", "train img/s", "step ms", "infer img/s", "memory GB", "status")
RATIO_COLUMNS = ("ratio", "model", "over", "precision", "value", "goal", "met")


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def _gb(value: float | None) -> float | None:
    return None if value is None else value / 1e9


def _speed_line(row: Mapping[str, Any]) -> dict[str, Any]:
    batch = row.get("batch")
    if batch is not None and row.get("batch_source") not in (None, "fill estimate"):
        batch = f"{batch} ({row['batch_source']})"
    step = row.get("train_step_s")
    return {
        "model": row["model"],
        "precision": row["precision"],
        "batch": batch,
        "train img/s": row.get("train_img_s"),
        "step ms": None if step is None else 1e3 * step,
        "infer img/s": row.get("infer_img_s"),
        "item s": row.get("seconds"),
        "GFLOP/step": None if not row.get("flops") else row["flops"] / 1e9,
        "util bf16": _percent(row.get("utilisation_bfloat16")),
        "util fp32": _percent(row.get("utilisation_float32")),
        "step GB": _gb(row.get("memory_bytes")),
        "status": row.get("status"),
    }


def _correctness_line(name: str, row: Mapping[str, Any]) -> dict[str, Any]:
    def worst(precision: str) -> str | None:
        check = row.get(precision)
        return None if check is None else f"{check['worst']:.1e}" + ("" if check["within"] else " OFF")

    return {
        "model": name,
        "finite loss": _met(row.get("finite_loss")),
        "bf16 worst": worst("mixed_bfloat16"),
        "fp16 worst": worst("mixed_float16"),
        "status": row.get("status"),
    }


def _timm_line(name: str, row: Mapping[str, Any]) -> dict[str, Any]:
    step = row.get("train_step_s")
    return {
        "peer": name,
        "mode": row.get("mode"),
        "batch": row.get("batch"),
        "size": row.get("size"),
        "train img/s": row.get("train_img_s"),
        "step ms": None if step is None else 1e3 * step,
        "infer img/s": row.get("infer_img_s"),
        "memory GB": _gb(row.get("peak_memory_bytes")),
        "status": row.get("status"),
    }


def render_markdown(report: Mapping[str, Any], title: str) -> str:
    """The tables: correctness, speed, PyTorch peers, ratios, goals, what was not reached."""
    env, settings, rates = report["environment"], report["settings"], report["matmul_rates"]
    gpu = env.get("platform") == "gpu"
    lines = [
        f"# {title}",
        "",
        f"{report['date']}; device {env.get('device', 'unknown')}; JAX {env.get('jax')}, Keras {env.get('keras')} "
        f"({env.get('backend')}); TensorFlow loaded: {env.get('tensorflow_loaded')}. Settings: "
        + ", ".join(f"{key} {value}" for key, value in settings.items())
        + ".",
        "",
    ]
    if report.get("phases"):
        lines += ["Workers: " + "; ".join(f"{phase}: {how}" for phase, how in report["phases"].items()) + ".", ""]
    if not gpu:
        lines += ["**Not a GPU: these numbers check the path, not the speed; the goals are informational.**", ""]
    if rates:
        lines += [
            f"Matmul rates measured in this run ({rates['size']}x{rates['size']}): bf16 "
            f"{rates['bfloat16'] / 1e12:.2f} TFLOP/s, fp32 {rates['float32'] / 1e12:.2f} TFLOP/s (matmul precision: "
            f"{env.get('matmul_precision')}, None being JAX's default, as in the models). "
            "Device memory peak of the speed run: "
            f"{cell(_gb(report['device_memory_peak_bytes']), '.1f')} GB.",
            "",
        ]
    segments = report["segment_ops"]
    if segments is not None:
        lines += [
            f"SANet's segment ops (pooling, unpooling, pooling gradient) on {segments['device']} against the "
            f"CPU: largest relative difference {max(segments['differences'].values()):.1e} (tolerance "
            f"{segments['tolerance']:g}): {'equal' if segments['equal'] else 'NOT EQUAL'}.",
            "",
        ]
    if report["correctness"]:
        lines += [
            "## Correctness",
            "",
            "A jit training step with the paper's recipe in float32 (finite loss); "
            "inference under each mixed policy on the float32 weights, worst difference as a share of "
            "max(1, largest float32 output).",
            "",
            *markdown_table(
                CORRECTNESS_COLUMNS, [_correctness_line(name, row) for name, row in report["correctness"].items()], {}
            ),
            "",
        ]
    lines += [
        "## Speed",
        "",
        "Keras' jit training and inference steps, compiled ahead of time; FLOPs from XLA's "
        "cost analysis of the compiled training step; utilisation = FLOP/s over the bf16 / fp32 matmul rate "
        "above; step GB from XLA's memory analysis; item s: building, tracing, compiling and timing it.",
        "",
        *markdown_table(
            SPEED_COLUMNS,
            [_speed_line(row) for row in report["speed"]],
            {
                "train img/s": ".1f",
                "step ms": ".2f",
                "infer img/s": ".1f",
                "item s": ".1f",
                "GFLOP/step": ".2f",
                "step GB": ".2f",
            },
        ),
        "",
    ]
    if report["timm"]:
        lines += [
            "## PyTorch peers (timm)",
            "",
            "bf16 autocast, channels_last, SGD; `torch.compile` where it compiled in its time, else eager.",
            "",
            *markdown_table(
                TIMM_COLUMNS,
                [_timm_line(name, row) for name, row in report["timm"].items()],
                {"step ms": ".2f", "memory GB": ".2f"},
            ),
            "",
        ]
    lines += [
        "## Ratios",
        "",
        *markdown_table(
            RATIO_COLUMNS,
            [{**row, "met": _met(row["met"])} for row in report["ratios"]],
            {"value": ".3f", "goal": ".2f"},
        ),
        "",
        "## Goals" + ("" if gpu else " (informational: not a GPU)"),
        "",
    ]
    lines += [
        f"- {row['goal']}: {cell(row['value'], '.3f')}: {'met' if row['met'] else 'MISSED'}" for row in report["goals"]
    ] or ["- nothing measured for any goal"]
    missing = [
        f"{row['model']} ({row.get('precision') or 'correctness'}): {row['status']}"
        for row in [*report["correctness"].values(), *report["speed"]]
        if row.get("status") in (SKIPPED, STOPPED)
    ]
    if missing:
        lines += [
            "",
            "## Not measured (time)",
            "",
            f"{len(missing)} items: " + "; ".join(missing) + ". "
            "Run them in a later call with `--models` (and `--precisions`).",
        ]
    return "\n".join(lines) + "\n"


def _met(value: bool | None) -> str | None:
    return None if value is None else "yes" if value else "NO"


def write_report(report: Mapping[str, Any], out: Path, stem: str, title: str) -> tuple[Path, Path]:
    """``<stem>.json`` (everything) and ``<stem>.md``, each written whole."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = atomic_write_text(out / f"{stem}.json", json.dumps(report, indent=1, default=str))
    return json_path, atomic_write_text(out / f"{stem}.md", render_markdown(report, title))
