from __future__ import annotations

import numpy as np
import pytest

from forecaster.core import SGD, Adam, GRUSpec, RMSprop, Trainer


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": 0, "hidden_size": 4}, "input_size must be an integer >= 1, got 0"),
        ({"input_size": 1, "hidden_size": 2.5}, "hidden_size must be an integer >= 1, got 2.5"),
        ({"input_size": 1, "hidden_size": 4, "num_layers": -1}, "num_layers"),
        ({"input_size": 1, "hidden_size": 4, "horizon": True}, "horizon"),
        ({"input_size": 1, "hidden_size": 4, "reset_after": "yes"}, "reset_after"),
    ],
)
def test_bad_sizes_are_rejected_by_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GRUSpec(**kwargs)  # type: ignore[arg-type]


def test_views_cover_the_flat_vector_exactly_once() -> None:
    spec = GRUSpec(input_size=3, hidden_size=4, num_layers=2, horizon=5)
    flat = np.zeros(spec.n_params)
    for i, view in enumerate(spec.views(flat).values()):
        view += i + 1  # writes go through to the flat vector
    counts = np.bincount(flat.astype(int), minlength=11)
    assert counts[0] == 0
    sizes = [v.size for v in spec.views(flat).values()]
    assert sum(sizes) == spec.n_params
    assert counts[1:].tolist() == sizes


def test_init_is_seeded_and_bounded() -> None:
    spec = GRUSpec(input_size=2, hidden_size=16)
    a, b, c = spec.init_params(1), spec.init_params(1), spec.init_params(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a).max() <= 0.25


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Adam(lr=-1.0), "lr must be in"),
        (lambda: Adam(betas=(0.9, 1.0)), r"betas\[1\]"),
        (lambda: SGD(nesterov=True), "nesterov needs momentum"),
        (lambda: RMSprop(alpha=1.5), "alpha"),
        (lambda: Trainer(GRUSpec(1, 2), loss="mape"), "loss must be one of"),
        (lambda: Trainer(GRUSpec(1, 2), clip_norm=0.0), "clip_norm"),
    ],
)
def test_bad_training_settings_are_rejected(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_bad_batch_shapes_name_the_array() -> None:
    spec = GRUSpec(input_size=2, hidden_size=3, horizon=2)
    trainer = Trainer(spec)
    p = spec.init_params(0)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, 2\)"):
        trainer.loss_and_grad(p, np.zeros((1, 4, 3)), np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match="y must have shape"):
        trainer.loss_and_grad(p, np.zeros((1, 4, 2)), np.zeros((1, 4, 1)))
    with pytest.raises(ValueError, match="h0 must have shape"):
        trainer.loss_and_grad(p, np.zeros((1, 4, 2)), np.zeros((1, 4, 2)), h0=np.zeros((2, 1, 3)))
