"""Golden figures: the metrics of every discovered method after a tiny fixed-seed run.

They guard refactors: a change that moves any of these numbers changes behaviour, and must say so
in the method's ``tests/golden/<method>.json`` (its ``why``) when it re-pins them with
``python tests/golden/test_golden.py METHOD... --write`` (without ``--write`` it prints them).

Each JSON holds the run (``config`` overrides on top of the method's ``smoke`` settings, on the
task's tiny preset, one thread, on the CPU), ``counts`` (compared exactly) and ``values`` (floats,
compared to :data:`REL`).

Why these tolerances hold on any x86 CPU and thread count:

* **Counts** (removed labels, applied rewards, flipped pseudo labels) are integers: exact.
* **Values** are float32 computations: the order in which BLAS and ATen kernels accumulate sums
  depends on the CPU's instruction set (AVX2, AVX-512, the vendor's code path in MKL), so one
  operation's result may differ by a few units in the last place (~1e-7 relative); two epochs of
  training carry that to the losses. Measured: RLLD's ``train/loss`` differs by 1.1e-7 relative
  between the machine it was first pinned on and an AMD EPYC (AVX-512); on that EPYC, ATen's
  kernels forced to AVX2 or to no vectorisation (``ATEN_CPU_CAPABILITY``), or 2 threads instead
  of 1, move RLLD's and VAPLAN's losses by at most 1.1e-7 relative and nothing else. Input
  features perturbed by 1e-5 relative (about 100 times float32 rounding) moved VAPLAN's loss by
  5e-6 and HAN's, JoMoLD's and RLLD's by at most 5e-7. :data:`REL` = 1e-5 is about 100 times the
  cross-CPU difference, and far below what a change of the computation does to a loss.
* F-scores and accuracies are step functions of thresholded probabilities: they move only when a
  decision crosses its threshold, by at least one decision's share (> 1e-3 relative on the tiny
  splits). Features perturbed by 1e-3 relative (10^4 times float32 rounding) left every pinned
  score of HAN, JoMoLD, RLLD and VAPLAN unchanged, so under :data:`REL` a score is in effect
  exact, and a flipped decision is a real change.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import pytest
import torch

from orchestrator.methods import discover, get_task, load
from trainables.core.config import build_config
from trainables.data.registry import resolve_data

HERE = Path(__file__).resolve().parent
REL = 1e-5
METHODS = discover()


def golden_file(method: str) -> Path:
    return HERE / f"{method}.json"


def default_keys(method: str) -> list[str]:
    """What a new method pins until its JSON says otherwise: the loss and the validation scores."""
    task = get_task(METHODS[method].task)
    return ["train/loss", *(f"val/{k}" for k in task.score_keys)]


def run(method: str, golden: dict) -> dict[str, float]:
    """The figures of ``method``'s golden run (one thread, so the float reductions are repeatable
    on one machine; :data:`REL` covers other machines)."""
    torch.set_num_threads(1)
    spec = METHODS[method]
    task = get_task(spec.task)
    cfg = build_config(load(method).Config, {**spec.smoke, **golden.get("config", {})})
    res = load(method).fit(cfg, resolve_data(golden.get("data", task.tiny_data)), device="cpu")
    keys = [*golden.get("counts", {}), *golden.get("values", {})] or default_keys(method)
    missing = [k for k in keys if k not in res]
    if missing:
        raise KeyError(f"{method}: the result has no {missing}")
    return {k: float(res[k]) for k in keys}


def split_figures(got: dict[str, float], golden: dict) -> dict:
    """``got`` in the JSON's layout: integers under ``counts``, the rest under ``values``."""
    counts = set(golden.get("counts", {})) or {k for k, v in got.items() if k.startswith("denoise/removed")}
    return {"counts": {k: int(v) for k, v in got.items() if k in counts},
            "values": {k: v for k, v in got.items() if k not in counts}}


def load_golden(method: str) -> dict:
    path = golden_file(method)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no golden figures for method {method!r}; pin them with "
                                f"python tests/golden/test_golden.py {method} --write")
    return json.loads(path.read_text())


@pytest.mark.parametrize("method", sorted(METHODS))
def test_golden_figures(method):
    golden = load_golden(method)
    got = run(method, golden)
    for k, want in golden.get("counts", {}).items():
        assert got[k] == want, (method, k, got[k], want)
    for k, want in golden["values"].items():
        assert math.isclose(got[k], want, rel_tol=REL, abs_tol=1e-12), (method, k, got[k], want)
    assert set(got) == {*golden.get("counts", {}), *golden["values"]}


def test_every_golden_file_belongs_to_a_method():
    stray = sorted(p.stem for p in HERE.glob("*.json") if p.stem not in METHODS)
    assert not stray, f"golden files of no discovered method: {stray}"


def main() -> None:
    p = argparse.ArgumentParser(description="Print (or --write) the golden figures of methods.")
    p.add_argument("methods", nargs="*", default=sorted(METHODS))
    p.add_argument("--write", action="store_true",
                   help="rewrite each method's JSON with the figures (edit its 'why' by hand)")
    args = p.parse_args()
    for m in args.methods:
        path = golden_file(m)
        golden = json.loads(path.read_text()) if path.exists() else {"why": "", "config": {"epochs": 2, "seed": 3}}
        golden.update(split_figures(run(m, golden), golden))
        text = json.dumps(golden, indent=4) + "\n"
        if args.write:
            tmp = Path(tempfile.mkstemp(dir=HERE, suffix=".tmp")[1])
            tmp.write_text(text)
            tmp.replace(path)
        print(f"{m}: {text}")


if __name__ == "__main__":
    main()
