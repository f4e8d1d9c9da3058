"""LLP-sim v2: determinism (seed, thread count), v1's calibration kept, the salience -> noise link,
teachers whose errors follow the features' weak evidence, and the knobs in the metadata."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from tiny_data import generate_in_subprocess
from trainables.data.format import read_meta, read_split
from trainables.tasks.avvp import llp_sim_v2 as v2
from trainables.tasks.avvp import teachers_v2 as tv2
from trainables.tasks.avvp.llp_sim import _state_table, load_stats
from trainables.tasks.avvp.teacher_data import load_teacher, teachers_of

ROOT = Path(__file__).resolve().parents[4]
# Three chunks of videos, so the thread pool really runs chunks side by side.
MULTI_CHUNK = dict(n_train=1000, n_val=60, n_test=60)


def _generate_in_subprocess(out: Path, threads: int, workers: int, seed: int = 3) -> str:
    return generate_in_subprocess("trainables.tasks.avvp.llp_sim_v2:make_llp_sim_v2", out, threads, workers,
                                  seed=seed, **MULTI_CHUNK)


def test_bytes_depend_on_the_seed_only(tmp_path):
    one = _generate_in_subprocess(tmp_path / "a", threads=1, workers=1)
    two = _generate_in_subprocess(tmp_path / "b", threads=2, workers=4)
    assert one == two  # thread count (BLAS and chunk threads) does not change the bytes
    other = v2.make_llp_sim_v2(tmp_path / "c", seed=4, **MULTI_CHUNK)
    _, xa = read_split(tmp_path / "a", "train", ["audio", "labels", "teacher_visual"])
    _, xc = read_split(other, "train", ["audio", "labels", "teacher_visual"])
    for k in xa:
        assert not np.array_equal(xa[k], xc[k]), k


def test_tiny_preset_schema_knobs_and_teacher_layout(tmp_path):
    path = v2.make_preset("llp-sim-v2-tiny", tmp_path / "t")
    meta = read_meta(path)
    pre = v2.PRESETS["llp-sim-v2-tiny"]
    assert meta["kind"] == "llp-sim" and meta["truth_splits"] == ["test", "train", "val"]
    assert meta["splits"] == {"train": pre.n_train, "val": pre.n_val, "test": pre.n_test}
    params = meta["params"]
    assert params["generator"] == "llp-sim-v2" and params["version"] == v2.SIM_VERSION == 2
    # The presets carry the calibrated difficulty knobs; the rest are SimParamsV2's defaults.
    assert params["sim"] == asdict(v2.CALIBRATED) == asdict(pre.params)
    changed = {k for k, v in asdict(v2.CALIBRATED).items() if v != asdict(v2.SimParamsV2())[k]}
    assert changed == {"audio_strength", "visual_strength", "segment_var_audio", "segment_var_visual"}
    assert params["teacher_sim"] == {m: asdict(t) for m, t in tv2.DEFAULT_TEACHERS.items()}
    assert meta["shapes"]["visual"] == [10, 2048] and meta["shapes"]["teacher_audio"] == [10, 64]
    assert meta["dtypes"]["teacher_visual"] == "float32"
    # The teacher columns read exactly as real CLIP/CLAP embeddings do (teacher_data's layout).
    assert set(teachers_of(path)) == {"visual", "audio"}
    ids, emb, text = load_teacher(path, "val", "visual", "VP1")
    assert emb.shape == (pre.n_val, 10, 64) and text.shape == (25, 64) and len(ids) == pre.n_val
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="VP2"):
        load_teacher(path, "val", "visual", "VP2")
    # VAPLAN picks them up as data-set teachers.
    from trainables.methods.vaplan.labels import teacher_source
    from trainables.methods.vaplan.train import Config

    assert teacher_source(Config(), path) == "data"
    # The data registry builds and describes the presets.
    from trainables.data.registry import describe_data, preset_params

    assert "llp-sim-v2-tiny" in describe_data("llp-sim-v2-tiny") and "v2" in describe_data("llp-sim-v2")
    kind, key = preset_params("llp-sim-v2-small")
    assert kind == "llp-sim" and key["version"] == 2 and key["sim"] == asdict(v2.PRESETS["llp-sim-v2-small"].params)
    json.dumps(meta)  # everything recorded is plain JSON


def test_data_info_shows_version_and_knobs(tmp_path, capsys):
    from orchestrator.data import main

    path = v2.make_preset("llp-sim-v2-tiny", tmp_path / "t")
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    text = "\n".join(lines)
    assert "generator=llp-sim-v2" in text and "version=2" in text
    assert f"audio_strength={v2.CALIBRATED.audio_strength:g}" in text and "salience_width=" in text
    # The teachers' (25, 64) prompt embeddings are summarised, not printed: a screenful at most.
    assert len(lines) < 30 and max(map(len, lines)) < 400
    assert "25 x 64 values" in text


def test_knob_errors_name_the_knob():
    with pytest.raises(ValueError, match="mode_spread"):
        v2.SimParamsV2(class_similarity=0.8, mode_spread=0.3)
    with pytest.raises(ValueError, match="salience_width"):
        v2.SimParamsV2(salience_width=0)
    with pytest.raises(ValueError, match="no_such_knob"):
        v2.preset_knobs("llp-sim-v2-tiny", no_such_knob=1)
    with pytest.raises(ValueError, match="unknown LLP-sim v2 preset"):
        v2.preset_knobs("llp-sim-tiny")
    _, p, t, storage = v2.preset_knobs("llp-sim-v2-tiny", noise=0.5, float16=True, **{"teacher_visual.gain": 0.1})
    assert p.noise == 0.5 and storage["float16"] and t["visual"].gain == 0.1 and t["audio"] == tv2.DEFAULT_TEACHERS["audio"]


def test_truth_keeps_v1_modality_shares_and_margins_follow_presence():
    p = v2.SimParamsV2()
    t = v2.simulate_truth(30000, np.random.default_rng(0), p)
    table = _state_table(load_stats(), p)
    used = t.classes >= 0
    for c in (0, 2, 13):  # Speech (76% audio-only), Cheering, Violin
        sel = used & (t.classes == c)
        both = ((t.states == 0) & sel).sum() / sel.sum()
        audio_only = ((t.states == 1) & sel).sum() / sel.sum()
        assert both == pytest.approx(table[c, 0], abs=0.02) and audio_only == pytest.approx(table[c, 1], abs=0.02)
    # A positive salience margin is exactly "present in that modality" (for labelled slots).
    assert ((t.margin_visual > 0) == (((t.states == 0) | (t.states == 2)) & used))[used].all()
    assert ((t.margin_audio > 0) == (((t.states == 0) | (t.states == 1)) & used))[used].all()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """A 1,600-video v2 data set and its hidden salience margins (the same draws)."""
    d = tmp_path_factory.mktemp("v2")
    n_train, n_val, n_test = 1200, 200, 200
    path = v2.make_llp_sim_v2(d, n_train=n_train, n_val=n_val, n_test=n_test, seed=5)
    truth = v2.simulation(n_train + n_val + n_test, 5, v2.SimParamsV2()).truth
    _, stored = read_split(path, "train", ["labels", "gt_visual"])
    assert np.array_equal(stored["labels"], truth.labels[:n_train])
    assert np.array_equal(stored["gt_visual"], truth.gt_visual[:n_train])
    return path, truth


def _video_features(path) -> np.ndarray:
    """Time-averaged visual features of every video (train, val, test order), centred."""
    x = np.concatenate([read_split(path, s, ["visual"])[1]["visual"] for s in ("train", "val", "test")]).mean(1)
    return x - x.mean(0)


def _evidence(x: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(videos, 25) projections of ``x`` on each class's direction, in units of its norm."""
    return (x @ directions.T) / (directions * directions).sum(1)


