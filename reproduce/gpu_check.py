"""The one prepared GPU check: correctness, then speed of every registered model on JAX + XLA.

    python reproduce/gpu_check.py [--out DIR] [--models NAME ...] [--batch-sizes N | NAME=N ...]
                                  [--precisions float32 mixed_bfloat16 mixed_float16]
                                  [--budget-s 420] [--steps 10] [--no-peers] [--cpu-smoke]
    python reproduce/gpu_check.py --download-wheels     # here, before a device call: keras & co. into .whl/

Needs no TensorFlow (the lent GPU machines have JAX, PyTorch and timm but no
TensorFlow and no network): it sets ``KERAS_BACKEND=jax`` before Keras is imported,
and when a ``.whl`` folder is beside the repository and Keras is missing it installs
those wheels into ``/tmp/site`` first (the packages the device image lacks: Keras and
its ``namex`` and ``optree``). On a device call::

    run(command="PYTHONUNBUFFERED=1 python3 reproduce/gpu_check.py --out $OUT", carry=[".whl"], timeout_s=560)

In order, within ``--budget-s`` (default 420 s, so that one call stays under 9
minutes; what the budget does not reach is marked ``skipped (time)``, and the md and
json are always written):

1. **Peak rates**: a large matrix product in bfloat16 and in float32
   (``jnp.dot``, jit), the denominators of utilisation, measured in this run.
2. **Correctness**, every model: one jit-compiled training step with its paper's
   recipe (:attr:`zoo.registry.ModelEntry.recipe`: loss, loss weights, optimiser) on
   random inputs and targets gives a finite loss; under ``mixed_bfloat16`` and
   ``mixed_float16`` the outputs on the same weights are within
   :data:`MIXED_TOLERANCE` of float32's (of the largest float32 value); SANet's
   superpixel pooling (segment sums) gives the same on the accelerator as on the CPU.
3. **Speed**, every model and precision: images/s and step time of the jit training
   step (Keras ``train_on_batch``, compiled once and timed over ``--steps`` steps)
   and of inference; FLOPs of one forward+backward step from XLA's own cost
   analysis of the compiled function; utilisation = FLOP/s over the measured peak
   rate of the precision's matmul dtype; peak device memory.
4. **Peers** (``--no-peers`` skips): keras.applications ``ResNet50`` and
   ``EfficientNetB1`` under JAX the same way; timm's ``resnet50`` and
   ``efficientnet_b1`` in PyTorch (bf16 autocast, channels_last, ``torch.compile``
   where it compiles) when torch and timm import. Ratios: attention model / its
   registered baseline, our ``resnet50`` / keras' ResNet50, each model / its timm peer.

The goals it prints (meaningful on a GPU only): ``mixed_bfloat16`` at least 1.5x
float32 for the ResNet, VGG and EfficientNet families; our resnet50 at least 0.97x
keras' ResNet50; ARL-CNN50 at most 1.05x ResNet50's step time; no model fails to
compile or runs out of memory.

``--cpu-smoke`` runs the same path on a CPU at the registry's small sizes, batch 2,
two timed steps and three models, in about a minute (CI runs it): numbers that say
nothing about speed, labelled so.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".whl"
WHEEL_REQUIREMENTS = ("keras==3.15.1", "namex==0.1.0", "optree==0.17.0")
"""What the device image lacks for the zoo (KINDS.md's package list has the rest)."""


def _install_carried_wheels() -> None:
    """Keras from ``.whl`` into /tmp/site when it is not importable (the device image)."""
    try:
        import keras  # noqa: F401
        return
    except ImportError:
        pass
    wheels = sorted(WHEELS.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"gpu_check: keras is not installed and {WHEELS} holds no wheels: run "
                         "`python reproduce/gpu_check.py --download-wheels` where pip reaches an index, then carry .whl.")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--upgrade", "--target", "/tmp/site", *map(str, wheels)], check=True)
    sys.path.insert(0, "/tmp/site")


def download_wheels() -> None:
    """The wheels of :data:`WHEEL_REQUIREMENTS` for the device's Python 3.12, x86-64, into ``.whl``."""
    platforms = [arg for n in ("2_28", "2_27", "2_17") for arg in ("--platform", f"manylinux_{n}_x86_64")]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", *platforms, "--platform", "manylinux2014_x86_64",
                    "-d", str(WHEELS), *WHEEL_REQUIREMENTS], check=True)


if __name__ == "__main__":
    os.environ["KERAS_BACKEND"] = "jax"
    sys.path.insert(0, str(ROOT))
    if "--download-wheels" in sys.argv:
        download_wheels()
        raise SystemExit(0)
    _install_carried_wheels()

