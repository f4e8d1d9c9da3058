"""LLP-sim: determinism, statistics against the embedded LLP figures, and feature semantics."""

import hashlib

import numpy as np
import pytest
import torch

from tiny_data import generate_in_subprocess
from trainables.tasks.avvp.classes import LLP_CLASSES
from trainables.tasks.avvp.data import load_avvp
from trainables.data.format import read_meta, read_split
from trainables.tasks.avvp.llp_sim import (
    DIMS, PRESETS, STATES, SimParams, load_stats, make_llp_sim, make_preset, simulate_truth,
)

STATS = load_stats()
SMALL = dict(n_train=40, n_val=12, n_test=12)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_embedded_stats_match_the_annotations():
    """The embedded figures are those of the packaged LLP annotations (and of the shared copy of
    the figures, where there is one)."""
    import json
    from collections import Counter
    from pathlib import Path

    from trainables.tasks.avvp.annotations import DIR
    from trainables.tasks.avvp.llp import read_annotations

    shared = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "llp" / "llp_stats.json"
    if shared.is_file():
        assert json.loads(shared.read_text()) == STATS
    tr = read_annotations(DIR, "train")
    assert (STATS["n_train"], STATS["n_val"], STATS["n_test"]) == (
        len(tr.video_ids), len(read_annotations(DIR, "val").video_ids),
        len(read_annotations(DIR, "test").video_ids))
    freq = tr.labels.mean(0)
    for c, name in enumerate(LLP_CLASSES):
        assert freq[c] == pytest.approx(STATS["train_class_freq"][name], abs=5e-5), name
    sets = Counter(",".join(sorted(LLP_CLASSES[c] for c in np.flatnonzero(row))) for row in tr.labels)
    for key, share in list(STATS["train_label_sets"].items())[:20]:
        assert sets[key] / len(tr.video_ids) == pytest.approx(share, abs=5e-5), key


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = make_llp_sim(tmp_path / "a", seed=7, **SMALL)
    b = make_llp_sim(tmp_path / "b", seed=7, workers=1, **SMALL)
    c = make_llp_sim(tmp_path / "c", seed=8, **SMALL)
    assert _sha(a) == _sha(b)  # thread count does not change the bytes
    _, xa = read_split(a, "train")
    _, xc = read_split(c, "train")
    assert not np.array_equal(xa["audio"], xc["audio"])
    assert not np.array_equal(xa["labels"], xc["labels"])


def test_bytes_do_not_depend_on_the_blas_thread_count(tmp_path):
    # Enough videos for several chunks and for a BLAS product big enough to be split over threads.
    kw = dict(seed=5, n_train=1000, n_val=40, n_test=40)
    one = generate_in_subprocess("trainables.tasks.avvp.llp_sim:make_llp_sim", tmp_path / "a", 1, 1, **kw)
    two = generate_in_subprocess("trainables.tasks.avvp.llp_sim:make_llp_sim", tmp_path / "b", 2, 4, **kw)
    assert one == two


def test_tiny_preset_schema_and_loading(tmp_path):
    path = make_preset("llp-sim-tiny", tmp_path / "t")
    meta = read_meta(path)
    pre = PRESETS["llp-sim-tiny"]
    assert meta["kind"] == "llp-sim" and meta["truth_splits"] == ["test", "train", "val"]
    assert meta["splits"] == {"train": pre.n_train, "val": pre.n_val, "test": pre.n_test}
    assert meta["params"]["sim"] == {**vars(SimParams())}  # the knobs are recorded
    assert meta["extra"]["preset"] == "llp-sim-tiny"
    for split, n in (("train", pre.n_train), ("val", pre.n_val), ("test", pre.n_test)):
        s = load_avvp(path, split)
        assert s.has_truth and len(s) == n
        assert s.audio.shape == (n, 10, 128) and s.visual.shape == (n, 10, 2048)
        assert s.motion.shape == (n, 10, 512) and s.labels.shape == (n, 25)
        assert s.gt_audio.shape == (n, 10, 25) and s.gt_audio.dtype == torch.uint8
        assert s.audio.dtype == torch.float32 and torch.isfinite(s.visual).all()
        # Truth only for labelled classes; every video has at least one event.
        present = (s.gt_audio.amax(1) | s.gt_visual.amax(1)).float()
        assert (present <= s.labels).all()
        assert (present.sum(1) >= 1).all()
        assert all(len(v) == len("sim00000000_0_10") for v in s.video_ids)
    moved = s.to("cpu", torch.float16)
    assert moved.visual.dtype == torch.float16 and moved.gt_audio.dtype == torch.uint8


