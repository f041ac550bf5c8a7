"""How a model of the zoo is fed and read: the one place every serving tool asks.

:mod:`zoo.predict` (images on disk), :mod:`zoo.export` (SavedModel signatures) and
:mod:`zoo.litert` (``.tflite`` files) all feed a model and read it through this
module, and it imports none of them (``tests/test_import_graph.py``):

* **Inputs** (:class:`ModelIO`): the model's one float image input, and at most one
  integer label map, an extra input its registry entry declares
  (:attr:`zoo.registry.ModelEntry.extra_inputs`; SANet's ``superpixels``, labels
  ``0 .. max_segments-1`` with the bound read from the model's layers).
  :func:`compute_superpixels` computes SANet's map of a raw image as training does;
  :meth:`ModelIO.model_maps` resizes maps to the model with the images' geometry,
  :meth:`ModelIO.feed` orders image and map as the model takes them.
* **Outputs**: their names in the model's order, the main output (the entry's
  ``"mask"`` or ``"probabilities"``) and the attention maps (:meth:`ModelIO.read`:
  ``{name: float32}``).
* **The spec at the model's size**: :func:`spec_for_model`; masks back on the
  original pixels: :func:`at_original_size`.
* **Building**: :func:`load_model` gives a :class:`ServingModel` (the entry, the
  Keras model, its input spec) from a run folder (:func:`zoo.run.load_run`: the
  model, builder arguments and spec all come from ``run.json``) or from a bare
  checkpoint and the builder arguments it was trained with
  (:func:`build_from_checkpoint`; a checkpoint of another build raises
  :class:`~zoo.common.weights.CheckpointMismatchError`, naming the file, the model
  and what it was built with). A checkpoint that cannot be read (cut short,
  corrupt: :func:`check_readable_checkpoint`) and weights holding NaN or infinite
  values (:func:`check_finite_weights`, naming the first bad variable) are refused,
  each in one line naming the file.
* **Served files**: the signature and input names of the SavedModel and LiteRT
  files and the JSON written beside a SavedModel (:func:`load_input_spec`,
  :func:`load_serving_info`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from data_tools.folders import IMAGE_SUFFIXES
from data_tools.layouts import ISIC2017_SUPERPIXELS_SUFFIX, ISIC_IMAGE_ID
from data_tools.lazy_tensorflow import lazy_tensorflow
from data_tools.preprocess import InputSpec, preprocess_label_maps, restore_geometry
from data_tools.tensor_ops import KERAS
from zoo.common.run_card import WEIGHTS_FILE, is_run_folder
from zoo.common.weights import CheckpointMismatchError, first_non_finite
from zoo.registry import ModelEntry, get_model
from zoo.run import Run, load_run

tf = lazy_tensorflow("the SavedModel/LiteRT serving files")

__all__ = [
    "CheckpointMismatchError",
    "ENCODED_INPUT",
    "EXTRA_INPUTS",
    "IMAGES_INPUT",
    "LabelMapInput",
    "ModelIO",
    "SERVING_BYTES",
    "SERVING_DEFAULT",
    "SERVING_FILE",
    "SPEC_FILE",
    "SUPERPIXELS",
    "ServingModel",
    "at_original_size",
    "attention_kwargs",
    "build_from_checkpoint",
    "check_extra_inputs",
    "check_finite_weights",
    "check_readable_checkpoint",
    "collect_images",
    "compute_extra_input",
    "compute_superpixels",
    "entry_max_segments",
    "error_line",
    "load_input_spec",
    "load_model",
    "load_saved_model",
    "load_serving_info",
    "MODEL_FILE",
    "spec_for_model",
    "write_serving_info",
]

SERVING_DEFAULT = "serving_default"
SERVING_BYTES = "serving_bytes"
IMAGES_INPUT = "images"
ENCODED_INPUT = "encoded"
#: The spec JSON beside a SavedModel (tf.compat.v1.saved_model.EXTRA_ASSETS_DIRECTORY: files the graph
#: does not use; TF Serving ignores them).
SPEC_FILE = os.path.join("assets.extra", "input_spec.json")
#: Beside a SavedModel: its label-map input and bound (``{"label_map": name, "max_segments": n}``).
SERVING_FILE = os.path.join("assets.extra", "serving.json")
#: The registered model an export holds, beside the spec (``{"model": name}``).
MODEL_FILE = os.path.join("assets.extra", "model.json")
#: SANet's extra input (``ModelEntry.extra_inputs``), computed by :func:`compute_superpixels`.
SUPERPIXELS = "superpixels"


# --------------------------------------------------------------------------- inputs and outputs


@dataclasses.dataclass(frozen=True)
class LabelMapInput:
    """A model's integer label-map input (SANet's ``superpixels``).

    Attributes:
        name: the model input's name, also the served files' input name.
        index: its position in ``model.inputs``.
        rank: 4 for ``(batch, h, w, 1)``, 3 for ``(batch, h, w)``.
        max_segments: labels must lie in ``[0, max_segments)``.
    """

    name: str
    index: int
    rank: int
    max_segments: int


@dataclasses.dataclass(frozen=True)
class ModelIO:
    """How ``model`` is fed and read (:meth:`of`).

    Attributes:
        model_name: the Keras model's name (for messages).
        image_index: the image input's position in ``model.inputs``.
        image_shape: its shape ``(batch, height, width, channels)``.
        label_map: the integer label-map input, or ``None``.
        outputs: the output names in the model's order (a dict output's keys, else
            the output layers' names).
        main: the main output's name (the entry's ``output`` if the model has it,
            else the first).
    """

    model_name: str
    image_index: int
    image_shape: tuple
    label_map: LabelMapInput | None
    outputs: tuple[str, ...]
    main: str

    @classmethod
    def of(
        cls,
        model: keras.Model,
        *,
        main: str | None = None,
        max_segments: int | None = None,
        caller: str = "zoo.serving",
    ) -> "ModelIO":
        """Reads ``model``'s inputs and outputs.

        Args:
            main: the entry's main output name (``"mask"``/``"probabilities"``).
            max_segments: a label-map input's bound; default the ``max_segments``
                of the model's superpixel layers; a smaller value is allowed (a
                stricter check), a larger one is not.
            caller: the function named in error messages.

        Raises:
            NotImplementedError: inputs other than one float image and at most one
                integer label map.
            ValueError: a label map of another shape, a name that clashes with the
                served inputs, or a missing or too large ``max_segments``.
        """
        image_index, label_map = _split_inputs(model, max_segments, caller)
        structure = model.output
        names = tuple(structure) if isinstance(structure, Mapping) else tuple(model.output_names)
        chosen = main if main in names else names[0]
        return cls(model.name, image_index, tuple(model.inputs[image_index].shape), label_map, names, chosen)

    @property
    def image_size(self) -> tuple:
        """``(height, width)`` of the image input (``None`` for a free side)."""
        return tuple(self.image_shape[1:3])

    @property
    def attention(self) -> tuple[str, ...]:
        """The names of the outputs other than the main one (attention maps)."""
        return tuple(name for name in self.outputs if name != self.main)

    @property
    def max_segments(self) -> int | None:
        return None if self.label_map is None else self.label_map.max_segments

    def check_spec(self, model: keras.Model, spec: InputSpec, caller: str) -> None:
        """Raises ``ValueError`` unless the image input is ``(batch, h, w, 3)`` and the
        image (and label map) take ``spec.image_size``: the training pipeline gives
        both at that size."""
        if len(self.image_shape) != 4 or self.image_shape[-1] != 3:
            raise ValueError(
                f"{caller}: model {self.model_name!r} image input has shape {self.image_shape}; "
                f"expected (batch, height, width, 3)."
            )
        _check_size(self.model_name, "input", self.image_size, spec, caller)
        if self.label_map is not None:
            shape = tuple(model.inputs[self.label_map.index].shape)
            _check_size(self.model_name, f"input {self.label_map.name!r}", shape[1:3], spec, caller)

    def model_maps(
        self, maps: Any, spec: InputSpec, *, through_float: bool = False, ops: str = "tensorflow"
    ) -> tf.Tensor:
        """Label maps ``[batch, h, w, 1]`` at the images' size -> int32 at the model's
        size with the images' geometry (nearest neighbour,
        :func:`~data_tools.preprocess.preprocess_label_maps`), ``[batch, H, W, 1]``.

        ``through_float``: resize as a float tensor and round back (LiteRT has no
        int32 RESIZE_NEAREST_NEIGHBOR kernel; exact for labels < 2**24). ``ops``:
        ``"tensorflow"`` (the served signatures) or ``"keras"`` (any backend)."""
        if not through_float:
            return preprocess_label_maps(maps, spec, ops)
        maps = tf.cast(maps, tf.float32)
        return tf.cast(tf.round(preprocess_label_maps(maps, spec)), tf.int32)

    def feed(self, images: Any, maps: Any = None) -> Any:
        """The model's inputs from a preprocessed image batch and, for a label-map
        model, maps at the model's size ``[batch, H, W, 1]`` (:meth:`model_maps`), in
        the order and rank of ``model.inputs``."""
        if self.label_map is None:
            return images
        if maps is None:
            raise ValueError(f"model {self.model_name!r} takes a {self.label_map.name!r} map beside the image.")
        maps = maps if self.label_map.rank == 4 else maps[..., 0]
        return [images, maps] if self.label_map.index > self.image_index else [maps, images]

    def read(self, outputs: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
        """``{name: float32 output}`` from what the model returned, named after its
        outputs (or ``names``, one per output in the model's order)."""
        flat = list(outputs.values()) if isinstance(outputs, Mapping) else keras.tree.flatten(outputs)
        return {name: keras.ops.cast(value, "float32") for name, value in zip(names or self.outputs, flat, strict=True)}

    def run(
        self, model: keras.Model, images: Any, maps: Any = None, names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """``model`` on preprocessed images (and maps at its size): :meth:`feed`, call,
        :meth:`read`."""
        return self.read(model(self.feed(images, maps), training=False), names)


def _split_inputs(model: keras.Model, max_segments: int | None, caller: str) -> tuple[int, LabelMapInput | None]:
    """The image input's index and the label-map input, if any: the image is the one
    floating-point input, a label map an integer input."""
    inputs = list(model.inputs)
    floats = [index for index, tensor in enumerate(inputs) if keras.backend.is_float_dtype(tensor.dtype)]
    integers = [index for index in range(len(inputs)) if index not in floats]
    if len(floats) != 1 or len(integers) > 1:
        described = ", ".join(f"{tensor.name!r} ({tensor.dtype})" for tensor in inputs)
        raise NotImplementedError(
            f"{caller}: model {model.name!r} has inputs {described}; the serving graph takes one "
            f"float image input and at most one integer label map (SANet's superpixels)."
        )
    if not integers:
        return floats[0], None
    index = integers[0]
    name, shape = inputs[index].name, tuple(inputs[index].shape)
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] != 1):
        raise ValueError(
            f"{caller}: label-map input {name!r} of model {model.name!r} has shape {shape}; "
            f"expected (batch, height, width, 1) or (batch, height, width)."
        )
    if name in (IMAGES_INPUT, ENCODED_INPUT):
        raise ValueError(f"{caller}: label-map input {name!r} clashes with a signature input name.")
    return floats[0], LabelMapInput(name, index, len(shape), _label_bound(model, name, max_segments, caller))


