"""Run a trained model of the zoo on new images and write the results.

    python -m zoo.predict --run runs/aernet --images ISIC2018_Task1-2_Test_Input \\
        --out submission --format isic2018-task1 --overlays      # overlays: submission_overlays/
    python -m zoo.evaluate --task isic2018-task1 ISIC2018_Task1_Test_GroundTruth submission
    python -m zoo.predict --run runs/arl_melanoma --sk-run runs/arl_keratosis \\
        --images ISIC-2017_Test_v2_Data --out part3 --format isic2017-part3
    python -m zoo.predict --model aernet --weights best.weights.h5 [--small] \\
        [--builder-args '{"classes": 1}'] --images test/ --out submission --format isic2018-task1
    python -m zoo.predict --model apspnet --saved-model serving/apspnet/1 \\
        --images scans/ --out masks --format masks --overlays scans_overlays

The model comes from a run folder (``--run``: :func:`zoo.load_run`; the model,
its builder arguments and its input spec are the run's ``run.json``, nothing is
retyped), a bare checkpoint (``--model`` ``--weights`` with the ``--small`` /
``--builder-args`` it was trained with; a run's own ``model.weights.h5`` loaded
into another build is a :class:`~zoo.common.run_card.RunMismatchError`), or a
SavedModel of :mod:`zoo.export` (``--model`` ``--saved-model``).
:mod:`zoo.serving` builds it and says how it is fed and read, as for the exports.

Each image, of any size, goes through the model's own preprocessing: the run's
:class:`~data_tools.preprocess.InputSpec`, or the registry entry's at the model's
input size (what the training pipelines do), or the spec stored beside a
SavedModel. SANet's superpixel maps (the extra input its registry entry declares)
are computed as in training (:func:`zoo.serving.compute_superpixels`: SLIC at its
working size, resized to the image with nearest neighbour, then given the image's
geometry).

Formats (``--format``):

====================  ============================================================
``isic2018-task1``    ``ISIC_<id>_segmentation.png``, 0/255, at the image's size
``isic2016-part1``    ``ISIC_<id>_Segmentation.png``
``isic2017-part1``    ``ISIC_<id>_segmentation.png``
``isic2018-task2``    ``ISIC_<id>_attribute_<name>.png``, one per attribute (5 channels)
``isic2017-part3``    ``predictions.csv``: ``image_id,melanoma,seborrheic_keratosis``;
                      a 3-class model (other, melanoma, seborrheic keratosis), or a
                      2-class melanoma model plus ``--sk-run`` (or ``--sk-weights``;
                      ARL-CNN trains one 2-way softmax per sub-task)
``isic2016-part3``    ``predictions.csv``: ``ISIC_<id>,<melanoma probability>``
``masks``             ``<stem>.png`` per image: 0/255 for one channel, class indices
                      for a softmax (A-PSPNet; ``python -m zoo.evaluate --task masks``),
                      ``<stem>_<k>.png`` per channel for independent sigmoids
``csv``               ``predictions.csv``: ``image_id`` and one column per class
====================  ============================================================

Masks are written at the original image size (:mod:`zoo.submission`; the grey
padding of ``fit="pad"`` models is cut off with
:func:`~data_tools.preprocess.restore_geometry`). ``--overlays [DIR]`` writes
``<stem>_prediction.png`` (the predicted outline on the image) and
``<stem>_<map>.png`` per spatial attention map (heat map on the image;
channel-attention vectors have no place in the image and are skipped) into DIR,
by default ``<out>_overlays/`` *beside* the output folder: never inside it, so
that ``--out`` holds only the submission ``zoo.evaluate`` scores.
Unreadable images stop the run with their name, or with ``--skip-bad`` are
skipped and listed in ``<out>/skipped.txt``.

Multi-frame DICOM (ultrasound cine loops): every frame is predicted, or those of
``--frames`` (numbered from 1 as DICOM numbers them: ``--frames 1,5-9``), each as an
image of its own named ``<stem>_frame<NNN>`` (:func:`data_tools.layouts.frame_stem`):
``<stem>_frame012.png`` in ``masks``, ``<stem>_frame012_prediction.png`` among the
overlays, ``<stem>_frame012`` in a CSV. ``--frames`` leaves single-frame images alone;
a frame a file lacks is an unreadable image (named; skipped with ``--skip-bad``).

Before anything is loaded: ``--threshold`` must be a finite probability in (0, 1),
``--batch-size`` positive, and ``--out`` (and an ``--overlays`` folder) apart from
the images: not an images folder, inside one or holding one
(:func:`check_out_apart`). A checkpoint that cannot be read or whose weights hold
NaN is refused (:func:`zoo.serving.load_model`). Every file is written whole or not
at all (:mod:`data_tools.atomic`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm import tqdm

from data_tools.atomic import atomic_path, atomic_write_text
from data_tools.imageio import frame_count, load_image, save_png
from data_tools.layouts import (
    ISIC2016_MASK_SUFFIX,
    ISIC2017_MASK_SUFFIX,
    ISIC2018_ATTRIBUTES,
    ISIC2018_MASK_SUFFIX,
    frame_stem,
)
from data_tools.lazy_tensorflow import lazy_tensorflow
from data_tools.preprocess import InputSpec, preprocess_images
from data_tools.records import BadInputPolicy, DatasetError
from zoo import submission
from zoo.registry import ModelEntry, get_model
from zoo.serving import (
    IMAGES_INPUT,
    SERVING_DEFAULT,
    CheckpointMismatchError,
    ModelIO,
    at_original_size,
    attention_kwargs,
    build_from_checkpoint,
    check_extra_inputs,
    collect_images,
    compute_extra_input,
    compute_superpixels,
    entry_max_segments,
    error_line,
    load_input_spec,
    load_model,
    load_saved_model,
    load_serving_info,
    spec_for_model,
)

tf = lazy_tensorflow("TensorFlow's image decoders")

#: Re-exported from zoo.serving, where they live (zoo.predict.spec_for_model, ... keep working).
__all__ = [
    "CheckpointMismatchError",
    "PredictionSummary",
    "Predictor",
    "at_original_size",
    "attention_kwargs",
    "build_from_checkpoint",
    "check_format",
    "check_frames",
    "check_numbers",
    "check_out_apart",
    "collect_images",
    "compute_superpixels",
    "images_and_frames",
    "load_predictor",
    "parse_frames",
    "main",
    "model_window",
    "overlays_folder",
    "predict_images",
    "spec_for_model",
    "write_overlays",
]

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
#: ``--overlays`` without a folder: ``<out>_overlays/`` beside the output folder (never inside: a
#: submission folder holds only what is scored).
OVERLAYS_SUFFIX = "_overlays"
#: Overlays are drawn with their longer side in this range (pixels).
OVERLAY_SIDES = (512, 1024)
#: ISIC 2017 Part 3 from one 3-class model: its softmax columns.
ISIC2017_THREE_CLASSES = ("other", "melanoma", "seborrheic_keratosis")


# --------------------------------------------------------------------------- predictors


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
        max_segments: the label-map input's bound (SANet's superpixels); ``None``
            for models without one.
        extra_input: the label-map input's name (``"superpixels"``), computed from
            each image (:func:`zoo.serving.compute_extra_input`) unless given.
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
    extra_input: str | None = None

    @property
    def needs_superpixels(self) -> bool:
        """The model takes a label map beside the image."""
        return self.max_segments is not None

    def predict(
        self, images: list[np.ndarray], superpixels: list[np.ndarray] | None = None
    ) -> list[dict[str, np.ndarray]]:
        if self.needs_superpixels and superpixels is None:
            superpixels = [compute_extra_input(self.extra_input, image, self.max_segments) for image in images]
        outputs = self.call(images, superpixels if self.needs_superpixels else None)
        if self.softmax is None:
            self.softmax = _looks_like_softmax(outputs[0][self.main])
        return outputs


def _looks_like_softmax(values: np.ndarray) -> bool:
    values = np.asarray(values)
    return values.shape[-1] > 1 and bool(np.allclose(values.sum(-1), 1.0, atol=1e-3))


def load_predictor(
    model: str | None = None,
    *,
    weights: str | Path | None = None,
    saved_model: str | Path | None = None,
    keras_model: keras.Model | None = None,
    run: str | Path | None = None,
    small: bool = False,
    builder_args: Mapping[str, Any] | None = None,
    attention: bool = True,
    input_spec: InputSpec | None = None,
    max_segments: int | None = None,
) -> Predictor:
    """A :class:`Predictor` for a trained model.

    Exactly one of ``run`` (a run folder, :mod:`zoo.run`: the model, its builder
    arguments and input spec come from its ``run.json``; ``model`` may only name the
    run's model), ``weights`` (a bare checkpoint of the whole model; registered
    model ``model`` is built with ``small`` and ``builder_args``), ``saved_model``
    (a folder written by :func:`zoo.export.export_saved_model`) or ``keras_model``
    (a model of ``model`` in memory) is used (:func:`zoo.serving.load_model`).
    ``attention`` builds attention models to return their maps (for overlays).
    ``input_spec`` overrides the spec (not with ``run``); ``max_segments`` the
    label-map bound (SANet; default: the model's).
    """
    sources = [s for s in (weights, saved_model, keras_model, run) if s is not None]
    if len(sources) != 1:
        raise ValueError("load_predictor: pass exactly one of run, weights, saved_model or keras_model.")
    if weights is not None or run is not None:
        served = load_model(
            model,
            weights=weights,
            run=run,
            small=small,
            builder_args=builder_args,
            input_spec=input_spec,
            attention=attention,
        )
        return _keras_predictor(served.entry, served.model, served.source, served.input_spec, max_segments)
    if model is None:
        raise ValueError("load_predictor: a SavedModel or a Keras model needs its registered model's name (model=).")
    entry = get_model(model)
    if saved_model is not None:
        return _saved_model_predictor(entry, Path(saved_model), input_spec, max_segments)
    return _keras_predictor(entry, keras_model, f"model {keras_model.name!r} in memory", input_spec, max_segments)


def _keras_predictor(
    entry: ModelEntry, model: keras.Model, source: str, input_spec: InputSpec | None, max_segments: int | None
) -> Predictor:
    io = ModelIO.of(model, main=entry.output, max_segments=max_segments, caller="zoo.predict")
    check_extra_inputs(entry, io)
    spec = input_spec or spec_for_model(entry.input_spec, io.image_size)
    io.check_spec(model, spec, "zoo.predict")
    outputs = (
        model.output
        if isinstance(model.output, Mapping)
        else dict(zip(model.output_names, keras.tree.flatten(model.output), strict=True))
    )
    channels = int(outputs[io.main].shape[-1])
    softmax = None
    try:
        layer = model.get_layer(io.main)
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        softmax = None if activation is None else activation == "softmax" and channels > 1
    except ValueError:
        pass

    def call(images: list[np.ndarray], maps: list[np.ndarray] | None) -> list[dict[str, np.ndarray]]:
        # keras.ops: the same numbers as the tf.data pipeline, on any backend (no TensorFlow needed).
        batch = np.stack([keras.ops.convert_to_numpy(preprocess_images(image, spec, ops="keras")) for image in images])
        model_maps = None
        if io.label_map is not None:
            model_maps = np.concatenate(
                [keras.ops.convert_to_numpy(io.model_maps(m[None, ..., None], spec, ops="keras")) for m in maps]
            )
        results = io.run(model, batch, model_maps)
        arrays = {name: np.asarray(keras.ops.convert_to_numpy(value), np.float32) for name, value in results.items()}
        return [{name: value[index] for name, value in arrays.items()} for index in range(len(images))]

    return Predictor(
        entry.name,
        entry.output,
        io.main,
        spec,
        source,
        channels,
        io.attention,
        io.max_segments,
        call,
        softmax,
        None if io.label_map is None else io.label_map.name,
    )


def _saved_model_predictor(
    entry: ModelEntry, path: Path, input_spec: InputSpec | None, max_segments: int | None
) -> Predictor:
    loaded = load_saved_model(path, entry.name)  # refuses a missing, cut short, corrupt or other model's export
    spec = input_spec or load_input_spec(path)
    info = load_serving_info(path)
    function = loaded.signatures[SERVING_DEFAULT]
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

    bound = None
    if map_names:
        # the bound written beside the SavedModel; for an older export, the builder's default
        bound = max_segments or info.get("max_segments") or entry_max_segments(entry)
        if bound is None:
            raise ValueError(
                f"{path}: the SavedModel takes {map_names[0]!r} maps and names no bound on their "
                f"labels; pass --max-segments."
            )
    return Predictor(
        entry.name,
        entry.output,
        main,
        spec,
        str(path),
        int(channels) if channels else 0,
        tuple(n for n in outputs if n != main),
        bound,
        call,
        None,
        map_names[0] if map_names else None,
    )


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
    return (
        top + fit_h * ((pre_h - in_h) // 2) / pre_h,
        left + fit_w * ((pre_w - in_w) // 2) / pre_w,
        fit_h * in_h / pre_h,
        fit_w * in_w / pre_w,
    )


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
    axes.text(
        0.01,
        0.99,
        text,
        transform=axes.transAxes,
        va="top",
        ha="left",
        fontsize=9,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )


#: The names of matplotlib's "tab10" colours, in order: what an outline's legend calls its colour.
OUTLINE_COLOURS = ("blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan")


def write_overlays(
    image: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    predictor: Predictor,
    out_dir: Path,
    stem: str,
    threshold: float = 0.5,
    labels: Sequence[str] | None = None,
) -> list[Path]:
    """The prediction's outline (:func:`prediction_figure`) and each spatial attention
    map (:func:`attention_figure`) on ``image``, as PNGs in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    window = model_window(image.shape[:2], predictor.spec)
    written = []
    main = np.asarray(outputs[predictor.main])
    if predictor.output == "mask":
        written.append(out_dir / f"{stem}_prediction.png")
        prediction_figure(image, main, predictor, window, threshold, labels).savefig(written[-1])
    probabilities = "" if predictor.output == "mask" else ", p = " + ", ".join(f"{p:.3f}" for p in main.ravel())
    for name in predictor.attention:
        values = np.asarray(outputs[name], np.float32)
        if values.ndim != 3 or values.shape[0] * values.shape[1] == 1:
            continue  # a channel-attention vector: no place in the image
        written.append(out_dir / f"{stem}_{name}.png")
        attention_figure(image, values, name, window, probabilities).savefig(written[-1])
    return written


def prediction_figure(
    image: np.ndarray,
    main: np.ndarray,
    predictor: Predictor,
    window: tuple[float, float, float, float],
    threshold: float = 0.5,
    labels: Sequence[str] | None = None,
):
    """``image`` with the outline of each predicted region, and a legend naming each
    region and its colour (e.g. "lesion (blue)")."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

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
    handles = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no contour levels were found" for an empty prediction
        for index, (name, values, level) in enumerate(layers):
            colour = colours[index % len(colours)]
            axes.contour(xs, ys, values, levels=[level], colors=[colour], linewidths=2)
            handles.append(
                Line2D(
                    [], [], color=colour, linewidth=2, label=f"{name} ({OUTLINE_COLOURS[index % len(OUTLINE_COLOURS)]})"
                )
            )
    axes.legend(
        handles=handles,
        loc="lower right",
        fontsize=8,
        framealpha=0.8,
        title=f"{predictor.name}: predicted outline",
        title_fontsize=8,
    )
    return figure


def attention_figure(
    image: np.ndarray,
    values: np.ndarray,
    name: str,
    window: tuple[float, float, float, float],
    caption_suffix: str = "",
):
    """``image`` under the heat map of an attention map ``(h, w, C)`` (the mean of its
    channels), with a colour bar giving the map's own values from its minimum (blue)
    to its maximum (red) in this image."""
    heat = values.mean(-1)
    figure, axes = _figure(image)
    top, left, height, width = window
    low, high = float(heat.min()), float(heat.max())
    shown = axes.imshow(
        heat,
        extent=(left, left + width, top + height, top),
        cmap="jet",
        alpha=0.5,
        interpolation="bilinear",
        vmin=low,
        vmax=high if high > low else low + 1e-12,
    )
    axes.set_xlim(0, image.shape[1])
    axes.set_ylim(image.shape[0], 0)
    bar = figure.colorbar(shown, cax=axes.inset_axes((0.94, 0.08, 0.025, 0.6)))
    bar.set_ticks([low, high] if high > low else [low])
    bar.set_ticklabels([f"{low:.3g}", f"{high:.3g}"] if high > low else [f"{low:.3g}"])
    bar.ax.yaxis.set_ticks_position("left")  # labels inside the image, on a white ground
    bar.ax.tick_params(labelsize=7)
    for label in bar.ax.get_yticklabels():
        label.set_bbox({"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
    reduced = f", mean of {values.shape[-1]} channels" if values.shape[-1] > 1 else ""
    _caption(axes, f"{name} ({values.shape[0]}x{values.shape[1]}{reduced}; colour: this image's range){caption_suffix}")
    return figure


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
    overlays_dir: Path | None = None

    def line(self) -> str:
        rate = f" ({self.seconds / len(self.predicted):.2f} s/image)" if self.predicted else ""
        text = (
            f"{self.model}: predicted {len(self.predicted)} image(s) in {self.seconds:.1f} s{rate}; wrote "
            f"{len(self.files)} {self.format} file(s) to {self.out_dir}"
        )
        if self.overlays:
            text += f", {self.overlays} overlay(s) to {self.overlays_dir}"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} unreadable image(s), listed in {self.out_dir / SKIPPED_FILE}"
        return text


def check_format(predictor: Predictor, format: str, sk_predictor: Predictor | None = None) -> None:
    """Raises ``ValueError`` if ``predictor``'s output cannot be written as ``format``."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    kind, channels = predictor.output, predictor.channels
    wanted = {
        **{f: ("mask", (1,)) for f in MASK_FORMATS},
        "isic2018-task2": ("mask", (len(ISIC2018_ATTRIBUTES),)),
        "isic2016-part3": ("probabilities", (1, 2)),
        "masks": ("mask", None),
        "csv": ("probabilities", None),
        "isic2017-part3": ("probabilities", (2,) if sk_predictor is not None else (3,)),
    }[format]
    if kind != wanted[0] or (wanted[1] is not None and channels not in wanted[1]):
        need = f"{wanted[0]} output" + (
            "" if wanted[1] is None else f" with {' or '.join(map(str, wanted[1]))} channel(s)"
        )
        hint = (
            " (a 2-class melanoma model needs --sk-run or --sk-weights for the seborrheic keratosis column)"
            if (format == "isic2017-part3" and channels == 2 and sk_predictor is None)
            else ""
        )
        raise ValueError(
            f"--format {format} needs a {need}; model {predictor.name!r} gives a {kind} output with "
            f"{channels} channel(s){hint}."
        )
    if sk_predictor is not None:
        if format != "isic2017-part3":
            raise ValueError(
                "a seborrheic keratosis model (--sk-run, --sk-weights) is only used with --format isic2017-part3."
            )
        if sk_predictor.output != "probabilities" or sk_predictor.channels != 2:
            raise ValueError(f"the seborrheic keratosis model {sk_predictor.name!r} must give 2-class probabilities.")
    if kind == "mask" and (predictor.spec.fit == "crop" or predictor.spec.pre_crop_size is not None):
        raise ValueError(
            f"model {predictor.name!r}: its input spec crops the image (fit={predictor.spec.fit!r}, "
            f"pre_crop_size={predictor.spec.pre_crop_size}), so masks cannot be mapped back to it."
        )


def predict_images(
    predictor: Predictor,
    images: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    format: str | None = None,
    overlays: bool | str | Path = False,
    skip_bad: bool = False,
    batch_size: int = 8,
    threshold: float = 0.5,
    sk_predictor: Predictor | None = None,
    class_names: Sequence[str] | None = None,
    frames: Sequence[int] | None = None,
) -> PredictionSummary:
    """Predicts every image of ``images`` (folders and/or files) and writes ``format``.

    Args:
        predictor: from :func:`load_predictor`.
        out_dir: created if needed.
        format: one of :data:`FORMATS`; default ``"masks"`` for mask models,
            ``"csv"`` for classifiers.
        overlays: also write the outline and attention heat maps per image: ``True``
            into ``<out_dir>_overlays/`` beside ``out_dir`` (:func:`overlays_folder`),
            or into the folder given; never inside ``out_dir``, whose files are the
            submission.
        skip_bad: skip unreadable images (listed in ``<out_dir>/skipped.txt``)
            instead of stopping at the first.
        batch_size: images per model call (Keras models; SavedModels take one).
        threshold: on the probabilities, for binary masks.
        sk_predictor: ISIC 2017 Part 3 with 2-class models: the seborrheic
            keratosis model (``predictor`` is then the melanoma one).
        class_names: CSV column names for ``format="csv"`` (default ``class_<k>``).
        frames: the frames (from 1) of every multi-frame DICOM to predict; ``None``
            all of them (module docstring).

    Raises:
        DatasetError: an unreadable image (without ``skip_bad``).
        ValueError: the format does not fit the model, or bad image names.
    """
    format = format or ("masks" if predictor.output == "mask" else "csv")
    check_format(predictor, format, sk_predictor)
    check_numbers(batch_size=batch_size, threshold=threshold)
    if class_names is not None and len(class_names) != predictor.channels:
        raise ValueError(f"class_names has {len(class_names)} names for {predictor.channels} classes.")
    sources = [images] if isinstance(images, (str, Path)) else list(images)
    check_out_apart(out_dir, sources)
    check_frames(frames)
    found, notes = collect_images(sources, isic_ids=format in ISIC_FORMATS)
    out_dir = Path(out_dir)
    overlays_dir = overlays_folder(out_dir, overlays)
    policy = BadInputPolicy(skip_bad)
    found = images_and_frames(found, frames, policy)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files: list[Path] = []
    rows: list[tuple[str, list[float]]] = []
    predicted: list[str] = []
    overlay_count = 0
    attribute_labels = ISIC2018_ATTRIBUTES if predictor.channels == len(ISIC2018_ATTRIBUTES) else None
    with tqdm(total=len(found), desc=f"predicting ({predictor.name})", unit="image", disable=None) as progress:
        for start in range(0, len(found), batch_size):
            batch = []
            for image_id, path, frame in found[start : start + batch_size]:
                try:
                    batch.append((image_id, path, load_image(path, frame)))
                except DatasetError as error:
                    policy.reject(error.path, error.problem)  # raises unless skip_bad
            if batch:
                pixels = [image for _, _, image in batch]
                maps = None  # one map per image for both models (the smaller bound), if they take the same input
                takers = [p for p in (predictor, sk_predictor) if p is not None and p.needs_superpixels]
                if takers and len({p.extra_input for p in takers}) == 1:
                    bound = min(p.max_segments for p in takers)
                    maps = [compute_extra_input(takers[0].extra_input, image, bound) for image in pixels]
                outputs = predictor.predict(pixels, maps)
                sk_outputs = sk_predictor.predict(pixels, maps) if sk_predictor is not None else None
                for index, (image_id, _, image) in enumerate(batch):
                    main = outputs[index][predictor.main]
                    files += _write(
                        format,
                        image_id,
                        main,
                        image.shape[:2],
                        predictor,
                        out_dir,
                        threshold,
                        rows,
                        None if sk_outputs is None else sk_outputs[index][sk_predictor.main],
                    )
                    if overlays:
                        overlay_count += len(
                            write_overlays(
                                image, outputs[index], predictor, overlays_dir, image_id, threshold, attribute_labels
                            )
                        )
                    predicted.append(image_id)
            progress.update(len(found[start : start + batch_size]))
    if format in CLASSIFICATION_FORMATS and rows:
        files.append(_write_csv(format, out_dir / PREDICTIONS_CSV, rows, predictor.channels, class_names))
    skipped_file = out_dir / SKIPPED_FILE
    if policy.skipped:
        atomic_write_text(skipped_file, "".join(f"{e.path}: {e.problem}\n" for e in policy.skipped))
    else:
        skipped_file.unlink(missing_ok=True)  # not a stale list from an earlier run
    if overlays and not overlay_count:
        notes.append(
            f"model {predictor.name!r} gave nothing to overlay (no mask output, no spatial attention maps; "
            "attention models need their maps: load them with attention=True)"
        )
    return PredictionSummary(
        predictor.name,
        format,
        out_dir,
        predicted,
        files,
        policy.skipped,
        time.perf_counter() - started,
        overlay_count,
        notes,
        overlays_dir,
    )


def parse_frames(text: str) -> tuple[int, ...] | None:
    """``--frames``: ``all`` (``None``), or frame numbers from 1 and ranges, e.g.
    ``1,5-9`` -> ``(1, 5, 6, 7, 8, 9)`` (sorted, each once)."""
    if text.strip().lower() == "all":
        return None
    numbers: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not (first.isdigit() and (not dash or last.isdigit())):
            raise ValueError(f"--frames {text!r}: expected 'all' or frame numbers and ranges from 1, e.g. 1,5-9.")
        low, high = int(first), int(last) if dash else int(first)
        if low < 1 or high < low:
            raise ValueError(
                f"--frames {text!r}: frames are numbered from 1 and a range runs upwards ({part.strip()})."
            )
        numbers.update(range(low, high + 1))
    return tuple(sorted(numbers))


def check_frames(frames: Sequence[int] | None) -> None:
    """Raises ``ValueError`` unless ``frames`` is ``None`` or positive frame numbers."""
    if frames is not None and (
        not frames or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in frames)
    ):
        raise ValueError(f"frames must be None (all) or frame numbers from 1, got {frames!r}.")


