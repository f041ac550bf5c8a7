"""Run a trained model of the zoo on new images and write the results.

    python -m zoo.predict --model aernet --weights runs/aernet/best.weights.h5 \\
        --images ISIC2018_Task1-2_Test_Input --out submission --format isic2018-task1
    python -m zoo.predict --model apspnet --saved-model serving/apspnet/1 \\
        --images scans/ --out masks --format masks --overlays

Each image, of any size, goes through the model's own preprocessing: the
registry entry's :class:`~data_tools.preprocess.InputSpec` with the model's input
size (what the training pipelines do), or the spec stored beside a SavedModel of
:mod:`zoo.export`. SANet's superpixel maps are computed as in training
(:func:`zoo.sanet.superpixels.slic_superpixels` at its working size, resized to
the image with nearest neighbour, then given the image's geometry).

Formats (``--format``):

====================  ============================================================
``isic2018-task1``    ``ISIC_<id>_segmentation.png``, 0/255, at the image's size
``isic2016-part1``    ``ISIC_<id>_Segmentation.png``
``isic2017-part1``    ``ISIC_<id>_segmentation.png``
``isic2018-task2``    ``ISIC_<id>_attribute_<name>.png``, one per attribute (5 channels)
``isic2017-part3``    ``predictions.csv``: ``image_id,melanoma,seborrheic_keratosis``;
                      a 3-class model (other, melanoma, seborrheic keratosis), or a
                      2-class melanoma model plus ``--sk-weights`` (ARL-CNN trains
                      one 2-way softmax per sub-task)
``isic2016-part3``    ``predictions.csv``: ``ISIC_<id>,<melanoma probability>``
``masks``             ``<stem>.png`` per image: 0/255 for one channel, class indices
                      for a softmax (A-PSPNet; ``python -m zoo.evaluate --task masks``),
                      ``<stem>_<k>.png`` per channel for independent sigmoids
``csv``               ``predictions.csv``: ``image_id`` and one column per class
====================  ============================================================

Masks are written at the original image size (:mod:`zoo.submission`; the grey
padding of ``fit="pad"`` models is cut off with
:func:`~data_tools.preprocess.restore_geometry`). ``--overlays`` adds
``overlays/<stem>_prediction.png`` (the predicted outline on the image) and
``overlays/<stem>_<map>.png`` per spatial attention map (heat map on the image;
channel-attention vectors have no place in the image and are skipped).
Unreadable images stop the run with their name, or with ``--skip-bad`` are
skipped and listed in ``<out>/skipped.txt``.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from data_tools.folders import IMAGE_SUFFIXES
from data_tools.imageio import load_image, save_png
from data_tools.layouts import (
    ISIC2016_MASK_SUFFIX,
    ISIC2017_MASK_SUFFIX,
    ISIC2017_SUPERPIXELS_SUFFIX,
    ISIC2018_ATTRIBUTES,
    ISIC2018_MASK_SUFFIX,
    ISIC_IMAGE_ID,
)
from data_tools.preprocess import InputSpec, preprocess_images, preprocess_label_maps, restore_geometry
from data_tools.records import BadInputPolicy, DatasetError
from zoo import submission
from zoo.registry import ModelEntry, get_model

MASK_FORMATS: Mapping[str, str] = {
    "isic2018-task1": ISIC2018_MASK_SUFFIX,
    "isic2016-part1": ISIC2016_MASK_SUFFIX,
    "isic2017-part1": ISIC2017_MASK_SUFFIX,
}
FORMATS = (*MASK_FORMATS, "isic2018-task2", "isic2017-part3", "isic2016-part3", "masks", "csv")
ISIC_FORMATS = frozenset(FORMATS) - {"masks", "csv"}
CLASSIFICATION_FORMATS = frozenset({"isic2017-part3", "isic2016-part3", "csv"})
PREDICTIONS_CSV = "predictions.csv"
SKIPPED_FILE = "skipped.txt"
OVERLAY_DIR = "overlays"
#: Overlays are drawn with their longer side in this range (pixels).
OVERLAY_SIDES = (512, 1024)
#: ISIC 2017 Part 3 from one 3-class model: its softmax columns.
ISIC2017_THREE_CLASSES = ("other", "melanoma", "seborrheic_keratosis")


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the model it is loaded into."""