def _label_bound(model: keras.Model, name: str, max_segments: int | None, caller: str) -> int:
    """``max_segments`` checked against, or taken from, the model's superpixel layers."""
    bounds = [
        layer.max_segments for layer in _all_layers(model) if isinstance(getattr(layer, "max_segments", None), int)
    ]
    if max_segments is None:
        if not bounds:
            raise ValueError(
                f"{caller}: model {model.name!r} has no layer with a max_segments bound; pass "
                f"max_segments, the bound on the labels of input {name!r}."
            )
        return min(bounds)
    if isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < 1:
        raise ValueError(f"{caller}: max_segments must be a positive int, got {max_segments!r}.")
    if bounds and max_segments > min(bounds):
        raise ValueError(
            f"{caller}: max_segments={max_segments} exceeds the model's bound {min(bounds)}; labels "
            f"beyond it would be pooled into another image's superpixels."
        )
    return max_segments


def _all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _check_size(model_name: str, what: str, size: tuple, spec: InputSpec, caller: str) -> None:
    if any(side is not None and side != expected for side, expected in zip(size, spec.image_size, strict=True)):
        raise ValueError(
            f"{caller}: model {model_name!r} {what} is {size} but input_spec.image_size is {spec.image_size}."
        )


# --------------------------------------------------------------------------- extra inputs


