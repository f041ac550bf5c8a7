"""A-PSPNet Table II: parameters and MACs of A-PSPNet and classic networks at 473x473.

No data and no training: every row builds its model (random weights), counts its
trainable parameters and its multiply-accumulates with :func:`zoo.flops.count_flops`
(TensorFlow's profiler on the traced graph, MACs = FLOPs / 2 of convolutions and
matrix products) and writes ``table.md/.csv/.json`` beside the paper's numbers::

    python reproduce/apspnet_table2.py                 # 473x473, as the paper
    python reproduce/apspnet_table2.py --smoke         # 64x64: quick check, MACs not comparable

Which models the paper counts (from its numbers): ImageNet classifiers with a
1000-class head, as torchvision builds them (ResNet50 25.55703M and DenseNet
7.97886M are torchvision's ResNet50 and DenseNet121 to the parameter);
"A-PSPNet" is the attention ResNet50 of eq. 5 as such a classifier (the PSPNet
head is not counted), and the ResNet101 and ResNet152 rows are torchvision's
counts plus the same 0.52500M of CBAM, so they are attention ResNets too. Two
extra rows, without paper values, give the full segmentation models.
Rows name their registered model where the zoo has it (``resnet50`` and
``attention_resnet50`` with 1000 classes, ``apspnet``, ``pspnet``); the rows only
counted here are the named exception :data:`UNREGISTERED_BUILDERS`.

The full table takes about a minute of CPU (building nine full-size models
dominates; counting at 473x473 takes seconds per model).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers

from reproduce import report
from reproduce.frame import Column, PaperRow, PaperTable, RowResult
from zoo.apspnet.models import build_attention_resnet
from zoo.common.pyramid_pooling import AdaptiveAveragePooling2D
from zoo.flops import count_flops
from zoo.registry import get_model

IMAGENET_CLASSES = 1000
PAPER_SIZE = 473
SMOKE_SIZE = 64

TABLE = PaperTable(
    key="apspnet_table2",
    title="A-PSPNet Table II: the comparison of complexity",
    source="A-PSPNet, Table II",
    columns=[Column("Params", "M", None, decimals=5), Column("MACs", "G", None, decimals=5)],
    rows=[
        PaperRow(
            "ResNet50",
            {"Params": 25.55703, "MACs": 18.84624},
            model="resnet50",
            builder_args={"classes": IMAGENET_CLASSES},
        ),
        PaperRow(
            "A-PSPNet",
            {"Params": 26.08203, "MACs": 18.85144},
            model="attention_resnet50",
            builder_args={"classes": IMAGENET_CLASSES},
        ),
        PaperRow("ResNet101", {"Params": 45.07416, "MACs": 35.96785}),
        PaperRow("ResNet152", {"Params": "60.7178", "MACs": 53.10086}),  # printed with 4 decimals
        PaperRow("AlexNet", {"Params": 61.10084, "MACs": 3.09258}),
        PaperRow("VGG16", {"Params": 138.35754, "MACs": "68.2407"}),  # printed with 4 decimals
        PaperRow("DenseNet", {"Params": 7.97886, "MACs": 12.74194}),
        PaperRow("A-PSPNet segmentation model (ours, 3 classes)", {}, model="apspnet"),
        PaperRow("PSPNet segmentation model (ours, 3 classes)", {}, model="pspnet"),
    ],
    notes=[
        "Params: trainable parameters, in millions (PyTorch counts these; Keras' "
        "count_params adds the batch-norm moving statistics, listed in table.json).",
        "MACs: convolutions and matrix products only, counted by TensorFlow's profiler "
        "(zoo.flops); the paper's tool also counts batch norm, activations, pooling and "
        "additions, so its MACs are higher (ResNet50: about 6 %).",
        "ResNet rows: our ResNets (zoo.common.resnet) use keras.applications' layout, "
        "whose convolutions have biases before batch norm (torchvision's have none): "
        "ResNet50 +26,560, ResNet101 +52,672, ResNet152 +75,712 parameters. This is "
        "the whole parameter difference of these rows.",
        "ResNet101 and ResNet152: the paper's counts are torchvision's (44.54916M, "
        "60.19281M) plus 0.52500M, i.e. these rows carry the same two CBAMs as "
        "A-PSPNet; we count them so (zoo.apspnet.models.build_attention_resnet).",
        "A-PSPNet: ResNet50 + CBAM per eq. 3-4 (no MLP biases, no batch norm) on conv1 "
        "(64 channels) and conv5 (2048): +524,996 parameters, the paper's +0.52500M. "
        "Its extra MACs (+6.58M at 473x473; the paper +5.20M) are both MLP passes "
        "(average and max, 1.05M) and the 7x7 spatial convolutions on the 237x237 conv1 "
        "map (5.50M) and the 15x15 conv5 map; the paper's tool and the exact place of "
        "its first CBAM are not given, so its +5.20M cannot be rebuilt exactly.",
        "AlexNet and VGG16 are torchvision's (adaptive average pooling to 6x6 resp. 7x7 "
        "before the classifier); DenseNet is DenseNet121 (7.97886M is its count).",
        "The last two rows (no paper values) are the segmentation models of Table III: "
        "dilated ResNet50 (output stride 8) + PSPNet head, 3 classes.",
        "Models: ResNet50, A-PSPNet and the last two rows are the registered models resnet50 (ARL-CNN's "
        "ResNet50 classifier, 1000 classes), attention_resnet50 (1000 classes), apspnet and pspnet; "
        "ResNet101, ResNet152, AlexNet, VGG16 and DenseNet are only counted here and are no registered "
        "models (UNREGISTERED_BUILDERS).",
    ],
)


def build_alexnet(input_shape: tuple[int, int, int], classes: int = IMAGENET_CLASSES) -> keras.Model:
    """AlexNet as torchvision builds it (Krizhevsky et al. 2012, single-GPU variant).

    Five convolutions (64, 192, 384, 256, 256 filters), three max pools, adaptive
    average pooling to 6x6, then fully connected 4096, 4096, ``classes`` with dropout;
    61,100,840 parameters with 1000 classes.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.ZeroPadding2D(2)(inputs)
    x = layers.Conv2D(64, 11, strides=4, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(192, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    for index, filters in enumerate((384, 256, 256), start=3):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{index}")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = _torchvision_classifier(x, 6, classes)
    return keras.Model(inputs, x, name="alexnet")


def build_vgg16(input_shape: tuple[int, int, int], classes: int = IMAGENET_CLASSES) -> keras.Model:
    """VGG16 with torchvision's classifier: adaptive 7x7 average pooling, then
    fully connected 4096, 4096, ``classes`` (keras' own top needs 224x224 input)."""
    features = keras.applications.VGG16(include_top=False, weights=None, input_shape=input_shape)
    outputs = _torchvision_classifier(features.output, 7, classes)
    return keras.Model(features.input, outputs, name="vgg16")


def _torchvision_classifier(x, bins: int, classes: int):
    x = AdaptiveAveragePooling2D(bins, name="adaptive_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for index in (1, 2):
        x = layers.Dropout(0.5, name=f"dropout{index}")(x)
        x = layers.Dense(4096, activation="relu", name=f"fc{index}")(x)
    return layers.Dense(classes, activation="softmax", name="predictions")(x)


def _attention_resnet(backbone: str) -> Callable[[tuple], keras.Model]:
    return lambda shape: build_attention_resnet(shape, IMAGENET_CLASSES, backbone=backbone)


UNREGISTERED_BUILDERS: dict[str, Callable[[tuple[int, int, int]], keras.Model]] = {
    "ResNet101": _attention_resnet("resnet101"),
    "ResNet152": _attention_resnet("resnet152"),
    "AlexNet": build_alexnet,
    "VGG16": build_vgg16,
    "DenseNet": lambda shape: keras.applications.DenseNet121(weights=None, input_shape=shape),
}
"""The named exception to "every row is a registered model": the rows this table only
counts, whose networks are no model of the zoo (``shape -> model``). ResNet101 and
ResNet152 are the attention ResNets of :func:`zoo.apspnet.models.build_attention_resnet`
(a depth-sweep helper, deliberately unregistered: the paper's model is the registered
``attention_resnet50``); AlexNet and VGG16 are torchvision's layouts, built here for
their counts; DenseNet is keras.applications' DenseNet121. Every other row names its
registered model (``PaperRow.model``, with ``builder_args``)."""


def build_row_model(row: PaperRow, input_shape: tuple[int, int, int]) -> keras.Model:
    """``row``'s model at ``input_shape``: its registered model with the row's builder
    arguments, or its :data:`UNREGISTERED_BUILDERS` builder."""
    if row.model is None:
        return UNREGISTERED_BUILDERS[row.name](input_shape)
    return get_model(row.model).build(**{**row.builder_args, "input_shape": input_shape})


def trainable_parameters(model: keras.Model) -> int:
    """Trainable parameters (what PyTorch's ``sum(p.numel() for p in parameters())`` counts)."""
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def measure(row: PaperRow, image_size: int) -> RowResult:
    """Builds ``row``'s model at ``image_size`` and counts its parameters and MACs."""
    model = build_row_model(row, (image_size, image_size, 3))
    count = count_flops(model)
    result = RowResult(
        {"Params": trainable_parameters(model) / 1e6, "MACs": count.macs / 1e9},
        extra={
            "trainable_params": trainable_parameters(model),
            "all_params": int(model.count_params()),
            "macs": count.macs,
            "flops_by_op": dict(count.flops_by_op),
            "image_size": image_size,
        },
    )
    keras.backend.clear_session(free_memory=True)
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help=f"square input side (default: {PAPER_SIZE}, the paper's; {SMOKE_SIZE} with --smoke)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help=f"count at {SMOKE_SIZE}x{SMOKE_SIZE}: quick, MACs not comparable"
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        metavar="ROW",
        choices=[row.name for row in TABLE.runnable_rows],
        help="count only these rows",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: results/apspnet_table2)")
    args = parser.parse_args(argv)
    if args.image_size is None:
        args.image_size = SMOKE_SIZE if args.smoke else PAPER_SIZE
    if args.image_size < SMOKE_SIZE:
        parser.error(f"--image-size must be at least {SMOKE_SIZE}, got {args.image_size}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, RowResult]:
    """Counts the chosen rows, writes the table and returns the results by row name."""
    args = parse_args(argv)
    default_out = "apspnet_table2" if args.image_size == PAPER_SIZE else f"apspnet_table2-{args.image_size}px"
    out_dir = args.out or Path("results") / default_out
    out_dir.mkdir(parents=True, exist_ok=True)
    table = TABLE
    if args.image_size != PAPER_SIZE:
        table = dataclasses.replace(
            TABLE,
            notes=(
                *TABLE.notes,
                f"Counted at {args.image_size}x{args.image_size}, not the paper's "
                f"{PAPER_SIZE}x{PAPER_SIZE}: MACs are not comparable (parameters are).",
            ),
        )
    results = {}
    for row in table.runnable_rows:
        if args.rows and row.name not in args.rows:
            continue
        started = time.monotonic()
        results[row.name] = measure(row, args.image_size)
        print(f"{row.name}: {results[row.name].values} ({time.monotonic() - started:.1f} s)")
    files = report.write_report(table, results, out_dir, synthetic=False)
    print()
    print(report.render_text(table, results, synthetic=False))
    print(f"\nwritten: {', '.join(str(f) for f in files)}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
