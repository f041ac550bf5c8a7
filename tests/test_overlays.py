"""Issue 26.5: overlay legends name each outline's colour; heat maps carry a colour bar
with the map's own range."""

import numpy as np

from data_tools.preprocess import InputSpec
from zoo.predict import OUTLINE_COLOURS, Predictor, attention_figure, prediction_figure


def _predictor(output="mask", softmax=False):
    spec = InputSpec(image_size=(8, 8))
    return Predictor("sanet", output, "mask", spec, "test", 3, (), None, None, softmax, None)


def test_the_legend_names_each_outline_and_its_colour():
    image = np.zeros((16, 16, 3), np.uint8)
    main = np.zeros((8, 8, 2), np.float32)
    main[2:6, 2:6, 0] = main[1:3, 1:3, 1] = 1.0
    figure = prediction_figure(image, main, _predictor(), (0.0, 0.0, 16.0, 16.0), labels=["globules", "streaks"])
    legend = figure.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["globules (blue)", "streaks (orange)"]
    assert legend.get_title().get_text() == "sanet: predicted outline"
    assert OUTLINE_COLOURS[:2] == ("blue", "orange")


def test_a_heat_map_has_a_colour_bar_over_its_own_range():
    image = np.zeros((16, 16, 3), np.uint8)
    values = np.linspace(0.2, 0.6, 16, dtype=np.float32).reshape(4, 4, 1)
    figure = attention_figure(image, values, "attention_1", (0.0, 0.0, 16.0, 16.0))
    image_axes = figure.axes[0]
    (heat,) = [shown for shown in image_axes.get_images() if shown.get_cmap().name == "jet"]
    assert heat.get_clim() == (np.float32(0.2), np.float32(0.6))
    figure.canvas.draw()
    (bar,) = image_axes.child_axes  # the colour bar, inset in the image
    bar_labels = [label.get_text() for label in bar.get_yticklabels()]
    assert bar_labels == ["0.2", "0.6"]