import argparse  # noqa: E402  (after the backend and the carried wheels are set)
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import numpy as np  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
MIXED_TOLERANCE = 0.05
"""Mixed-precision outputs within this share of the largest float32 output on the same
weights (inference; float16 keeps ~3 digits through ~50 layers: the model harness's)."""
SMOKE_MODELS = ("resnet14", "arl_cnn14", "sanet")
FAMILY_GOALS = ("resnet", "vgg", "efficientnet")
TIMM_PEERS = {"resnet": "resnet50", "efficientnet": "efficientnet_b1"}
KERAS_PEERS = {"keras_resnet50": "ResNet50", "keras_efficientnetb1": "EfficientNetB1"}


class Budget:
    """Seconds left of ``total``; :meth:`allows` says whether ``need`` more still fit."""

    def __init__(self, total: float, clock=time.monotonic):
        self.clock, self.end = clock, clock() + total

    def left(self) -> float:
        return self.end - self.clock()

    def allows(self, need: float) -> bool:
        return self.left() >= need


def utilisation(flops: float | None, step_s: float | None, peak_flops_per_s: float | None) -> float | None:
    """Achieved FLOP/s over the peak rate: ``flops / step_s / peak``; ``None`` if unknown."""
    if not flops or not step_s or not peak_flops_per_s:
        return None
    return flops / step_s / peak_flops_per_s


def mixed_within_tolerance(reference: list[np.ndarray], mixed: list[np.ndarray],
                           tolerance: float = MIXED_TOLERANCE) -> tuple[bool, float]:
    """Whether every mixed-precision output is within ``tolerance`` of the largest
    float32 value of its output, and the worst such share."""
    worst = 0.0
    for expected, got in zip(reference, mixed):
        expected, got = np.asarray(expected, np.float64), np.asarray(got, np.float64)
        scale = max(float(np.abs(expected).max()), 1e-12)
        worst = max(worst, float(np.abs(expected - got).max()) / scale if np.isfinite(got).all() else np.inf)
    return worst <= tolerance, worst


def default_batch_size(image_size: tuple[int, int], smoke: bool) -> int:
    """A batch that fills a large GPU at the paper's input size (H200, 141 GB)."""
    if smoke:
        return 2
    pixels = image_size[0] * image_size[1]
    return 256 if pixels <= 224 * 224 else 128 if pixels <= 256 * 256 else 32


# --------------------------------------------------------------------------- measuring


def _policy(precision: str):
    import keras

    keras.mixed_precision.set_global_policy(precision)


def peak_rates(smoke: bool) -> dict[str, float]:
    """FLOP/s of a jit matrix product in bfloat16 and float32 (the utilisation denominators)."""
    import jax
    import jax.numpy as jnp

    n = 512 if smoke else 8192
    rates = {}
    for dtype in ("bfloat16", "float32"):
        a = jnp.ones((n, n), dtype)
        product = jax.jit(jnp.dot)
        product(a, a).block_until_ready()
        repeats = 3 if smoke else 10
        start = time.perf_counter()
        for _ in range(repeats):
            result = product(a, a)
        result.block_until_ready()
        rates[dtype] = 2 * n ** 3 * repeats / (time.perf_counter() - start)
    return rates


def _inputs(model, batch: int, rng: np.random.Generator):
    import keras

    arrays = []
    for tensor in model.inputs:
        shape = (batch, *tensor.shape[1:])
        if keras.backend.is_float_dtype(tensor.dtype):
            arrays.append(rng.random(shape, dtype=np.float32))
        else:  # SANet's superpixel labels
            arrays.append(rng.integers(0, 4, shape).astype(np.int32))
    return arrays[0] if len(arrays) == 1 else arrays


def step_flops(model, inputs) -> float | None:
    """FLOPs of one forward+backward pass from XLA's cost analysis of the compiled function."""
    import jax
    import keras

    def objective(trainable, non_trainable, x):
        outputs, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return sum(keras.ops.mean(keras.ops.cast(o, "float32")) for o in keras.tree.flatten(outputs))

    lowered = jax.jit(jax.grad(objective)).lower([v.value for v in model.trainable_variables],
                                                 [v.value for v in model.non_trainable_variables], inputs)
    analysis = lowered.compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    flops = (analysis or {}).get("flops")
    return float(flops) if flops else None