def check_extra_inputs(entry: ModelEntry, io: ModelIO) -> None:
    """Raises ``ValueError`` unless the model's label-map input is the extra input its
    registry entry declares (:attr:`~zoo.registry.ModelEntry.extra_inputs`)."""
    found = () if io.label_map is None else (io.label_map.name,)
    if tuple(entry.extra_inputs) != found:
        raise ValueError(
            f"model {entry.name!r}: its registry entry declares the extra inputs "
            f"{tuple(entry.extra_inputs)}, the Keras model {io.model_name!r} takes {found}."
        )


def compute_superpixels(image: np.ndarray, max_segments: int, n_segments: int | None = None) -> np.ndarray:
    """SANet's map of one uint8 ``[h, w, 3]`` image as in training: SLIC at the working
    size (:func:`zoo.sanet.superpixels.slic_superpixels`), then nearest neighbour to
    the image's size (what :func:`data_tools.pipeline.decode_label_map` does to the
    cache); int32 ``[h, w]``, labels below ``max_segments``.

    The SLIC code (and scikit-image) is imported here, when a map is computed, so that
    ``import zoo`` loads neither."""
    from zoo.sanet.superpixels import SlicParams, slic_superpixels

    defaults = SlicParams()
    params = SlicParams(n_segments=min(n_segments or defaults.n_segments, max_segments), max_segments=max_segments)
    labels = slic_superpixels(image, params)
    resized = KERAS.resize(labels[..., None].astype(np.int32), image.shape[:2], "nearest")
    return np.asarray(keras.ops.convert_to_numpy(resized), np.int32)[..., 0]


