"""Issue 18: the layers, losses and metrics of zoo are keras.ops only (TensorFlow, JAX
and PyTorch backends), so no module of zoo imports TensorFlow except the data-pipeline
and tooling modules below, which are TensorFlow by design. Parsed (ast), not imported."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: zoo modules that may import TensorFlow, and why.
TENSORFLOW_BY_DESIGN = {
    "zoo/sanet/superpixels.py": "tf.data reader of the SLIC maps (checks the labels, names the file)",
    "zoo/sanet/region_shuffle.py": "tf.data augmentation (RSM) of the training pipeline",
    "zoo/arl_cnn/patches.py": "tf.data patch sampling of the training pipeline",
    "zoo/attnmel/roi.py": "tf.data region-of-interest crops of the training pipeline",
    "zoo/train/__init__.py": "the trainer drives tf.data pipelines",
    "zoo/train/command.py": "python -m zoo.train builds the tf.data pipelines of the layout it reads",
    "zoo/export.py": "TensorFlow SavedModel export (tf.function serving signatures)",
    "zoo/litert.py": "LiteRT export: TensorFlow's converter",
    "zoo/predict.py": "runs the tf.data preprocessing and the SavedModels",
    "zoo/serving.py": "feeds models for predict/export/litert: TF preprocessing, SavedModel assets (tf.io.gfile)",
    "zoo/flops.py": "counts FLOPs with TensorFlow's profiler",
    "zoo/runtime.py": "TensorFlow device and threading set-up",
}


def _imports_tensorflow(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name == "tensorflow" or name.startswith("tensorflow.") for name in names):
            lines.append(node.lineno)
    return lines


def test_no_layer_loss_or_metric_module_of_zoo_imports_tensorflow():
    offenders = []
    for path in sorted((ROOT / "zoo").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in TENSORFLOW_BY_DESIGN:
            continue
        lines = _imports_tensorflow(ast.parse(path.read_text(encoding="utf-8"), relative))
        if lines:
            offenders.append(f"{relative} (line {', '.join(map(str, lines))})")
    assert not offenders, ("these zoo modules import TensorFlow; layers, losses and metrics must use "
                           f"keras.ops only (or allow-list a tf.data module with its reason): {offenders}")


def test_the_allow_list_names_existing_modules():
    assert all((ROOT / path).is_file() for path in TENSORFLOW_BY_DESIGN), TENSORFLOW_BY_DESIGN


def test_the_rgb_to_lab_layer_uses_no_tensorflow():
    """data_tools.colour keeps TensorFlow functions for tf.data; its layer is keras.ops."""
    tree = ast.parse((ROOT / "data_tools/colour.py").read_text(encoding="utf-8"))
    (layer,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "RGBToLab"]
    used = {node.id for node in ast.walk(layer) if isinstance(node, ast.Name)}
    assert not used & {"tf", "_TF_OPS", "rgb_to_lab", "rgb_to_lab_unit", "lab_to_unit"}, used
