"""AR-sim generator: determinism, realised noise, hidden truth, metadata, option validation."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.tasks.avar.data import (AvarDataError, avar_sim_params, corr_profile, generate_avar_sim,
                                  load_avar, make_avar_sim)
from trainables.data.format import read_meta, read_split


def _gen(seed=0, **kw):
    # Larger than the tiny preset so that realised ratios are meaningful.
    p = avar_sim_params("avar-sim-tiny", train_per_class=40, val_per_class=10, num_classes=10, **kw)
    return p, generate_avar_sim(p, seed=seed)


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    a = make_avar_sim("avar-sim-tiny", tmp_path / "a", seed=3)
    b = make_avar_sim("avar-sim-tiny", tmp_path / "b", seed=3)
    c = make_avar_sim("avar-sim-tiny", tmp_path / "c", seed=4)
    _, xa = read_split(a, "train")
    _, xb = read_split(b, "train")
    _, xc = read_split(c, "train")
    for k in xa:
        np.testing.assert_array_equal(xa[k], xb[k])
    assert not np.array_equal(xa["visual"], xc["visual"])
    assert not np.array_equal(xa["label"], xc["label"])


@pytest.mark.parametrize("r", [0.2, 0.4, 0.6, 0.8])
def test_symmetric_label_noise_exact_per_class(r):
    _, g = _gen(label_noise="sym", noise_rate=r, corr_rate=0.0)
    tr = np.array(g["split"]) == "train"
    y = g["arrays"]["clean_label"][tr, 0]
    lab = g["arrays"]["label"][tr, 0]
    for c in range(10):
        assert (lab[y == c] != c).mean() == pytest.approx(r)
    # Flipped labels land on many other classes (uniform flip), never on the true one.
    flipped = lab[lab != y]
    assert len(np.unique(flipped)) == 10
    # Validation labels are clean.
    np.testing.assert_array_equal(g["arrays"]["label"][~tr], g["arrays"]["clean_label"][~tr])


@pytest.mark.parametrize("r", [0.2, 0.4])
def test_asymmetric_noise_goes_to_the_similar_class(r):
    _, g = _gen(label_noise="asym", noise_rate=r, corr_rate=0.0)
    tr = np.array(g["split"]) == "train"
    y = g["arrays"]["clean_label"][tr, 0]
    lab = g["arrays"]["label"][tr, 0]
    sim = np.array(g["extra"]["similar_class"])
    assert (lab != y).mean() == pytest.approx(r)
    np.testing.assert_array_equal(lab[lab != y], sim[y[lab != y]])
    assert (sim != np.arange(10)).all()
    # Classes come in similar pairs.
    np.testing.assert_array_equal(sim[sim], np.arange(10))


@pytest.mark.parametrize("q", [0.1, 0.2, 0.3, 0.4])
@pytest.mark.parametrize("profile", ["uniform", "skewed"])
def test_noisy_correspondence_ratio_and_profile(q, profile):
    _, g = _gen(label_noise="none", corr_rate=q, corr_profile=profile)
    ok = g["arrays"]["corr_ok"][:, 0].astype(bool)
    tr = np.array(g["split"]) == "train"
    y = g["arrays"]["clean_label"][:, 0]
    per_class = np.array([(~ok[tr & (y == c)]).mean() for c in range(10)])
    # Exact per-class counts up to rounding (40 training videos per class).
    np.testing.assert_allclose(per_class, np.array(g["extra"]["corr_ratio_per_class"]), atol=0.5 / 40 + 1e-9)
    assert per_class.mean() == pytest.approx(q, abs=0.02)
    if profile == "skewed":
        assert per_class.std() / per_class.mean() > 0.3  # skewed: spread comparable to the mean
    else:
        assert per_class.max() - per_class.min() <= 1 / 40 + 1e-9


def test_skewed_profile_has_exact_mean_and_cap():
    rng = np.random.default_rng(0)
    for mean in (0.1, 0.2, 0.3, 0.4):
        q = corr_profile(50, mean, "skewed", rng)
        assert q.mean() == pytest.approx(mean)
        assert q.max() <= 0.8 + 1e-12 and q.min() >= 0


def test_noisy_audio_is_unrelated_to_the_video_class():
    p, g = _gen(label_noise="none", corr_rate=0.4, corr_profile="uniform", clip_noise=0.0, video_noise=0.1)
    a = g["arrays"]["audio"].mean(1)
    y = g["arrays"]["clean_label"][:, 0]
    ok = g["arrays"]["corr_ok"][:, 0].astype(bool)
    cent = np.stack([a[ok & (y == c)].mean(0) for c in range(10)])
    # Nearest clean class centroid identifies the class for clean audio, rarely for replaced audio.
    d = ((a[:, None, :] - cent[None]) ** 2).sum(-1)
    hit = d.argmin(1) == y
    assert hit[ok].mean() > 0.9
    assert hit[~ok].mean() < 0.2


def test_written_file_keeps_truth_and_params(tmp_path):
    path = make_avar_sim("avar-sim-tiny", tmp_path / "d", seed=7, noise_rate=0.4, corr_rate=0.2)
    meta = read_meta(path)
    assert meta["kind"] == "avar-sim"
    assert meta["truth_splits"] == ["train", "val"]
    assert meta["params"]["noise_rate"] == 0.4 and meta["params"]["corr_rate"] == 0.2
    assert meta["params"]["seed"] == 7 and meta["params"]["preset"] == "avar-sim-tiny"
    tr = load_avar(path, "train")
    va = load_avar(path, "val")
    assert tr.visual.shape == (5 * 16, 4, 16) and va.visual.shape == (5 * 4, 4, 16)
    assert tr.clean_label is not None and tr.corr_ok is not None
    assert (tr.label != tr.clean_label).float().mean().item() == pytest.approx(round(0.4 * 16) / 16)
    assert bool((va.label == va.clean_label).all())
    assert tr.num_classes == 5


@pytest.mark.parametrize("kw, msg", [
    (dict(label_noise="pair"), "label_noise"),
    (dict(noise_rate=1.2), "noise_rate"),
    (dict(label_noise="asym", noise_rate=0.6), "asymmetric"),
    (dict(corr_rate=0.95), "corr_rate"),
    (dict(corr_profile="zipf"), "corr_profile"),
    (dict(bogus=1), "bogus"),
])
def test_bad_options_are_named(kw, msg):
    with pytest.raises(AvarDataError, match=msg):
        avar_sim_params("avar-sim-small", **kw)


def test_unknown_preset_and_nothing_written(tmp_path):
    with pytest.raises(AvarDataError, match="avar-sim-huge"):
        make_avar_sim("avar-sim-huge", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_full_preset_sizes_match_the_issue():
    p = avar_sim_params("avar-sim")
    assert (p["num_classes"], p["train_per_class"], p["val_per_class"], p["clips"]) == (50, 400, 50, 10)
    assert (p["visual_dim"], p["audio_dim"]) == (512, 512)
