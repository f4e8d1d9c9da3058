"""VALOR's released layout: the converter (good and bad trees), the CLAP resampling, the writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_data import tiny_avvp

from trainables.data.format import DataFormatError, read_meta, read_split
from trainables.tasks.avvp import valor_layout as vl
from trainables.tasks.avvp.llp import feature_id


def _ids_and_labels(data):
    ids, labels, truth = [], [], []
    for s in ("train", "val", "test"):
        sid, arr = read_split(data, s, ["labels", "gt_visual", "gt_audio"])
        ids += sid
        labels.append(arr["labels"])
        truth.append(np.stack([arr["gt_visual"], arr["gt_audio"]], 1))
    return ids, np.concatenate(labels), np.concatenate(truth)


def _tree(root: Path, ids, seg, *, features=True, seed=0):
    """VALOR's layout under ``root``: labels (int64) and features for every video."""
    rng = np.random.default_rng(seed)
    feats = {}
    for k, m in enumerate(vl.MODALITIES):
        d = root / vl.TEACHER_DIRS[m]
        (d / vl.LABEL_DIR).mkdir(parents=True)
        for i, v in enumerate(ids):
            np.save(d / vl.LABEL_DIR / f"{feature_id(v)}.npy", seg[i, k].astype(np.int64))
        if features:
            (d / vl.FEATURE_DIR).mkdir()
            feats[m] = rng.normal(size=(len(ids), *vl.FEATURE_SHAPES[m])).astype(np.float32)
            for i, v in enumerate(ids):
                np.save(d / vl.FEATURE_DIR / f"{feature_id(v)}.npy", feats[m][i])
    return feats


@pytest.fixture
def tree(tmp_path):
    data = tiny_avvp(tmp_path / "data", n=(6, 3, 3), dims=(8, 8, 4))
    ids, _, truth = _ids_and_labels(data)
    seg = truth.astype(bool)  # labels that are the truth: inside the weak labels by construction
    feats = _tree(tmp_path / "valor", ids, seg)
    return data, tmp_path / "valor", ids, seg, feats


def test_convert_adds_the_labels_and_keeps_everything_else(tree, tmp_path):
    data, root, _, seg, _ = tree
    out = vl.convert_valor(data, root, tmp_path / "out")
    meta = read_meta(out)
    assert meta["shapes"]["pseudo_visual"] == [10, 25]
    assert meta["extra"]["pseudo_labels"]["masked"] == {"visual": 0, "audio": 0}
    start = 0
    for s in ("train", "val", "test"):
        got = vl.load_released_labels(out, s, read_split(data, s, ["labels"])[0])
        n = len(got["visual"])
        np.testing.assert_array_equal(got["visual"], seg[start:start + n, 0])
        np.testing.assert_array_equal(got["audio"], seg[start:start + n, 1])
        a, b = read_split(data, s)[1], read_split(out, s)[1]
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
        start += n
    assert vl.has_released_labels(out) and not vl.has_released_labels(data)


def _official_clap_path(token_map: torch.Tensor, proj: torch.nn.Linear) -> torch.Tensor:
    """VALOR's student on a (B, 64, D) CLAP map, as its forward is described: a (2, 32) grid per
    feature, bicubic to (2, 1024), projection, mean of the 2 rows, average pooling to 10."""
    b, _, d = token_map.shape
    x = token_map.permute(0, 2, 1).reshape(b, d, 2, 32)
    up = F.interpolate(x, size=(2, 1024), mode="bicubic")
    up = proj(up.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).mean(dim=2)
    return F.adaptive_avg_pool1d(up, 10).permute(0, 2, 1)


def test_clap_resampling_then_projection_is_the_students_clap_path():
    torch.manual_seed(0)
    proj = torch.nn.Linear(768, 12).double()
    x = torch.randn(3, 64, 768, dtype=torch.float64)
    ref = _official_clap_path(x, proj)
    got = proj(torch.from_numpy(np.einsum("st,ntd->nsd", vl.clap_resampling(), x.numpy())))
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(vl.clap_resampling().sum(1), 1.0, atol=1e-12)


def test_convert_with_features_makes_them_the_inputs(tree, tmp_path):
    data, root, _, _, feats = tree
    out = vl.convert_valor(data, root, tmp_path / "out", features=True)
    _, arr = read_split(out, "train", ["visual", "audio", "motion"])
    n = len(arr["visual"])
    np.testing.assert_array_equal(arr["visual"], feats["visual"][:n])
    np.testing.assert_allclose(arr["audio"], np.stack([vl.clap_segments(f) for f in feats["audio"][:n]]),
                               rtol=1e-6, atol=1e-6)
    assert read_meta(out)["shapes"]["audio"] == [10, 768]


