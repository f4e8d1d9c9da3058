"""VALOR's label elaboration: the shared harvesting rule, the threshold search, the label sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.data.registry import resolve_data
from trainables.methods.valor import harvest as hv
from trainables.methods.valor.calibrate import threshold_curve
from trainables.methods.valor.train import MARK, Config, mark
from trainables.tasks.avvp import backbone as bb
from trainables.tasks.avvp.pseudo_labels import harvest


def _reference(scores, thr, labels, strict):
    """The rule written from the text, one video, segment and class at a time."""
    n, t, c = scores.shape
    thr = np.broadcast_to(np.asarray(thr, float), (c,))
    out = np.zeros((n, t, c), bool)
    for i in range(n):
        for j in range(t):
            for k in range(c):
                passed = scores[i, j, k] > thr[k] if strict else scores[i, j, k] >= thr[k]
                out[i, j, k] = passed and labels[i, k] == 1
    return out


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("per_class", [True, False])
def test_harvest_matches_reference(strict, per_class):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, (5, 10, 25)).astype(np.float32)  # ties with the thresholds on purpose
    labels = (rng.random((5, 25)) < 0.4).astype(np.uint8)
    thr = rng.integers(1, 5, 25).astype(float) if per_class else 3.0
    got = harvest(torch.from_numpy(scores), thr, labels, strict=strict)
    assert got.dtype == torch.bool
    np.testing.assert_array_equal(got.numpy(), _reference(scores, thr, labels, strict))


def test_harvest_rejects_bad_shapes():
    with pytest.raises(ValueError, match="thresholds"):
        harvest(torch.zeros(2, 10, 25), [1.0] * 24, torch.ones(2, 25))
    with pytest.raises(ValueError, match="labels"):
        harvest(torch.zeros(2, 10, 25), 1.0, torch.ones(3, 25))
    with pytest.raises(ValueError, match="scores"):
        harvest(torch.zeros(2, 25), 1.0, torch.ones(2, 25))


def _search_reference(scores, labels, gt):
    """Per class: every candidate threshold (each score, and below all), the best F1 of '>'."""
    out = []
    for c in range(scores.shape[2]):
        s, g = scores[labels[:, c] == 1, :, c].ravel(), gt[labels[:, c] == 1, :, c].ravel()
        best = (-1.0, None)
        for thr in sorted(set(s.tolist()) | {s.min() - 1.0}):
            p = s > thr
            f1 = 2 * (p & g).sum() / (p.sum() + g.sum())
            if f1 > best[0]:
                best = (f1, p)
        out.append(best)
    return out


def test_search_thresholds_finds_the_best_f1_per_class():
    rng = np.random.default_rng(0)
    n, c = 30, 4
    gt = rng.random((n, 10, c)) < 0.3
    labels = gt.any(1) | (rng.random((n, c)) < 0.2)
    gt &= labels[:, None, :]
    scores = np.round(gt * 2.0 + rng.normal(size=(n, 10, c)), 1)  # rounded: ties between scores
    thr = hv.search_thresholds(torch.from_numpy(scores), torch.from_numpy(labels), torch.from_numpy(gt), 0.0)
    for k, (f1, _) in enumerate(_search_reference(scores, labels.astype(int), gt)):
        s, g = scores[labels[:, k], :, k].ravel(), gt[labels[:, k], :, k].ravel()
        p = s > thr[k]
        assert 2 * (p & g).sum() / (p.sum() + g.sum()) == pytest.approx(f1, abs=1e-12)
        assert f1 > 0.5


def test_search_keeps_the_default_for_a_class_without_evidence():
    scores = torch.randn(4, 10, 3)
    labels = torch.tensor([[1, 0, 1]] * 4)
    gt = torch.zeros(4, 10, 3, dtype=torch.bool)
    gt[:, :3, 0] = True
    thr = hv.search_thresholds(scores, labels, gt, (7.0, 8.0, 9.0))
    assert thr[1] == 8.0 and thr[2] == 9.0 and thr[0] != 7.0


def test_official_thresholds_cover_the_classes():
    assert len(hv.OFFICIAL_THETA_V) == len(hv.OFFICIAL_THETA_A) == 25


def test_sim_thresholds_are_the_calibration_optimum():
    # One small draw of the calibration (the constants come from three draws of 4,000 videos).
    res = threshold_curve(n=1500, draws=((1, 0),), grid=np.arange(22.0, 27.01, 0.5))
    assert abs(res["visual"]["best"] - hv.SIM_THETA_V) <= 0.5
    assert abs(res["audio"]["best"] - hv.SIM_THETA_A) <= 1.0
    assert res["visual"]["seg"] > 70 and res["audio"]["seg"] > 85


@pytest.fixture(scope="module")
def tiny():
    path = resolve_data("llp-sim-tiny")
    return path, bb.load_data(Config(), path, torch.device("cpu"))


def test_sim_teachers_are_vaplans(tiny):
    """VALOR reads the same simulated teachers as VAPLAN: VAPLAN's PLG on VALOR's logits gives
    VAPLAN's labels (the softmax of the cosines is the same whatever their scale)."""
    from trainables.methods.vaplan import labels as vaplan_labels
    from trainables.methods.vaplan.train import Config as VaplanConfig

    path, data = tiny
    z = hv.teacher_logits(Config(), path, data, "sim")
    vcfg = VaplanConfig()
    scores = vaplan_labels.teacher_scores(vcfg, path, data)
    for s in ("train", "val"):
        ref = vaplan_labels.plg(vcfg, scores[s], data[s].labels)
        for m, tau in (("visual", vcfg.tau_v), ("audio", vcfg.tau_a)):
            ours = harvest(torch.softmax(z[s][m] / hv.CLIP_SCALE, dim=-1), tau, data[s].labels)
            assert torch.equal(ours, ref[m].cpu())