def _per_slot(ev: np.ndarray, truth) -> np.ndarray:
    return ev[np.arange(len(ev))[:, None], np.maximum(truth.classes, 0)]


def test_noisy_labels_are_the_weak_evidence_cases(small_set):
    path, truth = small_set
    x = _video_features(path)
    vis, lab = truth.gt_visual.any(1), truth.labels.astype(bool)
    # Along what a weakly supervised model learns of class c (videos labelled c against all), a
    # noisy visual label (labelled, not visible) sits between an unlabelled class and a clean one:
    # a hard case, not a random draw.
    ev = _evidence(x, np.stack([x[lab[:, c]].mean(0) for c in range(25)]))
    clean, noisy, unlabelled = ev[lab & vis].mean(), ev[lab & ~vis].mean(), ev[~lab & ~vis].mean()
    assert clean > noisy + 0.3 and noisy > unlabelled + 0.3, (clean, noisy, unlabelled)
    # Salience: on the generator's own directions (the class direction through the output map for
    # visible classes, the context direction for absent ones), the evidence grows with the margin.
    world = v2.simulation(len(x), 5, v2.SimParamsV2()).world
    used, m = truth.classes >= 0, truth.margin_visual
    for dirs, sel in ((world.concept["visual"], used & (m > 0)), (world.context["visual"], used & (m <= 0))):
        slot_ev = _per_slot(_evidence(x, dirs @ world.proj["visual"]), truth)
        r = np.corrcoef(m[sel], slot_ev[sel])[0, 1]
        assert r > 0.1, r


