"""Golden figures: the exact validation metrics of each method after 2 epochs on a tiny preset.

They guard refactors: a change that moves any of these numbers changes behaviour, and must say so
(and re-pin them with ``python tests/golden/test_golden.py``, which prints the current figures).
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

from trainables.data.registry import resolve_data

# Keys pinned per method: the selected epoch's validation scores plus what the method adds.
VAL_KEYS = ("val/seg_A", "val/seg_V", "val/seg_Type", "val/event_Type", "train/loss")


def _han():
    from trainables.methods.han import train as han
    return han.fit(han.Config(epochs=2, seed=3), resolve_data("llp-sim-tiny"), device="cpu")


def _jomold(cache):
    from trainables.methods.jomold import train as jomold
    cfg = jomold.Config(epochs=2, estimator_epochs=2, seed=3, theta_v=3.0)
    return jomold.fit(cfg, resolve_data("llp-sim-tiny"), device="cpu", estimator_cache_dir=cache)


def _rlld():
    from trainables.methods.rlld.config import Config
    from trainables.methods.rlld.training import fit
    return fit(Config(epochs=2, seed=3), resolve_data("llp-sim-tiny"), device="cpu")


def _avar():
    from trainables.methods.avar import train
    return train.fit(train.Config(epochs=2, seed=3), resolve_data("avar-sim-tiny"), device="cpu")


def run(method: str, tmp) -> dict[str, float]:
    """The pinned figures of ``method`` (one thread, so the float reductions are reproducible)."""
    torch.set_num_threads(1)
    if method == "han":
        res, keys = _han(), VAL_KEYS
    elif method == "jomold":
        res = _jomold(tmp)
        keys = VAL_KEYS + ("denoise/removed_a", "denoise/removed_v")
    elif method == "rlld":
        res = _rlld()
        keys = VAL_KEYS + tuple(sorted(k for k in res if k.startswith("reward/")))
    else:
        res = _avar()
        keys = tuple(sorted(k for k in res if k.startswith("val/")))
    return {k: float(res[k]) for k in keys}


GOLDEN: dict[str, dict[str, float]] = {
    "avar": {
        "val/clip_top1": 32.5,
        "val/clip_top5": 100.0,
        "val/video_top1": 25.0
    },
    "han": {
        "train/loss": 1.765260934829712,
        "val/event_Type": 10.141782407407407,
        "val/seg_A": 20.65689544320059,
        "val/seg_Type": 15.449949745494443,
        "val/seg_V": 14.081405619234566
    },
    "jomold": {
        "denoise/removed_a": 0.0,
        "denoise/removed_v": 49.0,
        "train/loss": 1.7653298377990723,
        "val/event_Type": 8.796296296296296,
        "val/seg_A": 18.38354379484894,
        "val/seg_Type": 12.88853135759579,
        "val/seg_V": 10.590786680424838
    },
    "rlld": {
        "reward/applied": 3.0,
        "reward/duplicates": 0.0,
        # Re-pinned in session 7: the agent now uses HAN's attention layer (one definition), whose
        # feed-forward block has HAN's second dropout and draws its dropout masks in HAN's order.
        # Eval-mode outputs are unchanged (same init, max |diff| 1.2e-7); training draws differ.
        "reward/inter": 0.7955641746520996,
        "reward/pending": 0.0,
        "reward/pool_duplicates": 0.0,
        "reward/resubmits": 0.0,
        "reward/terminal_a": 0.02084706232575331,
        "reward/terminal_v": 0.016319444444444445,
        "train/loss": 1.4593688646952312,
        "val/event_Type": 10.894097222222223,
        "val/seg_A": 19.89115944308959,
        "val/seg_Type": 14.620164832408447,
        "val/seg_V": 13.413558110491161
    },
}


@pytest.mark.parametrize("method", sorted(GOLDEN))
def test_golden_figures(method, tmp_path):
    got = run(method, tmp_path)
    want = GOLDEN[method]
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-9), (method, k, got[k], v)


if __name__ == "__main__":
    import tempfile
    out = {m: run(m, tempfile.mkdtemp()) for m in (sys.argv[1:] or ("han", "jomold", "rlld", "avar"))}
    print(json.dumps(out, indent=4, sort_keys=True))
