"""``.keras`` files saved by earlier versions of the zoo still load.

``tests/fixtures/legacy_layers.keras`` was saved on main before the per-paper
package move (commit eefc357) by ``tests/fixtures/make_legacy_models.py``: one tiny
model with every registered custom layer, compiled with registered losses and
metrics. Moving a class to another module must not change its registered name
(``zoo>ClassName``); this test fails if it does.
"""

from pathlib import Path

import keras
import numpy as np

import zoo  # noqa: F401  (registers every custom object)

FIXTURES = Path(__file__).parent / "fixtures"


def test_file_saved_before_the_package_move_loads_with_equal_outputs():
    model = keras.models.load_model(FIXTURES / "legacy_layers.keras")
    saved = np.load(FIXTURES / "legacy_layers_io.npz")
    outputs = model([saved["image"], saved["superpixels"]], training=False)
    assert sorted(outputs) == ["attention", "mask", "probabilities"]
    for name, value in outputs.items():
        np.testing.assert_allclose(np.asarray(value), saved[f"out_{name}"], rtol=1e-5, atol=1e-6)
    # The compiled losses and metrics came back as the zoo's own classes.
    losses = model.loss
    assert {type(loss).__name__ for loss in losses.values()} == {
        "GlobalBalancingLoss",
        "ComboLoss",
        "AttentionDiceRegulariser",
    }


def test_every_registered_layer_is_in_the_fixture():
    """A newly registered layer should be added to the fixture's generator (and the
    fixture regenerated) so that its saved form is pinned too."""
    model = keras.models.load_model(FIXTURES / "legacy_layers.keras", compile=False)
    in_fixture = {type(layer).__name__ for layer in model.layers}
    registered = {
        name.split(">", 1)[1]
        for name, cls in keras.saving.get_custom_objects().items()
        if name.startswith("zoo>") and isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
    }
    assert registered <= in_fixture, f"not in the fixture: {sorted(registered - in_fixture)}"
