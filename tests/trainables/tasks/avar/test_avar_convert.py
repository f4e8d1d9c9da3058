"""convert_avar: a good conversion round-trips; every bad input is named and writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainables.tasks.avar.data import AvarDataError, convert_avar, load_avar


def _make(root: Path, rows=None, clips=3, dv=6, da=4):
    rows = rows or [("v1", 0, "train"), ("v2", 1, "train"), ("v3", 2, "val"), ("v4", 1, "test")]
    rng = np.random.default_rng(0)
    (root / "feats" / "visual").mkdir(parents=True)
    (root / "feats" / "audio").mkdir(parents=True)
    for vid, _, _ in rows:
        np.save(root / "feats" / "visual" / f"{vid}.npy", rng.standard_normal((clips, dv)).astype(np.float32))
        np.save(root / "feats" / "audio" / f"{vid}.npy", rng.standard_normal((clips, da)).astype(np.float32))
    lines = ["video_id,label,split"] + [f"{v},{y},{s}" for v, y, s in rows]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "feats", root / "labels.csv"


def _no_output(out: Path):
    assert not out.exists() or not any(out.iterdir()), f"partial output left in {out}: {list(out.iterdir())}"


def test_good_conversion_round_trips(tmp_path):
    feats, csv = _make(tmp_path)
    path = convert_avar(feats, csv, tmp_path / "out")
    tr, va, te = (load_avar(path, s) for s in ("train", "val", "test"))
    assert tr.video_ids == ["v1", "v2"] and va.video_ids == ["v3"] and te.video_ids == ["v4"]
    assert tr.visual.shape == (2, 3, 6) and tr.audio.shape == (2, 3, 4)
    np.testing.assert_allclose(tr.visual[1].numpy(), np.load(feats / "visual" / "v2.npy"))
    assert tr.label.tolist() == [0, 1] and tr.num_classes == 3
    assert tr.clean_label is None and tr.corr_ok is None


def _expect(tmp_path, feats, csv, match, **kw):
    out = tmp_path / "out"
    with pytest.raises(AvarDataError, match=match):
        convert_avar(feats, csv, out, **kw)
    _no_output(out)


def test_missing_feature_file(tmp_path):
    feats, csv = _make(tmp_path)
    (feats / "audio" / "v3.npy").unlink()
    _expect(tmp_path, feats, csv, r"audio/v3\.npy: missing audio features for video 'v3'")


def test_wrong_rank(tmp_path):
    feats, csv = _make(tmp_path)
    np.save(feats / "visual" / "v2.npy", np.zeros(6, np.float32))
    _expect(tmp_path, feats, csv, r"v2\.npy: video 'v2' visual features must be \(clips, dim\)")


def test_inconsistent_shape(tmp_path):
    feats, csv = _make(tmp_path)
    np.save(feats / "visual" / "v3.npy", np.zeros((3, 5), np.float32))
    _expect(tmp_path, feats, csv, r"v3\.npy: video 'v3' visual shape \(3, 5\) differs")


def test_clip_count_mismatch_between_modalities(tmp_path):
    feats, csv = _make(tmp_path)
    for v in ("v1", "v2", "v3", "v4"):
        np.save(feats / "audio" / f"{v}.npy", np.zeros((2, 4), np.float32))
    _expect(tmp_path, feats, csv, r"visual has 3 clips per video, audio 2")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf(tmp_path, bad):
    feats, csv = _make(tmp_path)
    a = np.zeros((3, 4), np.float32)
    a[1, 2] = bad
    np.save(feats / "audio" / "v4.npy", a)
    _expect(tmp_path, feats, csv, r"v4\.npy: video 'v4' audio features contain NaN or inf")


def test_unreadable_npy(tmp_path):
    feats, csv = _make(tmp_path)
    (feats / "visual" / "v1.npy").write_bytes(b"not numpy")
    _expect(tmp_path, feats, csv, r"v1\.npy: unreadable \.npy")


def test_unknown_split(tmp_path):
    feats, csv = _make(tmp_path, rows=[("v1", 0, "train"), ("v2", 1, "dev")])
    _expect(tmp_path, feats, csv, r"labels\.csv:3: unknown split 'dev' for 'v2'")


def test_duplicate_id(tmp_path):
    feats, csv = _make(tmp_path)
    csv.write_text(csv.read_text() + "v2,1,val\n")
    _expect(tmp_path, feats, csv, r"labels\.csv:6: duplicate video_id 'v2' \(first on line 3\)")


@pytest.mark.parametrize("lab, match", [("x", "not an integer"), ("1.5", "not an integer"), ("-1", "outside")])
def test_bad_label(tmp_path, lab, match):
    feats, csv = _make(tmp_path)
    csv.write_text(csv.read_text().replace("v3,2,val", f"v3,{lab},val"))
    _expect(tmp_path, feats, csv, rf"labels\.csv:4: label .* of 'v3'.*{match}|labels\.csv:4: label .*{match}")


def test_label_beyond_num_classes(tmp_path):
    feats, csv = _make(tmp_path)
    _expect(tmp_path, feats, csv, r"labels\.csv:4: label 2 of 'v3' outside \[0, 2\)", num_classes=2)


def test_missing_column_and_ragged_row(tmp_path):
    feats, csv = _make(tmp_path)
    csv.write_text("video_id,label\nv1,0\n")
    _expect(tmp_path, feats, csv, r"labels\.csv:1: missing column\(s\) \['split'\]")
    csv.write_text("video_id,label,split\nv1,0\n")
    _expect(tmp_path, feats, csv, r"labels\.csv:2: 2 fields, header has 3")


def test_empty_and_missing_inputs(tmp_path):
    feats, csv = _make(tmp_path)
    csv.write_text("")
    _expect(tmp_path, feats, csv, r"labels\.csv: empty file")
    csv.write_text("video_id,label,split\n")
    _expect(tmp_path, feats, csv, r"labels\.csv: no videos listed")
    _expect(tmp_path, feats, tmp_path / "nope.csv", r"nope\.csv: labels CSV not found")
    _expect(tmp_path, tmp_path / "nofeats", csv, r"nofeats/visual: feature directory not found")


def test_failure_keeps_an_existing_output(tmp_path):
    feats, csv = _make(tmp_path)
    path = convert_avar(feats, csv, tmp_path / "out")
    before = path.read_bytes()
    np.save(feats / "visual" / "v1.npy", np.full((3, 6), np.nan, np.float32))
    with pytest.raises(AvarDataError):
        convert_avar(feats, csv, tmp_path / "out")
    assert path.read_bytes() == before
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["avtune.parquet"]
