"""The LiteRT measurement table: every registered model (small, random weights) converted
in every mode and compared with Keras on synthetic dermoscopy-like images.

    python reproduce/litert_table.py --models unet sanet --out litert_table.md
    python reproduce/litert_table.py                   # every registered model, 4 modes

For each model and mode (float32, float16, dynamic, int8) a row says whether it converts
(or which op the converter refused), the file size, max |LiteRT - Keras| of the main
output and of the attention maps, the Dice against the lesion masks (mask models, first
channel at 0.5) or AUC against the labels (classifiers, last column), Keras -> LiteRT,
and the agreement with Keras (Dice of the two thresholded masks, or the share of equal
arg-max classes). 1-3 min per model on a CPU; the markdown file is rewritten after each
model, so partial results survive a kill.

The conversion is :func:`zoo.litert.export_litert`'s (the library); this script only
measures it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
from tqdm import tqdm

from zoo.litert import QUANTIZATIONS, LiteRTConversionError, LiteRTModel, export_litert, keras_reference
from zoo.registry import ModelEntry, get_model, list_models
from zoo.serving import ModelIO, at_original_size, attention_kwargs, compute_extra_input, spec_for_model

MODES = ("float32", "float16", "dynamic", "int8")


@dataclasses.dataclass
class TableRow:
    model: str
    quantization: str
    converts: bool
    size_bytes: int = 0
    max_diff_main: float = float("nan")
    max_diff_attention: float = float("nan")
    score_name: str = ""
    score_keras: float = float("nan")
    score_litert: float = float("nan")
    agreement: float = float("nan")
    seconds: float = 0.0
    problem: str = ""


def synthetic_set(count: int, seed: int = 0):
    """Dermoscopy-like uint8 images of varied sizes with lesion masks and 0/1 labels."""
    from data_tools.synthetic import MELANOMA, NEVUS, render_dermoscopy

    rng = np.random.default_rng(seed)
    images, masks, labels = [], [], []
    for index in range(count):
        size = (int(rng.integers(56, 97)), int(rng.integers(56, 97)))
        sample = render_dermoscopy(rng, size, kind=MELANOMA if index % 2 else NEVUS)
        images.append(sample.image)
        masks.append(sample.lesion)
        labels.append(index % 2)
    return images, masks, np.array(labels)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    from zoo.metrics import Confusion

    return Confusion.of(a, b).dice()


def measure_model(
    entry: ModelEntry, out_dir: Path, count: int = 8, modes: Sequence[str | None] = QUANTIZATIONS, seed: int = 0
) -> list[TableRow]:
    """Converts ``entry``'s small model (random weights drawn with ``seed``; with its
    attention maps as outputs) in every mode and compares it with Keras on a synthetic
    set: max |LiteRT - Keras| of the main output and of the attention maps; Dice
    against the lesion masks (mask models, first channel at 0.5) or AUC against the
    labels (classifiers, last column), Keras and LiteRT."""
    from sklearn.metrics import roc_auc_score

    keras.utils.set_random_seed(seed)  # the same weights on every run
    model = entry.build(small=True, **attention_kwargs(entry))
    io = ModelIO.of(model, main=entry.output)
    spec = spec_for_model(entry.input_spec, io.image_size)
    images, masks, labels = synthetic_set(count)
    maps = (
        None
        if io.label_map is None
        else [compute_extra_input(io.label_map.name, image, io.label_map.max_segments) for image in images]
    )
    reference = [
        keras_reference(model, spec, image, None if maps is None else maps[k]) for k, image in enumerate(images)
    ]
    main = io.main

    def score(outputs: list[dict[str, np.ndarray]]) -> tuple[str, float]:
        if entry.output == "mask":
            dice = [
                _dice(m, at_original_size(o[main], m.shape, spec)[..., 0] > 0.5)
                for m, o in zip(masks, outputs, strict=True)
            ]
            return "dice", float(np.mean(dice))
        return "auc", float(roc_auc_score(labels, [o[main].ravel()[-1] for o in outputs]))

    name, keras_score = score(reference)
    rows = []
    for mode in modes:
        row = TableRow(entry.name, mode or "float32", False, score_name=name, score_keras=keras_score)
        started = time.perf_counter()
        path = out_dir / f"{entry.name}_{mode or 'float32'}.tflite"
        try:
            export_litert(
                model,
                path,
                input_spec=spec,
                quantization=mode,
                representative_images=images,
                representative_superpixels=maps,
            )
            lite = LiteRTModel(path)
            outputs = [lite.predict(image, None if maps is None else maps[k]) for k, image in enumerate(images)]
        except (LiteRTConversionError, ValueError, RuntimeError) as error:
            row.problem = str(error)
            row.seconds = time.perf_counter() - started
            rows.append(row)
            continue
        row.converts, row.size_bytes = True, path.stat().st_size
        diffs = {
            k: max(float(np.max(np.abs(o[k] - r[k]))) for o, r in zip(outputs, reference, strict=True))
            for k in reference[0]
        }
        row.max_diff_main = diffs.pop(main)
        row.max_diff_attention = max(diffs.values()) if diffs else float("nan")
        _, row.score_litert = score(outputs)
        if entry.output == "mask":
            row.agreement = float(
                np.mean(
                    [
                        _dice(o[main][..., 0] > 0.5, r[main][..., 0] > 0.5)
                        for o, r in zip(outputs, reference, strict=True)
                    ]
                )
            )
        else:
            row.agreement = float(
                np.mean([np.argmax(o[main]) == np.argmax(r[main]) for o, r in zip(outputs, reference, strict=True)])
            )
        row.seconds = time.perf_counter() - started
        path.unlink()
        rows.append(row)
    return rows


def _format(value: float, digits: str = ".1e") -> str:
    return "" if value != value else format(value, digits)


def markdown_table(rows: Sequence[TableRow]) -> str:
    lines = [
        "| model | mode | converts | size | max abs diff (main) | max abs diff (attention) | "
        "score Keras -> LiteRT | agreement with Keras | problem |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        size = f"{row.size_bytes / 2**20:.2f} MiB" if row.converts else ""
        score = f"{row.score_name} {row.score_keras:.3f} -> {row.score_litert:.3f}" if row.converts else ""
        agreement = "" if not row.converts else f"{row.agreement:.3f}"
        lines.append(
            f"| {row.model} | {row.quantization} | {'yes' if row.converts else 'no'} | {size} | "
            f"{_format(row.max_diff_main)} | {_format(row.max_diff_attention)} | {score} | {agreement} | "
            f"{row.problem[:200]} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python reproduce/litert_table.py",
        description="LiteRT conversion table of the zoo's registered models (small).",
    )
    parser.add_argument("--models", nargs="+", help="only these registered models (default: all)")
    parser.add_argument("--modes", nargs="+", choices=MODES, help="default: all four")
    parser.add_argument("--images", type=int, default=8, help="synthetic images per model")
    parser.add_argument("--out", type=Path, default=Path("litert_table.md"), help="markdown table written here")
    args = parser.parse_args(argv)
    try:
        entries = [get_model(name) for name in args.models] if args.models else list_models()
    except KeyError as error:
        print(f"litert_table: error: {error.args[0]}", file=sys.stderr)
        return 1
    modes = [None if m == "float32" else m for m in (args.modes or MODES)]
    rows: list[TableRow] = []
    with tempfile.TemporaryDirectory(prefix="litert_table_") as folder:
        for entry in tqdm(entries, desc="LiteRT table", unit="model", disable=None):
            rows += measure_model(entry, Path(folder), args.images, modes)
            args.out.write_text(markdown_table(rows) + "\n", encoding="utf-8")  # partial results survive a kill
            keras.backend.clear_session()
    print(markdown_table(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
