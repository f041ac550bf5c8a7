"""Throughput of the training pipeline: decode + CIELAB + augmentation + batching.

    python reproduce/bench_pipeline.py [--n 256] [--size 256] [--batch-size 32] [--epochs 3]

Writes ``n`` synthetic ``size`` x ``size`` JPEGs to a temporary folder, builds
:func:`data_tools.pipeline.classification_dataset` with AER-Net's input
(``InputSpec(colour="lab")``) and ARL-CNN's augmentation, and prints images per
second without cache (every epoch decodes) and with the in-memory cache (epochs
after the first skip decoding and resizing). The first epoch of each run is
reported separately: it includes tracing and, with the cache, filling it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from data_tools.pipeline import classification_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import Record
from zoo.arl_cnn.recipe import ARL_AUGMENTATION


def write_synthetic_jpegs(folder: Path, count: int, size: int, seed: int = 0) -> list[Record]:
    """``count`` smooth random colour images (JPEG quality 90) as records with a dummy label."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
        path = folder / f"synthetic_{index:05d}.jpg"
        image.save(path, quality=90)
        records.append(Record(path.stem, path, labels={"label": float(index % 2)}))
    return records


def images_per_second(dataset, epochs: int, count: int) -> tuple[float, float]:
    """(first-epoch rate, mean rate of the later epochs) in images per second."""
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        seen = sum(int(images.shape[0]) for images, _ in dataset)
        rates.append(seen / (time.perf_counter() - start))
        if seen != count:
            raise RuntimeError(f"expected {count} images per epoch, got {seen}")
    later = rates[1:] or rates
    return rates[0], float(np.mean(later))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="number of synthetic images (default 256)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run, >= 2 (default 3)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.size < 8 or args.batch_size < 1 or args.epochs < 2:
        parser.error("need --n >= 1, --size >= 8, --batch-size >= 1, --epochs >= 2")

    spec = InputSpec((args.size, args.size), colour="lab")
    with tempfile.TemporaryDirectory(prefix="zoo_benchmark_") as tmp:
        records = write_synthetic_jpegs(Path(tmp), args.n, args.size)
        print(f"{args.n} JPEGs {args.size}x{args.size}, batch {args.batch_size}, CIELAB + ARL augmentation")
        for cache in (False, True):
            dataset = classification_dataset(
                records,
                spec,
                label_names=("label",),
                batch_size=args.batch_size,
                training=True,
                augment=ARL_AUGMENTATION,
                cache=cache,
                drop_remainder=False,
            )
            first, later = images_per_second(dataset, args.epochs, args.n)
            label = "with cache   " if cache else "without cache"
            print(f"{label}: first epoch {first:8.1f} img/s, later epochs {later:8.1f} img/s")


if __name__ == "__main__":
    main()
