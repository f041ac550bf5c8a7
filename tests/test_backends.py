"""The zoo on Keras' other backends, as a user runs it there (README "Backends").

The suite runs on TensorFlow; these tests start processes with ``KERAS_BACKEND`` set
(the model harness itself runs on JAX as the second CI command). The AER-Net
Table 2 script runs with ``--smoke`` under JAX: its first row by default, the whole
table with ``-m slow`` (7.5 min on 2 cores, measured 2026-12-02); PyTorch's harness
runs when torch is installed (``-m torch``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from reproduce.frame import slug
from zoo import runtime

ROOT = Path(__file__).resolve().parents[1]


def _run(command: list[str], backend: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True, timeout=timeout
    )


def _aernet_table2_under_jax(out: Path, rows: list[str]) -> dict:
    pytest.importorskip("jax")
    done = _run(
        [sys.executable, "reproduce/aernet_table2.py", "--smoke", "--out", str(out), "--rows", *rows],
        "jax",
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((out / "table.json").read_text())
    assert "SYNTHETIC" in json.dumps(table)
    for row in rows:
        record = json.loads((out / "rows" / slug(row) / "runtime.json").read_text())
        assert record["keras_backend"] == "jax" and record["xla"] is True, record  # JAX compiles by default
    return table


def _row_values(table: dict, row: str) -> dict:
    found = [entry for entry in table["rows"] if entry["name"] == row]
    assert found, f"no row {row!r} in {[entry['name'] for entry in table['rows']]}"
    return found[0]["ours"]


def test_aernet_table2_smoke_first_row_under_jax(tmp_path):
    values = _row_values(_aernet_table2_under_jax(tmp_path, ["U-Net"]), "U-Net")
    assert values and all(np.isfinite(v) and 0.0 <= v <= 100.0 for v in values.values()), values


@pytest.mark.slow
def test_aernet_table2_smoke_end_to_end_under_jax(tmp_path):
    from reproduce import aernet_table2

    table = _aernet_table2_under_jax(tmp_path, [row.name for row in aernet_table2.TABLE.rows])
    for row in aernet_table2.TABLE.rows:
        values = _row_values(table, row.name)
        assert all(np.isfinite(v) for v in values.values()), (row.name, values)


@pytest.mark.torch
def test_registry_harness_under_torch():
    pytest.importorskip("torch")
    done = _run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "tests/test_registry_harness.py"],
        "torch",
        timeout=7200,
    )
    assert done.returncode == 0, done.stdout[-5000:]


def test_tf_distribute_strategies_need_tensorflow_and_xla_defaults_on_under_jax(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="needs KERAS_BACKEND=tensorflow .*keras.distribution"):
        runtime.make_strategy("mirrored")
    assert runtime.resolve_xla(None) is True and runtime.resolve_xla(False) is False
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    assert runtime.resolve_xla(None) is runtime.gpu_available()
