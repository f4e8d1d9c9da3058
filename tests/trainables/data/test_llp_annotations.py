"""read_annotations: real eval CSVs checked by hand, and every malformed-row case."""

from pathlib import Path

import numpy as np
import pytest

from trainables.tasks.avvp.classes import CLASS_INDEX
from trainables.tasks.avvp.llp import AnnotationError, read_annotations

from trainables.tasks.avvp.annotations import DIR as REAL  # the published CSVs, packaged with avtune

needs_real = pytest.mark.skipif(not (REAL / "AVVP_eval_audio.csv").is_file(), reason="no packaged LLP CSVs")

WEAK_H = "filename\tevent_labels\n"
EVAL_H = "filename\tonset\toffset\tevent_labels\n"


def _segments(*ranges):
    v = np.zeros(10, np.uint8)
    for a, b in ranges:
        v[a:b] = 1
    return v


@pytest.fixture(scope="module")
def real_test():
    return read_annotations(REAL, "test")


@needs_real
def test_real_splits_load_with_official_counts():
    tr = read_annotations(REAL, "train")
    va = read_annotations(REAL, "val")
    assert (len(tr.video_ids), len(va.video_ids)) == (10000, 649)
    assert tr.gt_audio is None and tr.gt_visual is None
    assert va.gt_audio.shape == (649, 10, 25) and va.gt_audio.dtype == np.uint8
    assert tr.labels.shape == (10000, 25) and set(np.unique(tr.labels)) == {0, 1}
    # Labels per video in train: the embedded stats give 40.32% / 58.79% / 0.89% for 1 / 2 / 3.
    per_video = np.bincount(tr.labels.sum(1), minlength=4)[1:] / 10000
    np.testing.assert_allclose(per_video, [0.4032, 0.5879, 0.0089])


@needs_real
def test_real_test_split_hand_checked(real_test):
    a = real_test
    assert len(a.video_ids) == 1200
    idx = {v: i for i, v in enumerate(a.video_ids)}
    B, S, Bl = CLASS_INDEX["Baby_cry_infant_cry"], CLASS_INDEX["Speech"], CLASS_INDEX["Blender"]
    # 4YdbENYcIyE_23_33: audio "0 4 Baby_cry_infant_cry", visual "0 10 Baby_cry_infant_cry".
    i = idx["4YdbENYcIyE_23_33"]
    np.testing.assert_array_equal(a.gt_audio[i, :, B], _segments((0, 4)))
    np.testing.assert_array_equal(a.gt_visual[i, :, B], _segments((0, 10)))
    assert a.gt_audio[i].sum() == 4 and a.gt_visual[i].sum() == 10
    assert np.flatnonzero(a.labels[i]).tolist() == [B]
    # KSRjje7GH44_60_70: audio "8 10 Blender", "0 8 Speech"; visual "0 10 Blender" (no visual speech).
    i = idx["KSRjje7GH44_60_70"]
    np.testing.assert_array_equal(a.gt_audio[i, :, Bl], _segments((8, 10)))
    np.testing.assert_array_equal(a.gt_audio[i, :, S], _segments((0, 8)))
    np.testing.assert_array_equal(a.gt_visual[i, :, Bl], _segments((0, 10)))
    assert a.gt_visual[i, :, S].sum() == 0 and a.gt_audio[i].sum() == 10
    # Audio-visual (AND) of this video: Blender on segments 8, 9 only.
    av = a.gt_audio[i] & a.gt_visual[i]
    assert av.sum() == 2 and av[8:, Bl].all()
    # CaC2xvdLC34_250_260: "9 9 Speech" is zero-length, so Speech is weak-labelled but absent.
    i = idx["CaC2xvdLC34_250_260"]
    assert a.labels[i, S] == 1 and a.gt_audio[i, :, S].sum() == 0
    np.testing.assert_array_equal(a.gt_audio[i, :, CLASS_INDEX["Singing"]], _segments((0, 8)))
    np.testing.assert_array_equal(a.gt_audio[i, :, CLASS_INDEX["Clapping"]], _segments((9, 10)))
    np.testing.assert_array_equal(a.gt_audio[i, :, CLASS_INDEX["Cello"]], _segments((0, 9)))


@needs_real
def test_real_zero_length_and_errata_reported(real_test):
    text = "\n".join(real_test.warnings)
    assert "skipped 5 zero-length row(s)" in text
    assert "line(s) 48, 66, 100, 129, 137" in text
    assert "known reversed row(s)" in text and "3770" in text


@needs_real
def test_real_reversed_row_is_empty():
    va = read_annotations(REAL, "val")
    i = va.video_ids.index("8DF2PxdT5tE_390_400")
    c = CLASS_INDEX["Cheering"]
    assert va.labels[i, c] == 1 and va.gt_audio[i, :, c].sum() == 0 and va.gt_visual[i, :, c].sum() == 0
    np.testing.assert_array_equal(va.gt_audio[i, :, CLASS_INDEX["Speech"]], _segments((0, 2), (7, 10)))
    np.testing.assert_array_equal(va.gt_visual[i, :, CLASS_INDEX["Speech"]], _segments((7, 8), (9, 10)))


