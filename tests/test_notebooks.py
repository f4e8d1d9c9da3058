"""The notebooks parse, and ``sweep_results.ipynb`` runs end to end (nbclient, from notebooks/) on
a tiny sweep's MLflow store, showing that sweep's numbers."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FAKE = ROOT / "tests" / "orchestrator"  # the fake sweep and trainable


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_cells_parse(nb):
    doc = json.loads(nb.read_text())
    assert doc["nbformat"] == 4
    code = [c for c in doc["cells"] if c["cell_type"] == "code"]
    assert code, f"{nb.name} has no code cells"
    for i, cell in enumerate(code):
        ast.parse("".join(cell["source"]), filename=f"{nb.name}[cell {i}]")


def test_one_default_store_for_the_clis_and_the_notebook(monkeypatch, tmp_path):
    from orchestrator import results
    from orchestrator.rows import default_tracking_uri

    monkeypatch.delenv("AVTUNE_MLFLOW_URI", raising=False)
    monkeypatch.chdir(ROOT / "notebooks")  # inside the checkout: its root's store, from any folder
    assert default_tracking_uri() == f"sqlite:///{ROOT / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # outside any checkout: the working directory's
    assert default_tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("AVTUNE_MLFLOW_URI", f"sqlite:///{tmp_path / 'x.db'}")
    assert default_tracking_uri() == f"sqlite:///{tmp_path / 'x.db'}"
    # A store that does not exist is an error, never an empty database created on the spot.
    with pytest.raises(results.NotFound, match="no MLflow store at"):
        results.client(default_tracking_uri())
    assert not (tmp_path / "x.db").exists()


def _runs(db):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{db}")
    runs = c.search_runs([c.get_experiment_by_name("fake_quadratic").experiment_id])
    return ([r for r in runs if "mlflow.parentRunId" not in r.data.tags],
            [r for r in runs if "mlflow.parentRunId" in r.data.tags])


@pytest.mark.slow
def test_seeded_tiny_sweep_and_the_notebook_on_it(tmp_path, monkeypatch):
    """A tiny sweep under --seeds 2 (Optuna is told each configuration's mean), then the notebook
    executed on its store from notebooks/, showing that sweep's numbers."""
    import pickle

    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKE), os.environ.get("PYTHONPATH", "")])}
    # The fake scores 50 - 100 (x-0.6)^2 - 10 (y-1.8)^2 + epoch + 0.1 seed: x=0.6, y=1.8 (evaluated
    # first) gives 52.0 and 52.1 after 2 epochs.
    r = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "avtune_fake_sweep:SPEC", "--num-samples",
                        "2", "--seeds", "2", "--name", "s2"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[avtune] 4/4 trials finished" in r.stdout
    assert "x=0.6, y=1.8  val/seg_Type=52.05 ± 0.07 (mean of 2 seeds)" in r.stdout
    parents, children = _runs(tmp_path / "mlflow.db")
    assert len(children) == 4
    by_cfg = {}
    for ch in children:
        key = (ch.data.params["config/x"], ch.data.params["config/y"])
        by_cfg.setdefault(key, []).append((int(ch.data.params["seed"]), ch.data.metrics["objective"]))
        assert ch.info.run_name.endswith(f"seed={ch.data.params['seed']}")
    assert len(by_cfg) == 2 and all(sorted(s for s, _ in v) == [0, 1] for v in by_cfg.values())
    assert sorted(by_cfg[("0.6", "1.8")]) == [(0, 52.0), (1, pytest.approx(52.1))]
    p = parents[0]
    assert p.data.metrics["objective"] == pytest.approx(52.05) and p.data.params["config/seed"] == "0,1"
    assert "val/seg_Type 52.05 ± 0.07 over 2 seeds at the selected epoch" in p.data.tags["mlflow.note.content"]
    # Optuna was told each configuration's mean over its seeds (Ray Tune's Repeater).
    monkeypatch.syspath_prepend(str(FAKE))  # the searcher's pickle refers to the fake sweep's space
    state = pickle.loads(next((tmp_path / "ray_results" / "s2").glob("searcher-state-*.pkl")).read_bytes())
    told = sorted(round(t.value, 6) for t in state["_ot_study"].trials if t.value is not None)
    assert told == sorted(round(sum(v for _, v in runs) / 2, 6) for runs in by_cfg.values())

    nb = nbformat.read(ROOT / "notebooks" / "sweep_results.ipynb", as_version=4)
    before = set((ROOT / "notebooks").iterdir())
    os.environ["AVTUNE_MLFLOW_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        del os.environ["AVTUNE_MLFLOW_URI"]
    assert set((ROOT / "notebooks").iterdir()) == before  # no stray mlflow.db beside the notebook
    texts, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            texts.append(out.get("text", "") + out.get("data", {}).get("text/plain", "")
                         + out.get("data", {}).get("text/markdown", ""))
            images += "image/png" in out.get("data", {})
    text = "\n".join(texts)
    assert "ranked by val/seg_Type (max)" in text and "best: x=0.6 y=1.8 52.05" in text
    ranked = next(t for t in texts if "status" in t and "seed" in t).splitlines()
    # Trials ranked by their own selected-epoch objective: seed 1 of the best configuration first.
    first, second = ([float(v) for v in ranked[i].split()[:5]] for i in (1, 2))
    assert first == [1, 0.6, 1.8, 1, pytest.approx(52.1)] and second[3:] == [0, 52.0]
    assert re.search(r"x=0\.6 y=1\.8\s+2\s+52\.05", text)  # the configurations' mean over seeds
    assert "| best: x=0.6 y=1.8 | 52.0 ± 0.1 |" in text
    assert "Fanova" in text
    assert images == 4  # parallel coordinates, importances, learning curves, heatmap
