"""Issue 23: reproduce/gpu_check.py, the one prepared device check, on this CPU without TensorFlow.

The script runs end to end with ``--cpu-smoke`` in a JAX process where ``import
tensorflow`` fails (tests/_no_tensorflow_worker.py's finder), as on the lent GPU
machines; its arithmetic and guards are checked against hand-computed cases.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reproduce import gpu_check

ROOT = Path(__file__).resolve().parents[1]
_BLOCKED = ("import sys, runpy; sys.path.insert(0, {root!r}); from tests._no_tensorflow_worker import _NoTensorFlow; "
            "sys.meta_path.insert(0, _NoTensorFlow()); sys.argv = {argv!r}; "
            "runpy.run_path({script!r}, run_name='__main__')")


def _run_without_tensorflow(*args: str) -> subprocess.CompletedProcess:
    script = str(ROOT / "reproduce" / "gpu_check.py")
    code = _BLOCKED.format(root=str(ROOT), argv=[script, *args], script=script)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    completed = _run_without_tensorflow("--cpu-smoke", "--models", "resnet14", "arl_cnn14", "--precisions",
                                        "float32", "mixed_bfloat16", "--out", str(out))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_cpu_smoke_runs_the_whole_path_without_tensorflow(smoke):
    report, markdown = smoke
    assert not report["tensorflow_loaded"] and report["backend"] == "jax" and report["smoke"]
    for name in ("resnet14", "arl_cnn14"):
        row = report["models"][name]
        assert row["status"] == "ok", row
        for precision in ("float32", "mixed_bfloat16"):
            timing = row[precision]
            assert timing["finite_loss"] and timing["step_s"] > 0 and timing["flops"] > 0, timing
            assert 0 < timing["utilisation"] < 1
        assert row["mixed_bfloat16_vs_float32"]["within"]
    assert report["segment_ops"]["equal"]
    assert report["peers"]["keras_resnet50"]["status"] == "ok"
    assert "arl_cnn14 / resnet14 (step time)" in report["ratios"]
    assert "CPU smoke run" in markdown and "| arl_cnn14 | mixed_bfloat16 | 2 |" in markdown


def test_the_time_budget_marks_what_it_did_not_reach_and_still_writes_the_report(tmp_path):
    completed = _run_without_tensorflow("--cpu-smoke", "--models", "resnet14", "--no-peers", "--budget-s", "0",
                                        "--out", str(tmp_path))
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["models"]["resnet14"]["status"] == "skipped (time)"
    assert "| resnet14 | - |" in (tmp_path / "gpu_check.md").read_text()


def test_utilisation_is_achieved_flops_over_the_peak_rate():
    assert gpu_check.utilisation(2e12, 0.5, 8e12) == pytest.approx(0.5)  # 4 TFLOP/s of 8
    assert gpu_check.utilisation(None, 0.5, 8e12) is None
    assert gpu_check.utilisation(2e12, 0.5, None) is None


def test_the_mixed_precision_check_catches_a_drift_and_non_finite_outputs():
    reference = [np.array([1.0, 2.0, 4.0])]
    assert gpu_check.mixed_within_tolerance(reference, [np.array([1.0, 2.0, 4.1])]) == (True, pytest.approx(0.025))
    within, worst = gpu_check.mixed_within_tolerance(reference, [np.array([1.0, 2.0, 4.3])])
    assert not within and worst == pytest.approx(0.075)
    assert not gpu_check.mixed_within_tolerance(reference, [np.array([1.0, np.nan, 4.0])])[0]


def test_goals_read_the_measured_ratios():
    report = {"models": {"resnet50": {"family": "resnet", "status": "ok", "float32": {"step_s": 1.0, "train_img_s": 10},
                                      "mixed_bfloat16": {"step_s": 0.5, "train_img_s": 20}},
                         "arl_cnn50": {"family": "resnet", "baseline": "resnet50", "status": "ok",
                                       "float32": {"step_s": 1.1, "train_img_s": 9}}},
              "peers": {"keras_resnet50": {"step_s": 0.98}}}
    report["ratios"] = gpu_check.ratios(report)
    goals = {goal["goal"]: goal for goal in gpu_check.goals(report)}
    assert goals["resnet50: bf16 >= 1.5x float32 images/s"]["met"]  # 2.0
    assert goals["resnet50 >= 0.97x keras ResNet50 images/s"]["value"] == pytest.approx(0.98)
    assert not goals["arl_cnn50 <= 1.05x resnet50 step time"]["met"]  # 1.10


def test_batch_sizes_take_one_number_or_per_model_numbers():
    assert gpu_check._batch_sizes(["64", "sanet=8"]) == {"*": 64, "sanet": 8}
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=N"):
        gpu_check._batch_sizes(["sanet=0"])