# --------------------------------------------------------------------------- predictors


def spec_for_model(spec: InputSpec, size: Sequence[int | None]) -> InputSpec:
    """``spec`` at a model input of ``size`` ``(height, width)`` (a small test model,
    or one trained at another size): ``image_size`` replaced and ``pre_crop_size``
    scaled in proportion; unchanged for ``None`` sides."""
    size = tuple(size)
    if None in size or size == spec.image_size:
        return spec
    pre_crop = None if spec.pre_crop_size is None else tuple(
        max(side, round(side * pre / image)) for side, pre, image in zip(size, spec.pre_crop_size, spec.image_size))
    return dataclasses.replace(spec, image_size=tuple(int(s) for s in size), pre_crop_size=pre_crop)


@dataclasses.dataclass
class Predictor:
    """A model ready to predict raw images: a Keras model or a SavedModel, with its spec.

    Build one with :func:`load_predictor`. :meth:`predict` takes uint8 RGB images
    of any sizes and returns, per image, ``{output name: array at model
    resolution}`` (batch axis removed).

    Attributes:
        name: the registry name.
        output: ``"mask"`` or ``"probabilities"`` (the entry's).
        main: the name of the main output among the returned ones.
        spec: the input spec the images are preprocessed with.
        source: the checkpoint or SavedModel (for messages).
        channels: channels (classes) of the main output.
        attention: names of the other outputs (attention maps).
        max_segments: SANet: the superpixel label bound; ``None`` for other models.
    """

    name: str
    output: str
    main: str
    spec: InputSpec
    source: str
    channels: int
    attention: tuple[str, ...]
    max_segments: int | None
    call: Callable[[list[np.ndarray], list[np.ndarray] | None], list[dict[str, np.ndarray]]]
    softmax: bool | None = None

    @property
    def needs_superpixels(self) -> bool:
        return self.max_segments is not None

    def predict(self, images: list[np.ndarray], superpixels: list[np.ndarray] | None = None) -> list[dict[str, np.ndarray]]:
        if self.needs_superpixels and superpixels is None:
            superpixels = [compute_superpixels(image, self.max_segments) for image in images]
        outputs = self.call(images, superpixels if self.needs_superpixels else None)
        if self.softmax is None:
            self.softmax = _looks_like_softmax(outputs[0][self.main])
        return outputs


def _looks_like_softmax(values: np.ndarray) -> bool:
    values = np.asarray(values)
    return values.shape[-1] > 1 and bool(np.allclose(values.sum(-1), 1.0, atol=1e-3))


def compute_superpixels(image: np.ndarray, max_segments: int, n_segments: int | None = None) -> np.ndarray:
    """SANet's map of one image as in training: SLIC at the working size
    (:func:`zoo.sanet.superpixels.slic_superpixels`), then nearest-neighbour to the
    image's size (:func:`data_tools.pipeline.decode_label_map` does that to the cache)."""
    from zoo.sanet.superpixels import SlicParams, slic_superpixels  # scikit-image only when needed

    defaults = SlicParams()
    params = SlicParams(n_segments=min(n_segments or defaults.n_segments, max_segments), max_segments=max_segments)
    labels = slic_superpixels(image, params)
    resized = tf.image.resize(labels[..., None], image.shape[:2], method="nearest")
    return tf.cast(resized, tf.int32).numpy()[..., 0]


def attention_kwargs(entry: ModelEntry) -> dict[str, bool]:
    """The builder argument that makes ``entry``'s model also return its attention maps
    (``{}`` for a model without them)."""
    return {"return_attention": True} if entry.attention else {}


