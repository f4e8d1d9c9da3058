"""The avar trainable: every variant runs on avar-sim-tiny, resume is exact, bad configs fail."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.tasks.avar.data import make_avar_sim
from trainables.methods.avar.train import VARIANTS, Config, alpha_at, fit, phase_of

KEYS = {"epoch", "train/loss", "train/alpha", "val/clip_top1", "val/clip_top5", "val/video_top1",
        "train/corrected_label_acc", "train/given_label_acc", "train/omega_auc"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return make_avar_sim("avar-sim-tiny", tmp_path_factory.mktemp("avar") / "tiny", seed=0)


def _untimed(result):
    return {k: v for k, v in result.items() if not k.startswith(("time/", "last/time/"))}


def _cfg(**kw):
    base = dict(epochs=4, batch_size=16, lr=1e-3, hidden_dim=32, embed_dim=16, cls_hidden=32,
                ae_hidden=8, top_n=4, knn_k=5, warmup_epochs=1, alpha_switch_epoch=3)
    base.update(kw)
    return Config(**base)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_reports_metrics(tiny, variant):
    seen = []
    out = fit(_cfg(variant=variant), tiny, reporter=lambda e, m, s: seen.append((e, m)), device="cpu")
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    for _, m in seen:
        assert KEYS <= set(m)
        assert all(math.isfinite(m[k]) for k in KEYS)
        assert 0 <= m["val/clip_top1"] <= m["val/clip_top5"] <= 100
        assert 0 <= m["train/omega_auc"] <= 1
    # The result is the selected epoch's (the one contract of every method), not the last one's.
    best = max(range(4), key=lambda i: (seen[i][1]["val/clip_top1"], -i))
    assert out["best_epoch"] == best and out["epoch"] == best and out["last_epoch"] == 3
    assert out["val/clip_top1"] == max(m["val/clip_top1"] for _, m in seen)
    assert out["val/video_top1"] == seen[best][1]["val/video_top1"]
    assert out["last/val/clip_top1"] == seen[-1][1]["val/clip_top1"]
    assert out["seed"] == 0


def test_schedule():
    cfg = Config(warmup_epochs=2, alpha_start=0.6, alpha_end=0.8, alpha_switch_epoch=20)
    assert [phase_of(cfg, e) for e in range(6)] == ["warmup", "warmup", "contrastive", "hybrid",
                                                    "contrastive", "hybrid"]
    assert [phase_of(Config(variant="none", warmup_epochs=1), e) for e in range(3)] == ["warmup", "hybrid", "hybrid"]
    assert {phase_of(Config(variant="late_fusion_ce"), e) for e in range(5)} == {"ce"}
    assert (alpha_at(cfg, 19), alpha_at(cfg, 20)) == (0.6, 0.8)
    d = Config()
    assert (d.lr, d.batch_size, d.epochs, d.warmup_epochs, d.tau1, d.tau2) == (5e-5, 64, 60, 2, 1.0, 0.1)


def test_variants_differ(tiny):
    a = fit(_cfg(variant="late_fusion_ce"), tiny, device="cpu")
    b = fit(_cfg(variant="full"), tiny, device="cpu")
    assert a["train/loss"] != b["train/loss"]


def test_resume_equals_uninterrupted(tiny, tmp_path):
    cfg = _cfg(variant="full", epochs=5)
    whole = fit(cfg, tiny, device="cpu")
    saved = {}

    def rep(epoch, metrics, state_fn):
        if epoch == 2:
            torch.save(state_fn(), tmp_path / "ckpt.pt")
            saved["m"] = metrics

    first = fit(_cfg(variant="full", epochs=3), tiny, reporter=rep, device="cpu")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["epoch"] == 2 and state["extra"]["corrected"].shape == (80,)
    resumed = fit(cfg, tiny, resume_state=state, device="cpu")
    assert first["last/val/clip_top1"] == saved["m"]["val/clip_top1"]
    assert _untimed(resumed) == _untimed(whole)


def test_batch_not_larger_than_k_fails_clearly(tiny):
    with pytest.raises(ValueError, match=r"batch_size=5 must exceed the number of classes K=5"):
        fit(_cfg(variant="full", batch_size=5), tiny, device="cpu")
    # Without the instance-level loss a small batch is fine.
    fit(_cfg(variant="none", batch_size=5, epochs=2), tiny, device="cpu")


def test_unknown_variant_and_metric(tiny):
    with pytest.raises(ValueError, match="variant must be one of .* got 'swav'"):
        fit(_cfg(variant="swav"), tiny, device="cpu")
    with pytest.raises(KeyError, match="val/seg_V"):
        fit(_cfg(select_metric="val/seg_V", epochs=1), tiny, device="cpu")


def test_learns_on_clean_tiny(tmp_path):
    path = make_avar_sim("avar-sim-tiny", tmp_path / "clean", seed=1, label_noise="none", corr_rate=0.0)
    out = fit(_cfg(variant="late_fusion_ce", epochs=20, lr=3e-3), path, device="cpu")
    # Chance is 20%; the tiny preset is deliberately hard (16-d, paired classes), ~50% measured.
    assert out["val/clip_top1"] > 40  # the selected epoch's


def test_phase_optimizers_keep_separate_adam_states(tiny, tmp_path):
    # Schedule of 4 epochs with 1 warm-up: warmup, contrastive, hybrid, contrastive; 80 videos in
    # batches of 16 -> 5 steps an epoch. Shared Adam counts all 20 steps; with phase_optimizers
    # the supervised state counts warm-up + hybrid (10) and the contrastive one its own 10.
    states = {}

    def rep(epoch, metrics, state_fn):
        if epoch == 3:
            states[cfg.phase_optimizers] = state_fn()

    for flag in (False, True):
        cfg = _cfg(variant="full", phase_optimizers=flag)
        fit(cfg, tiny, reporter=rep, device="cpu")
    # Steps per parameter tensor (parameters without a gradient in a phase are skipped by Adam).
    steps = lambda opt_state: sorted(float(v["step"]) for v in opt_state["state"].values())  # noqa: E731
    # Shared: encoders (8 tensors) step in every epoch, classifier/prototypes/autoencoder in half.
    assert steps(states[False]["optimizer"]) == [10.0] * 9 + [20.0] * 8
    assert "optimizer_contrastive" not in states[False]["extra"]
    # Separate: encoders + classifier in the supervised state, encoders + prototypes + AE in the other.
    assert steps(states[True]["optimizer"]) == [10.0] * 12
    assert steps(states[True]["extra"]["optimizer_contrastive"]) == [10.0] * 13
    # Different second moments give different weights; resume restores both states exactly.
    assert not torch.equal(states[False]["model"]["g.0.weight"], states[True]["model"]["g.0.weight"])
    cfg5 = _cfg(variant="full", epochs=5, phase_optimizers=True)
    whole = fit(cfg5, tiny, device="cpu")
    torch.save(states[True], tmp_path / "ckpt.pt")
    resumed = fit(cfg5, tiny, resume_state=torch.load(tmp_path / "ckpt.pt", weights_only=True), device="cpu")
    assert _untimed(resumed) == _untimed(whole)
