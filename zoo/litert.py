"""LiteRT (TensorFlow Lite) export for phones, with the model's preprocessing inside.

    export_litert(model, "aernet.tflite", input_spec=spec)                     # float32
    export_litert(model, "aernet_int8.tflite", input_spec=spec, quantization="int8",
                  representative_images=[...uint8 images...])
    python -m zoo.export --litert --model aernet --weights best.weights.h5 --out aernet.tflite
    python -m zoo.litert --table          # every registered model, small size, 4 modes

The ``.tflite`` file has one signature, ``serving_default``:

* ``images``: uint8 ``[1, height, width, 3]`` RGB. By default height and width
  are dynamic: any camera frame is resized inside, exactly as
  :func:`data_tools.preprocess.preprocess_images` does in training (gray-world,
  fit by stretch/pad/crop, bilinear resize, centre crop, CIELAB, scaling are all
  LiteRT builtins: RESIZE_BILINEAR, PAD, STRIDED_SLICE, MEAN, EXP, LOG, ...). The
  interpreter reallocates for each new size (``resize_tensor_input``;
  :class:`LiteRTModel` and the signature runner do it); pass ``input_size`` for a
  fixed frame size instead (faster, and what most phone delegates need).
* SANet only: ``superpixels``, int32 ``[1, height, width]`` at the image's size.
  **SLIC has no LiteRT (or TensorFlow) op**: the app computes the map (e.g.
  :func:`zoo.predict.compute_superpixels`, scikit-image's SLIC) and must keep its
  labels below the model's ``max_segments``; LiteRT has no assert op, so the
  graph cannot check it (:class:`LiteRTModel` does, in Python). The map is
  resized inside with nearest neighbour as a float tensor (LiteRT has no int32
  RESIZE_NEAREST_NEIGHBOR kernel) and cast back, exact for labels < 2**24.
* outputs: float32, named like the model's outputs (``mask`` or ``probabilities``
  and, for models built with ``return_attention``, every attention map).

What cannot be inside: SLIC (above); ``InputSpec.resize="bicubic"`` or
``"area"`` (TF's ResizeBicubic and ResizeArea have no LiteRT builtin; no registered
spec uses them); a batch of several images (the signature takes one image).

Quantisation (``quantization=``): ``None`` float32; ``"float16"`` float16
weights (computed in float32 on CPU); ``"dynamic"`` int8 weights, float
activations; ``"int8"`` int8 weights and activations calibrated on
``representative_images`` (uint8 images; their sizes may differ), ops without
an int8 kernel (the CIELAB power, segment sums, ...) stay float. Tolerances
measured on this stack (tests/test_litert.py, ``python -m zoo.litert --table``):
float32 within :data:`FLOAT32_TOLERANCE` of Keras; see :data:`TOLERANCES`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from data_tools.preprocess import InputSpec, preprocess_images, preprocess_label_maps

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
SIGNATURE = "serving_default"
IMAGES_INPUT = "images"
FLOAT32_TOLERANCE = 1e-4
#: Max |LiteRT - Keras| on probabilities allowed by the tests per mode (the test
#: models: a small U-Net fitted to synthetic lesions). The README's table has every
#: registered model's (small, random weights): float32, float16 and dynamic main
#: outputs are within these; int8 is not for six segmenters, nor attention maps.
TOLERANCES: Mapping[str | None, float] = {None: FLOAT32_TOLERANCE, "float16": 1e-2, "dynamic": 5e-2, "int8": 0.3}
#: Spec resize methods whose TF op has no LiteRT builtin.
UNSUPPORTED_RESIZE = ("bicubic", "area")
_INTERPRETER_HINT = "pip install ai-edge-litert (the medattn-zoo[litert] extra)"


class LiteRTConversionError(RuntimeError):
    """The converter refused the model; ``ops`` names what it could not convert and where."""

    def __init__(self, model_name: str, quantization: str | None, ops: list[str], detail: str):
        self.ops, self.detail = ops, detail
        listed = "; ".join(ops) if ops else detail
        super().__init__(f"model {model_name!r} does not convert to LiteRT ({quantization or 'float32'}): {listed}")


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # fall back to TensorFlow's own copy (deprecated there)
        try:
            return tf.lite.Interpreter
        except AttributeError:
            raise ImportError(f"no LiteRT interpreter: {_INTERPRETER_HINT}") from None
    return Interpreter


def _image_and_map_inputs(model: keras.Model, max_segments: int | None):
    from zoo.export import _check_image_input, _split_inputs  # one reading of a model's inputs

    return _split_inputs(model, max_segments), _check_image_input


def serving_function(model: keras.Model, spec: InputSpec, max_segments: int | None = None):
    """``(images uint8 [1, h, w, 3][, superpixels int32 [1, h, w]]) -> {name: float32}``:
    the preprocessing and the model as one TF function (what is converted)."""
    (image_index, label_map), check_image = _image_and_map_inputs(model, max_segments)
    check_image(model, image_index, spec)
    if spec.resize in UNSUPPORTED_RESIZE:
        raise ValueError(f"InputSpec.resize={spec.resize!r} has no LiteRT builtin (TF's Resize{spec.resize.title()}); "
                         "export with resize='bilinear' or resize on the phone before the model.")
    names = list(model.output) if isinstance(model.output, Mapping) else list(model.output_names)

    def serve(images: tf.Tensor, superpixels: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        batch = preprocess_images(images, spec)
        inputs: Any = batch
        if label_map is not None:
            maps = tf.reshape(tf.cast(superpixels, tf.float32), tf.concat([tf.shape(superpixels), [1]], 0))
            maps = tf.cast(tf.round(preprocess_label_maps(maps, spec)), tf.int32)
            maps = maps if label_map.rank == 4 else maps[..., 0]
            inputs = [batch, maps] if label_map.index == 1 else [maps, batch]
        outputs = model(inputs, training=False)
        flat = list(outputs.values()) if isinstance(outputs, Mapping) else keras.tree.flatten(outputs)
        return {name: tf.cast(value, tf.float32) for name, value in zip(names, flat)}

    return serve, label_map


def export_litert(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    input_spec: InputSpec,
    quantization: str | None = None,
    representative_images: Sequence[np.ndarray] | None = None,
    representative_superpixels: Sequence[np.ndarray] | None = None,
    input_size: tuple[int, int] | None = None,
    max_segments: int | None = None,
) -> Path:
    """Writes ``model`` with its preprocessing as a ``.tflite`` file (module docs).

    Args:
        model: a zoo model (one image input, SANet's label map beside it).
        path: the ``.tflite`` file.
        input_spec: the model's :class:`~data_tools.preprocess.InputSpec` (at
            the model's size: :func:`zoo.predict.spec_for_model`).
        quantization: one of :data:`QUANTIZATIONS`.
        representative_images: ``"int8"``: uint8 ``[h, w, 3]`` images to
            calibrate on (a few dozen real ones; at ``input_size`` if given, else
            any sizes).
        representative_superpixels: SANet with ``"int8"``: their maps; computed
            with :func:`zoo.predict.compute_superpixels` if omitted.
        input_size: a fixed ``(height, width)`` of the ``images`` input; ``None``:
            any size.
        max_segments: SANet: the label bound (default: the model's).

    Raises:
        ValueError: bad arguments; LiteRTConversionError: the converter refused
        an op (named, with the layer it belongs to).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    if quantization == "int8" and not representative_images:
        raise ValueError("quantization='int8' needs representative_images (uint8 [h, w, 3] images to calibrate on).")
    serve, label_map = serving_function(model, input_spec, max_segments)
    height, width = input_size if input_size is not None else (None, None)
    signature = [tf.TensorSpec([1, height, width, 3], tf.uint8, name=IMAGES_INPUT)]
    if label_map is not None:
        signature.append(tf.TensorSpec([1, height, width], tf.int32, name="superpixels"))
    with tempfile.TemporaryDirectory(prefix="litert_") as saved:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(SIGNATURE, serve, input_signature=signature)
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE])
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            converter.representative_dataset = _representative(
                representative_images, representative_superpixels, label_map, input_size)
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # the converter raises ConverterError and friends
            raise LiteRTConversionError(model.name, quantization, unsupported_ops(str(error)),
                                        " ".join(str(error).split())[:500]) from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    return path


