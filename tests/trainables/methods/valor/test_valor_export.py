"""The harvested labels written in VALOR's layout (what the official code reads), via the CLI."""

from __future__ import annotations

import numpy as np
import torch

from trainables.data.registry import resolve_data
from trainables.methods.valor import export
from trainables.methods.valor import harvest as hv
from trainables.methods.valor.train import Config
from trainables.tasks.avvp import backbone as bb
from trainables.tasks.avvp import valor_layout as vl


def test_export_writes_what_fit_trains_on_and_convert_reads_it_back(tmp_path, capsys):
    path = resolve_data("llp-sim-tiny")
    assert export.main([str(path), str(tmp_path / "x"), "--set", "theta_v=25.0"]) == 0
    assert "pseudo/seg_F_v=" in capsys.readouterr().out
    cfg = Config(theta_v=25.0)
    data = bb.load_data(cfg, path, torch.device("cpu"))
    labels, _ = hv.harvest_labels(cfg, path, data)
    vid = data["test"].video_ids[3]
    f = tmp_path / "x" / "CLIP" / vl.LABEL_DIR / f"{vid[:11]}.npy"
    np.testing.assert_array_equal(np.load(f), labels["test"]["visual"][3].numpy().astype(np.int64))
    back = vl.convert_valor(path, tmp_path / "x", tmp_path / "conv")
    released, _ = hv.harvest_labels(Config(teacher="released"), back, data)
    for s in ("train", "val", "test"):
        for m in ("visual", "audio"):
            assert torch.equal(released[s][m], labels[s][m])


def test_export_errors_exit_2(tmp_path, capsys):
    path = resolve_data("llp-sim-tiny")
    assert export.main([str(path), str(tmp_path / "x"), "--set", "teacher=released"]) == 2
    assert "convert-valor" in capsys.readouterr().err
    assert export.main([str(path), str(tmp_path / "y"), "--set", "nhead=3"]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
