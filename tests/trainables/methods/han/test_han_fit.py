"""HAN trainable: a tiny fit on a small AVVP data set, metric keys, learning, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.methods.han import train as han
from trainables.data.format import write_dataset

C, T = 25, 10


def tiny_avvp(path: Path, *, n=(256, 64, 64), dims=(16, 24, 8), seed: int = 0,
              av_share: float = 0.4, frames: int = 0, active: int = 5) -> Path:
    """Writes a small AVVP data set with hidden truth whose features carry the class signal.

    Each video has one or two of the first ``active`` classes (few classes so that a few
    hundred videos suffice to learn them); each class event is audio-only, visual-only or both,
    spans a random run of segments, and adds the class prototype of its modality to those
    segments' features (plus Gaussian noise). Weak labels are the union of both modalities.
    """
    rng = np.random.default_rng(seed)
    da, dv, dm = dims
    proto_a = rng.normal(size=(C, da)) * 2
    proto_v = rng.normal(size=(C, dv)) * 2
    proto_m = rng.normal(size=(C, dm)) * 2
    ids, split, cols = [], [], {k: [] for k in ("audio", "visual", "motion", "labels",
                                                "gt_audio", "gt_visual")}
    for name, count in zip(("train", "val", "test"), n):
        for i in range(count):
            ga = np.zeros((T, C), np.uint8)
            gv = np.zeros((T, C), np.uint8)
            for c in rng.choice(active, size=rng.integers(1, 3), replace=False):
                u = rng.random()
                mods = ("a", "v") if u < av_share else (("a",) if u < (1 + av_share) / 2 else ("v",))
                for m in mods:
                    s = rng.integers(0, T - 2)
                    e = rng.integers(s + 2, T + 1)
                    (ga if m == "a" else gv)[s:e, c] = 1
            a = ga @ proto_a + rng.normal(size=(T, da))
            v = gv @ proto_v + rng.normal(size=(T, dv))
            mo = gv @ proto_m + rng.normal(size=(T, dm))
            if frames:
                v = v[:, None, :] + 0.5 * rng.normal(size=(T, frames, dv))
            cols["audio"].append(a)
            cols["visual"].append(v)
            cols["motion"].append(mo)
            cols["labels"].append((ga.any(0) | gv.any(0)).astype(np.uint8))
            cols["gt_audio"].append(ga)
            cols["gt_visual"].append(gv)
            ids.append(f"{name}{i:04d}_0_10")
            split.append(name)
    arrays = {k: np.stack(v).astype(np.float32 if k in ("audio", "visual", "motion") else np.uint8)
              for k, v in cols.items()}
    return write_dataset(path, video_ids=ids, split=split, arrays=arrays, kind="llp-sim",
                         params={"test": "tiny", "seed": seed, "n": list(n)},
                         truth_splits=("train", "val", "test"))


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