#: How each extra input a registry entry may declare is computed from a raw image.
EXTRA_INPUTS = {SUPERPIXELS: compute_superpixels}


def compute_extra_input(name: str, image: np.ndarray, max_segments: int) -> np.ndarray:
    """The map of extra input ``name`` (:data:`EXTRA_INPUTS`) for one raw image.

    Raises:
        ValueError: no way to compute that input is known (the caller passes its maps).
    """
    if name not in EXTRA_INPUTS:
        raise ValueError(
            f"the model's label-map input {name!r} is not one the zoo computes ({sorted(EXTRA_INPUTS)}); pass its maps."
        )
    return EXTRA_INPUTS[name](image, max_segments)


def entry_max_segments(entry: ModelEntry, builder_args: Mapping[str, Any] | None = None) -> int | None:
    """The ``max_segments`` ``entry``'s builder uses with ``builder_args`` (its default,
    the entry's ``kwargs``, then ``builder_args``); ``None`` for a builder without one."""
    parameter = inspect.signature(entry.builder).parameters.get("max_segments")
    arguments = {**entry.kwargs, **(builder_args or {})}
    if "max_segments" in arguments:
        return int(arguments["max_segments"])
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return int(parameter.default)


# --------------------------------------------------------------------------- the spec and geometry


def spec_for_model(spec: InputSpec, size: Sequence[int | None]) -> InputSpec:
    """``spec`` at a model input of ``size`` ``(height, width)`` (a small test model,
    or one trained at another size): ``image_size`` replaced and ``pre_crop_size``
    scaled in proportion; unchanged for ``None`` sides."""
    size = tuple(size)
    if None in size or size == spec.image_size:
        return spec
    pre_crop = (
        None
        if spec.pre_crop_size is None
        else tuple(
            max(side, round(side * pre / image))
            for side, pre, image in zip(size, spec.pre_crop_size, spec.image_size, strict=True)
        )
    )
    return dataclasses.replace(spec, image_size=tuple(int(s) for s in size), pre_crop_size=pre_crop)


def at_original_size(maps: np.ndarray, original_size: tuple[int, int], spec: InputSpec) -> np.ndarray:
    """Model-resolution ``[h, w, C]`` probabilities on the original pixels (bilinear;
    :func:`~data_tools.preprocess.restore_geometry`)."""
    if tuple(maps.shape[:2]) != spec.image_size:
        maps = KERAS.resize(maps, spec.image_size, "bilinear")
    return keras.ops.convert_to_numpy(restore_geometry(maps, original_size, spec, ops=KERAS))


# --------------------------------------------------------------------------- building


def attention_kwargs(entry: ModelEntry) -> dict[str, bool]:
    """The builder argument that makes ``entry``'s model also return its attention maps
    (``{}`` for a model without them)."""
    return {"return_attention": True} if entry.attention else {}


