"""Official folder and file names of the ISIC challenge datasets.

One table per dataset, keyed by split, then by part (2016, 2017) or task (2018),
holding the folder or CSV name exactly as the ISIC challenge archives unpack it
(https://challenge.isic-archive.com/data/). The readers (``data_tools.isic``), the
downloader (``data_tools.download``) and the synthetic generator
(``data_tools.synthetic``) all take their names from here, so the three agree.

File names inside the folders:

* images: ``ISIC_<7 digits>.jpg`` (:data:`ISIC_IMAGE_ID` matches the stem);
* lesion masks: ``ISIC_<id>_Segmentation.png`` (2016) or
  ``ISIC_<id>_segmentation.png`` (2017, 2018); readers accept either case;
* ISIC 2017 Part 2: ``ISIC_<id>_superpixels.png`` beside the images (superpixel
  index = R + (G << 8) + (B << 16)) and ``ISIC_<id>_features.json`` in the Part 2
  ground-truth folder (one 0/1 list per feature, one value per superpixel);
* ISIC 2018 Task 2: ``ISIC_<id>_attribute_<name>.png``, one per attribute;
* CSVs: 2016 Part 3 training ``ISIC_<id>,benign|malignant`` (no header), test
  ``ISIC_<id>,0.0|1.0`` (no header); 2017 Part 3 header
  ``image_id,melanoma,seborrheic_keratosis``.

One name outside ISIC: a frame of a multi-frame file (an ultrasound cine loop in DICOM)
is ``<stem>_frame<NNN>`` (:func:`frame_stem`), numbered from 1 as DICOM numbers frames
(its Frame Number and Referenced Frame Number), three digits or more. ``zoo.predict``
names each frame's mask so; the mask-folder and Labelme readers take a mask or an
``imagePath`` so named as that frame of ``<stem>.dcm`` (:mod:`data_tools.folders`).
"""

from __future__ import annotations

import re

#: ``<stem>_frame<number>``: a frame of a multi-frame file (see the module docstring).
FRAME_STEM = re.compile(r"^(?P<stem>.+)_frame(?P<frame>\d+)$")


def frame_stem(stem: str, frame: int, frames: int) -> str:
    """``<stem>_frame<NNN>``: frame ``frame`` (from 1) of a file of ``frames`` frames,
    zero-padded to three digits, or to the digits of ``frames`` beyond 999."""
    return f"{stem}_frame{frame:0{max(3, len(str(frames)))}d}"


def split_frame_stem(stem: str) -> tuple[str, int] | None:
    """``(stem, frame)`` of a name made by :func:`frame_stem` (any number of digits), else ``None``."""
    match = FRAME_STEM.match(stem)
    return (match["stem"], int(match["frame"])) if match else None


#: Stem of every ISIC image file, e.g. ``ISIC_0000000``.
ISIC_IMAGE_ID = re.compile(r"^ISIC_\d{7}$")
ISIC_IMAGE_SUFFIX = ".jpg"

ISIC2016_LAYOUT: dict[str, dict[str, str]] = {
    "train": {
        "part1_images": "ISBI2016_ISIC_Part1_Training_Data",
        "part1": "ISBI2016_ISIC_Part1_Training_GroundTruth",
        "part3_images": "ISBI2016_ISIC_Part3_Training_Data",
        "part3": "ISBI2016_ISIC_Part3_Training_GroundTruth.csv",
    },
    "test": {
        "part1_images": "ISBI2016_ISIC_Part1_Test_Data",
        "part1": "ISBI2016_ISIC_Part1_Test_GroundTruth",
        "part3_images": "ISBI2016_ISIC_Part3_Test_Data",
        "part3": "ISBI2016_ISIC_Part3_Test_GroundTruth.csv",
    },
}
ISIC2016_MASK_SUFFIX = "_Segmentation.png"
#: 2016 Part 3 label text -> melanoma (training CSV; the test CSV holds 0.0/1.0).
ISIC2016_PART3_CLASSES = {"benign": 0, "malignant": 1}


def _isic2017_split(prefix: str) -> dict[str, str]:
    return {
        "images": f"{prefix}_Data",
        "part1": f"{prefix}_Part1_GroundTruth",
        "part2": f"{prefix}_Part2_GroundTruth",
        "part3": f"{prefix}_Part3_GroundTruth.csv",
    }


ISIC2017_LAYOUT: dict[str, dict[str, str]] = {
    "train": _isic2017_split("ISIC-2017_Training"),
    "validation": _isic2017_split("ISIC-2017_Validation"),
    "test": _isic2017_split("ISIC-2017_Test_v2"),
}
ISIC2017_MASK_SUFFIX = "_segmentation.png"
ISIC2017_SUPERPIXELS_SUFFIX = "_superpixels.png"
ISIC2017_FEATURES_SUFFIX = "_features.json"
ISIC2017_FEATURES = ("pigment_network", "negative_network", "milia_like_cyst", "streaks")
ISIC2017_PART3_COLUMNS = ("image_id", "melanoma", "seborrheic_keratosis")

ISIC2018_LAYOUT: dict[str, dict[str, str]] = {
    "train": {
        "images": "ISIC2018_Task1-2_Training_Input",
        "task1": "ISIC2018_Task1_Training_GroundTruth",
        "task2": "ISIC2018_Task2_Training_GroundTruth_v3",
    },
    "validation": {
        "images": "ISIC2018_Task1-2_Validation_Input",
        "task1": "ISIC2018_Task1_Validation_GroundTruth",
        "task2": "ISIC2018_Task2_Validation_GroundTruth",
    },
    "test": {
        "images": "ISIC2018_Task1-2_Test_Input",
        "task1": "ISIC2018_Task1_Test_GroundTruth",
        "task2": "ISIC2018_Task2_Test_GroundTruth",
    },
}
ISIC2018_MASK_SUFFIX = "_segmentation.png"
ISIC2018_ATTRIBUTES = (
    "globules",
    "milia_like_cyst",
    "negative_network",
    "pigment_network",
    "streaks",
)


def isic2018_attribute_suffix(attribute: str) -> str:
    """``_attribute_<name>.png``: the suffix of an ISIC 2018 Task 2 mask file."""
    return f"_attribute_{attribute}.png"


#: Image counts per split in the official releases (the ISIC challenge data pages, challenge.isic-archive.com/data).
OFFICIAL_SIZES = {
    "isic2016": {"train": 900, "test": 379},
    "isic2017": {"train": 2000, "validation": 150, "test": 600},
    "isic2018": {"train": 2594, "validation": 100, "test": 1000},
}