def test_frames_average_back_and_float16(tmp_path):
    avg = read_split(make_llp_sim(tmp_path / "avg", seed=3, **SMALL), "val")[1]
    frm = read_split(make_llp_sim(tmp_path / "frm", seed=3, average_frames=False, **SMALL), "val")[1]
    half = read_split(make_llp_sim(tmp_path / "half", seed=3, float16=True, **SMALL), "val")[1]
    assert frm["visual"].shape == (12, 10, 8, 2048)
    np.testing.assert_allclose(frm["visual"].mean(2), avg["visual"], atol=1e-5)
    assert frm["visual"].std(2).mean() > 0.1  # the frames do differ from each other
    assert half["visual"].dtype == np.float16
    np.testing.assert_array_equal(half["audio"], avg["audio"].astype(np.float16))
    np.testing.assert_array_equal(half["gt_visual"], avg["gt_visual"])


@pytest.fixture(scope="module")
def truth():
    # Labels and truth only (no features): 20k videos in well under a second.
    return simulate_truth(20000, np.random.default_rng(0), SimParams())


def test_class_frequencies_and_labels_per_video(truth):
    freq = truth.labels.mean(0)
    want = np.array([STATS["train_class_freq"][c] for c in LLP_CLASSES])
    # Binomial std at n=20000 is <= 0.0036; 0.012 is > 3 std for every class.
    np.testing.assert_allclose(freq, want, atol=0.012)
    assert abs(freq[LLP_CLASSES.index("Speech")] - 0.4988) < 0.012
    per = np.bincount(truth.labels.sum(1), minlength=4)[1:] / len(truth.labels)
    np.testing.assert_allclose(per, [STATS["train_labels_per_video"][k] for k in "123"], atol=0.012)


def test_modality_split_per_class(truth):
    used = truth.classes >= 0
    for c, name in enumerate(LLP_CLASSES):
        st = truth.states[used & (truth.classes == c)]
        if len(st) < 1500:
            continue  # rare classes: too few draws for a tight bound
        got = np.bincount(st, minlength=4) / len(st)
        want = np.array([STATS["modality_split_eval"][name][s] for s in STATES])
        np.testing.assert_allclose(got, want, atol=0.04, err_msg=name)
    st = truth.states[used]
    share = np.bincount(st, minlength=4) / len(st)
    # Speech dominates the draws (audio-only 76%), so check it directly.
    sp = truth.states[used & (truth.classes == LLP_CLASSES.index("Speech"))]
    assert abs((sp == 1).mean() - 0.7596) < 0.02 and abs((sp == 0).mean() - 0.2192) < 0.02
    assert share[3] < 0.02  # 'neither' stays rare


def test_truth_matches_states_and_event_lengths(truth):
    used = truth.classes >= 0
    st = truth.states
    a_on = truth.slot_audio.any(-1)
    v_on = truth.slot_visual.any(-1)
    np.testing.assert_array_equal(a_on, used & ((st == 0) | (st == 1)))
    np.testing.assert_array_equal(v_on, used & ((st == 0) | (st == 2)))
    # One contiguous interval per active (video, class, modality).
    edges = np.abs(np.diff(truth.slot_audio.astype(int), axis=-1, prepend=0, append=0)).sum(-1)
    assert set(np.unique(edges[a_on])) == {2}
    for name in ("Speech", "Dog", "Violin_fiddle", "Singing"):
        c = LLP_CLASSES.index(name)
        for mod, mask in (("audio", truth.slot_audio), ("visual", truth.slot_visual)):
            sel = mask[(truth.classes == c) & mask.any(-1)]
            if len(sel) < 400:
                continue
            want = STATS["mean_event_segments"][name][mod]
            assert abs(sel.sum(-1).mean() - want) < 0.35, (name, mod)
    # Dense truth is the OR of the slots, placed at each slot's class.
    n = len(truth.classes)
    rebuilt = np.zeros_like(truth.gt_audio)
    for s in range(3):
        for i in np.flatnonzero(used[:200, s]):
            rebuilt[i, :, truth.classes[i, s]] |= truth.slot_audio[i, s]
    np.testing.assert_array_equal(rebuilt[:200], truth.gt_audio[:200])
    assert n == 20000


