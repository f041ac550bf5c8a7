"""AER-Net Tables 2-3 score JSI and DC at each image's original size, as the official
ISIC 2018 Task 1 scorer does (issue 25.9); ``--score-at-input-size`` keeps the model size."""

import argparse
import dataclasses

import keras
import numpy as np
import pytest
from PIL import Image

from data_tools.isic import read_isic2018
from data_tools.synthetic import make_isic2018
from reproduce import aernet_recipe
from reproduce.aernet_table2 import TABLE
from zoo.aernet.models import AERNET_INPUT

ORIGINAL = (48, 80)  # (height, width) of the synthetic originals; the model sees 64x64
SPEC = dataclasses.replace(AERNET_INPUT, image_size=(64, 64))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = make_isic2018(tmp_path_factory.mktemp("isic"), n_train=3, n_val=0, n_test=0, image_size=ORIGINAL)
    return read_isic2018(root, "train", tasks=(1,))


def _all_lesion_model() -> keras.Model:
    """Predicts lesion (probability ~1) everywhere: JSI = the truth's share of the image."""
    inputs = keras.Input((64, 64, 3))
    head = keras.layers.Conv2D(
        1, 1, activation="sigmoid", kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(10.0)
    )
    return keras.Model(inputs, head(inputs))


def _scored_pairs(monkeypatch, records, **kwargs) -> tuple[list, aernet_recipe.Evaluation]:
    seen = []
    real = aernet_recipe.segmentation_scores

    def recording(truth, prediction):
        seen.append((truth.shape, prediction.shape))
        return real(truth, prediction)

    monkeypatch.setattr(aernet_recipe, "segmentation_scores", recording)
    return seen, aernet_recipe.evaluate_segmenter(_all_lesion_model(), records, SPEC, batch_size=2, **kwargs)


def test_table_scores_full_size_masks_against_the_original_ground_truth(monkeypatch, records):
    seen, evaluation = _scored_pairs(monkeypatch, records)
    assert seen == [(ORIGINAL, ORIGINAL)] * len(records)
    shares = [np.mean(np.asarray(Image.open(r.mask_paths["lesion"])) > 127) for r in records]
    np.testing.assert_allclose(evaluation.jaccard, shares, rtol=0, atol=1e-12)
    np.testing.assert_allclose(evaluation.dice, [2 * s / (1 + s) for s in shares], rtol=0, atol=1e-12)


def test_score_at_input_size_is_the_option(monkeypatch, records):
    seen, _ = _scored_pairs(monkeypatch, records, full_size=False)
    assert seen == [(SPEC.image_size, SPEC.image_size)] * len(records)


def test_flag_and_table_note_say_how_the_table_scores():
    assert aernet_recipe.SCORING_NOTE in TABLE.notes
    assert "original size" in aernet_recipe.SCORING_NOTE
    parser = argparse.ArgumentParser()
    aernet_recipe.add_recipe_arguments(parser)
    assert parser.parse_args([]).score_at_input_size is False
    assert parser.parse_args(["--score-at-input-size"]).score_at_input_size is True
