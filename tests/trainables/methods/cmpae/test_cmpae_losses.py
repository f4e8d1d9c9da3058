"""CMPAE's mutual learning term against a plain per-entry reference, and where its gradient goes."""

from __future__ import annotations

import pytest
import torch

from trainables.methods.cmpae.losses import mutual_learning_loss


def ref_mutual(y, g, a, v, ua, uv, ug, to_global, floor=0.9, lam=1.0):
    """One (video, class) entry at a time, from the equations in the module docstring."""
    total, n = 0.0, 0
    for i in range(y.shape[0]):
        u_g = max(float(ug[i]), floor)
        w = u_g if to_global else 1.0 - u_g
        for c in range(y.shape[1]):
            ai, vi = float(a[i, c]), float(v[i, c])
            m, u_m = (ai, float(ua[i, c])) if ai >= vi else (vi, float(uv[i, c]))
            mu, u_bar = (ai + vi) / 2, (float(ua[i, c]) + float(uv[i, c])) / 2
            gi = float(g[i, c])
            if float(y[i, c]) > 0:
                total += w * (1 - u_m) * (gi - m) ** 2
            else:
                total += w * lam * (1 - u_bar) * (gi - mu) ** 2
            n += 1
    return total / n


def _batch(seed=0, b=6, c=5):
    gen = torch.Generator().manual_seed(seed)
    r = lambda: torch.rand(b, c, generator=gen, dtype=torch.float64)  # noqa: E731
    y = (r() < 0.4).double()
    ug = torch.rand(b, generator=gen, dtype=torch.float64) * 0.2 + 0.85  # some below the floor
    return y, r(), r(), r(), r(), r(), ug


@pytest.mark.parametrize("to_global", [True, False])
def test_mutual_term_equals_the_plain_reference(to_global):
    y, g, a, v, ua, uv, ug = _batch()
    got = mutual_learning_loss(y, g, a, v, ua, uv, ug, to_global=to_global)
    assert float(got) == pytest.approx(ref_mutual(y, g, a, v, ua, uv, ug, to_global), rel=1e-6)
    got = mutual_learning_loss(y, g, a, v, ua, uv, ug, to_global=to_global, uct_floor=0.95,
                               neg_weight=0.3, reduction="sum")
    want = ref_mutual(y, g, a, v, ua, uv, ug, to_global, 0.95, 0.3) * y.numel()
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_each_direction_moves_only_its_side_and_the_uncertainties():
    y, *rest = _batch(1)
    for to_global in (True, False):
        g, a, v, ua, uv, ug = (t.clone().requires_grad_(True) for t in rest)
        mutual_learning_loss(y, g, a, v, ua, uv, ug, to_global=to_global).backward()
        moved = {n: t.grad is not None and bool(t.grad.abs().sum() > 0)
                 for n, t in zip(("g", "a", "v", "ua", "uv"), (g, a, v, ua, uv))}
        assert moved == {"g": to_global, "a": not to_global, "v": not to_global, "ua": True,
                         "uv": True}, (to_global, moved)
        # The global uncertainty gets gradient only where it is above the floor.
        above = ug.detach() > 0.9
        assert (ug.grad[~above] == 0).all() and (ug.grad[above] != 0).all()


def test_towards_the_modalities_is_weak_while_the_global_branch_is_uncertain():
    y, g, a, v, ua, uv, _ = _batch(2)
    ug = torch.ones(y.shape[0], dtype=torch.float64)  # u_g = 1: the modalities learn nothing
    assert float(mutual_learning_loss(y, g, a, v, ua, uv, ug, to_global=False)) == 0.0
    assert float(mutual_learning_loss(y, g, a, v, ua, uv, ug, to_global=True)) > 0.0
    with pytest.raises(ValueError, match="reduction"):
        mutual_learning_loss(y, g, a, v, ua, uv, ug, to_global=True, reduction="none")
