"""Issue 18: the layers, losses and metrics of zoo are keras.ops only (TensorFlow, JAX
and PyTorch backends). Issue 23: TensorFlow comes through data_tools.lazy_tensorflow
(imported on first use, a clear line where it is missing), never by an import
statement, except where a TensorFlow-internal symbol must be imported by name.
Parsed (ast), not imported; tests/test_tensorflow_optional.py checks the imports at run time."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Modules that import from TensorFlow by name, after data_tools.lazy_tensorflow's check.
IMPORTS_BY_NAME = {
    "zoo/flops.py": "convert_variables_to_constants_v2_as_graph, from tensorflow.python",
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


def test_tensorflow_is_imported_through_lazy_tensorflow_only():
    offenders = []
    for folder in ("zoo", "data_tools"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in IMPORTS_BY_NAME:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), relative)
            module_level = [node for node in tree.body if not isinstance(node, ast.If)]  # TYPE_CHECKING blocks
            lines = _imports_tensorflow(ast.Module(body=module_level, type_ignores=[]))
            if lines:
                offenders.append(f"{relative} (line {', '.join(map(str, lines))})")
    assert not offenders, (
        "these modules import TensorFlow at import time; use "
        f"tf = data_tools.lazy_tensorflow.lazy_tensorflow(feature) instead: {offenders}"
    )


def test_the_allow_list_names_existing_modules():
    assert all((ROOT / path).is_file() for path in IMPORTS_BY_NAME), IMPORTS_BY_NAME


def test_the_rgb_to_lab_layer_uses_no_tensorflow():
    """data_tools.colour keeps TensorFlow functions for tf.data; its layer is keras.ops."""
    tree = ast.parse((ROOT / "data_tools/colour.py").read_text(encoding="utf-8"))
    (layer,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "RGBToLab"]
    used = {node.id for node in ast.walk(layer) if isinstance(node, ast.Name)}
    assert not used & {"tf", "_tf_ops", "rgb_to_lab_unit", "lab_to_unit"}, used
