"""HAN trainable: a tiny fit on a small AVVP data set, metric keys, learning, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainables.methods.han import train as han
from tiny_data import tiny_avvp


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_avvp(tmp_path_factory.mktemp("tiny") / "d")


def small_cfg(**kw) -> han.Config:
    base = dict(epochs=4, batch_size=32, d_model=32, lr=2e-3, lr_step=100, seed=3)
    base.update(kw)
    return han.Config(**base)


def test_fit_reports_metric_keys_and_learns(tiny):
    torch.set_num_threads(1)
    seen = []
    res = han.fit(small_cfg(epochs=8), tiny, device="cpu",
                  reporter=lambda e, m, sf: seen.append((e, m)))
    assert [e for e, _ in seen] == list(range(8))
    keys = {"epoch", "train/loss", "val/seg_A", "val/seg_V", "val/seg_Type", "val/event_Event"}
    assert keys <= set(seen[0][1])
    losses = [m["train/loss"] for _, m in seen]
    assert losses[-1] < 0.5 * losses[0]
    assert {"test/seg_V", "test/event_AV", "best_epoch"} <= set(res)
    best = max(seen, key=lambda em: em[1]["val/seg_Type"])
    assert res["best_epoch"] == best[0]
    assert res["val/seg_Type"] == best[1]["val/seg_Type"]
    # The first epoch predicts little beyond the class prior; training must add real skill.
    assert res["val/seg_Type"] > seen[0][1]["val/seg_Type"] + 10
    assert res["test/seg_Type"] > 30


def test_oracle_labels_beat_weak_on_visual(tiny):
    torch.set_num_threads(1)
    weak = han.fit(small_cfg(epochs=12), tiny, device="cpu")
    oracle = han.fit(small_cfg(epochs=12, label_source="oracle"), tiny, device="cpu")
    assert oracle["test/seg_V"] > weak["test/seg_V"] + 5


def test_resume_matches_uninterrupted_run(tiny):
    torch.set_num_threads(1)
    cfg = small_cfg(epochs=3)
    full = han.fit(cfg, tiny, device="cpu")
    states = {}
    han.fit(small_cfg(epochs=3), tiny, device="cpu",
            reporter=lambda e, m, sf: states.__setitem__(e, sf()))
    path = Path(tiny).parent / "ckpt.pt"
    torch.save(states[0], path)
    resumed_state = torch.load(path, weights_only=True)
    resumed = han.fit(cfg, tiny, device="cpu", resume_state=resumed_state)
    for k in ("train/loss", "val/seg_Type", "test/seg_V", "test/event_A", "best_epoch"):
        assert resumed[k] == full[k], k


def test_oracle_needs_truth_and_bad_config_is_named(tiny, tmp_path):
    with pytest.raises(ValueError, match="label_source"):
        han.fit(small_cfg(label_source="both"), tiny, device="cpu")
    with pytest.raises(ValueError, match="smooth_v"):
        han.fit(small_cfg(smooth_v=1.5), tiny, device="cpu")


def test_fit_on_llp_sim_tiny_preset():
    """The real data path: the LLP-sim tiny preset at official feature sizes (128/2048/512)."""
    from trainables.data.registry import resolve_data

    torch.set_num_threads(1)
    seen = []
    res = han.fit(han.Config(epochs=5, d_model=64, batch_size=32, lr=1e-3),
                  resolve_data("llp-sim-tiny"), device="cpu",
                  reporter=lambda e, m, sf: seen.append(m))
    keys = ("seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event",
            "event_A", "event_V", "event_AV", "event_Type", "event_Event")
    assert all(f"test/{k}" in res and 0 <= res[f"test/{k}"] <= 100 for k in keys)
    assert seen[-1]["train/loss"] < 0.5 * seen[0]["train/loss"]
    assert res["val/seg_Type"] > seen[0]["val/seg_Type"] + 4