def _bad(tree, tmp_path, edit, match, **kw):
    data, root, ids, _, _ = tree
    edit(root, ids)
    out = tmp_path / "out"
    with pytest.raises(DataFormatError, match=match):
        vl.convert_valor(data, root, out, **kw)
    assert not out.exists()  # nothing written


def _label_file(root, ids, m="audio", i=4):
    return root / vl.TEACHER_DIRS[m] / vl.LABEL_DIR / f"{feature_id(ids[i])}.npy"


def test_missing_label_file_is_named(tree, tmp_path):
    f = {}
    _bad(tree, tmp_path, lambda r, ids: (f.setdefault("p", _label_file(r, ids)), f["p"].unlink()),
         r"CLAP/segment_pseudo_labels/.*\.npy: missing")


def test_wrong_label_shape_is_named(tree, tmp_path):
    _bad(tree, tmp_path, lambda r, ids: np.save(_label_file(r, ids, "visual"), np.zeros((10, 24), np.int64)),
         r"CLIP/segment_pseudo_labels/.*\.npy: shape \(10, 24\)")


def test_labels_other_than_0_1_are_named(tree, tmp_path):
    _bad(tree, tmp_path, lambda r, ids: np.save(_label_file(r, ids), np.full((10, 25), 2, np.int64)),
         r"\.npy: labels must be 0 or 1, found 2")


def test_not_a_numpy_file_is_named(tree, tmp_path):
    _bad(tree, tmp_path, lambda r, ids: _label_file(r, ids).write_text("nope"), r"\.npy: not a numpy array file")


def test_missing_directory_is_named(tree, tmp_path):
    import shutil

    _bad(tree, tmp_path, lambda r, ids: shutil.rmtree(r / "CLIP" / vl.LABEL_DIR),
         r"CLIP/segment_pseudo_labels: not a directory")


def test_bad_features_are_named(tree, tmp_path):
    feature = lambda r, ids, m: r / vl.TEACHER_DIRS[m] / vl.FEATURE_DIR / f"{feature_id(ids[2])}.npy"
    _bad(tree, tmp_path, lambda r, ids: np.save(feature(r, ids, "audio"), np.zeros((10, 768), np.float32)),
         r"CLAP/features/.*\.npy: shape \(10, 768\), expected \(64, 768\)", features=True)
    bad = np.zeros((10, 768), np.float32)
    bad[0, 0] = np.nan
    _bad(tree, tmp_path, lambda r, ids: np.save(feature(r, ids, "visual"), bad), "NaN or inf", features=True)


def test_labels_outside_the_weak_labels_are_refused_or_masked(tree, tmp_path):
    data, root, ids, seg, _ = tree
    _, labels, _ = _ids_and_labels(data)
    absent = int(np.flatnonzero(labels[1] == 0)[0])
    y = seg[1, 0].astype(np.int64)
    y[:, absent] = 1
    np.save(_label_file(root, ids, "visual", 1), y)
    with pytest.raises(DataFormatError, match="outside the video's weak labels"):
        vl.convert_valor(data, root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    out = vl.convert_valor(data, root, tmp_path / "out", mask_to_weak=True)
    assert read_meta(out)["extra"]["pseudo_labels"]["masked"]["visual"] == 10
    assert not vl.load_released_labels(out, "train", ids[:6])["visual"][1][:, absent].any()


def test_write_then_read_round_trips(tree, tmp_path):
    data, _, ids, seg, _ = tree
    _, labels, _ = _ids_and_labels(data)
    root = vl.write_valor_labels(tmp_path / "export", ids, {"visual": seg[:, 0], "audio": seg[:, 1]})
    f = _label_file(root, ids, "visual", 0)
    assert np.load(f).dtype == np.int64 and np.load(f).shape == (10, 25)
    back, masked = vl.read_valor_labels(root, ids, labels)
    assert masked == {"visual": 0, "audio": 0}
    np.testing.assert_array_equal(back["visual"], seg[:, 0])
    np.testing.assert_array_equal(back["audio"], seg[:, 1])
    with pytest.raises(ValueError, match="exists and is not an empty directory"):
        vl.write_valor_labels(root, ids, {"visual": seg[:, 0], "audio": seg[:, 1]})