def peak_memory_bytes() -> tuple[int | None, str]:
    """Peak device memory (JAX's allocator on a GPU), else the process's peak RSS, labelled."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def time_keras_model(model, recipe, batch: int, steps: int, rng: np.random.Generator) -> dict:
    """Compile (jit) and time the training step and inference of ``model``."""
    inputs = _inputs(model, batch, rng)
    targets = recipe.random_targets(model, batch, rng) if recipe is not None else \
        rng.random((batch, *model.output.shape[1:]), dtype=np.float32)
    if recipe is not None:
        recipe.compile(model, steps_per_epoch=100, jit_compile=True)
    else:
        import keras

        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", jit_compile=True)
    start = time.perf_counter()
    loss = model.train_on_batch(inputs, targets)
    compile_s = time.perf_counter() - start
    losses = np.asarray(loss, np.float64).ravel()
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, targets)
    step_s = (time.perf_counter() - start) / steps
    model.predict_on_batch(inputs)
    start = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(inputs)
    infer_s = (time.perf_counter() - start) / steps
    return {"finite_loss": bool(np.isfinite(losses).all()), "compile_s": compile_s, "step_s": step_s,
            "train_img_s": batch / step_s, "infer_img_s": batch / infer_s, "flops": step_flops(model, inputs)}


def check_mixed(entry, small: bool, precision: str, rng: np.random.Generator) -> tuple[bool, float]:
    """Outputs under ``precision`` against float32 on the same weights (inference)."""
    import keras

    _policy("float32")
    reference_model = entry.build(small=small)
    inputs = _inputs(reference_model, 2, rng)
    reference = [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(reference_model(inputs, training=False))]
    _policy(precision)
    try:
        mixed_model = entry.build(small=small)
        mixed_model.set_weights(reference_model.get_weights())
        mixed = [keras.ops.convert_to_numpy(keras.ops.cast(o, "float32"))
                 for o in keras.tree.flatten(mixed_model(inputs, training=False))]
    finally:
        _policy("float32")
    return mixed_within_tolerance(reference, mixed)


def check_segment_ops_devices() -> dict:
    """SANet's superpixel average pooling (segment sums) on the default device and the CPU."""
    import jax
    import keras

    from zoo.sanet.layers import SuperpixelAveragePooling

    rng = np.random.default_rng(0)
    features = rng.random((2, 16, 16, 8), dtype=np.float32)
    labels = rng.integers(0, 6, (2, 16, 16)).astype(np.int32)
    layer = SuperpixelAveragePooling(max_segments=8)
    on_default = keras.ops.convert_to_numpy(layer([features, labels]))
    with jax.default_device(jax.devices("cpu")[0]):
        on_cpu = keras.ops.convert_to_numpy(layer([features, labels]))
    difference = float(np.abs(on_default - on_cpu).max())
    return {"device": str(jax.devices()[0]), "max_difference": difference, "equal": difference <= 1e-5}


def time_timm(name: str, batch: int, size: int, steps: int) -> dict:
    """timm's ``name`` in PyTorch: bf16 autocast, channels_last, torch.compile where it compiles."""
    import timm
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = timm.create_model(name, pretrained=False, num_classes=2).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device)
    compiled = "eager"
    try:
        step_model = torch.compile(model)
        compiled = "torch.compile"
    except Exception:  # noqa: BLE001  (no compiler here: eager is the peer then)
        step_model = model

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(step_model(x), y)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    compile_s = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / steps
    return {"mode": compiled, "compile_s": compile_s, "step_s": step_s, "train_img_s": batch / step_s}


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict:
    import jax
    import keras

    import zoo

    smoke = args.cpu_smoke
    budget = Budget(args.budget_s)
    rng = np.random.default_rng(0)
    names = args.models or (list(SMOKE_MODELS) if smoke else [entry.name for entry in zoo.list_models()])
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": str(jax.devices()[0]),
              "backend": keras.backend.backend(), "keras": keras.__version__, "jax": jax.__version__,
              "smoke": smoke, "tensorflow_loaded": "tensorflow" in sys.modules, "models": {}, "peers": {}}
    report["peak_flops_per_s"] = peak_rates(smoke)
    report["segment_ops"] = check_segment_ops_devices()
    for name in names:
        entry = zoo.get_model(name)
        row = report["models"].setdefault(name, {"family": entry.family, "baseline": entry.baseline})
        if not budget.allows(args.per_model_s):
            row["status"] = "skipped (time)"
            continue
        try:
            for precision in args.precisions:
                if precision != "float32":
                    within, worst = check_mixed(entry, smoke, precision, rng)
                    row[f"{precision}_vs_float32"] = {"within": within, "worst": worst}
                _policy(precision)
                model = entry.build(small=smoke)
                batch = args.batch_size.get(name, args.batch_size.get("*")) or default_batch_size(
                    tuple(model.inputs[0].shape[1:3]), smoke)
                timing = time_keras_model(model, entry.recipe, batch, args.steps, rng)
                rate = report["peak_flops_per_s"]["float32" if precision == "float32" else "bfloat16"]
                timing["utilisation"] = utilisation(timing["flops"], timing["step_s"], rate)
                timing["batch"] = batch
                timing["peak_memory_bytes"], report["memory_kind"] = peak_memory_bytes()
                row[precision] = timing
                keras.backend.clear_session()
            row["status"] = "ok" if all(row[p]["finite_loss"] for p in args.precisions) else "non-finite loss"
        except Exception as error:  # noqa: BLE001  (a model that fails to compile or runs out of memory is a row)
            row["status"] = f"failed: {type(error).__name__}: {' '.join(str(error).split())[:300]}"
        finally:
            _policy("float32")
    if not args.no_peers:
        run_peers(report, args, budget, rng)
    report["ratios"] = ratios(report)
    report["goals"] = goals(report)
    return report


