"""LiteRT (TensorFlow Lite) export for phones, with the model's preprocessing inside.

    export_litert(model, "aernet.tflite", input_spec=spec)                     # float32
    export_litert(model, "aernet_int8.tflite", input_spec=spec, quantization="int8",
                  representative_images=[...uint8 images...])
    python -m zoo.export --litert --run runs/aernet --out aernet.tflite      # a run folder
    python -m zoo.export --litert --model aernet --weights best.weights.h5 --out aernet.tflite
    python reproduce/litert_table.py --models unet sanet --out litert_table.md  # the measurement table

The model is fed and read as :class:`zoo.serving.ModelIO` says (its image input,
label map and outputs), the same as in :mod:`zoo.export` and :mod:`zoo.predict`.

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
  :func:`zoo.serving.compute_superpixels`, scikit-image's SLIC) and must keep its
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
measured on this stack (tests/test_litert.py, ``python reproduce/litert_table.py``):
float32 within :data:`FLOAT32_TOLERANCE` of Keras; see :data:`TOLERANCES`.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

from data_tools.atomic import atomic_write_bytes
from data_tools.lazy_tensorflow import require_tensorflow
from data_tools.preprocess import InputSpec, preprocess_images
from zoo.serving import IMAGES_INPUT, SERVING_DEFAULT, ModelIO, compute_extra_input

tf = require_tensorflow("the LiteRT export (zoo.litert)")

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
SIGNATURE = SERVING_DEFAULT
FLOAT32_TOLERANCE = 1e-4
#: Max |LiteRT - Keras| on probabilities allowed by the tests per mode (the test
#: models: a small U-Net fitted to synthetic lesions). The README's table has every
#: registered model's (small, random weights): float32, float16 and dynamic main
#: outputs are within these; int8 is not for six segmenters, nor attention maps.
TOLERANCES: Mapping[str | None, float] = {None: FLOAT32_TOLERANCE, "float16": 1e-2, "dynamic": 5e-2, "int8": 0.3}
#: Spec resize methods whose TF op has no LiteRT builtin.
UNSUPPORTED_RESIZE = ("bicubic", "area")
_INTERPRETER_HINT = "pip install ai-edge-litert (the medattn-zoo[litert] extra)"
#: The start of the warning TensorFlow's own interpreter gives at every use.
DEPRECATED_INTERPRETER_WARNING = r"\s*Warning: tf\.lite\.Interpreter is deprecated"


class LiteRTConversionError(RuntimeError):
    """The converter refused the model; ``ops`` names what it could not convert and where."""

    def __init__(self, model_name: str, quantization: str | None, ops: list[str], detail: str):
        self.ops, self.detail = ops, detail
        listed = "; ".join(ops) if ops else detail
        super().__init__(f"model {model_name!r} does not convert to LiteRT ({quantization or 'float32'}): {listed}")


def _interpreter_class():
    """ai-edge-litert's interpreter; TensorFlow's own copy (``tf.lite.Interpreter``)
    is deprecated there and warns so at every use."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError(f"no LiteRT interpreter: {_INTERPRETER_HINT}") from None
    return Interpreter


