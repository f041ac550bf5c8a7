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

**Models with a label-map input** (SANet: ``image`` and ``superpixels``, int32
labels ``0 .. max_segments-1``). SLIC has no TensorFlow op, so the client
computes the map (:func:`zoo.sanet.superpixels.slic_superpixels`, with the
training run's :class:`~zoo.sanet.superpixels.SlicParams`) and sends it beside
the image, under the model input's name:

* ``serving_default``: ``images`` as above and ``superpixels``, int32
  ``[batch, height, width]`` or ``[batch, height, width, 1]`` at the images'
  size;
* ``serving_bytes``: ``encoded`` as above and ``superpixels`` at the *decoded*
  images' size; the maps are one dense tensor, so the images of one request
  must decode to one size (send other sizes in other requests).

The graph checks that each map has its image's batch, height and width and that
every label lies in ``[0, max_segments)`` (a label out of range would be pooled
into another image's superpixel under XLA), then resizes the maps to the model's
size with :func:`data_tools.preprocess.preprocess_label_maps`: nearest
neighbour with the images' geometry, as the training pipeline does.
``max_segments`` is read from the model's superpixel layers (or passed, smaller).

The spec is also written as JSON to ``<path>/assets.extra/input_spec.json``
(the SavedModel folder for files the graph does not use; TF Serving ignores it),
so clients can read it back with :func:`load_input_spec`; beside it,
``assets.extra/serving.json`` names the label-map input and its ``max_segments``
(:func:`zoo.serving.load_serving_info`). How a model is fed and read (its image
input, label map, outputs) is :class:`zoo.serving.ModelIO`'s, the same for
:mod:`zoo.predict` and :mod:`zoo.litert`.

Command line (the model from a run folder, or a bare checkpoint with the builder
arguments it was trained with)::

    python -m zoo.export --run runs/danet --out serving/danet/1 --attention
    python -m zoo.export --run runs/aernet --litert --out aernet.tflite \\
        --quantization int8 --representative ISIC2018_Task1-2_Validation_Input
    python -m zoo.export --model danet --weights best.weights.h5 --out serving/danet/1 \\
        [--small] [--builder-args '{"classes": 3}']

Before anything is built the command checks its arguments, each refusal one line:
``--quantization``, ``--input-size`` or ``--representative`` without ``--litert``
(they would be ignored), ``--representative`` without ``--quantization int8``, an
``--input-size`` side below 1, ``--attention`` for a model without attention maps,
and an ``--out`` that is, or holds, the checkpoint or run folder exported. A
checkpoint that cannot be read (cut short, corrupt) or whose weights hold NaN or
infinite values is refused naming the file (:func:`zoo.serving.load_model`); the
``.tflite`` file is written whole or not at all (:mod:`data_tools.atomic`).

Python::

    export_saved_model(model, "serving/aernet/1", input_spec=AERNET_INPUT)
    export_saved_model(sanet, "serving/sanet/1", input_spec=SANET_INPUT)  # + superpixels
    # saved_model_cli show --dir serving/aernet/1 --all
    # tensorflow_model_server --model_base_path=$PWD/serving/aernet ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import keras

from data_tools.atomic import fsync_file, fsync_folder
from data_tools.imageio import load_image
from data_tools.lazy_tensorflow import require_tensorflow
from data_tools.preprocess import InputSpec, preprocess_images
from zoo.registry import get_model
from zoo.serving import (
    ENCODED_INPUT,
    IMAGES_INPUT,
    MODEL_FILE,
    SERVING_BYTES,
    SERVING_DEFAULT,
    SERVING_FILE,
    SPEC_FILE,
    LabelMapInput,
    ModelIO,
    collect_images,
    error_line,
    load_input_spec,
    load_model,
    load_saved_model,
    write_serving_info,
)

tf = require_tensorflow("the SavedModel export (zoo.export)")

__all__ = [
    "ENCODED_INPUT",
    "IMAGES_INPUT",
    "MODEL_FILE",
    "SERVING_BYTES",
    "SERVING_DEFAULT",
    "SERVING_FILE",
    "SPEC_FILE",
    "export_saved_model",
    "load_input_spec",
    "load_saved_model",
    "main",
]


_IMAGES_SHAPE = "[batch, height, width, 3]"
_MAPS_SHAPE = "[batch, height, width] or [batch, height, width, 1]"
_CALLER = "export_saved_model"


def export_saved_model(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    input_spec: InputSpec,
    output_names: Sequence[str] | None = None,
    accept_encoded: bool = True,
    max_segments: int | None = None,
    model_name: str | None = None,
) -> str:
    """Writes ``model`` as a SavedModel whose signatures take raw images.

    Args:
        model: a model with one image input ``(height, width, 3)``; height and
            width are ``input_spec.image_size`` or ``None``. It may have one more
            input, an integer label map ``(height, width, 1)`` or ``(height,
            width)`` (SANet's ``superpixels``), which the signatures then take
            too (module docs).
        path: the SavedModel folder, e.g. ``".../<model name>/<version>"`` for TF
            Serving (local or any ``tf.io.gfile`` location).
        input_spec: the model's input description; the same one its training
            pipeline used.
        output_names: names of the signature outputs, one per model output in the
            model's order; default: the model's own output names.
        accept_encoded: also add the ``serving_bytes`` signature.
        max_segments: the label bound of a label-map input; default: the
            ``max_segments`` of the model's superpixel layers. A smaller value
            is allowed (a stricter check), a larger one is not.
        model_name: the registered model's name, recorded in :data:`MODEL_FILE`
            so that :func:`load_saved_model` refuses the export for another model.

    Returns:
        ``path`` as a string.

    Raises:
        NotImplementedError: the model has inputs other than one image and at
            most one integer label map.
        ValueError: the model's inputs do not match ``input_spec``,
            ``output_names`` does not match the model's outputs, or
            ``max_segments`` is missing or exceeds the model's.
    """
    if not isinstance(input_spec, InputSpec):
        raise TypeError(f"input_spec must be a data_tools.preprocess.InputSpec, got {type(input_spec).__name__}.")
    io = ModelIO.of(model, max_segments=max_segments, caller=_CALLER)
    io.check_spec(model, input_spec, _CALLER)
    label_map = io.label_map
    names = _output_names(model, io, output_names)

    def predict(batch: tf.Tensor, maps: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """Preprocessed images and their maps at the images' size -> named float32 outputs."""
        return io.run(model, batch, None if maps is None else io.model_maps(maps, input_spec), names)

    def serve_images(images: tf.Tensor, maps: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """uint8 images [batch, height, width, 3] of any size (and their maps) -> named outputs."""
        images = _checked_images(images)
        if label_map is not None:
            maps = _checked_label_maps(
                maps, label_map, tf.shape(images)[:3], f"the batch, height and width of {IMAGES_INPUT}"
            )
        return predict(preprocess_images(images, input_spec), maps)

    def serve_encoded(encoded: tf.Tensor, maps: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """JPEG/PNG files [batch] (and their maps at the decoded size) -> named outputs."""
        rank_check = tf.debugging.assert_rank(
            encoded, 1, message=f"{ENCODED_INPUT}: expected a [batch] vector of encoded JPEG/PNG images"
        )
        with tf.control_dependencies([rank_check]):
            batch_check = _assert_some(encoded, ENCODED_INPUT)
        encoded = _after_checks(encoded, [rank_check, batch_check], [None])
        indices = tf.range(tf.shape(encoded)[0])
        if label_map is None:
            batch = tf.map_fn(
                lambda pair: preprocess_images(_decode_rgb(pair[0], pair[1]), input_spec),
                (encoded, indices),
                fn_output_signature=tf.TensorSpec(input_spec.input_shape, tf.float32),
            )
            return predict(batch)
        maps = _checked_label_maps(maps, label_map, tf.shape(encoded), f"one map per {ENCODED_INPUT} image")
        batch = tf.map_fn(
            lambda pair: preprocess_images(_decode_rgb_like(pair[0], pair[1], pair[2], label_map.name), input_spec),
            (encoded, maps, indices),
            fn_output_signature=tf.TensorSpec(input_spec.input_shape, tf.float32),
        )
        return predict(batch, maps)

    signature = [tf.TensorSpec(None, tf.uint8, name=IMAGES_INPUT)]
    bytes_signature = [tf.TensorSpec(None, tf.string, name=ENCODED_INPUT)]
    if label_map is not None:
        map_spec = tf.TensorSpec(None, tf.int32, name=label_map.name)
        signature, bytes_signature = signature + [map_spec], bytes_signature + [map_spec]
    archive = keras.export.ExportArchive()
    archive.track(model)
    # The first endpoint becomes the SavedModel's serving_default signature. The
    # inputs are declared with unknown rank: a loaded signature does not enforce a
    # declared shape, and a declared rank would let tf.debugging.assert_rank decide
    # at trace time and drop the runtime check, so a wrong rank would fail deep in
    # the graph instead of with the asserts' messages.
    archive.add_endpoint(SERVING_DEFAULT, serve_images, input_signature=signature)
    if accept_encoded:
        archive.add_endpoint(SERVING_BYTES, serve_encoded, input_signature=bytes_signature)

    def write(folder: str) -> None:
        archive.write_out(folder, verbose=False)
        _write_json(os.path.join(folder, SPEC_FILE), input_spec.to_json())
        write_serving_info(folder, io)
        _write_json(os.path.join(folder, MODEL_FILE), json.dumps({"model": model_name}))

    path = os.fspath(path)
    _write_folder_atomically(path, write)
    return path


def _write_json(path: str, text: str) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as file:
        file.write(text)


def _write_folder_atomically(path: str, write: Callable[[str], None]) -> None:
    """``write(folder)`` into a temporary folder beside ``path``, then renamed to
    ``path``: a kill or a full disk leaves the previous export (or none), never half
    of one. An existing export there is replaced; a folder of other files is refused.
    Remote ``tf.io.gfile`` locations (``gs://``...) are written in place."""
    if "://" in path:
        write(path)
        return
    target = Path(path).absolute()
    if target.is_dir() and any(target.iterdir()) and not (target / "saved_model.pb").is_file():
        raise ValueError(
            f"{path} holds files that are not a SavedModel; export to a new folder (an existing "
            "export there would be replaced)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        write(str(temporary))
        for file in temporary.rglob("*"):
            if file.is_file():
                fsync_file(file)
        if target.exists():
            previous = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, previous / target.name)
            os.replace(temporary, target)
            shutil.rmtree(previous)
        else:
            os.replace(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    fsync_folder(target.parent)


# --------------------------------------------------------------------------- export-time checks


def _output_names(model: keras.Model, io: ModelIO, output_names: Sequence[str] | None) -> list[str]:
    default = list(io.outputs)
    if output_names is None:
        return default
    names = list(output_names)
    if len(names) != len(default) or len(set(names)) != len(names):
        raise ValueError(
            f"export_saved_model: output_names must be {len(default)} distinct names, one per output of "
            f"{model.name!r} ({default}), got {names}."
        )
    return names


# --------------------------------------------------------------------------- graph-time checks


def _assert_some(batch: tf.Tensor, name: str) -> tf.Operation:
    return tf.debugging.assert_positive(tf.shape(batch)[:1], message=f"{name}: the batch holds no image")


def _checked_images(images: tf.Tensor) -> tf.Tensor:
    """Asserts a uint8 batch ``[batch, height, width, 3]`` of at least one non-empty image.

    The checks slice the shape (``[-1:]``, ``[1:3]``) rather than index it, so that
    none of them can fail on a wrong rank before the rank check reports it.
    """
    shape = tf.shape(images)
    checks = [
        tf.debugging.assert_rank(
            images, 4, message=f"{IMAGES_INPUT}: expected uint8 {_IMAGES_SHAPE}; got another rank"
        ),
        tf.debugging.assert_equal(
            shape[-1:], 3, message=f"{IMAGES_INPUT}: expected uint8 {_IMAGES_SHAPE} (RGB); got another channel count"
        ),
        tf.debugging.assert_positive(shape[1:3], message=f"{IMAGES_INPUT}: height and width must be positive"),
        _assert_some(images, IMAGES_INPUT),
    ]
    return _after_checks(images, checks, [None, None, None, 3])


def _checked_label_maps(maps: tf.Tensor, label_map: LabelMapInput, leading: tf.Tensor, what: str) -> tf.Tensor:
    """Asserts int32 maps of ``_MAPS_SHAPE`` whose leading dimensions are ``leading``
    (described as ``what``) and whose labels lie in ``[0, max_segments)``; returns
    them as ``[batch, height, width, 1]``.

    ``leading`` must come from already checked images, and the shape comparison
    waits for the rank check, so each failure reports its own message.
    """
    name, bound = label_map.name, label_map.max_segments
    rank, shape = tf.rank(maps), tf.shape(maps)
    rank_check = tf.debugging.assert_equal(
        tf.logical_or(tf.equal(rank, 3), tf.equal(rank, 4)),
        True,
        message=f"{name}: expected int32 {_MAPS_SHAPE}; got another rank",
    )
    with tf.control_dependencies([rank_check]):
        channel_check = tf.debugging.assert_equal(
            shape[3:], 1, message=f"{name}: expected int32 {_MAPS_SHAPE}; got more than one channel"
        )
        size_check = tf.debugging.assert_equal(shape[: leading.shape[0]], leading, message=f"{name}: expected {what}")
    label_check = tf.debugging.assert_equal(
        tf.reduce_all(tf.logical_and(maps >= 0, maps < bound)),
        True,
        message=f"{name}: labels must lie in [0, max_segments={bound}); relabel the maps consecutively "
        f"(zoo.sanet.superpixels.relabel_consecutive) and bound them as in training",
    )
    maps = _after_checks(maps, [rank_check, channel_check, size_check, label_check], None)
    maps = tf.reshape(maps, tf.concat([tf.shape(maps)[:3], [1]], axis=0))
    maps.set_shape([None, None, None, 1])
    return maps


def _after_checks(tensor: tf.Tensor, checks: list, shape: list[int | None] | None) -> tf.Tensor:
    """``tensor`` with the static ``shape``, computed only once ``checks`` passed.

    Not ``tf.ensure_shape``: the runtime tests it against the call's actual input
    shape before running the asserts, so its own error would win.
    """
    with tf.control_dependencies(checks):
        tensor = tf.identity(tensor)
    tensor.set_shape(shape)
    return tensor


#: The leading bytes of the formats ``tf.io.decode_image`` reads.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def _decode_rgb(encoded: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """One encoded image decoded to RGB, asserted first to be non-empty and JPEG, PNG,
    GIF or BMP; the assertion names ``index``, its place in the batch."""
    empty = tf.debugging.Assert(
        tf.strings.length(encoded) > 0,
        [tf.strings.format(f"{ENCODED_INPUT}: image {{}} of the batch (counted from 0) is empty (0 bytes)", index)],
    )
    known = tf.reduce_any([tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic) for magic in _MAGIC])
    with tf.control_dependencies([empty]):
        format_check = tf.debugging.Assert(
            known,
            [
                tf.strings.format(
                    f"{ENCODED_INPUT}: image {{}} of the batch (counted from 0) is not a JPEG, PNG, GIF or BMP file",
                    index,
                )
            ],
        )
    with tf.control_dependencies([format_check]):
        return tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)


def _decode_rgb_like(encoded: tf.Tensor, labels: tf.Tensor, index: tf.Tensor, name: str) -> tf.Tensor:
    """One decoded image, asserted to have the height and width of its label map."""
    image = _decode_rgb(encoded, index)
    size_check = tf.debugging.assert_equal(
        tf.shape(image)[:2],
        tf.shape(labels)[:2],
        message=f"{name}: each map must have the height and width of its decoded {ENCODED_INPUT} image "
        f"(the images of one request must decode to one size)",
    )
    return _after_checks(image, [size_check], [None, None, 3])


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m zoo.export",
        description="Export a trained zoo model: a SavedModel folder, or a LiteRT .tflite file with --litert.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--run",
        type=Path,
        help="a run folder (run.json + model.weights.h5): the model, builder arguments and input spec come from it",
    )
    source.add_argument(
        "--weights",
        type=Path,
        help="a bare checkpoint of the whole model (.weights.h5 or .keras); "
        "needs --model (and --small/--builder-args as it was trained)",
    )
    parser.add_argument("--model", help="registered model name (with --weights)")
    parser.add_argument("--out", required=True, help="SavedModel folder, or the .tflite file with --litert")
    parser.add_argument("--small", action="store_true", help="--weights: the registry's small test configuration")
    parser.add_argument(
        "--builder-args", type=json.loads, default={}, help="--weights: JSON builder arguments it was trained with"
    )
    parser.add_argument("--attention", action="store_true", help="also export the attention maps")
    parser.add_argument("--litert", action="store_true", help="write a LiteRT .tflite file")
    parser.add_argument("--quantization", choices=["float16", "dynamic", "int8"], help="--litert quantisation")
    parser.add_argument("--representative", nargs="+", help="--quantization int8: calibration image folders/files")
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="--litert: a fixed input size (default: any size)",
    )
    return parser


def _check_arguments(args: argparse.Namespace) -> None:
    """The command's arguments checked before anything is built or written (one-line
    ``ValueError``s): LiteRT-only options without ``--litert``, sizes that are not
    positive, ``--attention`` for a model without attention maps, and an ``--out``
    that would overwrite or hold the checkpoint or run folder exported."""
    if not args.litert:
        given = [
            flag
            for flag, value in (
                ("--quantization", args.quantization),
                ("--input-size", args.input_size),
                ("--representative", args.representative),
            )
            if value
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} only apply to a LiteRT file: add --litert, or leave "
                f"{'it' if len(given) == 1 else 'them'} out for a SavedModel."
            )
    if args.input_size is not None and min(args.input_size) < 1:
        raise ValueError(
            f"--input-size must be two positive whole numbers (height, width), got "
            f"{' '.join(map(str, args.input_size))}."
        )
    if args.representative and args.quantization != "int8":
        raise ValueError("--representative images calibrate --quantization int8 only; add it or leave them out.")
    source = args.weights if args.weights is not None else args.run
    out, origin = Path(args.out).resolve(), Path(source).resolve()
    if out == origin or out in origin.parents:
        raise ValueError(
            f"--out {args.out} would overwrite or mix with {source}, the model exported; write the "
            f"export to a path of its own."
        )
    if args.attention:
        name = args.model
        if args.run is not None:
            from zoo.common.run_card import read_card

            name = read_card(args.run).model
        if name is not None and not get_model(name).attention:
            raise ValueError(f"--attention: model {name!r} has no attention maps to export; leave it out.")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zoo.export (--run RUN | --model NAME --weights CKPT) --out PATH [--litert ...]``.

    Without ``--litert``: a SavedModel folder (:func:`export_saved_model`). With it:
    a ``.tflite`` file (:func:`zoo.litert.export_litert`), ``--quantization``
    ``float16``/``dynamic``/``int8`` (int8 calibrates on ``--representative``
    images), ``--input-size H W`` for a fixed frame size. The model comes from a run
    folder (``--run``) or a bare checkpoint (``--weights``, :func:`zoo.serving.load_model`).
    """
    args = _parser().parse_args(argv)
    try:
        _check_arguments(args)
        # the builder loads the checkpoint in the default model's layer order (zoo.serving.build_from_checkpoint)
        served = load_model(
            args.model,
            weights=args.weights,
            run=args.run,
            small=args.small,
            builder_args=args.builder_args,
            attention=args.attention,
        )
        if not args.litert:
            written = export_saved_model(
                served.model, args.out, input_spec=served.input_spec, model_name=served.entry.name
            )
            print(f"wrote SavedModel {written}")
            return 0
        images = None
        if args.representative:
            images = [load_image(path) for _, path in collect_images(args.representative, isic_ids=False)[0]]
        from zoo.litert import export_litert  # the LiteRT converter only when asked

        path = export_litert(
            served.model,
            args.out,
            input_spec=served.input_spec,
            quantization=args.quantization,
            representative_images=images,
            input_size=tuple(args.input_size) if args.input_size else None,
        )
        print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB, {args.quantization or 'float32'})")
    except (ValueError, FileNotFoundError, KeyError, OSError, RuntimeError) as error:
        print(f"zoo.export: error: {error_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
