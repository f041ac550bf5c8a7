"""Readers for the real datasets' layouts and the tf.data pipelines that feed the zoo.

Readers return lists of :class:`Record` (paths and labels, validated as they are
read); ``data_tools.pipeline`` turns records into batches. ``data_tools.synthetic``
writes small datasets in the same official layouts for tests and ``--smoke`` runs.
"""
from data_tools import layouts
from data_tools.augment import Augmentation, emboss
from data_tools.clahe import clahe, clahe_lightness
from data_tools.colour import RGBToLab, rgb_to_lab, rgb_to_lab_unit
from data_tools.download import DownloadError, download_dataset
from data_tools.folders import read_labelme, read_mask_folder
from data_tools.imageio import load_image, load_mask, read_image_header
from data_tools.isic import (
    rasterise_isic2017_features,
    read_isic2016_part1,
    read_isic2016_part3,
    read_isic2017,
    read_isic2018,
    write_isic2017_feature_masks,
)
from data_tools.pipeline import classification_dataset, oversample_positives, segmentation_dataset
from data_tools.preprocess import InputSpec, preprocess_images, preprocess_label_maps
from data_tools.records import BadInputPolicy, DatasetError, Record
from data_tools.synthetic import (
    is_synthetic,
    make_isic2016,
    make_isic2017,
    make_isic2018,
    make_mask_folder,
    make_ultrasound_labelme,
)

__all__ = [
    "Augmentation", "clahe", "clahe_lightness", "emboss", "InputSpec", "RGBToLab",
    "classification_dataset", "oversample_positives", "preprocess_images", "preprocess_label_maps", "rgb_to_lab",
    "rgb_to_lab_unit", "segmentation_dataset",
    "BadInputPolicy", "DatasetError", "DownloadError", "Record", "download_dataset",
    "is_synthetic", "layouts", "load_image", "load_mask", "make_isic2016", "make_isic2017",
    "make_isic2018", "make_mask_folder", "make_ultrasound_labelme",
    "rasterise_isic2017_features", "read_image_header", "read_isic2016_part1",
    "read_isic2016_part3", "read_isic2017", "read_isic2018", "read_labelme",
    "read_mask_folder", "write_isic2017_feature_masks",
]