def serving_function(model: keras.Model, spec: InputSpec, max_segments: int | None = None):
    """``(images uint8 [1, h, w, 3][, map int32 [1, h, w]]) -> {name: float32}``: the
    preprocessing and the model as one TF function (what is converted), and the
    model's label-map input (:class:`zoo.serving.LabelMapInput`) or ``None``."""
    io = ModelIO.of(model, max_segments=max_segments, caller="export_litert")
    io.check_spec(model, spec, "export_litert")
    if spec.resize in UNSUPPORTED_RESIZE:
        raise ValueError(
            f"InputSpec.resize={spec.resize!r} has no LiteRT builtin (TF's Resize{spec.resize.title()}); "
            "export with resize='bilinear' or resize on the phone before the model."
        )

    def serve(images: tf.Tensor, superpixels: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        maps = None
        if io.label_map is not None:
            # a reshape, not [..., None]: LiteRT has no StridedSlice with a new axis
            maps = tf.reshape(superpixels, tf.concat([tf.shape(superpixels), [1]], 0))
            maps = io.model_maps(maps, spec, through_float=True)
        return io.run(model, preprocess_images(images, spec), maps)

    return serve, io.label_map


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
            the model's size: :func:`zoo.serving.spec_for_model`).
        quantization: one of :data:`QUANTIZATIONS`.
        representative_images: ``"int8"``: uint8 ``[h, w, 3]`` images to
            calibrate on (a few dozen real ones; at ``input_size`` if given, else
            any sizes).
        representative_superpixels: SANet with ``"int8"``: their maps; computed
            with :func:`zoo.serving.compute_superpixels` if omitted.
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
    if input_size is not None and (
        len(tuple(input_size)) != 2
        or not all(
            isinstance(side, (int, np.integer)) and not isinstance(side, bool) and side > 0 for side in input_size
        )
    ):
        raise ValueError(f"input_size must be None or (height, width), two positive ints, got {input_size!r}.")
    serve, label_map = serving_function(model, input_spec, max_segments)
    height, width = input_size if input_size is not None else (None, None)
    signature = [tf.TensorSpec([1, height, width, 3], tf.uint8, name=IMAGES_INPUT)]
    if label_map is not None:
        signature.append(tf.TensorSpec([1, height, width], tf.int32, name=label_map.name))
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
                representative_images, representative_superpixels, label_map, input_size
            )
        try:
            with warnings.catch_warnings():
                # int8: TensorFlow's calibrator reads the named calibration inputs with its own
                # tf.lite.Interpreter, which warns that it is deprecated: TensorFlow's internals,
                # nothing this code or its user runs (LiteRTModel runs ai-edge-litert's).
                warnings.filterwarnings("ignore", DEPRECATED_INTERPRETER_WARNING, UserWarning)
                flatbuffer = converter.convert()
        except Exception as error:  # the converter raises ConverterError and friends
            raise LiteRTConversionError(
                model.name, quantization, unsupported_ops(str(error)), " ".join(str(error).split())[:500]
            ) from None
    return atomic_write_bytes(path, flatbuffer)  # whole or not at all: a full disk leaves no truncated .tflite


def _representative(images, superpixels, label_map, input_size):
    def generate() -> Iterable[dict[str, np.ndarray]]:
        for index, image in enumerate(images):
            image = np.asarray(image, np.uint8)
            if input_size is not None and image.shape[:2] != tuple(input_size):
                image = tf.cast(tf.round(tf.image.resize(image, input_size)), tf.uint8).numpy()
            feeds = {IMAGES_INPUT: image[None]}
            if label_map is not None:
                labels = (
                    superpixels[index]
                    if superpixels is not None
                    else compute_extra_input(label_map.name, image, label_map.max_segments)
                )
                feeds[label_map.name] = np.asarray(labels, np.int32)[None]
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
        #: the label-map input's name (SANet's superpixels), or None
        self.label_map = next((name for name in self.inputs if name != IMAGES_INPUT), None)
        self.max_segments = max_segments

    def predict(self, image: np.ndarray, superpixels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Outputs for one uint8 ``[h, w, 3]`` image (and its ``[h, w]`` map), batch axis removed."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(
                f"{self.path.name}: expected a uint8 [height, width, 3] RGB image of positive height "
                f"and width, got {image.dtype} {image.shape}."
            )
        feeds = {IMAGES_INPUT: image[None]}
        if self.label_map is not None:
            if superpixels is None:
                raise ValueError(f"{self.path.name} takes a superpixel map beside the image (SLIC is not inside).")
            superpixels = np.asarray(superpixels, np.int32)
            if superpixels.shape != image.shape[:2]:
                raise ValueError(
                    f"{self.path.name}: the superpixel map is {superpixels.shape}, the image "
                    f"{image.shape[:2]}; they must match."
                )
            if self.max_segments is not None and (superpixels.min() < 0 or superpixels.max() >= self.max_segments):
                raise ValueError(f"{self.path.name}: superpixel labels must lie in [0, {self.max_segments}).")
            feeds[self.label_map] = superpixels[None]
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


def keras_reference(
    model: keras.Model, spec: InputSpec, image: np.ndarray, superpixels: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The same outputs from Keras (the function :func:`export_litert` converts, run in TF)."""
    serve, label_map = serving_function(model, spec)
    args = [tf.constant(image[None])]
    if label_map is not None:
        args.append(tf.constant(np.asarray(superpixels, np.int32)[None]))
    return {name: value.numpy()[0] for name, value in serve(*args).items()}


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zoo.litert``: says where conversion and the measurement table are."""
    print(
        "zoo.litert: convert a trained model with python -m zoo.export --litert (--run RUN | --model NAME "
        "--weights CKPT) --out MODEL.tflite; the per-model measurement table is python "
        "reproduce/litert_table.py [--models ...] [--out litert_table.md].",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
