"""export-llp: an avtune AVVP data set written in the official LLP layout reads back identically."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator import data as data_cli
from trainables.data import format as fmt
from trainables.tasks.avvp.llp import convert_llp, read_dense_truth
from trainables.tasks.avvp.llp_export import eval_rows, export_llp
from trainables.data.registry import resolve_data


def test_eval_rows_one_row_per_run_offset_exclusive():
    gt = np.zeros((1, 10, 25), np.uint8)
    gt[0, 0:3, 4] = 1
    gt[0, 5:10, 4] = 1
    gt[0, 9, 0] = 1
    assert eval_rows(["vid00000000_0_10"], gt) == [
        "vid00000000_0_10\t9\t10\tSpeech",
        "vid00000000_0_10\t0\t3\tCat",
        "vid00000000_0_10\t5\t10\tCat",
    ]


def test_export_then_convert_round_trip(tmp_path):
    src = resolve_data("llp-sim-tiny")
    out = export_llp(src, tmp_path / "official")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["AVVP_eval_audio.csv", "AVVP_eval_visual.csv", "AVVP_test_pd.csv",
                     "AVVP_train.csv", "AVVP_val_pd.csv", "r2plus1d_18", "res152", "vggish"]
    ids, arr = fmt.read_split(src, "val")
    one = ids[0][:11]
    assert np.load(out / "vggish" / f"{one}.npy").shape == (10, 128)
    frames = np.load(out / "res152" / f"{one}.npy")
    assert frames.shape == (80, 2048) and frames.dtype == np.float32
    # The segment mean, repeated over the segment's 8 frames.
    np.testing.assert_array_equal(frames.reshape(10, 8, 2048)[:, 3], arr["visual"][0])
    np.testing.assert_array_equal(read_dense_truth(out / "AVVP_eval_visual.csv", ids),
                                  arr["gt_visual"])

    back = convert_llp(out, out, tmp_path / "back", workers=2)
    for split in fmt.SPLITS:
        ids_a, a = fmt.read_split(src, split)
        ids_b, b = fmt.read_split(back, split)
        assert ids_a == ids_b
        for col in ("audio", "visual", "motion", "labels"):
            np.testing.assert_array_equal(a[col], b[col].astype(a[col].dtype), err_msg=col)
        if split != "train":  # the official layout has dense truth for val and test only
            for col in ("gt_audio", "gt_visual"):
                np.testing.assert_array_equal(a[col], b[col], err_msg=col)


def test_export_refuses_a_non_empty_directory_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert data_cli.main(["export-llp", "llp-sim-tiny", "--out", str(out)]) == 2
    assert "is not an empty directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    with pytest.raises(ValueError, match="not an AVVP data set"):
        export_llp(resolve_data("avar-sim-tiny"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_export_cli_writes_the_layout(tmp_path, capsys):
    assert data_cli.main(["export-llp", "llp-sim-tiny", "--out", str(tmp_path / "o")]) == 0
    assert "wrote the official LLP layout" in capsys.readouterr().out
    assert len(list((tmp_path / "o" / "res152").glob("*.npy"))) == 256 + 64 + 64
