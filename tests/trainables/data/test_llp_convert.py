"""convert_llp on small official-layout trees: values, options, and every bad-input case."""

from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.tasks.avvp.classes import CLASS_INDEX
from trainables.tasks.avvp.data import load_avvp
from trainables.data.format import read_meta
from trainables.tasks.avvp.llp import AnnotationError, FeatureError, convert_llp, read_annotations

WEAK_H = "filename\tevent_labels\n"
EVAL_H = "filename\tonset\toffset\tevent_labels\n"
TRAIN = ["aaaaaaaaaaa_0_10", "-bbbbbbbbbb_30_40", "ccccccccccc_5.5_15.5"]
VAL = ["ddddddddddd_10_20", "eeeeeeeeeee_0_10"]
TEST = ["fffffffffff_7_17", "ggggggggggg_1_11"]
SHAPES = {"vggish": (10, 128), "res152": (80, 2048), "r2plus1d_18": (10, 512)}


def make_tree(root: Path, *, seed: int = 0, audio_rows: str | None = None) -> tuple[Path, Path, dict]:
    """Writes annotations + official-layout features; returns (feats, ann, {sub: {id: array}})."""
    ann = root / "ann"
    ann.mkdir(parents=True)
    (ann / "AVVP_train.csv").write_text(WEAK_H + "".join(f"{v}\tSpeech,Dog\n" for v in TRAIN))
    (ann / "AVVP_val_pd.csv").write_text(WEAK_H + f"{VAL[0]}\tCar\n{VAL[1]}\tCat,Speech\n")
    (ann / "AVVP_test_pd.csv").write_text(WEAK_H + f"{TEST[0]}\tViolin_fiddle\n{TEST[1]}\tDog\n")
    (ann / "AVVP_eval_audio.csv").write_text(
        EVAL_H + (audio_rows if audio_rows is not None else
                  f"{VAL[0]}\t0\t10\tCar\n{VAL[1]}\t2\t5\tSpeech\n{VAL[1]}\t3\t3\tCat\n"
                  f"{TEST[0]}\t4\t10\tViolin_fiddle\n{TEST[1]}\t0\t1\tDog\n")
    )
    (ann / "AVVP_eval_visual.csv").write_text(
        EVAL_H + f"{VAL[1]}\t0\t3\tCat\n{VAL[1]}\t7\t10\tCat\n{TEST[0]}\t0\t10\tViolin_fiddle\n"
    )
    feats = root / "feats"
    rng = np.random.default_rng(seed)
    arrays: dict = {}
    for sub, shape in SHAPES.items():
        (feats / sub).mkdir(parents=True)
        arrays[sub] = {}
        for v in TRAIN + VAL + TEST:
            x = rng.standard_normal(shape).astype(np.float32)
            np.save(feats / sub / f"{v[:11]}.npy", x)
            arrays[sub][v[:11]] = x
    return feats, ann, arrays


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path)


