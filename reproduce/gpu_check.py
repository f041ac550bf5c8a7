"""The one prepared GPU check, no TensorFlow: correctness, then the JAX benchmark and its peers.

    python reproduce/gpu_check.py --download-wheels        # here, where pip reaches an index
    python reproduce/gpu_check.py [--out DIR] [benchmark options] [--cpu-smoke]

The machines a session may be lent have JAX, PyTorch and timm but neither Keras nor
TensorFlow, and no network. So, on such a machine, one call of under 9 minutes::

    run(command="PYTHONUNBUFFERED=1 python3 reproduce/gpu_check.py --out $OUT",
        carry=[".whl"], timeout_s=560)

1. installs the carried wheels (``.whl/``: Keras and the packages of its
   ``Requires-Dist`` the device image lacks, :data:`WHEEL_PACKAGES`) into ``/tmp/site``
   when Keras does not import;
2. runs :mod:`reproduce.jax_benchmark` with ``--correctness`` within ``--budget-s``
   (default :data:`BUDGET_S`, leaving room for the install, the start and the report):
   every model's finite jit training step, ``mixed_bfloat16`` and ``mixed_float16``
   outputs within :data:`reproduce.bench_jax.MIXED_TOLERANCE` of float32 on the same
   weights, SANet's segment ops equal on the GPU and the CPU; then the speed of every
   model and precision and the peers; what the time did not reach is marked;
3. writes ``gpu_check.md`` and ``gpu_check.json`` under ``--out`` (default ``$OUT``) and
   prints the markdown.

``--cpu-smoke`` runs the same path on a CPU at the registry's small sizes: two models
(:data:`SMOKE_MODELS`, an attention model and its baseline), float32 and
``mixed_bfloat16``, batch 2, two timed steps (CI runs it; the numbers say nothing about
speed and say so).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # the repository importable; Keras, where a start-up imports it, on JAX
    sys.path.insert(0, str(ROOT))
    os.environ["KERAS_BACKEND"] = "jax"

from reproduce import jax_benchmark  # noqa: E402
from reproduce.benchmark_jax_report import write_report  # noqa: E402

WHEELS = ROOT / ".whl"
SITE = Path("/tmp/site")
WHEEL_PACKAGES: tuple[str, ...] = ("keras", "namex", "optree")
"""Keras and what of its ``Requires-Dist`` the device image lacks (absl-py, h5py,
ml-dtypes, numpy, packaging and rich are there; optree's typing-extensions too)."""
BUDGET_S = 460.0
SMOKE_MODELS: tuple[str, ...] = ("resnet14", "arl_cnn14")
PLATFORMS: tuple[str, ...] = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)


def download_wheels(folder: Path = WHEELS) -> list[Path]:
    """The wheels of :data:`WHEEL_PACKAGES`, at the versions installed here (the ones the
    tests ran with), for the device's CPython 3.12 on x86-64, into ``folder``; other
    versions of them there are removed (two versions stop the install)."""
    folder.mkdir(exist_ok=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEEL_PACKAGES]
    for wheel in folder.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        if name.lower() in WHEEL_PACKAGES and f"{name.lower()}=={version}" not in pins:
            wheel.unlink()
    platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            *platforms,
            "-d",
            str(folder),
            *pins,
        ],
        check=True,
    )
    return sorted(folder.glob("*.whl"))


def install_carried_wheels(folder: Path = WHEELS, site: Path = SITE) -> str:
    """Installs ``folder``'s wheels into ``site`` (put first on the workers' path) when
    Keras does not import here; says what it did."""
    if importlib.util.find_spec("keras") is not None:
        return "keras importable: no wheels installed"
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise SystemExit(
            f"gpu_check: Keras is not installed and {folder} holds no wheels: run "
            "`python reproduce/gpu_check.py --download-wheels` where pip reaches an index and carry .whl."
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--no-cache-dir",
            "--upgrade",
            "--target",
            str(site),
            *map(str, wheels),
        ],
        check=True,
    )
    os.environ["PYTHONPATH"] = os.pathsep.join(part for part in (str(site), os.environ.get("PYTHONPATH")) if part)
    return f"installed {', '.join(wheel.name for wheel in wheels)} into {site}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    jax_benchmark.add_arguments(parser, budget_s=BUDGET_S)
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "results" / "gpu_check"
    )
    parser.add_argument("--cpu-smoke", action="store_true", help="the same path on a CPU at tiny sizes")
    parser.add_argument("--download-wheels", action="store_true", help="fill .whl/ for the device, then stop")
    args = parser.parse_args(argv)
    args.correctness = True
    if args.cpu_smoke:
        args.cpu, args.size = True, "small"
        args.models = args.models or list(SMOKE_MODELS)
        args.batch_sizes = args.batch_sizes or ["2"]
        args.steps = min(args.steps, 2)
        args.compile_workers = min(args.compile_workers, 2)
        if args.precisions == list(jax_benchmark.PRECISIONS):
            args.precisions = ["float32", "mixed_bfloat16"]  # float16 is emulated on a CPU: slow, says nothing
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.download_wheels:
        for wheel in download_wheels():
            print(wheel)
        return 0
    installed = install_carried_wheels()
    report = jax_benchmark.run(args)
    report["wheels"] = installed
    title = "GPU check" + (" (CPU smoke run)" if args.cpu_smoke else "")
    _, markdown = write_report(report, args.out, "gpu_check", title)
    print(markdown.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
