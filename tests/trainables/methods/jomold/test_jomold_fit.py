"""JoMoLD trainable: estimator cache, denoising metrics, checkpoint state, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tiny_data import tiny_avvp
from trainables.tasks.avvp import backbone as bb
from trainables.methods.jomold import train as jomold


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_avvp(tmp_path_factory.mktemp("jtiny") / "d", seed=1)


def cfg(**kw) -> jomold.Config:
    base = dict(epochs=6, estimator_epochs=12, batch_size=32, d_model=32, lr=2e-3, lr_step=100,
                seed=5)
    base.update(kw)
    return jomold.Config(**base)


def test_defaults_are_the_papers():
    c = jomold.Config()
    assert (c.theta_a, c.theta_v, c.warmup_epochs, c.cl_weight, c.estimator_epochs) == \
        (0.6, 1.8, 0.9, 0.0, 25)
    assert (c.epochs, c.batch_size, c.lr, c.lr_step, c.lr_gamma) == (25, 128, 5e-4, 6, 0.25)
    assert c.loss_weights == (1.0, 1.0, 1.0)
    assert jomold.Config(loss_preset="official").loss_weights == (1.0, 2.0, 1.0)
    est = jomold.estimator_config(jomold.Config(estimator_epochs=7))
    assert est.with_ca is False and est.epochs == 7
    assert (c.cls_dropout, c.probe_train_mode, c.ratio_mode, c.warmup_mode) == \
        (0.0, False, "paper", "paper")


def test_fit_metrics_estimator_cache_and_state(tiny, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    cache = tmp_path / "est"
    seen = []
    res = jomold.fit(cfg(), tiny, device="cpu", estimator_cache_dir=cache,
                     reporter=lambda e, m, sf: seen.append((e, m, sf())))
    files = list(cache.glob("*.pt"))
    assert len(files) == 1 and files[0].stem == jomold.estimator_key(cfg(), tiny)
    m = seen[-1][1]
    for k in ("train/loss", "val/seg_V", "denoise/precision_a", "denoise/recall_v",
              "noise_ratio/mae_a", "noise_ratio/mae_v"):
        assert k in m, k
    assert {"test/seg_V", "test/event_Type", "best_epoch"} <= set(res)
    extra = seen[-1][2]["extra"]
    assert extra["estimator_key"] == files[0].stem
    assert extra["ratio_a"].shape == extra["ratio_v"].shape == (25,)
    # Denoising must beat blind removal: the precision of removed visual labels clearly exceeds
    # the share of noisy visual labels among all positive labels.
    n_pos = float(bb.load_data(cfg(), tiny, torch.device("cpu"))["train"].labels.sum())
    assert m["denoise/removed_v"] > 0
    assert m["denoise/precision_v"] > m["denoise/noisy_v"] / n_pos + 0.2

    # A second run with other thresholds reuses the cached estimator: training it would fail.
    def boom(*a, **k):
        raise AssertionError("estimator retrained")

    monkeypatch.setattr(bb, "train_backbone", boom)
    res2 = jomold.fit(cfg(theta_v=1.2, epochs=1), tiny, device="cpu", estimator_cache_dir=cache)
    assert "test/seg_V" in res2


def test_resume_matches_uninterrupted_run(tiny, tmp_path):
    torch.set_num_threads(1)
    cache = tmp_path / "est"
    c = cfg(epochs=3, estimator_epochs=2, cl_weight=0.5)
    states = {}
    full = jomold.fit(c, tiny, device="cpu", estimator_cache_dir=cache,
                      reporter=lambda e, m, sf: states.__setitem__(e, sf()))
    path = tmp_path / "ckpt.pt"
    torch.save(states[1], path)
    resumed = jomold.fit(c, tiny, device="cpu", estimator_cache_dir=tmp_path / "empty",
                         resume_state=torch.load(path, weights_only=True))
    # The resumed run takes its ratios from the checkpoint, not from a (missing) estimator.
    assert not (tmp_path / "empty").exists()
    for k in ("train/loss", "val/seg_Type", "test/seg_V", "denoise/precision_v", "best_epoch"):
        assert resumed[k] == full[k], k


def test_bad_config_names_key(tiny):
    with pytest.raises(ValueError, match="warmup_mode"):
        jomold.fit(cfg(warmup_mode="slow"), tiny, device="cpu")
    with pytest.raises(ValueError, match="ratio_mode"):
        jomold.fit(cfg(ratio_mode="x"), tiny, device="cpu")


def test_oracle_ratio_mode_uses_true_ratios_without_estimator(tiny, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    train = bb.load_data(cfg(), tiny, torch.device("cpu"))["train"]
    ra, rv = jomold.oracle_noise_ratios(train)
    # Plain per-class count from the hidden truth.
    y = train.labels > 0
    ta, tv = train.gt_audio.amax(dim=1) > 0, train.gt_visual.amax(dim=1) > 0
    for c in range(y.shape[1]):
        pos = int(y[:, c].sum())
        want_a = int((y[:, c] & ~ta[:, c]).sum()) / pos if pos else 0.0
        want_v = int((y[:, c] & ~tv[:, c]).sum()) / pos if pos else 0.0
        assert float(ra[c]) == pytest.approx(want_a) and float(rv[c]) == pytest.approx(want_v)
    assert float(rv.max()) > 0

    def boom(*a, **k):
        raise AssertionError("oracle ratios must not train the estimator")

    monkeypatch.setattr(jomold, "ensure_estimator", boom)
    seen = []
    jomold.fit(cfg(ratio_mode="oracle", epochs=2), tiny, device="cpu",
               estimator_cache_dir=tmp_path / "est", reporter=lambda e, m, sf: seen.append(m))
    # The reported ratio error is against the same truth, so it is exactly zero.
    assert seen[-1]["noise_ratio/mae_a"] == 0.0 and seen[-1]["noise_ratio/mae_v"] == 0.0
    assert seen[-1]["denoise/removed_v"] > 0