def build_from_checkpoint(entry: ModelEntry, weights: str | Path, *, small: bool = False,
                          builder_args: Mapping[str, Any] | None = None, attention: bool = False) -> keras.Model:
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
        ValueError: builder arguments the builder does not take.
    """
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found.")
    args = dict(builder_args or {})
    clashing = sorted(set(args) & {"weights", "small", "return_attention"})
    if clashing:
        raise ValueError(f"builder arguments {clashing} are set by the command (the checkpoint is --weights, "
                         "--small the test configuration, --overlays/--attention the attention outputs).")
    built_with = {**({"small": True} if small else {}), **args}
    try:
        return entry.build(small=small, weights=path, **args, **(attention_kwargs(entry) if attention else {}))
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        raise ValueError(f"model {entry.name!r}: {error} (builder arguments {args}; the builder is "
                         f"{entry.builder_name})") from None
    except ValueError as error:
        text = " ".join(str(error).split())
        if not text.startswith(f"weights={str(path)!r}"):
            raise  # another builder argument's error
        found = re.search(r"\(([\d,]+) parameters\): (.*?)\. Build the model", text)
        rest = text.removeprefix(f"weights={str(path)!r}").strip(" :")
        detail = (found.group(2), f" ({found.group(1)} parameters)") if found else (
            "it " + rest if rest.startswith("is ") else rest, "")
        raise CheckpointMismatchError(
            f"{path}: this checkpoint does not match model {entry.name!r} built with {built_with or 'its defaults'}"
            f"{detail[1]}: {detail[0]}. Build the model the checkpoint was trained as (--small, "
            f"--builder-args '{{\"classes\": ...}}', or --model of the right name).") from None


def _named_outputs(model: keras.Model, outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, Mapping):
        return dict(outputs)
    return dict(zip(model.output_names, keras.tree.flatten(outputs)))


def load_predictor(
    model: str,
    *,
    weights: str | Path | None = None,
    saved_model: str | Path | None = None,
    keras_model: keras.Model | None = None,
    small: bool = False,
    builder_args: Mapping[str, Any] | None = None,
    attention: bool = True,
    input_spec: InputSpec | None = None,
    max_segments: int | None = None,
) -> Predictor:
    """A :class:`Predictor` for registered model ``model``.

    Exactly one of ``weights`` (a checkpoint of the whole model; the model is built
    from the registry with ``small`` and ``builder_args``), ``saved_model`` (a
    folder written by :func:`zoo.export.export_saved_model`) or ``keras_model`` (a
    model in memory) is used. ``attention`` builds attention models to return their
    maps (for overlays). ``input_spec`` overrides the spec; ``max_segments`` the
    superpixel bound (SANet SavedModels: default the models' 256).
    """
    entry = get_model(model)
    sources = [s for s in (weights, saved_model, keras_model) if s is not None]
    if len(sources) != 1:
        raise ValueError("load_predictor: pass exactly one of weights, saved_model or keras_model.")
    if saved_model is not None:
        return _saved_model_predictor(entry, Path(saved_model), input_spec, max_segments)
    if keras_model is None:
        keras_model = build_from_checkpoint(entry, weights, small=small, builder_args=builder_args,
                                            attention=attention)
        source = str(weights)
    else:
        source = f"model {keras_model.name!r} in memory"
    return _keras_predictor(entry, keras_model, source, input_spec, max_segments)


def _keras_predictor(entry: ModelEntry, model: keras.Model, source: str, input_spec: InputSpec | None,
                     max_segments: int | None) -> Predictor:
    from zoo.export import _split_inputs  # the export's reading of a model's inputs

    image_index, label_map = _split_inputs(model, max_segments)
    spec = input_spec or spec_for_model(entry.input_spec, model.inputs[image_index].shape[1:3])
    names = list(model.output) if isinstance(model.output, Mapping) else list(model.output_names)
    main = entry.output if entry.output in names else names[0]
    shapes = _named_outputs(model, model.output)
    channels = int(shapes[main].shape[-1])
    softmax = None
    try:
        layer = model.get_layer(main)
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        softmax = None if activation is None else activation == "softmax" and channels > 1
    except ValueError:
        pass

    def call(images: list[np.ndarray], maps: list[np.ndarray] | None) -> list[dict[str, np.ndarray]]:
        batch = np.stack([preprocess_images(image, spec).numpy() for image in images])
        inputs: Any = batch
        if label_map is not None:
            labels = np.stack([preprocess_label_maps(m[..., None], spec).numpy() for m in maps])
            labels = labels if label_map.rank == 4 else labels[..., 0]
            inputs = [batch, labels] if label_map.index == 1 else [labels, batch]
        outputs = _named_outputs(model, model(inputs, training=False))
        arrays = {name: np.asarray(keras.ops.convert_to_numpy(value), np.float32) for name, value in outputs.items()}
        return [{name: value[index] for name, value in arrays.items()} for index in range(len(images))]

    return Predictor(entry.name, entry.output, main, spec, source, channels,
                     tuple(n for n in names if n != main),
                     None if label_map is None else label_map.max_segments, call, softmax)


def _saved_model_predictor(entry: ModelEntry, path: Path, input_spec: InputSpec | None,
                           max_segments: int | None) -> Predictor:
    from zoo.export import IMAGES_INPUT, SERVING_DEFAULT, load_input_spec
    from zoo.sanet.models import SANET_MAX_SEGMENTS

    if not (path / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{path}: no SavedModel here (saved_model.pb missing); write one with zoo.export.")
    spec = input_spec or load_input_spec(path)
    function = tf.saved_model.load(str(path)).signatures[SERVING_DEFAULT]
    map_names = [n for n in function.structured_input_signature[1] if n != IMAGES_INPUT]
    outputs = function.structured_outputs
    main = entry.output if entry.output in outputs else sorted(outputs)[0]
    channels = outputs[main].shape[-1]

    def call(images: list[np.ndarray], maps: list[np.ndarray] | None) -> list[dict[str, np.ndarray]]:
        results = []
        for index, image in enumerate(images):
            feeds = {IMAGES_INPUT: tf.constant(image[None])}
            if map_names:
                feeds[map_names[0]] = tf.constant(maps[index][None].astype(np.int32))
            results.append({name: value.numpy()[0] for name, value in function(**feeds).items()})
        return results

    bound = (max_segments or SANET_MAX_SEGMENTS) if map_names else None
    return Predictor(entry.name, entry.output, main, spec, str(path), int(channels) if channels else 0,
                     tuple(n for n in outputs if n != main), bound, call)


# --------------------------------------------------------------------------- images


def collect_images(sources: Sequence[str | Path], *, isic_ids: bool) -> tuple[list[tuple[str, Path]], list[str]]:
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
                notes.append(f"{source}: left out {len(ignored)} file(s) that are not images to predict, "
                             f"e.g. {ignored[0]}")
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


# --------------------------------------------------------------------------- geometry and overlays


def model_window(original_size: tuple[int, int], spec: InputSpec) -> tuple[float, float, float, float]:
    """``(top, left, height, width)``, in the original image's pixels, of the region the
    model input shows: the whole image (``stretch``), the grey-padded square around it
    (``pad``), or the centred crop (``crop``); then the centred ``image_size`` window
    of a ``pre_crop_size`` resize."""
    height, width = original_size
    if spec.fit == "pad":
        side = max(height, width)
        top, left, fit_h, fit_w = -((side - height) // 2), -((side - width) // 2), side, side
    elif spec.fit == "crop":
        side = max(1, int(np.floor(spec.crop_fraction * min(height, width))))
        top, left, fit_h, fit_w = (height - side) // 2, (width - side) // 2, side, side
    else:
        top, left, fit_h, fit_w = 0, 0, height, width
    if spec.pre_crop_size is None:
        return float(top), float(left), float(fit_h), float(fit_w)
    (pre_h, pre_w), (in_h, in_w) = spec.pre_crop_size, spec.image_size
    return (top + fit_h * ((pre_h - in_h) // 2) / pre_h, left + fit_w * ((pre_w - in_w) // 2) / pre_w,
            fit_h * in_h / pre_h, fit_w * in_w / pre_w)


def at_original_size(maps: np.ndarray, original_size: tuple[int, int], spec: InputSpec) -> np.ndarray:
    """Model-resolution ``[h, w, C]`` probabilities on the original pixels (bilinear;
    :func:`~data_tools.preprocess.restore_geometry`)."""
    if tuple(maps.shape[:2]) != spec.image_size:
        maps = tf.image.resize(maps, spec.image_size, method="bilinear").numpy()
    return restore_geometry(maps, original_size, spec).numpy()


def _figure(image: np.ndarray):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = image.shape[:2]
    scale = min(max(OVERLAY_SIDES[0], max(height, width)), OVERLAY_SIDES[1]) / max(height, width)
    figure = Figure(figsize=(max(1.0, width * scale / 100), max(1.0, height * scale / 100)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(image, extent=(0, width, height, 0), interpolation="antialiased")
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.set_axis_off()
    return figure, axes


def _grid(values: np.ndarray, window: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    top, left, height, width = window
    rows, cols = values.shape[:2]
    return left + (np.arange(cols) + 0.5) * width / cols, top + (np.arange(rows) + 0.5) * height / rows


def _caption(axes, text: str) -> None:
    axes.text(0.01, 0.99, text, transform=axes.transAxes, va="top", ha="left", fontsize=9,
              bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})


def write_overlays(image: np.ndarray, outputs: Mapping[str, np.ndarray], predictor: Predictor, out_dir: Path,
                   stem: str, threshold: float = 0.5, labels: Sequence[str] | None = None) -> list[Path]:
    """The prediction's outline and each spatial attention map (heat map) on ``image``."""
    from matplotlib import colormaps

    out_dir.mkdir(parents=True, exist_ok=True)
    window = model_window(image.shape[:2], predictor.spec)
    written = []
    main = np.asarray(outputs[predictor.main])
    if predictor.output == "mask":
        figure, axes = _figure(image)
        colours = colormaps["tab10"].colors
        xs, ys = _grid(main, window)
        if main.shape[-1] == 1:
            layers = [("lesion", main[..., 0], threshold)]
        elif predictor.softmax:
            classes = main.argmax(-1)
            layers = [(f"class {c}", (classes == c).astype(np.float32), 0.5) for c in range(1, main.shape[-1])]
        else:
            names = labels or [f"channel {c}" for c in range(main.shape[-1])]
            layers = [(names[c], main[..., c], threshold) for c in range(main.shape[-1])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no contour levels were found" for an empty prediction
            for index, (name, values, level) in enumerate(layers):
                axes.contour(xs, ys, values, levels=[level], colors=[colours[index % len(colours)]], linewidths=2)
        legend = ", ".join(f"{name} ({'C%d' % (i % 10)})" for i, (name, _, _) in enumerate(layers))
        _caption(axes, f"{predictor.name}: predicted outline, {legend}")
        written.append(out_dir / f"{stem}_prediction.png")
        figure.savefig(written[-1])
    probabilities = "" if predictor.output == "mask" else ", p = " + ", ".join(f"{p:.3f}" for p in main.ravel())
    for name in predictor.attention:
        values = np.asarray(outputs[name], np.float32)
        if values.ndim != 3 or values.shape[0] * values.shape[1] == 1:
            continue  # a channel-attention vector: no place in the image
        heat = values.mean(-1)
        figure, axes = _figure(image)
        top, left, height, width = window
        axes.imshow(heat, extent=(left, left + width, top + height, top), cmap="jet", alpha=0.5,
                    interpolation="bilinear")
        axes.set_xlim(0, image.shape[1])
        axes.set_ylim(image.shape[0], 0)
        reduced = f", mean of {values.shape[-1]} channels" if values.shape[-1] > 1 else ""
        _caption(axes, f"{name} ({values.shape[0]}x{values.shape[1]}{reduced}; {heat.min():.3g} blue .. "
                       f"{heat.max():.3g} red){probabilities}")
        written.append(out_dir / f"{stem}_{name}.png")
        figure.savefig(written[-1])
    return written


# --------------------------------------------------------------------------- predict


@dataclasses.dataclass
class PredictionSummary:
    """What :func:`predict_images` did."""

    model: str
    format: str
    out_dir: Path
    predicted: list[str]
    files: list[Path]
    skipped: list[DatasetError]
    seconds: float
    overlays: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        rate = f" ({self.seconds / len(self.predicted):.2f} s/image)" if self.predicted else ""
        text = (f"{self.model}: predicted {len(self.predicted)} image(s) in {self.seconds:.1f} s{rate}; wrote "
                f"{len(self.files)} {self.format} file(s) to {self.out_dir}")
        if self.overlays:
            text += f", {self.overlays} overlay(s) in {self.out_dir / OVERLAY_DIR}"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} unreadable image(s), listed in {self.out_dir / SKIPPED_FILE}"
        return text


def check_format(predictor: Predictor, format: str, sk_predictor: Predictor | None = None) -> None:
    """Raises ``ValueError`` if ``predictor``'s output cannot be written as ``format``."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    kind, channels = predictor.output, predictor.channels
    wanted = {**{f: ("mask", (1,)) for f in MASK_FORMATS}, "isic2018-task2": ("mask", (len(ISIC2018_ATTRIBUTES),)),
              "isic2016-part3": ("probabilities", (1, 2)), "masks": ("mask", None), "csv": ("probabilities", None),
              "isic2017-part3": ("probabilities", (2,) if sk_predictor is not None else (3,))}[format]
    if kind != wanted[0] or (wanted[1] is not None and channels not in wanted[1]):
        need = f"{wanted[0]} output" + ("" if wanted[1] is None else f" with {' or '.join(map(str, wanted[1]))} channel(s)")
        hint = " (a 2-class melanoma model needs --sk-weights for the seborrheic keratosis column)" if (
            format == "isic2017-part3" and channels == 2 and sk_predictor is None) else ""
        raise ValueError(f"--format {format} needs a {need}; model {predictor.name!r} gives a {kind} output with "
                         f"{channels} channel(s){hint}.")
    if sk_predictor is not None:
        if format != "isic2017-part3":
            raise ValueError("a seborrheic keratosis model (--sk-weights) is only used with --format isic2017-part3.")
        if sk_predictor.output != "probabilities" or sk_predictor.channels != 2:
            raise ValueError(f"the seborrheic keratosis model {sk_predictor.name!r} must give 2-class probabilities.")
    if kind == "mask" and (predictor.spec.fit == "crop" or predictor.spec.pre_crop_size is not None):
        raise ValueError(f"model {predictor.name!r}: its input spec crops the image (fit={predictor.spec.fit!r}, "
                         f"pre_crop_size={predictor.spec.pre_crop_size}), so masks cannot be mapped back to it.")


def predict_images(
    predictor: Predictor,
    images: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    format: str | None = None,
    overlays: bool = False,
    skip_bad: bool = False,
    batch_size: int = 8,
    threshold: float = 0.5,
    sk_predictor: Predictor | None = None,
    class_names: Sequence[str] | None = None,
) -> PredictionSummary:
    """Predicts every image of ``images`` (folders and/or files) and writes ``format``.

    Args:
        predictor: from :func:`load_predictor`.
        out_dir: created if needed.
        format: one of :data:`FORMATS`; default ``"masks"`` for mask models,
            ``"csv"`` for classifiers.
        overlays: also write the outline and attention heat maps per image.
        skip_bad: skip unreadable images (listed in ``<out_dir>/skipped.txt``)
            instead of stopping at the first.
        batch_size: images per model call (Keras models; SavedModels take one).
        threshold: on the probabilities, for binary masks.
        sk_predictor: ISIC 2017 Part 3 with 2-class models: the seborrheic
            keratosis model (``predictor`` is then the melanoma one).
        class_names: CSV column names for ``format="csv"`` (default ``class_<k>``).

    Raises:
        DatasetError: an unreadable image (without ``skip_bad``).
        ValueError: the format does not fit the model, or bad image names.
    """
    format = format or ("masks" if predictor.output == "mask" else "csv")
    check_format(predictor, format, sk_predictor)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    if class_names is not None and len(class_names) != predictor.channels:
        raise ValueError(f"class_names has {len(class_names)} names for {predictor.channels} classes.")
    sources = [images] if isinstance(images, (str, Path)) else list(images)
    found, notes = collect_images(sources, isic_ids=format in ISIC_FORMATS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = BadInputPolicy(skip_bad)
    started = time.perf_counter()
    files: list[Path] = []
    rows: list[tuple[str, list[float]]] = []
    predicted: list[str] = []
    overlay_count = 0
    attribute_labels = ISIC2018_ATTRIBUTES if predictor.channels == len(ISIC2018_ATTRIBUTES) else None
    with tqdm(total=len(found), desc=f"predicting ({predictor.name})", unit="image", disable=None) as progress:
        for start in range(0, len(found), batch_size):
            batch = []
            for image_id, path in found[start:start + batch_size]:
                try:
                    batch.append((image_id, path, load_image(path)))
                except DatasetError as error:
                    policy.reject(error.path, error.problem)  # raises unless skip_bad
            if batch:
                pixels = [image for _, _, image in batch]
                maps = None
                if predictor.needs_superpixels or (sk_predictor is not None and sk_predictor.needs_superpixels):
                    bound = min(p.max_segments for p in (predictor, sk_predictor) if p is not None and p.max_segments)
                    maps = [compute_superpixels(image, bound) for image in pixels]
                outputs = predictor.predict(pixels, maps)
                sk_outputs = sk_predictor.predict(pixels, maps) if sk_predictor is not None else None
                for index, (image_id, path, image) in enumerate(batch):
                    main = outputs[index][predictor.main]
                    files += _write(format, image_id, main, image.shape[:2], predictor, out_dir, threshold, rows,
                                    None if sk_outputs is None else sk_outputs[index][sk_predictor.main])
                    if overlays:
                        overlay_count += len(write_overlays(image, outputs[index], predictor, out_dir / OVERLAY_DIR,
                                                            image_id, threshold, attribute_labels))
                    predicted.append(image_id)
            progress.update(len(found[start:start + batch_size]))
    if format in CLASSIFICATION_FORMATS and rows:
        files.append(_write_csv(format, out_dir / PREDICTIONS_CSV, rows, predictor.channels, class_names))
    skipped_file = out_dir / SKIPPED_FILE
    if policy.skipped:
        skipped_file.write_text("".join(f"{e.path}: {e.problem}\n" for e in policy.skipped), encoding="utf-8")
    else:
        skipped_file.unlink(missing_ok=True)  # not a stale list from an earlier run
    if overlays and not overlay_count:
        notes.append(f"model {predictor.name!r} gave nothing to overlay (no mask output, no spatial attention maps; "
                     "attention models need their maps: load them with attention=True)")
    return PredictionSummary(predictor.name, format, out_dir, predicted, files, policy.skipped,
                             time.perf_counter() - started, overlay_count, notes)


def _write(format: str, image_id: str, main: np.ndarray, size: tuple[int, int], predictor: Predictor, out_dir: Path,
           threshold: float, rows: list, sk_main: np.ndarray | None) -> list[Path]:
    spec = predictor.spec
    if format in CLASSIFICATION_FORMATS:
        values = np.asarray(main, np.float64).ravel()
        if format == "isic2016-part3":
            values = values[-1:]  # melanoma: the positive column of (rest, melanoma), or a single sigmoid
        elif format == "isic2017-part3":
            values = values[1:3] if sk_main is None else np.array([values[1], np.asarray(sk_main).ravel()[1]])
        rows.append((image_id, [float(v) for v in values]))
        return []
    # the writers resize a stretch-fit map themselves; padded or cropped geometry is restored first
    maps = main if spec.fit == "stretch" and spec.pre_crop_size is None else at_original_size(main, size, spec)
    if format in MASK_FORMATS:
        return [submission.write_segmentation_mask(image_id, maps, out_dir, size, threshold, MASK_FORMATS[format])]
    if format == "isic2018-task2":
        return submission.write_attribute_masks(image_id, maps, out_dir, size, ISIC2018_ATTRIBUTES, threshold)
    maps = at_original_size(main, size, spec) if maps is main else maps
    if maps.shape[-1] == 1:
        return [save_png(out_dir / f"{image_id}.png", np.where(maps[..., 0] > threshold, 255, 0).astype(np.uint8))]
    if predictor.softmax:
        return [save_png(out_dir / f"{image_id}.png", maps.argmax(-1).astype(np.uint8))]
    return [save_png(out_dir / f"{image_id}_{c}.png", np.where(maps[..., c] > threshold, 255, 0).astype(np.uint8))
            for c in range(maps.shape[-1])]


def _write_csv(format: str, path: Path, rows: list[tuple[str, list[float]]], channels: int,
               class_names: Sequence[str] | None) -> Path:
    ids = [image_id for image_id, _ in rows]
    columns = np.array([values for _, values in rows])
    if format == "isic2016-part3":
        return submission.write_isic2016_classification_csv(path, ids, columns[:, 0])
    if format == "isic2017-part3":
        return submission.write_isic2017_classification_csv(path, ids, columns[:, 0], columns[:, 1])
    names = list(class_names or [f"class_{c}" for c in range(channels)])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", *names])
        writer.writerows([image_id, *(repr(v) for v in values)] for image_id, values in rows)
    return path


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zoo.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="registered model name (python -c 'import zoo; "
                        "print([e.name for e in zoo.list_models()])')")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", type=Path, help="checkpoint of the whole model (.weights.h5 or .keras)")
    source.add_argument("--saved-model", type=Path, help="SavedModel folder written by zoo.export")
    parser.add_argument("--images", required=True, nargs="+", type=Path, help="image folders and/or files")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--format", choices=FORMATS, help="default: masks (mask models), csv (classifiers)")
    parser.add_argument("--overlays", action="store_true", help="outline and attention heat maps per image")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable images (listed in skipped.txt)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.5, help="probability threshold of binary masks")
    parser.add_argument("--small", action="store_true", help="the registry's small test configuration")
    parser.add_argument("--builder-args", type=json.loads, default={},
                        help='JSON builder arguments the checkpoint was trained with, e.g. \'{"classes": 3}\'')
    parser.add_argument("--input-spec", type=Path, help="an InputSpec JSON file overriding the model's")
    parser.add_argument("--max-segments", type=int, help="SANet: the superpixel bound (SavedModels: default 256)")
    parser.add_argument("--sk-weights", type=Path, help="isic2017-part3: the seborrheic keratosis model's checkpoint")
    parser.add_argument("--class-names", nargs="+", help="--format csv: column names")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        spec = InputSpec.from_json(args.input_spec.read_text(encoding="utf-8")) if args.input_spec else None
        common = dict(small=args.small, builder_args=args.builder_args, input_spec=spec, max_segments=args.max_segments)
        predictor = load_predictor(args.model, weights=args.weights, saved_model=args.saved_model,
                                   attention=args.overlays, **common)
        sk = load_predictor(args.model, weights=args.sk_weights, attention=False, **common) if args.sk_weights else None
        summary = predict_images(predictor, args.images, args.out, format=args.format, overlays=args.overlays,
                                 skip_bad=args.skip_bad, batch_size=args.batch_size, threshold=args.threshold,
                                 sk_predictor=sk, class_names=args.class_names)
    except (DatasetError, ValueError, FileNotFoundError, KeyError, OSError) as error:
        print(f"zoo.predict: error: {error}", file=sys.stderr)
        return 1
    for note in summary.notes:
        print(f"note: {note}")
    print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