def images_and_frames(
    found: Sequence[tuple[str, Path]], frames: Sequence[int] | None, policy: BadInputPolicy
) -> list[tuple[str, Path, int | None]]:
    """``(image id, path, frame)`` to predict: an image once (frame ``None``), a
    multi-frame DICOM once per frame of ``frames`` (all if ``None``) as
    ``<stem>_frame<NNN>``. A file whose header cannot be read or that lacks a frame
    asked for goes to ``policy``; ids that repeat (``a.dcm``'s frame 1 and
    ``a_frame001.png``) are a ``ValueError``."""
    items: list[tuple[str, Path, int | None]] = []
    for image_id, path in found:
        try:
            count = frame_count(path)
            wanted = (frames or range(1, count + 1)) if count > 1 else [None]
            missing = [k for k in wanted if k is not None and k > count]
            if missing:
                raise DatasetError(
                    path, f"--frames asks for frame {missing[0]}: the file has {count} frames, numbered from 1"
                )
        except DatasetError as error:
            policy.reject(error.path, error.problem)  # raises unless skip_bad
            continue
        items += [(image_id if k is None else frame_stem(image_id, k, count), path, k) for k in wanted]
    seen: dict[str, Path] = {}
    for image_id, path, _ in items:
        if seen.setdefault(image_id, path) != path:
            raise ValueError(f"--images: {seen[image_id]} and {path} both give the id {image_id!r}.")
    return items


