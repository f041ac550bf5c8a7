"""The benchmark on JAX + XLA, no TensorFlow: every registered model, three precisions, and its peers.

    python reproduce/jax_benchmark.py [--out results/jax_benchmark] [--models NAME ...]
        [--precisions float32 mixed_bfloat16 mixed_float16] [--batch-sizes N | NAME=N ...]
        [--size paper|small] [--steps 10] [--budget-s S] [--correctness] [--no-peers]

Every registered model (:func:`zoo.list_models`) at the paper's size, randomly
initialised, in ``float32``, ``mixed_bfloat16`` and ``mixed_float16``: Keras' own jit
training step with the paper's recipe and its inference step on random inputs of the
model's spec, at a batch that fills a large GPU (:func:`reproduce.bench_jax.fill_batch`,
at least the paper's; ``--batch-sizes`` to choose). Per model and precision it reports
images/s, step time, FLOPs per step from XLA's own cost analysis of the compiled step,
utilisation (FLOP/s over the bf16 and over the fp32 matmul rate measured in the same
run) and the step's device memory. Peers in the same run, on the same device:
keras.applications ResNet50 and EfficientNetB1 under JAX, and timm's resnet50 and
efficientnet_b1 in PyTorch (bf16 autocast, channels_last, ``torch.compile`` where it
compiles in its time) when torch and timm import. The report
(:mod:`reproduce.benchmark_jax_report`) gives the ratios and the goals.

The work runs in child processes (:mod:`reproduce.bench_jax` for JAX, one per phase;
:mod:`reproduce.bench_timm` per PyTorch peer, after the JAX ones have ended and freed the
device), each with a hard time limit inside ``--budget-s``, so that the report is always
written: what the time did not reach is marked ``skipped (time)`` or ``stopped (time)``.
``--correctness`` first checks every model (:mod:`reproduce.gpu_check` turns it on).

Budget (seconds from the start): correctness until :data:`CORRECTNESS_SHARE` of what the
JAX phases get, speed until :data:`TIMM_PEER_S` per PyTorch peer is left, then the peers;
a phase may run :data:`GRACE_S` past its soft end (an item already started), then it is
stopped.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

if __name__ == "__main__":  # the repository importable; Keras, where a start-up imports it, on JAX
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ["KERAS_BACKEND"] = "jax"

from reproduce import bench_timm  # noqa: E402
from reproduce.bench_process import run_child  # noqa: E402
from reproduce.benchmark_jax_report import (
    PRECISIONS,
    TIMM_PEERS,
    assemble,
    read_records,  # noqa: E402
    write_report,
)

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "reproduce" / "bench_jax.py"
CORRECTNESS_SHARE = 0.35
TIMM_PEER_S = 75.0
"""Seconds kept per PyTorch peer: ``torch.compile`` first, eager in the last :data:`TIMM_EAGER_S`."""
TIMM_EAGER_S = 25.0
GRACE_S = 20.0
FAST_COMPILE_FLAG = "--xla_gpu_autotune_level=0"
"""The correctness phase's XLA flag on a GPU: no autotuning (its steps are checked, not
timed); dropped when this XLA does not know it."""


def child_environment(cpu: bool, extra_flags: str = "") -> dict[str, str]:
    """The workers' environment: JAX, the repository (and carried wheels) importable."""
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "jax"
    env["PYTHONPATH"] = os.pathsep.join(part for part in (str(ROOT), env.get("PYTHONPATH", "")) if part)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if cpu:
        env["JAX_PLATFORMS"] = "cpu"
    if extra_flags:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {extra_flags}".strip()
    return env