def test_teacher_errors_follow_the_weak_evidence(small_set):
    path, truth = small_set
    _, arr = read_split(path, "train", ["visual"])
    ids, emb, text = load_teacher(path, "train", "visual", "VP1")
    n = len(ids)
    x = arr["visual"] - arr["visual"].reshape(-1, 2048).mean(0)
    gt = truth.gt_visual[:n].astype(bool)
    lab = truth.labels[:n].astype(bool)
    tmpl = np.stack([x[gt[..., c]].mean(0) for c in range(25)])
    seg_ev = np.einsum("ntd,cd->ntc", x, tmpl) / (tmpl * tmpl).sum(1)  # (n, 10, 25)
    scores = tv2.plg_scores(emb, text)
    passed = scores >= 0.041
    on = gt & lab[:, None, :]
    off = ~gt & lab[:, None, :]
    # The teacher misses the faint segments and fires where an absent class leaks most.
    assert seg_ev[on & ~passed].mean() < seg_ev[on & passed].mean() - 0.1
    assert seg_ev[off & passed].mean() > seg_ev[off & ~passed].mean() + 0.05
    # And the quality figures come out of the stored embeddings through PLG unchanged.
    q = tv2.quality_at(scores, truth.labels[:n], truth.gt_visual[:n], 0.041)
    assert 40 < q["seg"] < 95 and 40 < q["video_precision"] <= 100


def test_curve_loss_is_zero_on_the_published_curve_and_grows_off_it():
    visual = {0.040: {"seg": 70.3, "event": 60.0, "video_precision": 80.0},
              0.041: {"seg": 71.1, "event": 64.8, "video_precision": 76.0},
              0.042: {"seg": 51.5, "event": 40.0, "video_precision": 72.2}}
    audio = {t: {"seg": 80.2, "event": 70.0, "video_precision": 95.0}
             for t in (0.036, 0.037, 0.038, 0.039, 0.040, 0.041, 0.042)}
    audio[0.038].update(seg=80.3, event=71.5)
    assert tv2.curve_loss(visual, "visual") == 0.0 and tv2.curve_loss(audio, "audio") == 0.0
    visual[0.041]["video_precision"] = 82.0  # rises from 0.040 to 0.041 by 2: loss 4
    assert tv2.curve_loss(visual, "visual") == pytest.approx(4.0)
    audio[0.036]["seg"] = 79.1  # 1.0 below the flat range
    assert tv2.curve_loss(audio, "audio") == pytest.approx(1.0)