def run_peers(report: dict, args: argparse.Namespace, budget: Budget, rng: np.random.Generator) -> None:
    import keras

    size = 32 if args.cpu_smoke else 224
    batch = 2 if args.cpu_smoke else 256
    for name, application in KERAS_PEERS.items():
        if not budget.allows(args.per_model_s):
            report["peers"][name] = {"status": "skipped (time)"}
            continue
        model = getattr(keras.applications, application)(weights=None, input_shape=(size, size, 3), classes=2)
        report["peers"][name] = {**time_keras_model(model, None, batch, args.steps, rng), "status": "ok"}
        keras.backend.clear_session()
    for family, name in TIMM_PEERS.items():
        key = f"timm_{name}"
        try:
            import timm  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            report["peers"][key] = {"status": "not installed (torch and timm)"}
            continue
        if not budget.allows(args.per_model_s):
            report["peers"][key] = {"status": "skipped (time)"}
            continue
        try:
            report["peers"][key] = {**time_timm(name, batch, size, args.steps), "status": "ok", "family": family}
        except Exception as error:  # noqa: BLE001
            report["peers"][key] = {"status": f"failed: {type(error).__name__}: {error}"[:300]}


def _step(report: dict, name: str, precision: str = "float32") -> float | None:
    row = report["models"].get(name) or report["peers"].get(name) or {}
    timing = row.get(precision, row) if name in report["models"] else row
    return timing.get("step_s") if isinstance(timing, dict) else None


def ratios(report: dict) -> dict[str, float]:
    """Step-time ratios: attention / baseline, our resnet50 / keras', each model / its timm peer;
    and bf16 / float32 images/s per model."""
    out = {}
    for name, row in report["models"].items():
        step = _step(report, name)
        if row.get("baseline") and step and _step(report, row["baseline"]):
            out[f"{name} / {row['baseline']} (step time)"] = step / _step(report, row["baseline"])
        peer = TIMM_PEERS.get(row.get("family"))
        if peer and step and _step(report, f"timm_{peer}"):
            out[f"{name} / timm {peer} (step time)"] = step / _step(report, f"timm_{peer}")
        fast, slow = row.get("mixed_bfloat16", {}), row.get("float32", {})
        if fast.get("train_img_s") and slow.get("train_img_s"):
            out[f"{name} bf16 / float32 (images/s)"] = fast["train_img_s"] / slow["train_img_s"]
    if _step(report, "resnet50") and _step(report, "keras_resnet50"):
        out["resnet50 / keras ResNet50 (images/s)"] = _step(report, "keras_resnet50") / _step(report, "resnet50")
    return out


def goals(report: dict) -> list[dict]:
    """The issue's goals, each with its measured value and whether it holds (GPU only)."""
    rows = []
    for name, row in report["models"].items():
        ratio = report["ratios"].get(f"{name} bf16 / float32 (images/s)")
        if row.get("family") in FAMILY_GOALS and ratio is not None:
            rows.append({"goal": f"{name}: bf16 >= 1.5x float32 images/s", "value": ratio, "met": ratio >= 1.5})
        if not str(row.get("status", "")).startswith(("ok", "skipped")):
            rows.append({"goal": f"{name} compiles and fits", "value": row.get("status"), "met": False})
    ours = report["ratios"].get("resnet50 / keras ResNet50 (images/s)")
    if ours is not None:
        rows.append({"goal": "resnet50 >= 0.97x keras ResNet50 images/s", "value": ours, "met": ours >= 0.97})
    arl = _step(report, "arl_cnn50"), _step(report, "resnet50")
    if all(arl):
        rows.append({"goal": "arl_cnn50 <= 1.05x resnet50 step time", "value": arl[0] / arl[1],
                     "met": arl[0] / arl[1] <= 1.05})
    return rows