def build_from_checkpoint(
    entry: ModelEntry,
    weights: str | os.PathLike,
    *,
    small: bool = False,
    builder_args: Mapping[str, Any] | None = None,
    attention: bool = False,
) -> keras.Model:
    """``entry``'s model built with ``builder_args`` (and ``small``), the checkpoint
    ``weights`` loaded by the builder; ``attention``: also outputting its attention maps.

    The builder loads the checkpoint (:func:`zoo.common.weights.assemble_model`) in the
    layer order of the model's default outputs, which is what training saved, whatever
    outputs were asked for. Loading it into the attention model afterwards
    (``model.load_weights``) would not do: Keras stores a file's variables by the order
    of ``model.layers``, which depends on the outputs (DANet's position and channel
    branches swap), and the weights would go into the wrong layers without an error.

    Raises:
        FileNotFoundError: no such file.
        CheckpointMismatchError: not a Keras checkpoint, or one of another model or of
            this model built with other arguments (names the file, the model and what it
            was built with).
        zoo.common.run_card.RunMismatchError: the weights file of a run folder, and a
            build that is not the run's model (another input size, ...).
        ValueError: builder arguments the builder does not take; a run folder (load
            it with :func:`load_model`'s ``run``).
    """
    path = Path(weights)
    if is_run_folder(path):
        raise ValueError(
            f"{path} is a run folder: load it as a run (--run {path}; load_model(run=...)), whose "
            f"run.json gives the model, its builder arguments and its input spec."
        )
    if (path / "saved_model.pb").is_file():
        raise ValueError(
            f"{path} is a SavedModel folder (zoo.export's), not a checkpoint: predict with it through "
            f"--saved-model {path}, or pass the .weights.h5 file it was exported from."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found.")
    args = dict(builder_args or {})
    clashing = sorted(set(args) & {"weights", "small", "return_attention"})
    if clashing:
        raise ValueError(
            f"builder arguments {clashing} are set by the command (the checkpoint is --weights, "
            "--small the test configuration, --overlays/--attention the attention outputs)."
        )
    built_with = {**({"small": True} if small else {}), **args}
    check_readable_checkpoint(path, entry.name)
    try:
        return entry.build(small=small, weights=path, **args, **(attention_kwargs(entry) if attention else {}))
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        raise ValueError(
            f"model {entry.name!r}: {error} (builder arguments {args}; the builder is {entry.builder_name})"
        ) from None
    except CheckpointMismatchError as error:
        if error.path != path:
            raise  # another file (e.g. encoder weights given as a builder argument)
        parameters = "" if error.parameters is None else f" ({error.parameters:,} parameters)"
        raise CheckpointMismatchError(
            path,
            entry.name,
            error.detail,
            parameters=error.parameters,
            message=f"{path}: this checkpoint does not match model {entry.name!r} built with "
            f"{built_with or 'its defaults'}{parameters}: {error.detail}. Build the model the checkpoint "
            f"was trained as (--small, --builder-args '{{\"classes\": ...}}', or --model of the right "
            f"name).",
        ) from None


def check_readable_checkpoint(path: str | os.PathLike, model: str = "") -> None:
    """Raises a one-line :class:`CheckpointMismatchError` (a ``ValueError``) naming
    ``path`` when the checkpoint cannot be read as what its name says (a
    ``.weights.h5`` HDF5 file, every dataset of it; a ``.keras`` zip): a file cut short
    by an interrupted copy or a full disk, or not a checkpoint at all. Other names are
    left to the builder's own checks."""
    path = Path(path)
    try:
        if path.name.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
            if broken is not None:
                raise ValueError(f"member {broken} fails its CRC check")
        elif path.name.endswith(".h5"):
            with h5py.File(path, "r") as file:
                file.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)
        else:
            return
    except (OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile) as error:
        detail = " ".join(str(error).split())[:300]
        raise CheckpointMismatchError(
            path,
            model,
            f"it cannot be read as a Keras checkpoint ({detail})",
            message=f"{path}: the checkpoint cannot be read: it is truncated or corrupt, or not a Keras checkpoint "
            f"({detail}). Copy it again, or save it again from the model.",
        ) from None


def check_finite_weights(model: keras.Model, source: str | os.PathLike) -> None:
    """Raises a one-line ``ValueError`` naming ``source`` (the checkpoint) and the first
    variable of ``model`` that holds NaN or infinite values: such a model predicts blank
    masks or NaN, it is not served."""
    found = first_non_finite(model.weights)
    if found is not None:
        variable, bad, size = found
        raise ValueError(
            f"{source}: the weights hold NaN or infinite values, first in {variable.path!r} "
            f"({bad} of {size} values) of model {model.name!r}; refusing to serve them "
            f"(use a checkpoint from before the training diverged)."
        )


