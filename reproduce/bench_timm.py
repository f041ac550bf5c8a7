"""A timm model's training and inference speed in PyTorch: the peer a user would pick instead.

    python reproduce/bench_timm.py --model resnet50 --size 224 --batch 256 [--steps 10] [--compile] --out FILE

What a PyTorch user does for speed on a GPU: bf16 autocast, ``channels_last``, and
``torch.compile`` where asked (:mod:`reproduce.jax_benchmark` asks first, with a time
limit, and runs eager when the compilation does not end in time). The training step is
SGD (momentum 0.9) on a 2-class cross entropy, random inputs; times are means over
``--steps`` calls after two warm-up calls (the first compiles), with the device
synchronised. Writes one JSON object to ``--out``. :func:`run_peer` runs it as a child
process with a time limit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

if __name__ == "__main__":  # a child process: the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reproduce.bench_process import run_child  # noqa: E402


def measure(model_name: str, size: int, batch: int, steps: int, compiled: bool) -> dict[str, Any]:
    import timm
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = timm.create_model(model_name, pretrained=False, num_classes=2).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (batch,), device=device)
    forward = torch.compile(model) if compiled else model

    def synchronise() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(forward(images), labels)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer() -> None:
        with torch.autocast(device, dtype=torch.bfloat16):
            forward(images)

    def mean_seconds(step) -> float:
        for _ in range(2):
            step()
        synchronise()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronise()
        return (time.perf_counter() - start) / steps

    model.train()
    train_s = mean_seconds(train)
    model.eval()
    infer_s = mean_seconds(infer)
    return {
        "name": f"timm_{model_name}",
        "model": model_name,
        "mode": "torch.compile" if compiled else "eager",
        "device": device,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "size": size,
        "batch": batch,
        "train_step_s": train_s,
        "train_img_s": batch / train_s,
        "infer_img_s": batch / infer_s,
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
        "status": "ok",
    }


def installed() -> bool:
    """Whether torch and timm import here (without importing them)."""
    from importlib.util import find_spec

    return find_spec("torch") is not None and find_spec("timm") is not None


def run_peer(
    model_name: str, size: int, batch: int, steps: int, compile_s: float, eager_s: float, out: Path
) -> dict[str, Any]:
    """The peer under ``torch.compile`` in a child process given ``compile_s`` seconds;
    if that fails or runs out of time, eager within ``eager_s``. The result, or a status
    saying why there is none."""
    if not installed():
        return {"status": "not installed (torch and timm)"}
    notes = []
    for compiled, limit in ((True, compile_s), (False, eager_s)):
        if limit <= 0:
            notes.append(f"{'torch.compile' if compiled else 'eager'}: no time left")
            continue
        out.unlink(missing_ok=True)
        command = [
            sys.executable,
            __file__,
            "--model",
            model_name,
            "--size",
            str(size),
            "--batch",
            str(batch),
            "--steps",
            str(steps),
            "--out",
            str(out),
        ] + (["--compile"] if compiled else [])
        status, stderr = run_child(command, limit)
        if status == 0 and out.exists():
            return {**json.loads(out.read_text()), "notes": notes}
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        notes.append(
            f"{'torch.compile' if compiled else 'eager'}: "
            + (f"over {limit:.0f} s" if status is None else f"failed: {last[:200]}")
        )
    return {"status": "failed: " + "; ".join(notes), "size": size, "batch": batch}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = measure(args.model, args.size, args.batch, args.steps, args.compile)
    temporary = args.out.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(result))
    temporary.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