def test_convert_values_and_truth(tree, tmp_path):
    feats, ann, arrays = tree
    path = convert_llp(feats, ann, tmp_path / "out")
    meta = read_meta(path)
    assert meta["kind"] == "llp" and meta["truth_splits"] == ["test", "val"]
    assert meta["splits"] == {"train": 3, "val": 2, "test": 2}
    assert meta["shapes"]["visual"] == [10, 2048] and meta["dtypes"]["audio"] == "float32"
    assert any("1 zero-length" in w for w in meta["extra"]["warnings"])

    tr = load_avvp(path, "train")
    assert tr.video_ids == TRAIN and tr.gt_audio is None
    assert tr.audio.shape == (3, 10, 128) and tr.motion.shape == (3, 10, 512)
    assert tr.visual.shape == (3, 10, 2048) and tr.labels.dtype == torch.float32
    np.testing.assert_array_equal(tr.audio[1].numpy(), arrays["vggish"]["-bbbbbbbbbb"])
    np.testing.assert_array_equal(tr.motion[2].numpy(), arrays["r2plus1d_18"]["ccccccccccc"])
    assert tr.labels[:, [CLASS_INDEX["Speech"], CLASS_INDEX["Dog"]]].eq(1).all()
    assert tr.labels.sum() == 6

    va = load_avvp(path, "val")
    ref = read_annotations(ann, "val")
    np.testing.assert_array_equal(va.gt_audio.numpy(), ref.gt_audio)
    np.testing.assert_array_equal(va.gt_visual.numpy(), ref.gt_visual)
    assert va.gt_audio.dtype == torch.uint8
    assert va.gt_audio[1, :, CLASS_INDEX["Speech"]].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert va.gt_visual[1, :, CLASS_INDEX["Cat"]].tolist() == [1, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    te = load_avvp(path, "test")
    assert te.gt_audio[0, :, CLASS_INDEX["Violin_fiddle"]].sum() == 6
    assert not list((tmp_path / "out").glob(".tmp-*"))


def test_frame_average_is_exact_and_commutes_with_linear(tree, tmp_path):
    feats, ann, arrays = tree
    avg = load_avvp(convert_llp(feats, ann, tmp_path / "avg"), "test")
    full = load_avvp(convert_llp(feats, ann, tmp_path / "full", average_frames=False), "test")
    raw = arrays["res152"]["fffffffffff"]
    assert full.visual.shape == (2, 10, 8, 2048)
    np.testing.assert_array_equal(full.visual[0].numpy(), raw.reshape(10, 8, 2048))
    want = raw.reshape(10, 8, 2048).astype(np.float64).mean(1).astype(np.float32)
    np.testing.assert_array_equal(avg.visual[0].numpy(), want)
    # HAN's visual path: a per-frame linear layer, then the mean over the 8 frames.
    lin = torch.nn.Linear(2048, 16).double()
    per_frame = lin(full.visual.double()).mean(2)
    np.testing.assert_allclose(lin(avg.visual.double()).detach(), per_frame.detach(), atol=1e-6)


def test_float16(tree, tmp_path):
    feats, ann, arrays = tree
    path = convert_llp(feats, ann, tmp_path / "h", float16=True)
    meta = read_meta(path)
    assert {meta["dtypes"][k] for k in ("audio", "visual", "motion")} == {"float16"}
    va = load_avvp(path, "val")
    assert va.audio.dtype == torch.float16
    np.testing.assert_array_equal(va.audio[0].numpy(), arrays["vggish"]["ddddddddddd"].astype(np.float16))
    assert meta["params"]["float16"] is True


def _assert_no_output(out: Path):
    assert not out.exists() or not any(out.iterdir())


def _fails(feats, ann, out, exc, *fragments):
    with pytest.raises(exc) as e:
        convert_llp(feats, ann, out)
    for f in fragments:
        assert f in str(e.value), str(e.value)
    _assert_no_output(out)
    return str(e.value)


def test_missing_feature_file(tree, tmp_path):
    feats, ann, _ = tree
    (feats / "res152" / "eeeeeeeeeee.npy").unlink()
    (feats / "vggish" / "aaaaaaaaaaa.npy").unlink()
    msg = _fails(feats, ann, tmp_path / "out", FeatureError, "2 feature problem(s)",
                 "video eeeeeeeeeee_0_10: missing feature file", "res152/eeeeeeeeeee.npy",
                 "video aaaaaaaaaaa_0_10: missing feature file")
    assert msg.index("aaaaaaaaaaa") < msg.index("eeeeeeeeeee")  # listed in file order


def test_missing_feature_directory(tree, tmp_path):
    feats, ann, _ = tree
    for f in (feats / "r2plus1d_18").iterdir():
        f.unlink()
    (feats / "r2plus1d_18").rmdir()
    _fails(feats, ann, tmp_path / "out", FeatureError, "no r2plus1d_18/ directory")


def test_wrong_shape(tree, tmp_path):
    feats, ann, _ = tree
    np.save(feats / "res152" / "ggggggggggg.npy", np.zeros((10, 2048), np.float32))
    _fails(feats, ann, tmp_path / "out", FeatureError, "video ggggggggggg_1_11",
           "has shape (10, 2048), expected (80, 2048)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite(tree, tmp_path, bad):
    feats, ann, arrays = tree
    x = arrays["vggish"]["ddddddddddd"].copy()
    x[3, 7] = bad
    np.save(feats / "vggish" / "ddddddddddd.npy", x)
    _fails(feats, ann, tmp_path / "out", FeatureError, "video ddddddddddd_10_20", "1 NaN/inf value(s)")


def test_float16_overflow_is_an_error(tree, tmp_path):
    feats, ann, arrays = tree
    x = arrays["r2plus1d_18"]["ddddddddddd"].copy()
    x[0, 0] = 1e6
    np.save(feats / "r2plus1d_18" / "ddddddddddd.npy", x)
    with pytest.raises(FeatureError, match="exceed the float16 range"):
        convert_llp(feats, ann, tmp_path / "out", float16=True)
    _assert_no_output(tmp_path / "out")
    convert_llp(feats, ann, tmp_path / "ok")  # fine in float32


def test_corrupt_npy(tree, tmp_path):
    feats, ann, _ = tree
    (feats / "vggish" / "fffffffffff.npy").write_bytes(b"not a numpy file")
    _fails(feats, ann, tmp_path / "out", FeatureError, "video fffffffffff_7_17: cannot read")


def test_duplicate_id_across_splits(tree, tmp_path):
    feats, ann, _ = tree
    (ann / "AVVP_val_pd.csv").write_text(WEAK_H + f"{VAL[0]}\tCar\n{TRAIN[0]}\tSpeech\n")
    _fails(feats, ann, tmp_path / "out", AnnotationError, "aaaaaaaaaaa_0_10", "already used by",
           "AVVP_train.csv")


def test_duplicate_id_within_file(tree, tmp_path):
    feats, ann, _ = tree
    (ann / "AVVP_test_pd.csv").write_text(WEAK_H + f"{TEST[0]}\tDog\n{TEST[1]}\tDog\n{TEST[0]}\tCat\n")
    _fails(feats, ann, tmp_path / "out", AnnotationError, "AVVP_test_pd.csv:4", "duplicate filename")


@pytest.mark.parametrize(
    "rows, fragment",
    [
        (f"{VAL[0]}\t0\t10\tCarr\n", "AVVP_eval_audio.csv:2: unknown class name 'Carr'"),
        ("Speech\t0\t10\tSpeech\n", "AVVP_eval_audio.csv:2: malformed filename 'Speech'"),
        (f"{VAL[0]}\t0\t10\tCar\n{TEST[0]}`\t4\t10\tViolin_fiddle\n", "AVVP_eval_audio.csv:3: malformed filename"),
        (f"{VAL[0]}\t5\t2\tCar\n", "AVVP_eval_audio.csv:2: onset 5 > offset 2"),
        (f"{VAL[0]}\t0\t12\tCar\n", "AVVP_eval_audio.csv:2: onset/offset 0/12 outside 0..10"),
    ],
)
def test_bad_annotation_rows_leave_no_output(tmp_path, rows, fragment):
    feats, ann, _ = make_tree(tmp_path, audio_rows=rows)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")  # an existing directory keeps its content
    with pytest.raises(AnnotationError) as e:
        convert_llp(feats, ann, out)
    assert fragment in str(e.value)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_zero_length_rows_are_reported_not_fatal(tmp_path):
    rows = f"{VAL[0]}\t0\t10\tCar\n{VAL[0]}\t4\t4\tCar\n{TEST[1]}\t10\t10\tDog\n"
    feats, ann, _ = make_tree(tmp_path, audio_rows=rows)
    meta = read_meta(convert_llp(feats, ann, tmp_path / "out"))
    assert any("skipped 2 zero-length row(s)" in w and "line(s) 3, 4" in w for w in meta["extra"]["warnings"])