def write_report(report: dict, out: Path) -> None:
    """``gpu_check.json`` (everything) and ``gpu_check.md`` (the tables), each written whole."""
    from data_tools.atomic import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "gpu_check.json", json.dumps(report, indent=1, default=str))
    atomic_write_text(out / "gpu_check.md", "\n".join(markdown(report)) + "\n")


def markdown(report: dict) -> list[str]:
    lines = [f"# GPU check, {report['date']}, {report['device']} (JAX {report['jax']}, Keras {report['keras']})", ""]
    if report["smoke"]:
        lines += ["**CPU smoke run: small models, batch 2. These numbers say nothing about speed.**", ""]
    peaks, segments = report["peak_flops_per_s"], report["segment_ops"]
    lines += [f"Peak matmul rates measured: bf16 {peaks['bfloat16'] / 1e12:.2f} TFLOP/s, "
              f"fp32 {peaks['float32'] / 1e12:.2f} TFLOP/s. SANet's segment ops on {segments['device']} against "
              f"the CPU: largest difference {segments['max_difference']:.1e}.", "",
              "| model | precision | batch | train img/s | step ms | infer img/s | compile s | GFLOP/step "
              "| utilisation | memory GB | mixed vs fp32 | status |", "|" + "---|" * 12]
    for name, row in report["models"].items():
        timed = [precision for precision in PRECISIONS if row.get(precision)]
        for precision in timed:
            timing = row[precision]
            cells = [name, precision, timing["batch"], f"{timing['train_img_s']:.1f}", f"{timing['step_s'] * 1e3:.1f}",
                     f"{timing['infer_img_s']:.1f}", f"{timing['compile_s']:.1f}",
                     f"{(timing['flops'] or 0) / 1e9:.2f}", _percent(timing["utilisation"]),
                     f"{(timing['peak_memory_bytes'] or 0) / 1e9:.2f}",
                     _mixed_cell(row.get(f"{precision}_vs_float32")), row["status"]]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
        if not timed:
            lines.append(f"| {name} |" + " - |" * 10 + f" {row.get('status')} |")
    lines += ["", "| peer | train img/s | step ms | status |", "|---|---|---|---|"]
    for name, row in report["peers"].items():
        timed = "step_s" in row
        lines.append(f"| {name} | {row['train_img_s']:.1f} | {row['step_s'] * 1e3:.1f} | " if timed else f"| {name} | - | - | ")
        lines[-1] += f"{row.get('mode', 'jit')} {row['status']} |" if timed else f"{row['status']} |"
    lines += ["", "| ratio | value |", "|---|---|", *(f"| {key} | {value:.2f} |" for key, value in report["ratios"].items())]
    lines += ["", "| goal (GPU) | value | met |", "|---|---|---|"]
    for goal in report["goals"]:
        value = goal["value"] if isinstance(goal["value"], str) else f"{goal['value']:.2f}"
        lines.append(f"| {goal['goal']} | {value} | {'yes' if goal['met'] else 'NO'} |")
    return lines


def _mixed_cell(check: dict | None) -> str:
    if check is None:
        return "-"
    return f"{'ok' if check['within'] else 'OFF'} {check['worst']:.1e}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _batch_sizes(values: list[str]) -> dict[str, int]:
    sizes = {}
    for value in values or []:
        name, _, number = value.rpartition("=")
        if not number.isdigit() or int(number) < 1:
            raise argparse.ArgumentTypeError(f"--batch-sizes: expected N or NAME=N with N >= 1, got {value!r}")
        sizes[name or "*"] = int(number)
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "results/gpu_check")))
    parser.add_argument("--models", nargs="+", help="registered names (default: all; --cpu-smoke: "
                                                    f"{' '.join(SMOKE_MODELS)})")
    parser.add_argument("--batch-sizes", nargs="+", default=[], help="N for every model or NAME=N per model")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds for the whole check (default 420: one model may run past it)")
    parser.add_argument("--per-model-s", type=float, default=None, help="seconds a model needs to be started")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10; --cpu-smoke 2)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--cpu-smoke", action="store_true", help="small models on the CPU: the path, not the speed")
    args = parser.parse_args(argv)
    args.batch_size = _batch_sizes(args.batch_sizes)
    args.steps = args.steps or (2 if args.cpu_smoke else 10)
    args.per_model_s = args.per_model_s if args.per_model_s is not None else (5.0 if args.cpu_smoke else 25.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    write_report(report, args.out)
    print((args.out / "gpu_check.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
