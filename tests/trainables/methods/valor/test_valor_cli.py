"""``python -m orchestrator.data convert-valor``: a tree in VALOR's layout in, exit 2 on bad input."""

from __future__ import annotations

import numpy as np

from orchestrator import data as data_cli
from tiny_data import tiny_avvp
from trainables.data.format import read_split
from trainables.tasks.avvp import valor_layout as vl


def test_convert_valor_cli(tmp_path, capsys):
    src = tiny_avvp(tmp_path / "data", n=(4, 2, 2), dims=(8, 8, 4))
    ids, seg = [], []
    for s in ("train", "val", "test"):
        sid, arr = read_split(src, s, ["gt_visual", "gt_audio"])
        ids += sid
        seg.append(np.stack([arr["gt_visual"], arr["gt_audio"]]))
    seg = np.concatenate(seg, axis=1)
    vl.write_valor_labels(tmp_path / "valor", ids, {"visual": seg[0], "audio": seg[1]})
    argv = ["convert-valor", str(src.parent), "--root", str(tmp_path / "valor"), "--out"]
    assert data_cli.main([*argv, str(tmp_path / "out")]) == 0
    assert "pseudo_visual" in capsys.readouterr().out
    assert vl.has_released_labels(tmp_path / "out")
    # A wrong shape: a clear error naming the file, exit 2, nothing written.
    bad = tmp_path / "valor" / "CLAP" / vl.LABEL_DIR / f"{ids[1][:11]}.npy"
    np.save(bad, np.zeros((9, 25), np.int64))
    assert data_cli.main([*argv, str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "shape (9, 25)" in err
    assert not (tmp_path / "out2").exists()
    bad.unlink()  # a missing id
    assert data_cli.main([*argv, str(tmp_path / "out3")]) == 2
    assert f"{bad}: missing" in capsys.readouterr().err and not (tmp_path / "out3").exists()
