"""VALOR's fit: it learns from the harvested labels, its config, presets and checks."""

from __future__ import annotations

import pytest
import torch
from tiny_data import tiny_avvp

from trainables.methods.valor.train import PRESETS, Config, fit

FAST = {"warmup_epochs": 1, "d_model": 64, "dim_feedforward": 128, "nhead": 4, "lr": 3e-3,
        "lr_min": 1e-5, "batch_size": 16}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_avvp(tmp_path_factory.mktemp("valor") / "d")


def test_fit_learns_from_the_segment_labels(data):
    torch.set_num_threads(1)
    seen = []
    truth = fit(Config(epochs=6, teacher="truth", **FAST), data, device="cpu",
                reporter=lambda e, m, s: seen.append(m))
    assert seen[-1]["train/loss"] < 0.2 * seen[0]["train/loss"]
    assert truth["test/seg_Type"] > 85 and truth["pseudo/seg_F_v"] == 100.0
    sim = fit(Config(epochs=6, teacher="sim", **FAST), data, device="cpu")
    # The simulated teachers' labels are noisier than the truth, and the student follows them.
    assert sim["pseudo/seg_F_v"] < 90 and 40 < sim["test/seg_Type"] < truth["test/seg_Type"]


def test_presets_and_overrides():
    assert Config.from_preset("valor") == Config()
    plus = Config.from_preset("valor_plus", seed=4)
    assert (plus.d_model, plus.num_layers, plus.lr, plus.lr_min, plus.seed) == (256, 4, 3e-4, 3e-6, 4)
    assert set(PRESETS) == {"valor", "valor_plus", "valor_plusplus"}
    with pytest.raises(ValueError, match="unknown VALOR preset"):
        Config.from_preset("valor+")


def test_thresholds_take_a_number_or_one_per_class():
    assert Config(theta_v=24).theta_v == 24.0
    per_class = Config(theta_a=",".join(["1.5"] * 25)).theta_a
    assert per_class == (1.5,) * 25
    with pytest.raises(ValueError, match="theta_v must be a number or 25 numbers, got 3"):
        Config(theta_v=(1, 2, 3))


@pytest.mark.parametrize("bad, key", [
    ({"nhead": 3}, "divisible"), ({"teacher": "clip"}, "teacher"),
    ({"threshold_search": "test"}, "threshold_search"), ({"cross_input": "both"}, "cross_input"),
    ({"grad_clip": -1}, "grad_clip"), ({"beta1": 1.5}, "beta1")])
def test_bad_values_are_named(bad, key):
    with pytest.raises(ValueError, match=key):
        Config(**bad).validate()
