"""The tables with a DANet row build it with Fu et al.'s eq. 3 unless ``--danet-energy
reference`` asks for the authors' code's ``max - energy`` channel attention (issue 25.3).

Each row is run under ``--smoke`` up to the moment it trains (:func:`reproduce.frame.fit`
replaced by a recorder); the model factory it got is called with
:meth:`zoo.registry.ModelEntry.build` recording its arguments.
"""

from __future__ import annotations

import pytest

from reproduce import apspnet_table3, frame, sanet_table3
from zoo.registry import ModelEntry


class _Captured(Exception):
    """Raised by the stand-in for reproduce.frame.fit: the row got as far as training."""


def _builder_args(monkeypatch, main, argv: list[str]) -> tuple[str, dict]:
    """The registered model and the arguments the row's model factory builds it with."""
    calls = []

    def fake_fit(build_model, *args, **kwargs):
        calls.append(build_model)
        raise _Captured

    monkeypatch.setattr(frame, "fit", fake_fit)
    with pytest.raises(_Captured):
        main(argv)
    with monkeypatch.context() as patch:
        patch.setattr(ModelEntry, "build", lambda self, **kwargs: (self.name, kwargs))
        return calls[-1]()


@pytest.mark.parametrize(
    "table, danet, other",
    [(sanet_table3, "DANet (Fu et al. 2018)", "ResUNet"), (apspnet_table3, "DANet", "PSPNet")],
    ids=lambda value: getattr(value, "__name__", value).rsplit(".", 1)[-1],
)
def test_danet_rows_take_the_reference_energy_on_request(table, danet, other, tmp_path, monkeypatch):
    argv = ["--smoke", "--superpixel-cache", str(tmp_path / "sp")] if table is sanet_table3 else ["--smoke"]
    model, kwargs = _builder_args(monkeypatch, table.main, [*argv, "--out", str(tmp_path / "a"), "--rows", danet])
    assert model.endswith("danet") and not kwargs.get("max_subtracted_energy", False)
    model, kwargs = _builder_args(
        monkeypatch, table.main, [*argv, "--out", str(tmp_path / "b"), "--rows", danet, "--danet-energy", "reference"]
    )
    assert model.endswith("danet") and kwargs["max_subtracted_energy"] is True
    _, kwargs = _builder_args(
        monkeypatch, table.main, [*argv, "--out", str(tmp_path / "c"), "--rows", other, "--danet-energy", "reference"]
    )
    assert "max_subtracted_energy" not in kwargs
    assert frame.DANET_ENERGY_NOTE in table.TABLE.notes