def _representative(images, superpixels, label_map, input_size):
    from zoo.predict import compute_superpixels

    def generate() -> Iterable[dict[str, np.ndarray]]:
        for index, image in enumerate(images):
            image = np.asarray(image, np.uint8)
            if input_size is not None and image.shape[:2] != tuple(input_size):
                image = tf.cast(tf.round(tf.image.resize(image, input_size)), tf.uint8).numpy()
            feeds = {IMAGES_INPUT: image[None]}
            if label_map is not None:
                labels = superpixels[index] if superpixels is not None else compute_superpixels(
                    image, label_map.max_segments)
                feeds["superpixels"] = np.asarray(labels, np.int32)[None]
            yield feeds

    return generate


def unsupported_ops(message: str) -> list[str]:
    """``"<op> in <layer>"`` for each op the converter could not convert, from its message."""
    found = []
    for op, scope in re.findall(r'fused\["(\w+):", "([^"@]+)@', message):
        if op in ("PartitionedCall", "StatefulPartitionedCall"):
            continue  # the function wrappers around the model, not an op of it
        layer = "/".join(scope.split("/")[:-1]) or scope  # the name scope: model/layer/...
        entry = f"{op} in {layer}"
        if entry not in found:
            found.append(entry)
    if not found:
        for names in re.findall(r"TF Select ops: ([^\n]+)", message):
            found += [f"{name.strip()} (no LiteRT builtin)" for name in names.split(",")]
    return found


