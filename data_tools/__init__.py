"""Readers for the real datasets' layouts and the tf.data pipelines that feed the zoo.

Readers return lists of :class:`Record` (paths and labels, validated as they are
read); ``data_tools.pipeline`` turns records into batches. ``data_tools.synthetic``
writes small datasets in the same official layouts for tests and ``--smoke`` runs.
"""

from __future__ import annotations

import importlib

#: Each public name and the module of the package that defines it. The modules are
#: imported on first use (PEP 562 ``__getattr__``), so that ``python -m
#: data_tools.download`` and ``python -m data_tools.check`` start without TensorFlow,
#: and runpy finds the module it runs not yet imported by this package.
_EXPORTS = {
    "layouts": "layouts",
    "Augmentation": "augment",
    "emboss": "augment",
    "clahe": "clahe",
    "clahe_lightness": "clahe",
    "RGBToLab": "colour",
    "rgb_to_lab": "colour",
    "rgb_to_lab_unit": "colour",
    "DownloadError": "download",
    "download_dataset": "download",
    "read_labelme": "folders",
    "read_mask_folder": "folders",
    "load_image": "imageio",
    "load_mask": "imageio",
    "read_image_header": "imageio",
    "rasterise_isic2017_features": "isic",
    "read_isic2016_part1": "isic",
    "read_isic2016_part3": "isic",
    "read_isic2017": "isic",
    "read_isic2018": "isic",
    "write_isic2017_feature_masks": "isic",
    "classification_dataset": "pipeline",
    "oversample_positives": "pipeline",
    "segmentation_dataset": "pipeline",
    "InputSpec": "preprocess",
    "preprocess_images": "preprocess",
    "preprocess_label_maps": "preprocess",
    "BadInputPolicy": "records",
    "DatasetError": "records",
    "Record": "records",
    "is_synthetic": "synthetic",
    "make_isic2016": "synthetic",
    "make_isic2017": "synthetic",
    "make_isic2018": "synthetic",
    "make_mask_folder": "synthetic",
    "make_ultrasound_labelme": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'data_tools' has no attribute {name!r}")
    module = importlib.import_module(f"data_tools.{module_name}")
    return module if name == module_name else getattr(module, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
