"""The scorer CLI on the real LLP annotations (the copy packaged with avtune, so these run everywhere)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.score import main
from trainables.tasks.avvp.metrics import SCORE_KEYS, decode
from trainables.tasks.avvp.metrics_reference import avvp_scores_reference

from trainables.tasks.avvp.annotations import DIR as LLP

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "llp"


@pytest.fixture(scope="module")
def val():
    from trainables.tasks.avvp.llp import read_annotations

    return read_annotations(LLP, "val")


def _run(capsys, *args):
    rc = main(["--annotations", str(LLP), *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _json(capsys, *args):
    rc, out, err = _run(capsys, *args, "--json")
    assert rc == 0, err
    return json.loads(out)


def _perturbed(val):
    """Ground truth with a few hand edits (different scores at both levels)."""
    a, v = val.gt_audio.copy(), val.gt_visual.copy()
    a[0] = 0                       # video 0: drop all audio
    v[1, :, 5] = 1                 # video 1: class 5 visible everywhere
    a[2, 3:5, :] ^= 1              # video 2: flip two segments of every class
    a[3:40, 9, 0] = 1              # videos 3-39: Speech in the last segment
    v[100:200] = np.roll(v[100:200], 1, axis=1)  # videos 100-199: visual one segment late
    return a, v


def test_ground_truth_scores_100(tmp_path, capsys, val):
    f = tmp_path / "gt.npz"
    np.savez(f, video_ids=np.array(val.video_ids), audio=val.gt_audio, visual=val.gt_visual)
    s = _json(capsys, "--pred", str(f), "--split", "val")
    assert list(s) == list(SCORE_KEYS) and all(x == 100.0 for x in s.values())


def test_perturbed_binary_matches_reference_in_any_row_order(tmp_path, capsys, val):
    a, v = _perturbed(val)
    ref = avvp_scores_reference(a, v, val.gt_audio, val.gt_visual)
    assert ref["seg_A"] < 100 and ref["event_V"] < 100
    perm = np.random.default_rng(0).permutation(len(val.video_ids))
    f = tmp_path / "pred.npz"
    np.savez(f, video_ids=np.array(val.video_ids)[perm], audio=a[perm].astype(np.float32),
             visual=v[perm].astype(bool))
    s = _json(capsys, "--pred", str(f), "--split", "val")
    for k in SCORE_KEYS:
        assert s[k] == pytest.approx(ref[k], abs=1e-9), k
    rc, out, _ = _run(capsys, "--pred", str(f), "--split", "val")
    assert rc == 0 and "649 videos" in out and f"{ref['seg_Event']:.2f}" in out


def _probabilities(val, seed=0):
    rng = np.random.default_rng(seed)
    n = len(val.video_ids)
    truth = np.stack([val.gt_audio, val.gt_visual], axis=2).astype(np.float64)
    frame = np.clip(truth * 0.7 + rng.random(truth.shape) * 0.45, 0, 1)
    return {
        "video_ids": np.array(val.video_ids),
        "frame_prob": frame.astype(np.float32),
        "a_prob": rng.random((n, 25)).astype(np.float32),
        "v_prob": rng.random((n, 25)).astype(np.float32),
        "global_prob": rng.random((n, 25)).astype(np.float32),
    }


@pytest.mark.parametrize("protocol,threshold", [("han", 0.5), ("jomold", 0.5), ("jomold", 0.3)])
def test_probabilities_decoded_by_protocol(tmp_path, capsys, val, protocol, threshold):
    d = _probabilities(val)
    f = tmp_path / "prob.npz"
    np.savez(f, **d)
    pa_, pv_ = decode(d["frame_prob"], d["a_prob"], d["v_prob"], d["global_prob"], protocol, threshold)
    ref = avvp_scores_reference(pa_, pv_, val.gt_audio, val.gt_visual)
    s = _json(capsys, "--pred", str(f), "--split", "val", "--protocol", protocol,
              "--threshold", str(threshold))
    for k in SCORE_KEYS:
        assert s[k] == pytest.approx(ref[k], abs=1e-9), k


def test_han_and_jomold_differ(tmp_path, capsys, val):
    f = tmp_path / "prob.npz"
    np.savez(f, **_probabilities(val))
    han = _json(capsys, "--pred", str(f), "--split", "val")
    jomold = _json(capsys, "--pred", str(f), "--split", "val", "--protocol", "jomold")
    assert han["seg_A"] != jomold["seg_A"]


def test_parquet_flat_and_nested(tmp_path, capsys, val):
    a, v = _perturbed(val)
    ref = avvp_scores_reference(a, v, val.gt_audio, val.gt_visual)
    flat = pa.table({
        "video_id": val.video_ids,
        "audio": pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), 250),
        "visual": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), 250),
    })
    pq.write_table(flat, tmp_path / "flat.parquet")
    nested = pa.table({"video_ids": val.video_ids, "audio": a.tolist(), "visual": v.tolist()})
    pq.write_table(nested, tmp_path / "nested.parquet")
    for name in ("flat", "nested"):
        s = _json(capsys, "--pred", str(tmp_path / f"{name}.parquet"), "--split", "val")
        assert s["event_Event"] == pytest.approx(ref["event_Event"], abs=1e-9)
        assert s["seg_AV"] == pytest.approx(ref["seg_AV"], abs=1e-9)
    bad = pa.table({"video_ids": val.video_ids, "audio": a[:, :, :24].tolist(), "visual": v.tolist()})
    pq.write_table(bad, tmp_path / "bad.parquet")
    rc, _, err = _run(capsys, "--pred", str(tmp_path / "bad.parquet"), "--split", "val")
    assert rc == 2 and "column 'audio' holds 10x24 values per row" in err


def _bad(tmp_path, val, **changes):
    d = {"video_ids": np.array(val.video_ids), "audio": val.gt_audio, "visual": val.gt_visual}
    d.update(changes)
    d = {k: x for k, x in d.items() if x is not None}
    f = tmp_path / "bad.npz"
    np.savez(f, **d)
    return f


def test_errors_exit_2_with_clear_messages(tmp_path, capsys, val):
    ids = np.array(val.video_ids)
    cases = [
        (dict(video_ids=np.concatenate([ids[:-2], ["zzzzzzzzzzz_0_10", "yyyyyyyyyyy_0_10"]])),
         "2 video id(s) not in the split: zzzzzzzzzzz_0_10, yyyyyyyyyyy_0_10"),
        (dict(video_ids=ids[:-3], audio=val.gt_audio[:-3], visual=val.gt_visual[:-3]),
         f"no predictions for 3 video(s) of the split: {ids[-3]}"),
        (dict(visual=val.gt_visual[:, :, :20]), "key 'visual' has shape (649, 10, 20), expected (649, 10, 25)"),
        (dict(audio=val.gt_audio * 2), "key 'audio' has 8089 value(s) outside [0, 1]"),
        (dict(audio=val.gt_audio * 0.5), "key 'audio' must be binary 0/1"),
        (dict(visual=None), "missing key(s) 'visual'"),
        (dict(video_ids=None), "missing key 'video_ids'"),
        (dict(video_ids=np.concatenate([ids[:-1], ids[:1]])), "duplicate video ids: " + ids[0]),
        (dict(audio=None, visual=None, frame_prob=np.zeros((649, 10, 2, 25))), "missing key(s) 'global_prob'"),
    ]
    for change, msg in cases:
        rc, out, err = _run(capsys, "--pred", str(_bad(tmp_path, val, **change)), "--split", "val")
        assert rc == 2 and msg in err and out == "", (msg, err)

    d = _probabilities(val)
    d["global_prob"][7, 3] = np.nan
    np.savez(tmp_path / "nan.npz", **d)
    rc, _, err = _run(capsys, "--pred", str(tmp_path / "nan.npz"), "--split", "val")
    assert rc == 2 and "key 'global_prob' has 1 value(s) outside [0, 1] (first at index (7, 3)" in err

    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    rc, _, err = _run(capsys, "--pred", str(tmp_path / "junk.npz"), "--split", "val")
    assert rc == 2 and "junk.npz: cannot read as .npz" in err
    rc, _, err = _run(capsys, "--pred", str(tmp_path / "x.csv"), "--split", "val")
    assert rc == 2 and "x.csv: predictions file not found" in err
    (tmp_path / "x.csv").write_text("a,b\n")
    rc, _, err = _run(capsys, "--pred", str(tmp_path / "x.csv"), "--split", "val")
    assert rc == 2 and "unsupported file type '.csv'" in err
    rc, _, err = _run(capsys, "--pred", str(_bad(tmp_path, val)), "--split", "test")
    assert rc == 2 and "649 video id(s) not in the split (none is; is --split right?)" in err
    np.savez(tmp_path / "obj.npz", video_ids=np.array(val.video_ids, dtype=object),
             audio=val.gt_audio, visual=val.gt_visual)
    rc, _, err = _run(capsys, "--pred", str(tmp_path / "obj.npz"), "--split", "val")
    assert rc == 2 and "'video_ids' is an object array" in err


def test_bad_annotations_dir_exits_2(tmp_path, capsys, val):
    rc = main(["--annotations", str(tmp_path), "--pred", str(_bad(tmp_path, val)), "--split", "val"])
    assert rc == 2 and "annotation file not found" in capsys.readouterr().err


def test_cli_subprocess_json_and_no_ray(tmp_path, val):
    f = tmp_path / "gt.npz"
    np.savez(f, video_ids=np.array(val.video_ids), audio=val.gt_audio, visual=val.gt_visual)
    r = subprocess.run(
        [sys.executable, "-m", "orchestrator.score", "--pred", str(f), "--annotations", str(LLP),
         "--split", "val", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["event_Type"] == 100.0
    code = ("import sys; from orchestrator.score import main; rc = main(sys.argv[1:]); "
            "print('RAY-IMPORTED' if 'ray' in sys.modules else 'NO-RAY'); sys.exit(rc)")
    r = subprocess.run(
        [sys.executable, "-c", code, "--pred", str(f), "--annotations", str(LLP), "--split", "val"],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("NO-RAY")
    r = subprocess.run(
        [sys.executable, "-m", "orchestrator.score", "--pred", str(f), "--annotations", str(LLP),
         "--split", "test"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "error:" in r.stderr and r.stdout == ""


def test_packaged_annotations_are_the_published_files():
    names = sorted(p.name for p in LLP.glob("*.csv"))
    assert names == ["AVVP_eval_audio.csv", "AVVP_eval_visual.csv", "AVVP_test_pd.csv",
                     "AVVP_train.csv", "AVVP_val_pd.csv"]
    assert 550_000 < sum((LLP / n).stat().st_size for n in names) < 700_000
    if SHARED.is_dir():  # the project's shared copy, where there is one: byte for byte the same
        for n in names:
            assert (LLP / n).read_bytes() == (SHARED / n).read_bytes(), n


def test_scores_without_annotations_flag(tmp_path, val):
    """``--annotations`` defaults to the packaged copy: a user needs only their predictions."""
    from trainables.tasks.avvp.llp import read_annotations

    test = read_annotations(LLP, "test")
    a, v = test.gt_audio.copy(), test.gt_visual.copy()
    a[:600] = 0  # no audio for half the videos: audio F 50 at both levels
    f = tmp_path / "half.npz"
    np.savez(f, video_ids=np.array(test.video_ids), audio=a, visual=v)
    ref = avvp_scores_reference(a, v, test.gt_audio, test.gt_visual)
    r = subprocess.run([sys.executable, "-m", "orchestrator.score", "--pred", str(f), "--split", "test",
                        "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["seg_V"] == 100.0 and s["seg_A"] == pytest.approx(ref["seg_A"], abs=1e-9)
    assert 40.0 < s["seg_A"] < 60.0
    r = subprocess.run([sys.executable, "-m", "orchestrator.score", "--pred", str(f), "--split", "test"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "LLP test: 1200 videos, binary predictions" in r.stdout