@dataclasses.dataclass(frozen=True)
class ServingModel:
    """A trained model ready to serve (:func:`load_model`).

    Attributes:
        entry: its registry entry.
        model: the Keras model (with its attention maps as outputs if asked for).
        input_spec: the spec its images are preprocessed with, at the model's size.
        source: the run folder or checkpoint it came from (for messages).
        run: the loaded run, for a run folder; ``None`` for a bare checkpoint.
    """

    entry: ModelEntry
    model: keras.Model
    input_spec: InputSpec
    source: str
    run: Run | None = None

    def io(self, max_segments: int | None = None, caller: str = "zoo.serving") -> ModelIO:
        return ModelIO.of(self.model, main=self.entry.output, max_segments=max_segments, caller=caller)


def load_model(
    model: str | None = None,
    *,
    weights: str | os.PathLike | None = None,
    run: str | os.PathLike | None = None,
    small: bool = False,
    builder_args: Mapping[str, Any] | None = None,
    input_spec: InputSpec | None = None,
    attention: bool = False,
) -> ServingModel:
    """A trained model from a run folder or a bare checkpoint.

    Args:
        model: the registry name; required with ``weights``; with ``run`` it may
            only name the run's model.
        weights: a checkpoint of the whole model (``.weights.h5``/``.keras``), built
            with ``small`` and ``builder_args`` (:func:`build_from_checkpoint`).
        run: a run folder (:mod:`zoo.run`): the model, its builder arguments and its
            input spec come from its ``run.json``; ``small``, ``builder_args`` and
            ``input_spec`` are then errors.
        input_spec: with ``weights``: the spec (default: the entry's at the model's
            size).
        attention: build the model to also return its attention maps.

    Raises:
        ValueError: not exactly one of ``weights``/``run``, arguments that a run
            fixes, an unknown model; the errors of :func:`build_from_checkpoint` and
            :func:`zoo.run.load_run` (:class:`~zoo.common.run_card.RunError`).
    """
    if (weights is None) == (run is None):
        raise ValueError("pass exactly one of a checkpoint (--weights) or a run folder (--run).")
    if run is None:
        if model is None:
            raise ValueError("a checkpoint (--weights) needs its registered model's name (--model).")
        entry = get_model(model)
        keras_model = build_from_checkpoint(entry, weights, small=small, builder_args=builder_args, attention=attention)
        check_finite_weights(keras_model, weights)
        io = ModelIO.of(keras_model, main=entry.output)
        check_extra_inputs(entry, io)
        spec = input_spec or spec_for_model(entry.input_spec, io.image_size)
        return ServingModel(entry, keras_model, spec, str(weights))
    retyped = [
        flag
        for flag, given in (
            ("--small", small),
            ("--builder-args", builder_args),
            ("--input-spec", input_spec is not None),
        )
        if given
    ]
    if retyped:
        raise ValueError(
            f"--run {run}: the model, its builder arguments and its input spec come from the run "
            f"folder's run.json; leave out {', '.join(retyped)}."
        )
    weights_file = Path(run) / WEIGHTS_FILE
    if weights_file.is_file():
        check_readable_checkpoint(weights_file)
    loaded = load_run(run, attention=attention)
    check_finite_weights(loaded.model, weights_file)
    if model is not None and model != loaded.entry.name:
        raise ValueError(f"--run {run} is a run of model {loaded.entry.name!r}, not {model!r}; leave out --model.")
    return ServingModel(loaded.entry, loaded.model, loaded.input_spec, str(run), loaded)


