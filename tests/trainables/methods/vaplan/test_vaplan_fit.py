"""VAPLAN's fit on llp-sim-tiny: its labels are PLG's, the first stage is shared, variants differ."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from trainables.data.format import DataFormatError, cache_root, read_meta, read_split
from trainables.data.registry import resolve_data
from trainables.methods.vaplan import labels as pl
from trainables.methods.vaplan import train as vt
from trainables.methods.vaplan.pseudo import segment_pseudo_labels
from trainables.tasks.avvp.data import load_avvp
from trainables.tasks.avvp.teacher_data import convert_teachers
from trainables.tasks.avvp.teachers import simulate_teacher


def _untimed(r):
    return {k: v for k, v in r.items() if not k.startswith(("time/", "last/time/"))}


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return resolve_data("llp-sim-tiny")


def _cfg(**kw):
    base = dict(epochs=2, stage1_epochs=1, batch_size=32, d_model=64, seed=0)
    return vt.Config(**{**base, **kw})


def test_plg_labels_of_fit_are_the_rule_on_the_simulated_teacher(tiny):
    cfg = _cfg(variant="richness", tau_v=0.0405)
    data = {s: load_avvp(tiny, s) for s in ("train", "val", "test")}
    scores = pl.teacher_scores(cfg, tiny, data)
    everything = {k: torch.cat([getattr(data[s], k) for s in data]) for k in ("gt_visual", "gt_audio", "labels")}
    n = len(data["train"])
    for m in ("visual", "audio"):
        # One teacher over every video of the data set (one draw), cut into the splits.
        sim = simulate_teacher(everything[f"gt_{m}"], everything["labels"], m, seed=cfg.teacher_seed)
        tau = cfg.tau_v if m == "visual" else cfg.tau_a
        want = segment_pseudo_labels(sim.seg_emb, sim.text_emb, everything["labels"], tau)
        got = pl.plg(cfg, scores["train"], data["train"].labels)[m]
        assert torch.equal(got, want[:n])
        assert torch.equal(pl.plg(cfg, scores["val"], data["val"].labels)[m], want[n:n + len(data["val"])])
        assert got.any() and not (got & ~data["train"].labels.bool()[:, None, :]).any()


def test_variants_report_their_quality_keys_and_differ(tiny):
    # A 1-epoch first stage fits nothing well enough for the paper's alphas to flip a label; a
    # small alpha makes PLD act on llp-sim-tiny.
    res = {v: vt.fit(_cfg(variant=v, pld_alpha_v=2.0, pld_alpha_a=2.0), tiny, device="cpu")
           for v in ("han", "video", "richness", "full")}
    assert not any(k.startswith("pseudo/") for k in res["han"])
    for v in ("video", "richness", "full"):
        r = res[v]
        for k in ("seg_F_v", "event_F_v", "seg_F_a", "event_F_a", "video_precision_v", "video_precision_a"):
            assert 0 < r[f"pseudo/{k}"] <= 100, (v, k)
        assert ("pseudo/pld_seg_F_v" in r) == (v == "full")
        # The sweep's criterion: the mean segment F of the labels the final model trains on.
        pre = "pseudo/pld_" if v == "full" else "pseudo/"
        assert r[vt.QUALITY_KEY] == pytest.approx((r[f"{pre}seg_F_v"] + r[f"{pre}seg_F_a"]) / 2)
    assert res["full"][vt.QUALITY_KEY] != res["richness"][vt.QUALITY_KEY]  # PLD moved the visual half
    # The same PLG labels whatever the loss; different losses train different models.
    assert res["video"]["pseudo/seg_F_v"] == res["richness"]["pseudo/seg_F_v"] == res["full"]["pseudo/seg_F_v"]
    losses = {v: r["train/loss"] for v, r in res.items()}
    assert len(set(losses.values())) == 4, losses
    assert res["full"]["pseudo/pld_train_seg_F_v"] != res["full"]["pseudo/train_seg_F_v"]


def test_default_pld_leaves_the_audio_labels_unchanged(tiny):
    """The paper's final setup refines the visual pseudo labels only; ``pld_both`` (its ablation)
    refines the audio ones too, with the audio K/alpha."""
    data = {s: load_avvp(tiny, s) for s in ("train", "val", "test")}
    cpu = torch.device("cpu")
    cfg = _cfg(variant="full", pld_alpha_v=2.0, pld_alpha_a=2.0)
    assert cfg.pld_modalities == ("visual",) and vt.Config.from_preset("paper") == vt.Config()
    scores = pl.teacher_scores(cfg, tiny, data)
    plg = pl.plg(cfg, scores["train"], data["train"].labels)
    got, q = vt.make_labels(cfg, tiny, data, cpu)
    assert torch.equal(got["audio"], plg["audio"]) and q["pseudo/pld_flipped_a"] == 0
    assert not torch.equal(got["visual"], plg["visual"]) and q["pseudo/pld_flipped_v"] > 0
    assert q["pseudo/pld_seg_F_a"] == q["pseudo/seg_F_a"] and q["pseudo/pld_train_seg_F_a"] == q["pseudo/train_seg_F_a"]
    both = vt.Config.from_preset("pld_both", **{k: getattr(cfg, k) for k in ("epochs", "stage1_epochs",
                                 "batch_size", "d_model", "seed", "pld_alpha_v", "pld_alpha_a")})
    got2, q2 = vt.make_labels(both, tiny, data, cpu)
    assert both.pld_modalities == ("visual", "audio") and (both.pld_k_a, both.pld_alpha_a) == (6, 2.0)
    assert torch.equal(got2["visual"], got["visual"])  # the same first stage, the same visual PLD
    assert not torch.equal(got2["audio"], plg["audio"]) and q2["pseudo/pld_flipped_a"] > 0
    assert vt.Config.from_preset("pld_both").pld_alpha_a == 400.0


def test_row1_is_han_with_eq2_label_smoothing(tiny, monkeypatch):
    """Table 5 row (1) is HAN trained on the weak labels smoothed as in Eq. 2 (HAN's visual 0.9,
    audio none): the same run as the HAN method with those settings, and not the hard labels."""
    from trainables.methods.han import train as han
    from trainables.tasks.avvp import backbone as bb

    cfg = _cfg(variant="han")
    assert (cfg.smooth_a, cfg.smooth_v) == (1.0, 0.9)
    seen = {}
    real = bb.train_backbone

    def spy(c, data, dev, targets, **kw):
        seen["targets"], seen["y"] = targets, data["train"].labels
        return real(c, data, dev, targets, **kw)

    monkeypatch.setattr(bb, "train_backbone", spy)
    row1 = vt.fit(cfg, tiny, device="cpu")
    y_a, y_v = seen["targets"]
    assert torch.equal(y_a, seen["y"]) and torch.allclose(y_v, 0.9 * seen["y"] + 0.05)
    same = {k: getattr(cfg, k) for k in ("epochs", "batch_size", "lr", "d_model", "seed", "smooth_a", "smooth_v")}
    assert _untimed(han.fit(han.Config(**same), tiny, device="cpu")) == _untimed(row1)
    hard = vt.fit(_cfg(variant="han", smooth_v=1.0), tiny, device="cpu")
    assert hard["train/loss"] != row1["train/loss"]


def test_first_stage_predicts_in_float32_whatever_the_autocast(tiny):
    from trainables.tasks.avvp import backbone as bb
    from trainables.tasks.avvp import eval as ae

    torch.manual_seed(0)
    cfg = _cfg()
    split = load_avvp(tiny, "val")
    model = bb.build_model(cfg, split, torch.device("cpu"))
    want = vt.frame_probs_float32(model, split, with_ca=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = vt.frame_probs_float32(model, split, with_ca=True)
        rounded = model.eval()(*ae.batch_inputs(split, slice(None), torch.device("cpu")), with_ca=True).frame_prob
    assert got.dtype == torch.float32 and torch.equal(got, want)
    assert not torch.equal(rounded.float(), want)  # a bf16 forward would have rounded P


def test_first_stage_is_shared_by_trials_that_differ_only_in_pld(tiny):
    before = set((cache_root() / "vaplan-stage1").glob("*.pt"))
    a = vt.fit(_cfg(variant="full", seed=5), tiny, device="cpu")
    mid = set((cache_root() / "vaplan-stage1").glob("*.pt"))
    assert len(mid - before) == 1
    b = vt.fit(_cfg(variant="full", seed=5, pld_alpha_v=3.0, pld_k_v=2), tiny, device="cpu")
    vt.fit(_cfg(variant="full", seed=5, pld_modalities=("visual", "audio"), pld_alpha_a=9.0), tiny, device="cpu")
    # The simulated teacher has no prompts: the same labels, so the same first stage.
    vt.fit(_cfg(variant="full", seed=5, prompt_v="VP3"), tiny, device="cpu")
    assert set((cache_root() / "vaplan-stage1").glob("*.pt")) == mid  # reused, not retrained
    assert a["pseudo/seg_F_v"] == b["pseudo/seg_F_v"]  # same PLG labels
    assert a["pseudo/pld_seg_F_v"] != b["pseudo/pld_seg_F_v"]  # a stronger PLD flips more
    vt.fit(_cfg(variant="full", seed=5, tau_v=0.0405), tiny, device="cpu")
    assert len(set((cache_root() / "vaplan-stage1").glob("*.pt")) - mid) == 1  # new labels: new stage
    again = vt.fit(_cfg(variant="full", seed=5), tiny, device="cpu")  # read from the cache
    assert _untimed(again) == _untimed(a)


def test_resume_equals_uninterrupted(tiny, tmp_path):
    cfg = _cfg(variant="full", epochs=3, seed=2)
    saved = {}
    whole = vt.fit(cfg, tiny, reporter=lambda e, m, s: saved.setdefault(e, s()), device="cpu")
    torch.save(saved[0], tmp_path / "s.pt")
    resumed = vt.fit(cfg, tiny, resume_state=torch.load(tmp_path / "s.pt", weights_only=True), device="cpu")
    assert _untimed(resumed) == _untimed(whole)


@pytest.mark.parametrize("bad, needle", [
    ({"variant": "row9"}, "variant must be one of"), ({"tau_v": 1.5}, "tau_v must be in [0, 1]"),
    ({"pld_k_v": 0}, "pld_k_v must be >= 1"), ({"prompt_v": "AP2"}, "prompt_v must be one of"),
    ({"lr": 0.0}, "lr must be > 0"), ({"pld_modalities": ()}, "pld_modalities must be a non-empty subset"),
    ({"pld_modalities": ("visual", "video")}, "pld_modalities must be a non-empty subset"),
])
def test_bad_config_is_rejected(bad, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        vt.Config(**bad).validate()


def _teacher_files(tmp_path, data):
    """Per-video teacher embeddings (the simulated ones) and a text .npz, as a user would have."""
    dirs = {m: tmp_path / m for m in ("visual", "audio")}
    texts = {}
    splits = [load_avvp(data, s) for s in ("train", "val", "test")]
    ids = [v for d in splits for v in d.video_ids]
    labels = torch.cat([d.labels for d in splits])
    for m in ("visual", "audio"):
        gt = torch.cat([d.gt_visual if m == "visual" else d.gt_audio for d in splits])
        sim = simulate_teacher(gt, labels, m, seed=0)
        dirs[m].mkdir(exist_ok=True)
        for vid, e in zip(ids, sim.seg_emb):
            np.save(dirs[m] / f"{vid}.npy", e)
        texts[f"{m}/{'VP1' if m == 'visual' else 'AP2'}"] = sim.text_emb
    np.savez(tmp_path / "text.npz", **texts)
    return dirs, tmp_path / "text.npz"


def test_teachers_from_data_columns_give_the_same_scores(tiny, tmp_path):
    dirs, text = _teacher_files(tmp_path, tiny)
    out = convert_teachers(tiny, tmp_path / "with-teachers", visual_dir=dirs["visual"],
                           audio_dir=dirs["audio"], text=text, models={"visual": "sim", "audio": "sim"})
    meta = read_meta(out)
    assert meta["shapes"]["teacher_visual"] == [10, 64] and meta["extra"]["teachers"]["visual"]["model"] == "sim"
    data = {s: load_avvp(out, s) for s in ("train", "val", "test")}
    from_cols = pl.teacher_scores(_cfg(teacher="data"), out, data)
    simulated = pl.teacher_scores(_cfg(teacher="sim"), tiny, {s: load_avvp(tiny, s) for s in data})
    for s in data:
        for m in ("visual", "audio"):
            assert torch.allclose(from_cols[s][m], simulated[s][m], atol=1e-6)
    assert pl.teacher_source(_cfg(), out) == "data"
    with pytest.raises(DataFormatError, match="no text embeddings for prompt 'VP2'"):
        pl.teacher_scores(_cfg(teacher="data", prompt_v="VP2"), out, data)


def test_convert_teachers_errors_name_the_file_and_write_nothing(tiny, tmp_path):
    dirs, text = _teacher_files(tmp_path, tiny)
    ids, _ = read_split(tiny, "val", ["labels"])
    victim = dirs["audio"] / f"{ids[3]}.npy"
    np.save(victim, np.zeros((9, 64), np.float32))
    with pytest.raises(DataFormatError, match=rf"{ids[3]}\.npy: shape \(9, 64\), expected \(10, 64\)"):
        convert_teachers(tiny, tmp_path / "out", visual_dir=dirs["visual"], audio_dir=dirs["audio"], text=text)
    victim.unlink()
    with pytest.raises(DataFormatError, match=rf"{ids[3]}\.npy: missing"):
        convert_teachers(tiny, tmp_path / "out", visual_dir=dirs["visual"], audio_dir=dirs["audio"], text=text)
    assert not (tmp_path / "out" / "avtune.parquet").exists()
    # As inputs: the CLIP embeddings replace the visual features, and HAN-sized models follow.
    out = convert_teachers(tiny, tmp_path / "inputs", visual_dir=dirs["visual"], audio_dir=None,
                           text=text, as_inputs=True)
    v = load_avvp(out, "train")
    assert v.visual.shape[-1] == 64 and torch.equal(v.visual, torch.from_numpy(
        read_split(out, "train", ["teacher_visual"])[1]["teacher_visual"]))


def test_real_data_without_teachers_is_a_clear_error(tiny, tmp_path, monkeypatch):
    cfg = _cfg()
    import trainables.data.format as fmt

    real = dict(fmt.read_meta(tiny))
    real["truth_splits"] = []
    monkeypatch.setattr(fmt, "read_meta", lambda path: real)
    with pytest.raises(ValueError, match="no teacher embeddings and no hidden truth"):
        pl.teacher_source(cfg, tiny)


def test_stage1_config_is_the_l_objective():
    cfg = _cfg(variant="full", stage1_epochs=4, pld_alpha_v=7.0)
    s1 = vt.stage1_config(cfg)
    assert s1.variant == "richness" and s1.epochs == 4 and s1.pld_alpha_v == 7.0
    assert dataclasses.replace(s1, variant="full", epochs=cfg.epochs) == cfg
    assert math.isclose(vt.Config().tau_v, 0.041) and vt.Config().lr == 3e-4 and vt.Config().batch_size == 32


def test_han_on_vaplan_labels_is_the_video_variant(tiny):
    """HAN trained on VAPLAN's labels (the paper's row (2), and Table 8's other backbones) is
    ``variant="video"``: its objective is HAN's loss against the video-level PLG labels."""
    from trainables.tasks.avvp.han import HANOutput, han_loss

    data = {s: load_avvp(tiny, s) for s in ("train", "val", "test")}
    vcfg = vt.Config()
    seg = pl.plg(vcfg, pl.teacher_scores(vcfg, tiny, data)["train"], data["train"].labels)
    ya, yv = pl.video_targets(seg)
    y = data["train"].labels.float()
    assert (yv <= y).all() and yv.sum() < y.sum()
    g = torch.Generator().manual_seed(0)
    n, t, c = seg["visual"].shape
    probs = [torch.rand((n, c), generator=g) * 0.98 + 0.01 for _ in range(3)]
    frames = torch.rand((n, t, 2, c), generator=g) * 0.98 + 0.01
    ple = vt.ple_loss(*probs, frames[:, :, 0], frames[:, :, 1], seg["audio"], seg["visual"], y,
                      **vt._loss_flags(vt.Config(variant="video")))
    out = HANOutput(*probs, frames, None, None)
    assert float(ple.total) == pytest.approx(float(han_loss(out, y, ya, yv)), rel=1e-6)