def test_harvest_labels_sim_truth_and_search(tiny):
    path, data = tiny
    labels, q = hv.harvest_labels(Config(), path, data)
    z = hv.teacher_logits(Config(), path, data, "sim")
    assert torch.equal(labels["train"]["visual"], z["train"]["visual"].gt(hv.SIM_THETA_V)
                       & data["train"].labels.bool()[:, None, :])
    assert set(labels) == {"train", "val", "test"}
    assert q["pseudo/seg_F_v"] > 65 and q["pseudo/seg_F_a"] > 80
    truth, qt = hv.harvest_labels(Config(teacher="truth"), path, data)
    assert torch.equal(truth["val"]["audio"], data["val"].gt_audio.bool())
    assert qt["pseudo/seg_F_v"] == qt["pseudo/seg_F_a"] == 100.0
    cfg = Config(threshold_search="val")
    searched, qs = hv.harvest_labels(cfg, path, data)
    assert "pseudo/theta_mean_v" in qs and mark(cfg) == MARK and mark(Config()) is None
    assert not torch.equal(searched["train"]["visual"], labels["train"]["visual"])
    with pytest.raises(ValueError, match="needs teacher scores"):
        hv.harvest_labels(Config(teacher="truth", threshold_search="val"), path, data)


def test_missing_sources_are_named(tiny):
    path, data = tiny
    with pytest.raises(ValueError, match="convert-valor"):
        hv.harvest_labels(Config(teacher="released"), path, data)
    with pytest.raises(ValueError, match="convert-teachers"):
        hv.harvest_labels(Config(teacher="data"), path, data)


def _with_teachers(tmp_path, kind):
    """A small data set of ``kind`` with teacher embedding columns (random, 16-d)."""
    from tiny_data import tiny_avvp
    from trainables.data.format import read_meta, read_split, write_dataset
    from trainables.tasks.avvp.teacher_data import convert_teachers

    src = tiny_avvp(tmp_path / "src", n=(6, 3, 3), dims=(8, 8, 4))
    ids, split, cols = [], [], {}
    for s in ("train", "val", "test"):
        sid, arr = read_split(src, s)
        ids += sid
        split += [s] * len(sid)
        for k, v in arr.items():
            cols.setdefault(k, []).append(v)
    base = write_dataset(tmp_path / "base", video_ids=ids, split=split,
                         arrays={k: np.concatenate(v) for k, v in cols.items()}, kind=kind,
                         params={"test": kind}, truth_splits=read_meta(src)["truth_splits"])
    rng = np.random.default_rng(0)
    for m in ("visual", "audio"):
        (tmp_path / m).mkdir()
        for v in ids:
            np.save(tmp_path / m / f"{v}.npy", rng.normal(size=(10, 16)).astype(np.float32))
    np.savez(tmp_path / "text.npz", **{"visual/VP1": rng.normal(size=(25, 16)),
                                       "audio/AP2": rng.normal(size=(25, 16))})
    return convert_teachers(base, tmp_path / "out", visual_dir=tmp_path / "visual",
                            audio_dir=tmp_path / "audio", text=tmp_path / "text.npz")


def test_teacher_columns_use_the_official_thresholds_on_real_data_only(tmp_path):
    from trainables.tasks.avvp.teacher_data import load_teacher

    real = _with_teachers(tmp_path / "real", "llp")
    data = bb.load_data(Config(), real, torch.device("cpu"))
    labels, _ = hv.harvest_labels(Config(), real, data)  # teacher="auto" -> "data"
    _, emb, text = load_teacher(real, "val", "visual", "VP1")
    z = hv.CLIP_SCALE * torch.nn.functional.normalize(torch.from_numpy(emb), dim=-1) @ \
        torch.nn.functional.normalize(torch.from_numpy(text), dim=-1).T
    want = harvest(z, hv.OFFICIAL_THETA_V, data["val"].labels, strict=True)
    assert torch.equal(labels["val"]["visual"], want)
    sim = _with_teachers(tmp_path / "sim", "llp-sim")
    data = bb.load_data(Config(), sim, torch.device("cpu"))
    with pytest.raises(ValueError, match="no calibration to these simulated teachers"):
        hv.harvest_labels(Config(), sim, data)
    labels, _ = hv.harvest_labels(Config(theta_v=5.0, theta_a=5.0), sim, data)
    assert labels["train"]["audio"].any()
