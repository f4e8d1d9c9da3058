"""CMPAE's trainable: defaults and presets, the shared noise estimator, ratios from a file, model
selection with ties to the last epoch, learning on a tiny set, and the official threshold protocol
(searched on the early snapshot, applied at test, kept across a resume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_data import tiny_avvp
from trainables.core.loop import BestTracker
from trainables.methods.cmpae import METHOD
from trainables.methods.cmpae import evaluate as ce
from trainables.methods.cmpae import train as cm
from trainables.methods.jomold import train as jomold
from trainables.tasks.avvp import backbone as bb
from trainables.tasks.avvp.classes import LLP_CLASSES
from trainables.tasks.avvp.metrics import metric_name


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_avvp(tmp_path_factory.mktemp("ctiny") / "d", seed=2)


def small(**kw) -> cm.Config:
    base = dict(epochs=8, estimator_epochs=12, batch_size=32, d_model=32, lr=5e-3, lr_step=100, seed=5)
    base.update(kw)
    return cm.Config(**base)


def test_defaults_are_the_official_codes_with_the_shared_protocol():
    c = cm.Config()
    assert (c.epochs, c.batch_size, c.lr, c.lr_step, c.lr_gamma) == (20, 128, 5e-4, 6, 0.25)
    assert (c.w_audio, c.w_visual, c.w_video, c.cl_weight, c.w_mutual) == (2.0, 0.6, 0.6, 1.0, 1.0)
    assert (c.smooth_a, c.smooth_v, c.cls_dropout, c.cross_dropout) == (1.0, 0.9, 0.5, 0.2)
    assert (c.ratio_mode, c.warmup_mode, c.probe_train_mode, c.theta_a, c.theta_v) == \
        ("official", "official", True, 0.6, 1.8)
    assert (c.evidence_temp, c.evidence_clamp, c.uct_floor, c.ca_mix, c.fuse_ratio) == \
        (0.8, 10.0, 0.9, 0.8, 0.7)
    # Decoded and selected like every other method; no validation-chosen thresholds.
    assert (c.decode, c.protocol, c.threshold, c.select_metric, c.select_ties, c.visual_thresholds) \
        == ("task", "han", 0.5, "val/seg_Type", "first", "fixed")
    assert cm.mark(c) is None and cm.Config.from_preset("default") == c
    off = cm.Config.from_preset("official")
    assert (off.decode, off.select_metric, off.select_ties, off.visual_thresholds,
            off.threshold_model, off.early_epoch, off.seg_threshold, off.audio_threshold,
            off.visual_threshold) == ("cmpae", "val/mean_ten", "last", "val", "early", 8, 0.25,
                                      0.45, 0.45)
    symbol, note = cm.mark(off)
    assert symbol == "†" and "validation" in note
    assert cm.mark(cm.Config.from_preset("official_fixed")) is None
    assert METHOD.mark == "trainables.methods.cmpae.train:mark"


@pytest.mark.parametrize("bad, match", [
    ({"visual_thresholds": "val"}, "needs decode='cmpae'"),
    ({"ratio_mode": "file"}, "noise_ratio_file"),
    ({"threshold_metric": "seg_X"}, "threshold_metric"),
    ({"cross_dropout": 1.0}, "cross_dropout"),
    ({"fuse_ratio": 1.5}, "fuse_ratio"),
    ({"select_ties": "middle"}, "select_ties"),
])
def test_bad_values_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        cm.Config(**bad).validate()
    with pytest.raises(ValueError, match="unknown CMPAE preset"):
        cm.Config.from_preset("paper")


def test_the_noise_estimator_is_jomolds_official_one():
    est = cm.estimator_config(cm.Config(seed=4, estimator_epochs=7))
    assert est == jomold.estimator_config(jomold.Config.from_preset("official", seed=4,
                                                                     estimator_epochs=7))
    assert (est.with_ca, est.epochs, est.loss_weights, est.select_metric) == \
        (False, 7, (1.0, 1.0, 1.0), "val/event_A")


def test_ratios_from_a_file(tiny, tmp_path):
    good = tmp_path / "r.npz"
    ra, rv = np.linspace(0, 0.2, 25), np.linspace(0.5, 0.0, 25)
    np.savez(good, audio=ra, visual=rv)
    cfg = small(ratio_mode="file", noise_ratio_file=str(good))
    cm.check(cfg, "llp-sim-tiny")
    data = bb.load_data(cfg, tiny, torch.device("cpu"))
    a, v, source = cm.noise_ratios(cfg, tiny, torch.device("cpu"), data)
    assert a.tolist() == pytest.approx(ra.tolist()) and v.tolist() == pytest.approx(rv.tolist())
    assert source == f"file:{good}"
    assert cm.ensure_estimator(cfg, tiny, "cpu") is None  # nothing to prepare
    bad = tmp_path / "bad.npz"
    np.savez(bad, audio=ra)
    with pytest.raises(ValueError, match=r"bad.npz: no key 'visual'"):
        cm.check(small(ratio_mode="file", noise_ratio_file=str(bad)), "llp-sim-tiny")
    np.savez(bad, audio=ra, visual=rv + 1)
    with pytest.raises(ValueError, match=r"'visual' must hold 25 ratios in \[0, 1\]"):
        cm.check(small(ratio_mode="file", noise_ratio_file=str(bad)), "llp-sim-tiny")


def test_ties_go_to_the_last_epoch_only_when_asked():
    model = torch.nn.Linear(1, 1)
    first, last = BestTracker("val/x"), cm._TiesToLast("val/x")
    for epoch, value in enumerate([1.0, 2.0, 2.0, 1.5]):
        first.update(epoch, {"val/x": value}, model)
        last.update(epoch, {"val/x": value}, model)
    assert (first.epoch, last.epoch, last.value) == (1, 2, 2.0)


def test_fit_learns_and_denoises_on_a_tiny_set(tiny, tmp_path):
    torch.set_num_threads(1)
    seen = []
    res = cm.fit(small(), tiny, device="cpu", estimator_cache_dir=tmp_path,
                 reporter=lambda e, m, sf: seen.append(m))
    assert res["val/seg_Type"] > seen[0]["val/seg_Type"] + 8
    assert res["test/seg_Type"] > 40 and res["test/event_Type"] > 36
    # The visual labels it removes are mostly truly noisy; about a third of all are.
    m = seen[-1]
    base_rate = m["denoise/noisy_v"] / (m["denoise/removed_v"] / m["denoise/removed_frac_v"])
    assert m["denoise/removed_v"] > 10 and m["denoise/precision_v"] > base_rate + 0.3
    assert not any(k.startswith("threshold_v/") for k in res)


def test_official_protocol_searches_on_the_early_snapshot_and_survives_a_resume(tiny, tmp_path):
    torch.set_num_threads(1)
    cfg = cm.Config.from_preset("official", epochs=4, early_epoch=2, estimator_epochs=4,
                                batch_size=32, d_model=32, lr=2e-3, lr_step=100, seed=6)
    states = {}

    def reporter(epoch, metrics, state_fn):
        path = tmp_path / f"s{epoch}.pt"
        torch.save(state_fn(), path)
        states[epoch] = path

    res = cm.fit(cfg, tiny, device="cpu", estimator_cache_dir=tmp_path, reporter=reporter)
    last = torch.load(states[3], weights_only=True)
    data = bb.load_data(cfg, tiny, torch.device("cpu"))
    model = cm.build_model(cfg, data["train"], torch.device("cpu"))
    # The thresholds are those the epoch-2 snapshot's search gives ...
    early = last["extra"]["early"]
    assert early and not all(torch.equal(early[k], last["model"][k]) for k in early)
    model.load_state_dict(early)
    want = ce.search_visual_thresholds(cfg, ce.predict_fused(model, data["val"], cfg.fuse_ratio),
                                       data["val"])
    thr = [res[f"threshold_v/{metric_name(n)}"] for n in LLP_CLASSES]
    assert thr == want.tolist() and len({k for k in res if k.startswith("threshold_v/")}) == 25
    # ... and the test decodes the selected weights with them.
    model.load_state_dict(last["best"]["weights"])
    got = ce.evaluator(cfg, data)(model, "test", want)
    assert all(res[k] == got[k] for k in got)
    # Resuming after the snapshot keeps it (the run does not pass epoch 2 again).
    resumed = cm.fit(cfg, tiny, device="cpu", estimator_cache_dir=tmp_path,
                     resume_state=torch.load(states[2], weights_only=True))
    assert {k: v for k, v in resumed.items() if not k.startswith("time/")} == \
        {k: v for k, v in res.items() if not k.startswith("time/")}