def run_phase(phase: str, args: argparse.Namespace, records: Path, soft_end: float, hard_end: float) -> str:
    """One :mod:`reproduce.bench_jax` worker; returns how it ended."""
    command = [
        sys.executable,
        str(WORKER),
        "--phase",
        phase,
        "--records",
        str(records),
        "--size",
        args.size,
        "--steps",
        str(args.steps),
        "--deadline",
        str(soft_end),
        "--compile-workers",
        str(args.compile_workers),
        "--precisions",
        *args.precisions,
    ]
    command += ["--models", *args.models] if args.models else []
    command += ["--batch-sizes", *args.batch_sizes] if args.batch_sizes else []
    command += ["--keras-peers"] if phase == "speed" and args.peers else []
    flags = FAST_COMPILE_FLAG if phase == "correctness" and not args.cpu else ""
    status, stderr = run_child(command, hard_end - time.time(), child_environment(args.cpu, flags))
    if status not in (0, None) and flags and "Unknown flag" in stderr:
        status, stderr = run_child(command, hard_end - time.time(), child_environment(args.cpu))
    if status == 0:
        return "ended"
    if status is None:
        return f"stopped at its time limit ({hard_end - soft_end:.0f} s after its last start)"
    return f"failed (exit {status}): {' | '.join(stderr.strip().splitlines()[-3:])[:600]}"


def run_timm_peers(
    args: argparse.Namespace, records: list[Mapping[str, Any]], end: float, scratch: Path
) -> dict[str, dict[str, Any]]:
    """Each timm peer at its counterpart's input size and batch (from the speed records)."""
    measured = {
        record["model"]: record
        for record in records
        if record.get("kind") == "result" and record.get("phase") == "speed" and record.get("status") == "ok"
    }
    results = {}
    for index, (name, (timm_name, counterpart)) in enumerate(TIMM_PEERS.items()):
        if args.models and counterpart not in args.models:
            continue
        if counterpart not in measured:
            results[name] = {"status": f"skipped: {counterpart} was not measured (its size and batch)"}
            continue
        share = (end - time.time()) / (len(TIMM_PEERS) - index)
        size, batch = measured[counterpart]["input_shape"][0], measured[counterpart]["batch"]
        results[name] = bench_timm.run_peer(
            timm_name, size, batch, args.steps, share - TIMM_EAGER_S, min(share, TIMM_EAGER_S), scratch / f"{name}.json"
        )
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The phases within ``args.budget_s``; the assembled report."""
    start = time.time()
    end = start + args.budget_s
    peers_s = TIMM_PEER_S * len(TIMM_PEERS) if args.peers and bench_timm.installed() else 0.0
    jax_end = end - peers_s
    phases = {}
    with tempfile.TemporaryDirectory(prefix="jax_benchmark_") as scratch:
        records_path = Path(scratch) / "records.jsonl"
        if args.correctness:
            soft = start + CORRECTNESS_SHARE * (jax_end - start)
            phases["correctness"] = run_phase("correctness", args, records_path, soft, soft + GRACE_S)
        phases["speed"] = run_phase("speed", args, records_path, jax_end - GRACE_S, jax_end)
        records = read_records(records_path)
        timm = run_timm_peers(args, records, end, Path(scratch)) if args.peers else {}
    settings = {
        "size": args.size,
        "precisions": list(args.precisions),
        "steps": args.steps,
        "batch sizes": list(args.batch_sizes) or "fill estimate",
        "budget s": args.budget_s,
        "seconds": round(time.time() - start, 1),
    }
    report = assemble(records, timm, settings)
    report["phases"] = {
        phase: f"{report['phases'].get(phase, 'not started')}; worker {how}" for phase, how in phases.items()
    }
    return report


def add_arguments(parser: argparse.ArgumentParser, budget_s: float) -> None:
    """The benchmark's options (shared with :mod:`reproduce.gpu_check`)."""
    parser.add_argument("--models", nargs="+", help="registered names (default: all)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        default=[],
        help="N for every model or NAME=N per model (default: a batch that fills the GPU)",
    )
    parser.add_argument("--size", choices=("paper", "small"), default="paper")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--budget-s", type=float, default=budget_s, help="seconds for everything")
    parser.add_argument("--compile-workers", type=int, default=4, help="models compiled at once (correctness)")
    parser.add_argument("--no-peers", dest="peers", action="store_false", help="no keras.applications or timm peers")
    parser.add_argument("--cpu", action="store_true", help="run the workers on the CPU (JAX_PLATFORMS=cpu)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, budget_s=math.inf)
    parser.add_argument("--correctness", action="store_true", help="check every model first")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "jax_benchmark")
    args = parser.parse_args(argv)
    report = run(args)
    _, markdown = write_report(report, args.out, "jax_benchmark", "Zoo benchmark on JAX + XLA")
    print(markdown.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