def test_convert_teachers_cli_exit_codes(tiny, tmp_path):
    import subprocess
    import sys

    dirs, text = _teacher_files(tmp_path, tiny)
    base = [sys.executable, "-m", "orchestrator.data", "convert-teachers", f"llp={tiny}", "--text", str(text)]
    ok = subprocess.run([*base, "--visual", str(dirs["visual"]), "--audio", str(dirs["audio"]),
                         "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr and "wrote" in ok.stdout
    assert "teacher_visual" in read_meta(tmp_path / "o")["shapes"]
    bad = subprocess.run([*base, "--visual", str(tmp_path / "nope"), "--out", str(tmp_path / "b")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nope: not a directory" in bad.stderr
    assert not (tmp_path / "b").exists()


def test_truth_teacher_is_the_hidden_truth_and_needs_it(tiny, tmp_path):
    data = {s: load_avvp(tiny, s) for s in ("train", "val", "test")}
    labels, quality = vt.make_labels(_cfg(variant="segment_bce", teacher="truth"), tiny, data, torch.device("cpu"))
    assert torch.equal(labels["visual"], data["train"].gt_visual.bool())
    assert torch.equal(labels["audio"], data["train"].gt_audio.bool())
    # The oracle's own quality against the truth is perfect, which checks the quality figures too.
    assert quality["pseudo/seg_F_v"] == pytest.approx(100.0) and quality["pseudo/event_F_a"] == pytest.approx(100.0)
    assert quality["pseudo/video_precision_v"] == pytest.approx(100.0)
    no_truth = dataclasses.replace(data["train"], gt_audio=None, gt_visual=None)
    with pytest.raises(ValueError, match="needs hidden truth on the train split"):
        pl.truth_labels(no_truth, "train")