def error_line(error: BaseException) -> str:
    """An error as the command lines print it: its message on one line (a KeyError's
    without the quotes ``str`` adds)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- served files


def load_saved_model(path: str | os.PathLike, model_name: str | None = None) -> Any:
    """``tf.saved_model.load`` of an export of :func:`export_saved_model`, refusing in
    one sentence a folder that is no SavedModel, one cut short or corrupt, and (where
    the export records its model) one of another model than ``model_name``."""
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{path}: no SavedModel here (saved_model.pb missing); write one with zoo.export.")
    recorded = path / MODEL_FILE
    if model_name is not None and recorded.is_file():
        try:
            exported = json.loads(recorded.read_text(encoding="utf-8")).get("model")
        except (OSError, ValueError, AttributeError):
            exported = None
        if exported is not None and exported != model_name:
            raise ValueError(
                f"{path} is an export of {exported!r}, not of --model {model_name!r}; pass "
                f"--model {exported}, or the export of {model_name}."
            )
    try:
        return tf.saved_model.load(str(path))
    except Exception as error:  # DecodeError, OpError, ValueError...: the files are cut short or corrupt
        raise ValueError(
            f"{path}: the SavedModel cannot be read, its files are cut short or corrupt "
            f"({error_line(error)[:200]}); export it again with zoo.export."
        ) from None


def load_input_spec(path: str | os.PathLike) -> InputSpec:
    """The :class:`InputSpec` written beside a SavedModel by :func:`zoo.export.export_saved_model`."""
    spec_path = os.path.join(os.fspath(path), SPEC_FILE)
    if not tf.io.gfile.exists(spec_path):
        raise FileNotFoundError(f"{spec_path}: no input spec; was {path} written by zoo.export.export_saved_model?")
    with tf.io.gfile.GFile(spec_path) as file:
        return InputSpec.from_json(file.read())


def write_serving_info(path: str | os.PathLike, io: ModelIO) -> None:
    """Writes :data:`SERVING_FILE` beside a SavedModel: its label-map input and bound."""
    info = {"label_map": None if io.label_map is None else io.label_map.name, "max_segments": io.max_segments}
    info_path = os.path.join(os.fspath(path), SERVING_FILE)
    tf.io.gfile.makedirs(os.path.dirname(info_path))
    with tf.io.gfile.GFile(info_path, "w") as file:
        file.write(json.dumps(info, indent=2))


def load_serving_info(path: str | os.PathLike) -> dict[str, Any]:
    """:data:`SERVING_FILE` of a SavedModel; ``{}`` for one exported before it was written."""
    info_path = os.path.join(os.fspath(path), SERVING_FILE)
    if not tf.io.gfile.exists(info_path):
        return {}
    with tf.io.gfile.GFile(info_path) as file:
        return json.loads(file.read())


# --------------------------------------------------------------------------- images on disk


def collect_images(sources: Sequence[str | os.PathLike], *, isic_ids: bool) -> tuple[list[tuple[str, Path]], list[str]]:
    """``[(image id, path)]`` from folders (their image files, sorted) and files.

    With ``isic_ids`` (ISIC formats) a folder's files not named ``ISIC_<7 digits>``
    are left out (noted), and such a file named explicitly is an error. ISIC 2017
    ``*_superpixels.png`` files beside the images are always left out.

    Raises:
        FileNotFoundError: a source does not exist.
        ValueError: no images, ids that repeat (``a.jpg`` and ``a.png``), or a file
            that is not an ISIC image with ``isic_ids``.
    """
    found: list[tuple[str, Path]] = []
    notes: list[str] = []
    missing = [str(s) for s in sources if not Path(s).exists()]
    if missing:
        raise FileNotFoundError(f"--images: not found: {', '.join(missing)}")
    bad_names = []
    for source in map(Path, sources):
        if source.is_dir():
            ignored = []
            for path in sorted(source.iterdir()):
                if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if path.name.endswith(ISIC2017_SUPERPIXELS_SUFFIX) or (isic_ids and not ISIC_IMAGE_ID.match(path.stem)):
                    ignored.append(path.name)
                    continue
                found.append((path.stem, path))
            if ignored:
                notes.append(
                    f"{source}: left out {len(ignored)} file(s) that are not images to predict, e.g. {ignored[0]}"
                )
        else:
            if isic_ids and not ISIC_IMAGE_ID.match(source.stem):
                bad_names.append(source.name)
            found.append((source.stem, source))
    if bad_names:
        raise ValueError(f"--images: ISIC formats need images named ISIC_<7 digits>; got {', '.join(bad_names)}.")
    if not found:
        raise ValueError(f"--images: no image files ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, sources))}.")
    seen: dict[str, Path] = {}
    repeated = []
    for image_id, path in found:
        if image_id in seen:
            repeated.append(f"{seen[image_id]} and {path}")
        seen[image_id] = path
    if repeated:
        raise ValueError(f"--images: two images share an id (their file stem): {'; '.join(repeated)}.")
    return found, notes
