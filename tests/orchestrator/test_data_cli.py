"""python -m orchestrator.data: convert-llp, make-sim, info; errors exit 2 with no output."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from orchestrator.data import main
from trainables.data.format import read_meta

WEAK_H = "filename\tevent_labels\n"
EVAL_H = "filename\tonset\toffset\tevent_labels\n"
IDS = {"train": ["aaaaaaaaaaa_0_10"], "val": ["bbbbbbbbbbb_0_10"], "test": ["ccccccccccc_0_10"]}


def _tree(root: Path, eval_audio: str = "bbbbbbbbbbb_0_10\t0\t4\tDog\n") -> tuple[Path, Path]:
    ann = root / "ann"
    ann.mkdir(parents=True)
    for split, f in (("train", "AVVP_train.csv"), ("val", "AVVP_val_pd.csv"), ("test", "AVVP_test_pd.csv")):
        (ann / f).write_text(WEAK_H + "".join(f"{v}\tDog\n" for v in IDS[split]))
    (ann / "AVVP_eval_audio.csv").write_text(EVAL_H + eval_audio)
    (ann / "AVVP_eval_visual.csv").write_text(EVAL_H + "ccccccccccc_0_10\t2\t3\tDog\n")
    feats = root / "feats"
    rng = np.random.default_rng(0)
    for sub, shape in (("vggish", (10, 128)), ("res152", (80, 2048)), ("r2plus1d_18", (10, 512))):
        (feats / sub).mkdir(parents=True)
        for vs in IDS.values():
            np.save(feats / sub / f"{vs[0][:11]}.npy", rng.standard_normal(shape).astype(np.float32))
    return feats, ann


def test_convert_llp_cli(tmp_path, capsys):
    feats, ann = _tree(tmp_path)
    rc = main(["convert-llp", "--feats", str(feats), "--annotations", str(ann), "--out",
               str(tmp_path / "out"), "--float16", "--no-average-frames"])
    assert rc == 0
    meta = read_meta(tmp_path / "out")
    assert meta["shapes"]["visual"] == [10, 8, 2048] and meta["dtypes"]["visual"] == "float16"
    assert "  kind        llp, format version 1" in capsys.readouterr().out


def test_convert_llp_cli_bad_input_exit_2(tmp_path, capsys):
    feats, ann = _tree(tmp_path, eval_audio="bbbbbbbbbbb_0_10\t0\t4\tDgo\n")
    out = tmp_path / "out"
    rc = main(["convert-llp", "--feats", str(feats), "--annotations", str(ann), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "AVVP_eval_audio.csv:2: unknown class name 'Dgo'" in err
    assert not out.exists()
    feats, ann = _tree(tmp_path / "b")
    (feats / "vggish" / "ccccccccccc.npy").unlink()
    rc = main(["convert-llp", "--feats", str(feats), "--annotations", str(ann), "--out", str(out)])
    assert rc == 2 and "video ccccccccccc_0_10: missing feature file" in capsys.readouterr().err
    assert not out.exists()


def test_make_sim_and_info(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["make-sim", "llp-sim-tiny", "--out", str(out), "--seed", "3"]) == 0
    meta = read_meta(out)
    assert meta["params"]["seed"] == 3 and meta["extra"]["preset"] == "llp-sim-tiny"
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Readable by default: a dozen labelled lines, not the raw metadata.
    assert len(lines) < 20 and not any(ln.strip() in ("{", "}") for ln in lines)
    assert lines[1].split() == ["kind", "llp-sim", "(preset", "llp-sim-tiny),", "format", "version", "1"]
    assert "  splits      train 256, val 64, test 64 (hidden truth: train, val, test)" in lines
    assert any(ln.startswith("  columns     audio (10, 128) float32, visual (10, 2048) float32") for ln in lines)
    assert any("seed=3" in ln for ln in lines if ln.startswith("  params"))
    assert main(["info", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["meta"]["kind"] == "llp-sim" and shown["meta"]["splits"]["test"] == 64
    assert shown["meta"]["params"]["seed"] == 3 and len(shown["fingerprint"]) == 16


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["make-sim", "llp-sim-huge", "--out", str(tmp_path / "x")]) == 2
    assert "unknown data preset 'llp-sim-huge'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["info", str(tmp_path)]) == 2
    assert "no avtune data file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["convert-llp", "--feats", "x"])  # argparse: missing required options
    assert e.value.code == 2


def test_module_entry_point_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-m", "orchestrator.data", "info", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stdout == ""