def _write(d: Path, *, train=None, val=None, test=None, audio=None, visual=None) -> Path:
    files = {
        "AVVP_train.csv": train if train is not None else WEAK_H + "aaaaaaaaaaa_0_10\tSpeech,Dog\n",
        "AVVP_val_pd.csv": val if val is not None else WEAK_H + "bbbbbbbbbbb_30_40\tCar\n",
        "AVVP_test_pd.csv": test if test is not None else WEAK_H + "ccccccccccc_5_15\tCat,Speech\n",
        "AVVP_eval_audio.csv": audio if audio is not None else EVAL_H
        + "bbbbbbbbbbb_30_40\t0\t10\tCar\nccccccccccc_5_15\t2\t5\tSpeech\nccccccccccc_5_15\t4\t4\tCat\n",
        "AVVP_eval_visual.csv": visual if visual is not None else EVAL_H
        + "ccccccccccc_5_15\t0\t3\tCat\nccccccccccc_5_15\t7\t10\tCat\n",
    }
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_small_tree_dense_truth(tmp_path):
    d = _write(tmp_path)
    t = read_annotations(d, "test")
    assert t.video_ids == ["ccccccccccc_5_15"]
    np.testing.assert_array_equal(t.gt_audio[0, :, CLASS_INDEX["Speech"]], _segments((2, 5)))
    np.testing.assert_array_equal(t.gt_visual[0, :, CLASS_INDEX["Cat"]], _segments((0, 3), (7, 10)))
    assert t.gt_audio[0, :, CLASS_INDEX["Cat"]].sum() == 0  # the zero-length row
    assert any("1 zero-length" in w for w in t.warnings)
    v = read_annotations(d, "val")
    assert v.gt_audio[0, :, CLASS_INDEX["Car"]].all() and v.gt_visual.sum() == 0


@pytest.mark.parametrize(
    "kw, where, message",
    [
        (dict(train=WEAK_H + "aaaaaaaaaaa_0_10\tSpeech,Dgo\n"), "AVVP_train.csv:2", "unknown class name 'Dgo'"),
        (dict(train=WEAK_H + "aaaaaaaaaaa_0_10\tSpeech\nSpeech\tSpeech\n"), "AVVP_train.csv:3", "malformed filename 'Speech'"),
        (dict(train=WEAK_H + "aaaaaaaaaaa_0_10`\tSpeech\n"), "AVVP_train.csv:2", "malformed filename"),
        (dict(train=WEAK_H + "aaaaaaaaaaa_0_10\tSpeech\tx\n"), "AVVP_train.csv:2", "expected 2 tab-separated columns"),
        (dict(train=WEAK_H + "aaaaaaaaaaa_0_10\tSpeech\naaaaaaaaaaa_0_10\tDog\n"), "AVVP_train.csv:3", "duplicate filename"),
        (dict(train=WEAK_H + "aaaaaaaaaaa_0_10\tSpeech\naaaaaaaaaaa_20_30\tDog\n"), "AVVP_train.csv:3", "same feature id"),
        (dict(train="name\tlabels\n"), "AVVP_train.csv:1", "expected header"),
    ],
)
def test_weak_label_errors(tmp_path, kw, where, message):
    d = _write(tmp_path, **kw)
    with pytest.raises(AnnotationError) as e:
        read_annotations(d, "train")
    assert where in str(e.value) and message in str(e.value)


@pytest.mark.parametrize(
    "row, message",
    [
        ("Speech\t0\t10\tSpeech", "malformed filename 'Speech'"),  # the older file's class-name row
        ("ccccccccccc_5_15`\t0\t10\tSpeech", "malformed filename 'ccccccccccc_5_15`'"),  # stray backtick
        ("ccccccccccc_5_15\t0\t10\tSpeeech", "unknown class name 'Speeech'"),
        ("ccccccccccc_5_15\t6\t3\tSpeech", "onset 6 > offset 3"),
        ("ccccccccccc_5_15\t0\t11\tSpeech", "outside 0..10"),
        ("ccccccccccc_5_15\t-1\t4\tSpeech", "outside 0..10"),
        ("ccccccccccc_5_15\t0.5\t4\tSpeech", "not an integer second"),
        ("ccccccccccc_5_15\t0\t4", "expected 4 tab-separated columns"),
    ],
)
def test_eval_row_errors_name_file_and_line(tmp_path, row, message):
    audio = EVAL_H + "ccccccccccc_5_15\t2\t5\tSpeech\n" + row + "\n"
    d = _write(tmp_path, audio=audio)
    with pytest.raises(AnnotationError) as e:
        read_annotations(d, "test")
    assert "AVVP_eval_audio.csv:3:" in str(e.value) and message in str(e.value)


def test_rows_of_unknown_videos_are_skipped_and_reported(tmp_path):
    audio = EVAL_H + "ccccccccccc_5_15\t2\t5\tSpeech\nSHORTid_10_20\t0\t10\tDog\n"
    t = read_annotations(_write(tmp_path, audio=audio), "test")
    assert t.gt_audio.sum() == 3
    assert any("SHORTid_10_20 (line 3)" in w for w in t.warnings)


def test_filename_in_val_and_test_is_an_error(tmp_path):
    d = _write(tmp_path, val=WEAK_H + "ccccccccccc_5_15\tCar\n")
    with pytest.raises(AnnotationError, match="also in AVVP_test_pd.csv"):
        read_annotations(d, "val")


def test_missing_file_and_bad_split(tmp_path):
    with pytest.raises(AnnotationError, match="AVVP_train.csv: annotation file not found"):
        read_annotations(tmp_path, "train")
    with pytest.raises(ValueError, match="unknown split"):
        read_annotations(tmp_path, "dev")