def check_numbers(*, batch_size: Any = 8, threshold: Any = 0.5) -> None:
    """Raises ``ValueError`` (one line) unless ``batch_size`` is a positive int and
    ``threshold`` a finite number in (0, 1): 0 or 1 would make every mask full or empty."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be a positive whole number, got {batch_size!r}.")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.floating))
        or not np.isfinite(threshold)
        or not 0.0 < threshold < 1.0
    ):
        raise ValueError(f"--threshold must be a probability strictly between 0 and 1, got {threshold!r}.")


def check_out_apart(out_dir: str | Path, images: Sequence[str | Path]) -> None:
    """Raises ``ValueError`` (one line) when the output folder is an input folder, lies
    inside one or holds one (the masks would overwrite or mix with the images, and a
    later run would take them for images), or is the folder of an image file given by
    name (``<stem>.png`` would overwrite it)."""
    out = Path(out_dir).resolve()
    for source in map(Path, images):
        if source.is_file():
            folder = source.resolve().parent
            clash = "is the folder of the image" if out == folder else None
        else:
            folder = source.resolve()
            clash = (
                "is the images' folder"
                if out == folder
                else "lies inside the images' folder"
                if folder in out.parents
                else "holds the images' folder"
                if out in folder.parents
                else None
            )
        if clash:
            raise ValueError(
                f"--out {out_dir} {clash} {source}: the predictions would overwrite or mix with the "
                f"images; write them to a folder of their own."
            )


def overlays_folder(out_dir: str | Path, overlays: bool | str | Path) -> Path | None:
    """Where :func:`predict_images` writes overlays: ``None`` (none), ``<out_dir>_overlays``
    beside ``out_dir`` for ``True``, or the folder given.

    Raises:
        ValueError: a folder inside ``out_dir`` (the scorer would meet it among the
            submission's files: ``zoo.evaluate`` and the challenges' scorers take a flat
            folder of masks).
    """
    if overlays is False or overlays is None:
        return None
    out_dir = Path(out_dir)
    folder = out_dir.with_name(out_dir.name + OVERLAYS_SUFFIX) if overlays is True else Path(overlays)
    inside, outside = folder.resolve(), out_dir.resolve()
    if inside == outside or outside in inside.parents:
        raise ValueError(
            f"--overlays {folder}: inside the output folder {out_dir}, whose files are the submission "
            f"that is scored; write the overlays beside it (default {out_dir.name}{OVERLAYS_SUFFIX}/)."
        )
    return folder


def _write(
    format: str,
    image_id: str,
    main: np.ndarray,
    size: tuple[int, int],
    predictor: Predictor,
    out_dir: Path,
    threshold: float,
    rows: list,
    sk_main: np.ndarray | None,
) -> list[Path]:
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
    return [
        save_png(out_dir / f"{image_id}_{c}.png", np.where(maps[..., c] > threshold, 255, 0).astype(np.uint8))
        for c in range(maps.shape[-1])
    ]


def _write_csv(
    format: str, path: Path, rows: list[tuple[str, list[float]]], channels: int, class_names: Sequence[str] | None
) -> Path:
    ids = [image_id for image_id, _ in rows]
    columns = np.array([values for _, values in rows])
    if format == "isic2016-part3":
        return submission.write_isic2016_classification_csv(path, ids, columns[:, 0])
    if format == "isic2017-part3":
        return submission.write_isic2017_classification_csv(path, ids, columns[:, 0], columns[:, 1])
    names = list(class_names or [f"class_{c}" for c in range(channels)])
    with atomic_path(path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", *names])
        writer.writerows([image_id, *(repr(v) for v in values)] for image_id, values in rows)
    return path


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zoo.predict", description=__doc__.split("\n\n")[0])
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
    source.add_argument("--saved-model", type=Path, help="SavedModel folder written by zoo.export; needs --model")
    parser.add_argument("--model", help="registered model name, with --weights or --saved-model (python -m zoo list)")
    parser.add_argument("--images", required=True, nargs="+", type=Path, help="image folders and/or files")
    parser.add_argument("--out", required=True, type=Path, help="output folder (the submission)")
    parser.add_argument("--format", choices=FORMATS, help="default: masks (mask models), csv (classifiers)")
    parser.add_argument(
        "--overlays",
        nargs="?",
        const=True,
        default=False,
        type=Path,
        metavar="DIR",
        help=f"outline and attention heat maps per image, into DIR (default: <out>{OVERLAYS_SUFFIX}/ "
        f"beside --out; never inside it)",
    )
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable images (listed in skipped.txt)")
    parser.add_argument(
        "--frames",
        default="all",
        help="multi-frame DICOM (cine loops): the frames to predict, "
        "numbered from 1, e.g. 1,5-9 (default: all); each written as <stem>_frame<NNN>",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.5, help="probability threshold of binary masks")
    parser.add_argument("--small", action="store_true", help="--weights: the registry's small test configuration")
    parser.add_argument(
        "--builder-args",
        type=json.loads,
        default={},
        help="--weights: JSON builder arguments it was trained with, e.g. '{\"classes\": 3}'",
    )
    parser.add_argument(
        "--input-spec", type=Path, help="--weights/--saved-model: an InputSpec JSON file overriding the model's"
    )
    parser.add_argument("--max-segments", type=int, help="SANet: the superpixel bound (default: the model's)")
    parser.add_argument(
        "--sk-weights",
        type=Path,
        help="isic2017-part3 with --weights: the seborrheic keratosis "
        "model's checkpoint (the same --model, --small, --builder-args)",
    )
    parser.add_argument("--sk-run", type=Path, help="isic2017-part3: the seborrheic keratosis model's run folder")
    parser.add_argument("--class-names", nargs="+", help="--format csv: column names")
    return parser


def _keratosis_predictor(args: argparse.Namespace, common: Mapping[str, Any]) -> Predictor | None:
    """The seborrheic keratosis model of ``--sk-weights`` or ``--sk-run``, or ``None``."""
    if args.sk_weights is not None and args.sk_run is not None:
        raise ValueError("--sk-weights and --sk-run are two ways to give the one keratosis model; pass one.")
    if args.sk_weights is not None:
        if args.weights is None:
            raise ValueError(
                "--sk-weights is a checkpoint built like --weights (the same --model, --small, "
                "--builder-args); with --run or --saved-model give the keratosis model as --sk-run."
            )
        return load_predictor(args.model, weights=args.sk_weights, attention=False, **common)
    if args.sk_run is not None:
        return load_predictor(run=args.sk_run, attention=False, max_segments=args.max_segments)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # every user-given number and folder checked before anything is loaded or written
        check_numbers(batch_size=args.batch_size, threshold=args.threshold)
        check_out_apart(args.out, args.images)
        frames = parse_frames(args.frames)
        if isinstance(args.overlays, Path):
            check_out_apart(args.overlays, args.images)
        if args.max_segments is not None and args.max_segments < 1:
            raise ValueError(f"--max-segments must be a positive whole number, got {args.max_segments}.")
        if args.run is None and args.model is None:
            raise ValueError(
                f"--{'weights' if args.weights else 'saved-model'} needs --model, the registered "
                f"model it is (a run folder, --run, says it itself)."
            )
        spec = InputSpec.from_json(args.input_spec.read_text(encoding="utf-8")) if args.input_spec else None
        common = dict(small=args.small, builder_args=args.builder_args, input_spec=spec, max_segments=args.max_segments)
        predictor = load_predictor(
            args.model,
            weights=args.weights,
            saved_model=args.saved_model,
            run=args.run,
            attention=bool(args.overlays),
            **common,
        )
        sk = _keratosis_predictor(args, common)
        summary = predict_images(
            predictor,
            args.images,
            args.out,
            format=args.format,
            overlays=args.overlays,
            skip_bad=args.skip_bad,
            batch_size=args.batch_size,
            threshold=args.threshold,
            sk_predictor=sk,
            class_names=args.class_names,
            frames=frames,
        )
    except (DatasetError, ValueError, FileNotFoundError, KeyError, OSError) as error:
        print(f"zoo.predict: error: {error_line(error)}", file=sys.stderr)
        return 1
    for note in summary.notes:
        print(f"note: {note}")
    print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
