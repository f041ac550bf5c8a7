"""SavedModel export for TF Serving, with the model's preprocessing inside.

A served model must see exactly the pixels it was trained on, so the exported
signatures take raw images and run :func:`data_tools.preprocess.preprocess_images`
with the model's :class:`~data_tools.preprocess.InputSpec` (resize, colour space,
scale) before the model:

* ``serving_default``: ``images``, uint8 ``[batch, height, width, 3]`` of any
  height and width (all images of one request share a size);
* ``serving_bytes``: ``encoded``, string ``[batch]`` of JPEG/PNG/BMP/GIF files,
  decoded to RGB and preprocessed one by one, so their sizes may differ.

Both return a dict of float32 outputs named after the model's outputs (the output
layers' names, or the keys of a dict-output model): the probabilities and, for
attention models built to return them, the attention maps.

The spec is also written as JSON to ``<path>/assets.extra/input_spec.json``
(the SavedModel folder for files the graph does not use; TF Serving ignores it),
so clients can read it back with :func:`load_input_spec`.

Example::

    export_saved_model(model, "serving/aernet/1", input_spec=AERNET_INPUT)
    # saved_model_cli show --dir serving/aernet/1 --all
    # tensorflow_model_server --model_base_path=$PWD/serving/aernet ...
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import keras
import tensorflow as tf

from data_tools.preprocess import InputSpec, preprocess_images

SERVING_DEFAULT = "serving_default"
SERVING_BYTES = "serving_bytes"
IMAGES_INPUT = "images"
ENCODED_INPUT = "encoded"
SPEC_FILE = os.path.join("assets.extra", "input_spec.json")  # tf.compat.v1.saved_model.EXTRA_ASSETS_DIRECTORY

_IMAGES_SHAPE = "[batch, height, width, 3]"


def export_saved_model(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    input_spec: InputSpec,
    output_names: Sequence[str] | None = None,
    accept_encoded: bool = True,
) -> str:
    """Writes ``model`` as a SavedModel whose signatures take raw images.

    Args:
        model: a model with one image input ``(height, width, 3)``; height and
            width are ``input_spec.image_size`` or ``None``.
        path: the SavedModel folder, e.g. ``".../<model name>/<version>"`` for TF
            Serving (local or any ``tf.io.gfile`` location).
        input_spec: the model's input description; the same one its training
            pipeline used.
        output_names: names of the signature outputs, one per model output in the
            model's order; default: the model's own output names.
        accept_encoded: also add the ``serving_bytes`` signature.

    Returns:
        ``path`` as a string.

    Raises:
        NotImplementedError: the model has more than one input (e.g. SANet's
            superpixel map, which cannot be computed from the image in the graph).
        ValueError: the model's image input does not match ``input_spec``, or
            ``output_names`` does not match the model's outputs.
    """
    if not isinstance(input_spec, InputSpec):
        raise TypeError(f"input_spec must be a data_tools.preprocess.InputSpec, got {type(input_spec).__name__}.")
    _check_image_input(model, input_spec)
    names = _output_names(model, output_names)

    def predict(batch: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model(batch, training=False)
        flat = list(outputs.values()) if isinstance(outputs, Mapping) else keras.tree.flatten(outputs)
        return {name: _as_float32(output) for name, output in zip(names, flat)}

    def serve_images(images: tf.Tensor) -> dict[str, tf.Tensor]:
        """uint8 images [batch, height, width, 3] of any size -> named outputs."""
        return predict(preprocess_images(_checked_images(images), input_spec))

    def serve_encoded(encoded: tf.Tensor) -> dict[str, tf.Tensor]:
        """JPEG/PNG files [batch] -> named outputs."""
        rank_check = tf.debugging.assert_rank(
            encoded, 1, message=f"{ENCODED_INPUT}: expected a [batch] vector of encoded JPEG/PNG images"
        )
        batch = tf.map_fn(
            lambda image: preprocess_images(_decode_rgb(image), input_spec),
            _after_checks(encoded, [rank_check], [None]),
            fn_output_signature=tf.TensorSpec(input_spec.input_shape, tf.float32),
        )
        return predict(batch)

    archive = keras.export.ExportArchive()
    archive.track(model)
    # The first endpoint becomes the SavedModel's serving_default signature. The
    # inputs are declared with unknown rank: a loaded signature does not enforce a
    # declared shape, and a declared rank would let tf.debugging.assert_rank decide
    # at trace time and drop the runtime check, so a wrong rank would fail deep in
    # the graph instead of with the asserts' messages.
    archive.add_endpoint(
        SERVING_DEFAULT, serve_images, input_signature=[tf.TensorSpec(None, tf.uint8, name=IMAGES_INPUT)]
    )
    if accept_encoded:
        archive.add_endpoint(
            SERVING_BYTES, serve_encoded, input_signature=[tf.TensorSpec(None, tf.string, name=ENCODED_INPUT)]
        )
    path = os.fspath(path)
    archive.write_out(path, verbose=False)
    spec_path = os.path.join(path, SPEC_FILE)
    tf.io.gfile.makedirs(os.path.dirname(spec_path))
    with tf.io.gfile.GFile(spec_path, "w") as file:
        file.write(input_spec.to_json())
    return path


def load_input_spec(path: str | os.PathLike) -> InputSpec:
    """The :class:`InputSpec` written beside a SavedModel by :func:`export_saved_model`."""
    spec_path = os.path.join(os.fspath(path), SPEC_FILE)
    if not tf.io.gfile.exists(spec_path):
        raise FileNotFoundError(f"{spec_path}: no input spec; was {path} written by zoo.export.export_saved_model?")
    with tf.io.gfile.GFile(spec_path) as file:
        return InputSpec.from_json(file.read())


def _check_image_input(model: keras.Model, spec: InputSpec) -> None:
    if len(model.inputs) > 1:
        extra = ", ".join(repr(tensor.name) for tensor in model.inputs[1:])
        raise NotImplementedError(
            f"export_saved_model: model {model.name!r} has {len(model.inputs)} inputs; only the image "
            f"input can be computed from raw images in the serving graph, not {extra}."
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            f"export_saved_model: model {model.name!r} input has shape {shape}; expected (batch, height, width, 3)."
        )
    if any(size is not None and size != expected for size, expected in zip(shape[1:3], spec.image_size)):
        raise ValueError(
            f"export_saved_model: model {model.name!r} input is {shape[1:3]} but input_spec.image_size is "
            f"{spec.image_size}."
        )


def _output_names(model: keras.Model, output_names: Sequence[str] | None) -> list[str]:
    structure = model.output
    default = list(structure) if isinstance(structure, Mapping) else list(model.output_names)
    if output_names is None:
        return default
    names = list(output_names)
    if len(names) != len(default) or len(set(names)) != len(names):
        raise ValueError(
            f"export_saved_model: output_names must be {len(default)} distinct names, one per output of "
            f"{model.name!r} ({default}), got {names}."
        )
    return names


def _checked_images(images: tf.Tensor) -> tf.Tensor:
    """Asserts a uint8 batch ``[batch, height, width, 3]`` with non-empty images.

    The checks slice the shape (``[-1:]``, ``[1:3]``) rather than index it, so that
    none of them can fail on a wrong rank before the rank check reports it.
    """
    shape = tf.shape(images)
    checks = [
        tf.debugging.assert_rank(images, 4, message=f"{IMAGES_INPUT}: expected uint8 {_IMAGES_SHAPE}; got another rank"),
        tf.debugging.assert_equal(
            shape[-1:], 3, message=f"{IMAGES_INPUT}: expected uint8 {_IMAGES_SHAPE} (RGB); got another channel count"
        ),
        tf.debugging.assert_positive(shape[1:3], message=f"{IMAGES_INPUT}: height and width must be positive"),
    ]
    return _after_checks(images, checks, [None, None, None, 3])


def _after_checks(tensor: tf.Tensor, checks: list, shape: list[int | None]) -> tf.Tensor:
    """``tensor`` with the static ``shape``, computed only once ``checks`` passed.

    Not ``tf.ensure_shape``: the runtime tests it against the call's actual input
    shape before running the asserts, so its own error would win.
    """
    with tf.control_dependencies(checks):
        tensor = tf.identity(tensor)
    tensor.set_shape(shape)
    return tensor


def _decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)


def _as_float32(tensor: tf.Tensor) -> tf.Tensor:
    return tf.cast(tensor, tf.float32) if tensor.dtype.is_floating else tensor
