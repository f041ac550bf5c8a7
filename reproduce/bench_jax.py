"""Measuring the zoo on JAX + XLA, without TensorFlow: the worker of :mod:`reproduce.jax_benchmark`.

    python reproduce/bench_jax.py --phase correctness|speed --records FILE [--models NAME ...]
        [--precisions ...] [--size paper|small] [--batch-sizes N | NAME=N ...] [--steps 10]
        [--deadline UNIX_SECONDS] [--compile-workers 1] [--min-item-s 0] [--keras-peers]

A step is Keras' own JAX step, what ``fit`` and ``predict`` run: ``model.train_step``
with the entry's recipe (:attr:`zoo.registry.ModelEntry.recipe`: loss, loss weights,
optimiser; Keras adds loss scaling under ``mixed_float16``) on random inputs of the
model's inputs and random targets of the recipe's kinds (:mod:`reproduce.bench_models`),
and ``model.predict_step``. Each is compiled ahead of time
(``jax.jit(step).lower(...).compile()``), so that the executable timed is the one XLA
analyses: FLOPs per step are ``compiled.cost_analysis()["flops"]``, the step's device
memory ``compiled.memory_analysis()`` (arguments + outputs + temporaries - donated).
Inputs live on the device before timing; a step's time is the mean over ``--steps``
calls after one warm-up call, ended by ``block_until_ready``.

Phases (one per process; each result is one JSON line appended to ``--records`` as soon
as it is known, after a ``{"kind": "start"}`` line, so that a parent that stops the
worker at its deadline keeps everything measured so far):

* ``correctness``: the device's matmul rates (:func:`matmul_rates`: bfloat16 and
  float32, the denominators of utilisation); SANet's segment ops on the device against
  the CPU (:func:`segment_ops_check`); per model, at batch :data:`CORRECTNESS_BATCH`:
  a jit training step in float32 whose loss is finite, and the inference outputs under
  ``mixed_bfloat16`` and ``mixed_float16`` on the float32 weights within
  :data:`MIXED_TOLERANCE` of float32's (:func:`mixed_within_tolerance`). Compilations
  of ``--compile-workers`` models overlap (XLA compiles outside the GIL).
* ``speed``: per model and precision (order: :func:`speed_items`), the training and
  inference steps at the model's batch (:func:`fill_batch`, or ``--batch-sizes``; a
  batch that runs out of memory is retried at the paper's), with ``--keras-peers``
  keras.applications' ResNet50 and EfficientNetB1 (:data:`KERAS_PEERS`) the same way.

An item is started only while ``--deadline`` leaves the longest item so far (at least
``--min-item-s``); the rest get a ``skipped (time)`` line.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

if __name__ == "__main__":  # a worker process: JAX, and the repository importable
    os.environ["KERAS_BACKEND"] = "jax"
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from reproduce.bench_models import build_model, random_inputs  # noqa: E402
from reproduce.benchmark_jax_report import KERAS_PEERS, PRECISIONS, SKIPPED, speed_items  # noqa: E402
from zoo.registry import ModelEntry, get_model, list_models  # noqa: E402

CORRECTNESS_BATCH = 2
MIXED_TOLERANCE = 0.05
"""A mixed-precision output may differ from float32's on the same weights by this share of
``max(1, largest float32 value)`` (the registry harness's bound: float16 keeps ~3
significant digits through ~50 layers; bfloat16 ~2, on outputs in [0, 1])."""
SEGMENT_TOLERANCE = 1e-5
"""SANet's segment sums on the accelerator against the CPU (relative): float32 sums in
another order, nothing more."""
FILL_SHARE = 0.5
"""The share of device memory the batch of :func:`fill_batch` aims at."""
ACTIVATION_FACTOR = 2.0
"""Training bytes per float32 activation kept for the backward pass: measured 1.2 for
ResNet50 (XLA's temporaries at batch 2 against the sum of its layer outputs), doubled."""
MAX_BATCH = 256
PEER_RECIPE = "resnet50"
"""The peers train with this entry's recipe (ARL-CNN's: a 2-class softmax, SGD)."""


# ----------------------------------------------------------------------------- pieces


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """The global Keras dtype policy ``name`` for the block (layers take it when built)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def mixed_within_tolerance(
    reference: Sequence[np.ndarray], mixed: Sequence[np.ndarray], tolerance: float = MIXED_TOLERANCE
) -> tuple[bool, float]:
    """Whether every mixed-precision output is within ``tolerance`` of its float32 output
    (share of ``max(1, largest |float32|)``), and the worst share (``inf``: not finite)."""
    worst = 0.0
    for expected, got in zip(reference, mixed, strict=True):
        expected, got = np.asarray(expected, np.float64), np.asarray(got, np.float64)
        if not np.isfinite(got).all():
            return False, math.inf
        worst = max(worst, float(np.abs(expected - got).max()) / max(1.0, float(np.abs(expected).max())))
    return worst <= tolerance, worst


def activation_elements(model: keras.Model) -> int:
    """Elements per sample of every layer output of ``model`` (nested models counted by
    their layers): what training keeps for the backward pass, roughly."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += activation_elements(layer)
            continue
        total += sum(math.prod(tensor.shape[1:]) for tensor in keras.tree.flatten(layer.output))
    return total


def fill_batch(model: keras.Model, paper_batch: int, device_bytes: int | None) -> int:
    """A power-of-two batch whose float32 training activations take about
    :data:`FILL_SHARE` of ``device_bytes``, within [``paper_batch``, :data:`MAX_BATCH`];
    the paper's batch when the device's memory is unknown (a CPU)."""
    if not device_bytes:
        return paper_batch
    per_sample = activation_elements(model) * 4 * ACTIVATION_FACTOR
    fits = max(1, int(FILL_SHARE * device_bytes // per_sample))
    return max(paper_batch, min(MAX_BATCH, 2 ** int(math.log2(fits))))


def device_memory_bytes() -> int | None:
    """The allocator's limit on the default device (None on a CPU)."""
    return (jax.devices()[0].memory_stats() or {}).get("bytes_limit")


def matmul_rates(size: int, repeats: int) -> dict[str, float]:
    """FLOP/s of a jit ``size`` x ``size`` matrix product of random numbers in bfloat16
    and in float32 (JAX's default precision, as the models' float32 convolutions)."""
    keys = jax.random.split(jax.random.PRNGKey(0))
    product = jax.jit(jnp.matmul)
    rates = {}
    for dtype in ("bfloat16", "float32"):
        a, b = (jax.random.normal(key, (size, size), dtype) for key in keys)
        product(a, b).block_until_ready()
        start = time.perf_counter()
        for _ in range(repeats):
            result = product(a, b)
        result.block_until_ready()
        rates[dtype] = 2 * size**3 * repeats / (time.perf_counter() - start)
    return rates


def segment_ops_check(rng: np.random.Generator) -> dict[str, Any]:
    """SANet's superpixel pooling (SANet eq. 1, ``keras.ops.segment_sum``), unpooling and
    the pooling's gradient, jit-compiled on the default device and on the CPU, with
    labels out of range on both sides; the largest difference relative to
    ``max(1, largest CPU value)``."""
    from zoo.sanet.layers import superpixel_average_pool, superpixel_unpool

    segments = 64
    features = rng.standard_normal((4, 32, 32, 16)).astype(np.float32)
    labels = rng.integers(-1, segments + 8, (4, 32, 32)).astype(np.int32)
    weights = rng.standard_normal((4, segments, 16)).astype(np.float32)

    def pool(values, ids):
        return superpixel_average_pool(values, ids, segments)

    def outputs() -> dict[str, np.ndarray]:
        pooled = jax.jit(pool)(features, labels)
        gradient = jax.jit(jax.grad(lambda values, ids: jnp.sum(pool(values, ids) * weights)))(features, labels)
        return {"pool": pooled, "unpool": jax.jit(superpixel_unpool)(pooled, labels), "pool gradient": gradient}

    on_device = {key: np.asarray(value) for key, value in outputs().items()}
    with jax.default_device(jax.devices("cpu")[0]):
        on_cpu = {key: np.asarray(value) for key, value in outputs().items()}
    differences = {
        key: float(np.abs(on_device[key] - on_cpu[key]).max() / max(1.0, np.abs(on_cpu[key]).max())) for key in on_cpu
    }
    return {
        "device": str(jax.devices()[0]),
        "differences": differences,
        "tolerance": SEGMENT_TOLERANCE,
        "equal": max(differences.values()) <= SEGMENT_TOLERANCE,
    }


# ------------------------------------------------------------------------ jit steps


@dataclasses.dataclass
class Steps:
    """A compiled model's jit training step (``state -> state``, donated) and inference
    step, with the state and data on the device; ``lowered`` until compiled."""

    model: keras.Model
    batch: int
    state: tuple
    data: tuple
    lowered: dict[str, Any]
    compiled: dict[str, Any] = dataclasses.field(default_factory=dict)


def jit_steps(model: keras.Model, entry: ModelEntry, batch: int, rng: np.random.Generator, train: bool = True) -> Steps:
    """Compiles ``model`` with ``entry``'s recipe (jit) and lowers its steps for ``batch``
    random samples (XLA compiles them later: :func:`compile_steps`)."""
    inputs = random_inputs(model, batch, rng)
    targets = entry.recipe.random_targets(model, batch, rng)
    entry.recipe.compile(model, jit_compile=True)
    model._symbolic_build(data_batch=(inputs, targets, None))  # Keras' own: builds the loss, metrics, optimiser
    state = tuple(
        [variable.value for variable in variables]
        for variables in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
    )
    data = jax.device_put((inputs, targets))
    lowered = {"infer": jax.jit(model.predict_step).lower(state[:2], (data[0],))}
    if train:
        lowered["train"] = jax.jit(model.train_step, donate_argnums=0).lower(state, data)
    return Steps(model, batch, state, data, lowered)


def compile_steps(steps: Steps) -> Steps:
    """XLA-compiles every lowered step (runs in a worker thread: XLA releases the GIL)."""
    steps.compiled = {name: lowered.compile() for name, lowered in steps.lowered.items()}
    return steps


def _analysis(compiled: Any) -> tuple[float | None, int | None]:
    """FLOPs (XLA's cost analysis) and device bytes (memory analysis) of an executable."""
    cost = compiled.cost_analysis()
    cost = (cost[0] if isinstance(cost, list) else cost) or {}
    memory = compiled.memory_analysis()
    used = (
        None
        if memory is None
        else (
            memory.argument_size_in_bytes
            + memory.output_size_in_bytes
            + memory.temp_size_in_bytes
            - memory.alias_size_in_bytes
        )
    )
    return (float(cost["flops"]) if cost.get("flops") else None), used


def infer(steps: Steps) -> list[np.ndarray]:
    """The inference step's outputs on the step's inputs, flattened."""
    outputs, _ = steps.compiled["infer"](steps.state[:2], (steps.data[0],))
    return [np.asarray(output, np.float32) for output in keras.tree.flatten(outputs)]


def time_steps(steps: Steps, repeats: int) -> dict[str, Any]:
    """Mean seconds per training and inference step over ``repeats`` calls after a
    warm-up; the training losses (Keras' running mean) of the first and last call."""
    train, state, data = steps.compiled["train"], steps.state, steps.data
    logs, state = train(state, data)
    losses = [float(logs["loss"])]
    start = time.perf_counter()
    for _ in range(repeats):
        logs, state = train(state, data)
    jax.block_until_ready((logs, state))
    train_s = (time.perf_counter() - start) / repeats
    losses.append(float(logs["loss"]))
    steps.state = state
    predict, inputs = steps.compiled["infer"], (data[0],)
    jax.block_until_ready(predict(state[:2], inputs))
    start = time.perf_counter()
    for _ in range(repeats):
        outputs = predict(state[:2], inputs)
    jax.block_until_ready(outputs)
    infer_s = (time.perf_counter() - start) / repeats
    flops, memory = _analysis(train)
    infer_flops, infer_memory = _analysis(predict)
    return {
        "train_step_s": train_s,
        "train_img_s": steps.batch / train_s,
        "infer_step_s": infer_s,
        "infer_img_s": steps.batch / infer_s,
        "flops": flops,
        "infer_flops": infer_flops,
        "memory_bytes": memory,
        "infer_memory_bytes": infer_memory,
        "losses": losses,
        "finite_loss": bool(np.isfinite(losses).all()),
    }


# ---------------------------------------------------------------------------- items


@dataclasses.dataclass
class Job:
    """One item in flight: its identity, steps to compile, and what to do with them."""

    item: dict[str, Any]
    steps: list[Steps]
    finish: Callable[[], dict[str, Any]]
    started: float = dataclasses.field(default_factory=time.perf_counter)
    futures: list[Future] = dataclasses.field(default_factory=list)


def correctness_job(item: dict[str, Any], size: str, precisions: Sequence[str], rng: np.random.Generator) -> Job:
    """A finite float32 training step; inference under each mixed policy of
    ``precisions`` on the float32 weights against float32's."""
    entry = get_model(item["model"])
    with dtype_policy("float32"):
        reference = jit_steps(build_model(entry, size), entry, CORRECTNESS_BATCH, rng)
    weights = reference.model.get_weights()
    mixed = {}
    for precision in [precision for precision in precisions if precision != "float32"]:
        with dtype_policy(precision):
            model = build_model(entry, size)
            model.set_weights(weights)
            mixed[precision] = jit_steps(model, entry, CORRECTNESS_BATCH, rng, train=False)
            mixed[precision].data = reference.data  # the same inputs

    def finish() -> dict[str, Any]:
        expected = infer(reference)
        record = {"batch": CORRECTNESS_BATCH}
        for precision, steps in mixed.items():
            within, worst = mixed_within_tolerance(expected, infer(steps))
            record[precision] = {"within": within, "worst": worst}
        logs, _ = reference.compiled["train"](reference.state, reference.data)
        record["loss"] = float(logs["loss"])
        record["finite_loss"] = bool(math.isfinite(record["loss"]))
        problems = ([] if record["finite_loss"] else ["non-finite loss"]) + [
            f"{precision} off by {record[precision]['worst']:.3g}"
            for precision in mixed
            if not record[precision]["within"]
        ]
        record["status"] = "failed: " + "; ".join(problems) if problems else "ok"
        return record

    return Job(item, [reference, *mixed.values()], finish)


def _peer_model(name: str, input_shape: tuple[int, ...]) -> keras.Model:
    application, _ = KERAS_PEERS[name]
    return getattr(keras.applications, application)(weights=None, input_shape=input_shape, classes=2)


def speed_job(
    item: dict[str, Any],
    size: str,
    batch: int | None,
    steps: int,
    seen: dict[str, tuple[int, tuple]],
    rng: np.random.Generator,
) -> Job:
    """Training and inference steps of a registered model or a keras peer under
    ``precision`` at ``batch`` (None: a peer's counterpart's, else :func:`fill_batch`);
    ``seen`` keeps each model's batch and input shape for the peers."""
    name, precision, peer = item["model"], item["precision"], item["peer"]
    entry = get_model(PEER_RECIPE if peer else name)
    counterpart = get_model(KERAS_PEERS[name][1] if peer else name)
    source = "--batch-sizes" if batch else "fill estimate"
    with dtype_policy(precision):
        if peer:
            if counterpart.name not in seen:
                seen[counterpart.name] = (None, tuple(build_model(counterpart, size).inputs[0].shape[1:]))
            counterpart_batch, shape = seen[counterpart.name]
            model = _peer_model(name, shape)
            if not batch and counterpart_batch:
                batch, source = counterpart_batch, f"{counterpart.name}'s"
        else:
            model = build_model(entry, size)
        paper_batch = counterpart.recipe.batch_size
        batch = batch or fill_batch(model, paper_batch, device_memory_bytes())
        jitted = jit_steps(model, entry, batch, rng)
    if not seen.get(name, (None,))[0]:
        seen[name] = (batch, tuple(model.inputs[0].shape[1:]))

    def finish() -> dict[str, Any]:
        timed, source_ = jitted, source
        try:
            timing = time_steps(jitted, steps)
        except Exception as error:  # noqa: BLE001  (retried once at the paper's batch, the goal's)
            if not out_of_memory(error) or jitted.batch <= paper_batch:
                raise
            jitted.compiled.clear()
            with dtype_policy(precision):
                timed = compile_steps(jit_steps(model, entry, paper_batch, rng))
            source_ = f"paper (out of memory at {jitted.batch})"
            timing = time_steps(timed, steps)
        status = "ok" if timing["finite_loss"] else "failed: non-finite loss"
        return {
            "batch": timed.batch,
            "batch_source": source_,
            "paper_batch": paper_batch,
            **timing,
            "status": status,
            "parameters": model.count_params(),
            "input_shape": list(model.inputs[0].shape[1:]),
            "family": None if peer else entry.family,
            "baseline": None if peer else entry.baseline,
        }

    return Job(item, [jitted], finish)


def out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def error_status(error: BaseException) -> str:
    return f"failed: {type(error).__name__}: {' '.join(str(error).split())[:300]}"


class Records:
    """Appends JSON lines to the records file (flushed: the parent may stop us)."""

    def __init__(self, path: Path):
        self.stream = open(path, "a", encoding="utf-8")

    def write(self, kind: str, **fields: Any) -> None:
        self.stream.write(json.dumps({"kind": kind, **fields}, default=str) + "\n")
        self.stream.flush()


class Guard:
    """Starts an item only while the deadline leaves the longest item so far."""

    def __init__(self, deadline: float, min_item_s: float):
        self.deadline, self.longest = deadline, min_item_s

    def allows(self) -> bool:
        return time.time() + self.longest <= self.deadline

    def took(self, seconds: float) -> None:
        self.longest = max(self.longest, seconds)


def run_jobs(
    items: Sequence[dict[str, Any]],
    make_job: Callable[[dict[str, Any]], Job],
    records: Records,
    guard: Guard,
    workers: int,
) -> None:
    """Prepares each item (tracing, in this thread), compiles ``workers`` of them at once
    in threads, finishes them in order; a failure is the item's record, not the end."""
    records.write("plan", phase=items[0]["phase"] if items else None, items=list(items))
    pending: collections.deque[Job] = collections.deque()
    with ThreadPoolExecutor(max(1, workers)) as pool:

        def finish(job: Job) -> None:
            try:
                for future in job.futures:
                    future.result()
                record = job.finish()
            except Exception as error:  # noqa: BLE001  (a model that fails to compile or fit is a row)
                record = {"status": error_status(error), "out_of_memory": out_of_memory(error)}
            guard.took(time.perf_counter() - job.started)
            records.write("result", **job.item, **record, seconds=time.perf_counter() - job.started)

        for item in items:
            if not guard.allows():
                records.write("result", **item, status=SKIPPED)
                continue
            records.write("start", **item)
            try:
                job = make_job(item)
            except Exception as error:  # noqa: BLE001
                records.write("result", **item, status=error_status(error))
                continue
            job.futures = [pool.submit(compile_steps, steps) for steps in job.steps]
            pending.append(job)
            while len(pending) >= max(1, workers):
                finish(pending.popleft())
        while pending:
            finish(pending.popleft())


# --------------------------------------------------------------------------- phases


def write_environment(records: Records) -> None:
    device = jax.devices()[0]
    records.write(
        "environment",
        device=str(device),
        platform=device.platform,
        jax=jax.__version__,
        keras=keras.__version__,
        backend=keras.backend.backend(),
        matmul_precision=str(jax.config.jax_default_matmul_precision),
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        tensorflow_loaded="tensorflow" in sys.modules,
    )


def run_correctness(args: argparse.Namespace, records: Records, guard: Guard) -> None:
    """SANet's segment ops, then every model's correctness job."""
    rng = np.random.default_rng(0)
    records.write("segment_ops", **segment_ops_check(rng))
    items = [{"phase": "correctness", "model": name} for name in args.models]
    run_jobs(
        items, lambda item: correctness_job(item, args.size, args.precisions, rng), records, guard, args.compile_workers
    )


def run_speed(args: argparse.Namespace, records: Records, guard: Guard) -> None:
    """The matmul rates, then every (model, precision) of :func:`speed_items`, one at a time."""
    rng = np.random.default_rng(0)
    size, repeats = (512, 3) if args.size == "small" else (8192, 10)
    records.write("matmul_rates", size=size, **matmul_rates(size, repeats))
    names = list(args.models) + [
        peer for peer, (_, counterpart) in KERAS_PEERS.items() if args.keras_peers and counterpart in args.models
    ]
    items = [
        {"phase": "speed", "model": name, "precision": precision, "peer": name in KERAS_PEERS}
        for name, precision in speed_items(names, args.precisions)
    ]
    seen: dict[str, tuple[int, tuple]] = {}
    run_jobs(
        items,
        lambda item: speed_job(
            item, args.size, args.batch_size.get(item["model"], args.batch_size.get("*")), args.steps, seen, rng
        ),
        records,
        guard,
        1,
    )
    records.write("device_memory", peak_bytes=(jax.devices()[0].memory_stats() or {}).get("peak_bytes_in_use"))


def _batch_sizes(values: Sequence[str]) -> dict[str, int]:
    sizes = {}
    for value in values or ():
        name, _, number = value.rpartition("=")
        if not number.isdigit() or int(number) < 1:
            raise argparse.ArgumentTypeError(f"--batch-sizes: expected N or NAME=N with N >= 1, got {value!r}")
        sizes[name or "*"] = int(number)
    return sizes


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=("correctness", "speed"), required=True)
    parser.add_argument("--records", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=None, help="registered names (default: all)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--size", choices=("paper", "small"), default="paper")
    parser.add_argument("--batch-sizes", nargs="+", default=[], help="N for every model or NAME=N")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=math.inf, help="UNIX time after which no item starts")
    parser.add_argument("--compile-workers", type=int, default=1)
    parser.add_argument("--min-item-s", type=float, default=0.0)
    parser.add_argument("--keras-peers", action="store_true")
    args = parser.parse_args(argv)
    args.batch_size = _batch_sizes(args.batch_sizes)
    known = [entry.name for entry in list_models()]
    unknown = [name for name in args.models or () if name not in known]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {known}")
    args.models = args.models or known
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if keras.backend.backend() != "jax":
        raise SystemExit(f"bench_jax: Keras runs on {keras.backend.backend()!r}; set KERAS_BACKEND=jax.")
    records, guard = Records(args.records), Guard(args.deadline, args.min_item_s)
    write_environment(records)
    {"correctness": run_correctness, "speed": run_speed}[args.phase](args, records, guard)
    records.write("end", phase=args.phase)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
