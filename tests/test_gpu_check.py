"""Issue 23: the JAX benchmark and the one prepared device check, on this CPU, without TensorFlow.

``reproduce/gpu_check.py --cpu-smoke`` runs end to end with ``import tensorflow`` failing
in the parent and in every worker (a ``sitecustomize`` on ``PYTHONPATH`` installs the
finder of tests/_no_tensorflow_worker.py), as on the lent GPU machines; the arithmetic,
the tolerance check, the goals and the time guard are checked against hand-made cases.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from reproduce import bench_jax, gpu_check
from reproduce.bench_process import run_child
from reproduce.benchmark_jax_report import (
    SKIPPED,
    STOPPED,
    assemble,
    goals,
    ratios,
    read_records,
    render_markdown,
    speed_items,
    utilisation,
)

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = """import sys
sys.path.insert(0, {root!r})
from tests._no_tensorflow_worker import _NoTensorFlow
sys.meta_path.insert(0, _NoTensorFlow())
"""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One CPU smoke run (about 3 minutes on 2 busy cores): its json and markdown."""
    blocker = tmp_path_factory.mktemp("no_tensorflow")
    (blocker / "sitecustomize.py").write_text(BLOCKER.format(root=str(ROOT)))
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "PYTHONPATH": str(blocker), "OUT": str(out)}
    env.pop("KERAS_BACKEND", None)
    completed = subprocess.run(
        [sys.executable, str(ROOT / "reproduce" / "gpu_check.py"), "--cpu-smoke"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_cpu_smoke_runs_the_whole_path_without_tensorflow(smoke):
    report, markdown = smoke
    environment = report["environment"]
    assert environment["tensorflow_loaded"] is False and environment["backend"] == "jax"
    assert report["phases"] == {"correctness": "ended; worker ended", "speed": "ended; worker ended"}
    assert report["segment_ops"]["equal"]
    for name in gpu_check.SMOKE_MODELS:
        check = report["correctness"][name]
        assert check["status"] == "ok" and check["finite_loss"] and check["mixed_bfloat16"]["within"], check
    rows = {(row["model"], row["precision"]): row for row in report["speed"]}
    assert sorted(rows) == sorted(
        (name, precision) for name in gpu_check.SMOKE_MODELS for precision in ("float32", "mixed_bfloat16")
    )
    for row in rows.values():
        assert row["status"] == "ok" and row["finite_loss"] and row["batch"] == 2, row
        assert row["flops"] > 0 and row["memory_bytes"] > 0 and row["train_img_s"] > 0 and row["infer_img_s"] > 0
        assert row["utilisation_bfloat16"] == pytest.approx(
            row["flops"] / row["train_step_s"] / report["matmul_rates"]["bfloat16"]
        )
    measured = {(row["ratio"], row["model"], row["precision"]) for row in report["ratios"]}
    assert {
        ("step time / baseline", "arl_cnn14", "float32"),
        ("bf16 / float32 images/s", "resnet14", "mixed_bfloat16"),
    } <= measured
    assert "(CPU smoke run)" in markdown and "## Goals (informational: not a GPU)" in markdown
    assert "| arl_cnn14 | mixed_bfloat16 | 2 (--batch-sizes) |" in markdown


def test_utilisation_is_achieved_flops_over_the_measured_peak():
    assert utilisation(2e12, 0.5, 8e12) == pytest.approx(0.5)  # 4 TFLOP/s of 8
    assert utilisation(None, 0.5, 8e12) is None and utilisation(2e12, 0.5, None) is None
    records = [
        {"kind": "matmul_rates", "size": 8, "bfloat16": 1e12, "float32": 2.5e11},
        {
            "kind": "result",
            "phase": "speed",
            "model": "m",
            "precision": "float32",
            "status": "ok",
            "flops": 3e10,
            "train_step_s": 0.2,
        },
    ]
    row = assemble(records, {}, {})["speed"][0]
    assert (row["utilisation_bfloat16"], row["utilisation_float32"]) == pytest.approx((0.15, 0.6))  # 150 GFLOP/s


def test_the_tolerance_check_catches_an_injected_mismatch():
    reference = [np.array([1.0, 2.0, 4.0])]
    assert bench_jax.mixed_within_tolerance(reference, [np.array([1.0, 2.0, 4.1])]) == (True, pytest.approx(0.025))
    within, worst = bench_jax.mixed_within_tolerance(reference, [np.array([1.0, 2.0, 4.3])])  # 0.3 / 4
    assert not within and worst == pytest.approx(0.075)
    assert bench_jax.mixed_within_tolerance(reference, [np.array([1.0, np.nan, 4.0])]) == (False, np.inf)
    small = [np.array([0.2, 0.4])]  # outputs below 1: the bound is absolute, 0.05
    assert not bench_jax.mixed_within_tolerance(small, [np.array([0.2, 0.46])])[0]


def _speed(model, precision, step_s, batch=32, **fields):
    return {
        "phase": "speed",
        "model": model,
        "precision": precision,
        "status": "ok",
        "batch": batch,
        "train_step_s": step_s,
        "train_img_s": batch / step_s,
        **fields,
    }


def test_goals_read_the_ratios_of_the_same_run():
    report = {
        "speed": [
            _speed("resnet50", "float32", 1.0, family="resnet"),
            _speed("resnet50", "mixed_bfloat16", 0.5, family="resnet"),
            _speed("keras_resnet50", "mixed_bfloat16", 0.49),
            _speed("arl_cnn50", "mixed_bfloat16", 0.55, family="resnet", baseline="resnet50"),
            {
                "phase": "speed",
                "model": "pspnet",
                "precision": "float32",
                "batch": 8,
                "status": "failed: XlaRuntimeError: RESOURCE_EXHAUSTED",
            },
            {"phase": "speed", "model": "danet", "precision": "float32", "status": SKIPPED},
        ],
        "timm": {"timm_resnet50": {"status": "ok", "train_img_s": 40.0}},
        "correctness": {},
        "segment_ops": None,
    }
    report["ratios"] = ratios(report)
    found = {row["goal"]: (row["value"], row["met"]) for row in goals(report)}
    assert found["resnet50 bf16 / float32 images/s (mixed_bfloat16) >= 1.5"] == (pytest.approx(2.0), True)
    assert found["resnet50 images/s / keras.applications (mixed_bfloat16) >= 0.97"] == (pytest.approx(0.98), True)
    assert found["arl_cnn50 step time / baseline (mixed_bfloat16) <= 1.05"] == (pytest.approx(1.1), False)
    assert found["resnet50 images/s / timm (bf16) (mixed_bfloat16) >= 1"] == (pytest.approx(64 / 40), True)
    assert found["pspnet (float32) compiles and fits at batch 8"][1] is False
    assert not any("danet" in goal for goal in found)  # not measured is not a failure


def test_the_time_guard_marks_what_it_did_not_start_and_the_report_what_was_stopped(tmp_path):
    records = bench_jax.Records(tmp_path / "records.jsonl")
    items = [{"phase": "speed", "model": name, "precision": "float32", "peer": False} for name in ("a", "b")]
    made = []
    bench_jax.run_jobs(items, made.append, records, bench_jax.Guard(time.time() - 1, 0.0), workers=1)
    assert made == []  # nothing started after the deadline
    with open(tmp_path / "records.jsonl", "a") as stream:  # a worker stopped while measuring c
        stream.write(
            json.dumps(
                {
                    "kind": "plan",
                    "phase": "correctness",
                    "items": [{"phase": "correctness", "model": "c"}, {"phase": "correctness", "model": "d"}],
                }
            )
            + "\n"
        )
        stream.write(json.dumps({"kind": "start", "phase": "correctness", "model": "c"}) + "\n")
        stream.write('{"kind": "result", "phase": "correc')  # cut short by the kill
    report = assemble(read_records(tmp_path / "records.jsonl"), {}, {})
    assert [row["status"] for row in report["speed"]] == [SKIPPED, SKIPPED]
    assert {name: row["status"] for name, row in report["correctness"].items()} == {"c": STOPPED, "d": SKIPPED}
    assert "4 items: c (correctness): stopped (time)" in render_markdown(report, "t")


def test_a_worker_past_its_limit_is_stopped():
    start = time.monotonic()
    status, _ = run_child([sys.executable, "-c", "import time; time.sleep(60)"], 1.0)
    assert status is None and time.monotonic() - start < 30


def test_speed_items_measure_the_goals_first_and_float16_last():
    items = speed_items(["unet", "resnet50", "keras_resnet50"], ["float32", "mixed_bfloat16", "mixed_float16"])
    assert items[:4] == [
        ("resnet50", "float32"),
        ("resnet50", "mixed_bfloat16"),
        ("keras_resnet50", "float32"),
        ("keras_resnet50", "mixed_bfloat16"),
    ]
    assert items[4:6] == [("unet", "float32"), ("unet", "mixed_bfloat16")]
    assert [precision for _, precision in items[6:]] == ["mixed_float16"] * 3


def test_the_fill_batch_follows_the_activations_and_the_device_memory():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same")(inputs))
    assert bench_jax.activation_elements(model) == 8 * 8 * 3 + 8 * 8 * 4  # the input and the convolution
    per_sample = 448 * 4 * bench_jax.ACTIVATION_FACTOR
    assert bench_jax.fill_batch(model, 8, int(100 * per_sample / bench_jax.FILL_SHARE)) == 64  # 100 fit
    assert bench_jax.fill_batch(model, 8, int(4 * per_sample / bench_jax.FILL_SHARE)) == 8  # the paper's at least
    assert bench_jax.fill_batch(model, 8, 10**15) == bench_jax.MAX_BATCH
    assert bench_jax.fill_batch(model, 8, None) == 8  # a CPU


def test_batch_sizes_take_one_number_or_per_model_numbers():
    assert bench_jax._batch_sizes(["64", "sanet=8"]) == {"*": 64, "sanet": 8}
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=N"):
        bench_jax._batch_sizes(["sanet=0"])
