"""AttnMel-CNN's ROI reference maps (zoo.attnmel.roi, Yan et al., AttnMel-CNN, IPMI 2019 sections 2.2 and 3.2)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_tools.preprocess import InputSpec
from zoo.attnmel.models import ATTENTION_OUTPUTS
from zoo.attnmel.roi import ROI_MASKS, ROIS, attention_targets, roi_dataset, roi_target


def test_reference_maps_by_hand():
    mask = np.array([[[0.0], [1.0]], [[1.0], [0.0]]], np.float32)
    np.testing.assert_array_equal(roi_target(mask, "lesion"), mask)
    np.testing.assert_array_equal(roi_target(mask, "dermo"), mask)
    np.testing.assert_array_equal(roi_target(mask, "background"), 1.0 - mask)  # "the inverse of lesion segmentation"
    assert ROIS == ("lesion", "dermo", "background") and ROI_MASKS["background"] == "lesion"


def test_unknown_roi_is_named():
    with pytest.raises(ValueError, match=r"roi must be one of \('lesion', 'dermo', 'background'\), got 'bkg'"):
        roi_target(tf.zeros((1, 1, 1)), "bkg")
    with pytest.raises(ValueError, match="roi must be one of"):
        roi_dataset([], InputSpec((8, 8)), "bkg", label_name="melanoma", batch_size=1, training=False)


def test_attention_targets_give_every_attention_output_the_reference():
    probabilities, reference = tf.constant([[0.0, 1.0]]), tf.ones((1, 4, 4, 1))
    targets = attention_targets(probabilities, reference)
    assert set(targets) == {"probabilities", *ATTENTION_OUTPUTS}
    assert targets["probabilities"] is probabilities
    assert all(targets[name] is reference for name in ATTENTION_OUTPUTS)


def test_import_zoo_leaves_out_the_papers_data_modules():
    """The data modules of the paper packages are imported by who needs them."""
    script = (
        "import sys\nimport zoo\n"
        "loaded = [m for m in ('zoo.attnmel.roi', 'zoo.arl_cnn.patches') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