class LiteRTModel:
    """A ``.tflite`` file of :func:`export_litert`, run with the ai-edge-litert interpreter."""

    def __init__(self, path: str | os.PathLike, max_segments: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such LiteRT model.")
        self.interpreter = _interpreter_class()(model_path=str(self.path))
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.inputs = dict(self.runner.get_input_details())
        self.max_segments = max_segments

    def predict(self, image: np.ndarray, superpixels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Outputs for one uint8 ``[h, w, 3]`` image (and its ``[h, w]`` map), batch axis removed."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"{self.path.name}: expected a uint8 [height, width, 3] image, got {image.dtype} "
                             f"{image.shape}.")
        feeds = {IMAGES_INPUT: image[None]}
        if "superpixels" in self.inputs:
            if superpixels is None:
                raise ValueError(f"{self.path.name} takes a superpixel map beside the image (SLIC is not inside).")
            superpixels = np.asarray(superpixels, np.int32)
            if superpixels.shape != image.shape[:2]:
                raise ValueError(f"{self.path.name}: the superpixel map is {superpixels.shape}, the image "
                                 f"{image.shape[:2]}; they must match.")
            if self.max_segments is not None and (superpixels.min() < 0 or superpixels.max() >= self.max_segments):
                raise ValueError(f"{self.path.name}: superpixel labels must lie in [0, {self.max_segments}).")
            feeds["superpixels"] = superpixels[None]
        try:
            outputs = self.runner(**feeds)
        except RuntimeError as error:
            raise RuntimeError(f"{self.path.name}: LiteRT failed to run it: {self._failed_op(str(error))}") from None
        return {name: value[0] for name, value in outputs.items()}

    def _failed_op(self, message: str) -> str:
        """The interpreter's message with the failing op's layer (its output tensor's name)."""
        text = " ".join(message.split())
        node = re.search(r"Node number (\d+) \((\w+)\)", text)
        if node:
            try:
                details = self.interpreter._get_ops_details()[int(node.group(1))]
                tensors = self.interpreter.get_tensor_details()
                names = [t["name"] for t in tensors if t["index"] in set(details["outputs"])]
                if names:
                    text += f" [op {node.group(2)} computing {names[0]!r}]"
            except (IndexError, KeyError, AttributeError):
                pass
        return text


def keras_reference(model: keras.Model, spec: InputSpec, image: np.ndarray,
                    superpixels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The same outputs from Keras (the function :func:`export_litert` converts, run in TF)."""
    serve, label_map = serving_function(model, spec)
    args = [tf.constant(image[None])]
    if label_map is not None:
        args.append(tf.constant(np.asarray(superpixels, np.int32)[None]))
    return {name: value.numpy()[0] for name, value in serve(*args).items()}


# --------------------------------------------------------------------------- the per-model table


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


def _synthetic_set(count: int, seed: int = 0):
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


def measure_model(entry, out_dir: Path, count: int = 8, modes: Sequence[str | None] = QUANTIZATIONS,
                  seed: int = 0) -> list[TableRow]:
    """Converts ``entry``'s small model (random weights drawn with ``seed``; with its
    attention maps as outputs) in every mode and compares it with Keras on a synthetic
    set: max |LiteRT - Keras| of the main output and of the attention maps; Dice
    against the lesion masks (mask models, first channel at 0.5) or AUC against the
    labels (classifiers, last column), Keras and LiteRT."""
    from sklearn.metrics import roc_auc_score

    from zoo.predict import attention_kwargs, compute_superpixels, spec_for_model

    keras.utils.set_random_seed(seed)  # the same weights on every run
    model = entry.build(small=True, **attention_kwargs(entry))
    spec = spec_for_model(entry.input_spec, model.inputs[0].shape[1:3])
    images, masks, labels = _synthetic_set(count)
    serve, label_map = serving_function(model, spec)
    maps = [compute_superpixels(i, label_map.max_segments) for i in images] if label_map is not None else None
    reference = [keras_reference(model, spec, image, None if maps is None else maps[k])
                 for k, image in enumerate(images)]
    main = entry.output if entry.output in reference[0] else next(iter(reference[0]))

    def score(outputs: list[dict[str, np.ndarray]], index: int | None = None) -> tuple[str, float]:
        if entry.output == "mask":
            from zoo.predict import at_original_size

            dice = [_dice(m, at_original_size(o[main], m.shape, spec)[..., 0] > 0.5) for m, o in zip(masks, outputs)]
            return "dice", float(np.mean(dice))
        return "auc", float(roc_auc_score(labels, [o[main].ravel()[-1] for o in outputs]))

    name, keras_score = score(reference)
    rows = []
    for mode in modes:
        row = TableRow(entry.name, mode or "float32", False, score_name=name, score_keras=keras_score)
        started = time.perf_counter()
        path = out_dir / f"{entry.name}_{mode or 'float32'}.tflite"
        try:
            export_litert(model, path, input_spec=spec, quantization=mode, representative_images=images,
                          representative_superpixels=maps)
            lite = LiteRTModel(path)
            outputs = [lite.predict(image, None if maps is None else maps[k]) for k, image in enumerate(images)]
        except (LiteRTConversionError, ValueError, RuntimeError) as error:
            row.problem = str(error)
            row.seconds = time.perf_counter() - started
            rows.append(row)
            continue
        row.converts, row.size_bytes = True, path.stat().st_size
        diffs = {k: max(float(np.max(np.abs(o[k] - r[k]))) for o, r in zip(outputs, reference)) for k in reference[0]}
        row.max_diff_main = diffs.pop(main)
        row.max_diff_attention = max(diffs.values()) if diffs else float("nan")
        _, row.score_litert = score(outputs)
        if entry.output == "mask":
            row.agreement = float(np.mean([_dice(o[main][..., 0] > 0.5, r[main][..., 0] > 0.5)
                                           for o, r in zip(outputs, reference)]))
        else:
            row.agreement = float(np.mean([np.argmax(o[main]) == np.argmax(r[main]) for o, r in zip(outputs, reference)]))
        row.seconds = time.perf_counter() - started
        path.unlink()
        rows.append(row)
    return rows


def _format(value: float, digits: str = ".1e") -> str:
    return "" if value != value else format(value, digits)


def markdown_table(rows: Sequence[TableRow]) -> str:
    lines = ["| model | mode | converts | size | max abs diff (main) | max abs diff (attention) | "
             "score Keras -> LiteRT | agreement with Keras | problem |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        size = f"{row.size_bytes / 2**20:.2f} MiB" if row.converts else ""
        score = (f"{row.score_name} {row.score_keras:.3f} -> {row.score_litert:.3f}" if row.converts else "")
        agreement = "" if not row.converts else f"{row.agreement:.3f}"
        lines.append(f"| {row.model} | {row.quantization} | {'yes' if row.converts else 'no'} | {size} | "
                     f"{_format(row.max_diff_main)} | {_format(row.max_diff_attention)} | {score} | {agreement} | "
                     f"{row.problem[:200]} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    import zoo

    parser = argparse.ArgumentParser(prog="python -m zoo.litert", description="LiteRT conversion table of the zoo.")
    parser.add_argument("--table", action="store_true", help="convert every registered model (small) in every mode")
    parser.add_argument("--models", nargs="+", help="only these registered models")
    parser.add_argument("--modes", nargs="+", choices=["float32", "float16", "dynamic", "int8"])
    parser.add_argument("--images", type=int, default=8, help="synthetic images per model")
    parser.add_argument("--out", type=Path, default=Path("litert_table.md"), help="markdown table written here")
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("nothing to do: pass --table (export one model with python -m zoo.export --litert)")
    entries = [zoo.get_model(n) for n in args.models] if args.models else zoo.list_models()
    modes = [None if m == "float32" else m for m in (args.modes or ["float32", "float16", "dynamic", "int8"])]
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