def test_neither_scale_and_no_empty_videos():
    t0 = simulate_truth(5000, np.random.default_rng(1), SimParams(neither_scale=0.0))
    t5 = simulate_truth(5000, np.random.default_rng(1), SimParams(neither_scale=5.0))
    assert (t0.states == 3).sum() == 0
    assert (t5.states == 3).sum() > 100
    for t in (t0, t5):
        assert ((t.gt_audio | t.gt_visual).reshape(5000, -1).sum(1) > 0).all()


def test_modality_noise_scale():
    clean = simulate_truth(4000, np.random.default_rng(3), SimParams(modality_noise_scale=0, neither_scale=0))
    np.testing.assert_array_equal(clean.gt_audio.any(1), clean.labels.astype(bool))
    np.testing.assert_array_equal(clean.gt_visual.any(1), clean.labels.astype(bool))
    half = simulate_truth(20000, np.random.default_rng(3), SimParams(modality_noise_scale=0.5))
    sp = half.states[half.classes == LLP_CLASSES.index("Speech")]
    want = 0.5 * STATS["modality_split_eval"]["Speech"]["audio_only"]
    assert abs((sp == 1).mean() - want) < 0.02
    # Scaled shares above 1 are renormalised: no negative 'both' probability.
    loud = simulate_truth(4000, np.random.default_rng(3), SimParams(modality_noise_scale=3))
    sp = loud.states[loud.classes == LLP_CLASSES.index("Speech")]
    assert (sp == 0).mean() < 0.05 and (sp == 1).mean() > 0.9


def test_features_carry_class_only_where_event_is_on(tmp_path):
    """With every nuisance knob at 0, a stream is exactly zero where its modality has no event."""
    quiet = SimParams(noise=0, nuisance=0, distractor_prob=0, leakage=0, context=0, obs_noise=0,
                      instance_var=0)
    x = read_split(make_llp_sim(tmp_path / "q", seed=1, params=quiet, **SMALL), "train")[1]
    a_on = x["gt_audio"].any(-1)
    v_on = x["gt_visual"].any(-1)
    assert (a_on != v_on).any()  # modality-specific segments exist
    assert np.abs(x["audio"][~a_on]).max() == 0 and np.abs(x["audio"][a_on]).min(-1).max() > 0
    assert np.abs(x["visual"][~v_on]).max() == 0 and np.abs(x["motion"][~v_on]).max() == 0
    assert (np.abs(x["visual"][v_on]).sum(-1) > 0).all()
    # Same class, same instance: identical visual features on the event's segments.
    leaky = SimParams(noise=0, nuisance=0, distractor_prob=0, leakage=0.5, context=0, obs_noise=0,
                      instance_var=0)
    y = read_split(make_llp_sim(tmp_path / "l", seed=1, params=leaky, **SMALL), "train")[1]
    audio_only = a_on & ~v_on
    assert audio_only.any() and (np.abs(y["visual"][audio_only]).sum(-1) > 0).all()


def test_weak_visual_labels_are_noisy_against_truth(tmp_path):
    """The point of LLP-sim: weak labels overstate the visual truth (Speech most of all)."""
    t = simulate_truth(20000, np.random.default_rng(2), SimParams())
    weak = t.labels.astype(bool)
    true_v = t.gt_visual.any(1)
    true_a = t.gt_audio.any(1)
    false_v = (weak & ~true_v).sum() / weak.sum()
    false_a = (weak & ~true_a).sum() / weak.sum()
    s = LLP_CLASSES.index("Speech")
    assert 0.31 < false_v < 0.39 and 0.03 < false_a < 0.07
    assert (weak[:, s] & ~true_v[:, s]).sum() / weak[:, s].sum() > 0.7


def test_bad_knobs_and_presets(tmp_path):
    with pytest.raises(ValueError, match="SimParams.noise must be >= 0"):
        SimParams(noise=-1)
    with pytest.raises(ValueError, match="av_sync must be in"):
        SimParams(av_sync=2)
    with pytest.raises(ValueError, match="unknown LLP-sim preset 'llp-sim-huge'"):
        make_preset("llp-sim-huge", tmp_path)
    with pytest.raises(ValueError, match="unknown LLP-sim knob"):
        make_preset("llp-sim-tiny", tmp_path, nosie=0.1)


def test_preset_sizes():
    assert (PRESETS["llp-sim"].n_train, PRESETS["llp-sim"].n_val, PRESETS["llp-sim"].n_test) == (10000, 649, 1200)
    assert PRESETS["llp-sim"].float16 and PRESETS["llp-sim"].average_frames
    assert sum(DIMS.values()) == 128 + 2048 + 512
