"""Sinkhorn, omega, kNN correction, hybrid loss and rank AUC against plain references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainables.methods.avar.losses import (category_loss, cross_modal_omega, hybrid_loss, instance_loss,
                                    knn_correct, omega_weights, rank_auc, sinkhorn, TiedAutoencoder)


def _unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


@pytest.mark.parametrize("b, k", [(64, 10), (33, 32), (200, 7)])
def test_sinkhorn_equal_partition_marginals(b, k):
    scores = _unit(b, 16, 0) @ _unit(k, 16, 1).t()
    q = sinkhorn(scores, eps=0.05, iters=200)
    assert q.shape == (b, k)
    # Every sample is fully assigned; every prototype receives B/K samples.
    torch.testing.assert_close(q.sum(1), torch.ones(b, dtype=q.dtype))
    torch.testing.assert_close(q.sum(0), torch.full((k,), b / k, dtype=q.dtype), rtol=1e-4, atol=1e-4)
    # Assignments follow the scores: the argmax agrees with the score argmax for most samples
    # (equal partition forbids it for all).
    assert (q.argmax(1) == scores.argmax(1)).double().mean() > 0.5


def test_sinkhorn_few_iterations_rows_exact_columns_close():
    scores = _unit(128, 16, 2) @ _unit(8, 16, 3).t()
    q = sinkhorn(scores, eps=0.05, iters=3)
    torch.testing.assert_close(q.sum(1), torch.ones(128, dtype=q.dtype))
    assert (q.sum(0) - 16).abs().max() < 4  # roughly balanced after 3 iterations


def _omega_reference(zv, za, top_n, eps_v, eps_a):
    zv, za = zv.numpy(), za.numpy()
    n = len(zv)
    sv, sa = zv @ zv.T, za @ za.T
    om_v, om_a = np.zeros(n), np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for find, use, eps, out in ((sa, sv, eps_a, om_v), (sv, sa, eps_v, om_a)):
            if top_n:
                nb = sorted(others, key=lambda j: -find[i, j])[:top_n]
            else:
                nb = [j for j in others if find[i, j] > eps]
                if not nb:
                    nb = [max(others, key=lambda j: find[i, j])]
            out[i] = np.mean([use[i, j] for j in nb])
    return om_v, om_a


@pytest.mark.parametrize("top_n, eps", [(5, 0.0), (1, 0.0), (0, 0.2), (0, 0.95)])
def test_omega_matches_plain_reference(top_n, eps):
    zv, za = _unit(40, 4, 5), _unit(40, 3, 6)
    om_v, om_a = cross_modal_omega(zv, za, top_n=top_n, epsilon_v=eps, epsilon_a=eps, chunk=7)
    ref_v, ref_a = _omega_reference(zv, za, top_n, eps, eps)
    np.testing.assert_allclose(om_v.numpy(), ref_v, atol=1e-10)
    np.testing.assert_allclose(om_a.numpy(), ref_a, atol=1e-10)


def test_omega_separates_mismatched_pairs():
    # Visual and audio both encode a class; pairs 0..9 get audio of another random class.
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 6
    pv, pa = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    ya = y.clone()
    ya[:10] = (y[:10] + 3) % 6
    zv = F.normalize(pv[y] + 0.3 * torch.randn(60, 8, generator=g), dim=1)
    za = F.normalize(pa[ya] + 0.3 * torch.randn(60, 8, generator=g), dim=1)
    om_v, om_a = cross_modal_omega(zv, za, top_n=5)
    ok = torch.ones(60, dtype=torch.bool)
    ok[:10] = False
    assert rank_auc(om_v + om_a, ok) > 0.95
    w = omega_weights(om_v, om_a)
    assert w.mean().item() == pytest.approx(1.0) and (w >= 0).all()
    assert w[:10].mean() < 0.5 * w[10:].mean()


def _knn_reference(emb, labels, num_classes, k):
    e = emb.numpy() / np.linalg.norm(emb.numpy(), axis=1, keepdims=True)
    out = []
    for i in range(len(e)):
        sims = [(e[i] @ e[j], j) for j in range(len(e)) if j != i]
        # Stable order: by similarity, then by index (topk on distinct floats is unambiguous).
        nb = [j for _, j in sorted(sims, key=lambda t: -t[0])[:k]]
        votes = np.bincount(labels.numpy()[nb], minlength=num_classes)
        out.append(int(np.argmax(votes)))  # first maximum: lowest class on ties
    return np.array(out)


@pytest.mark.parametrize("k", [1, 4, 7])
def test_knn_correction_matches_plain_reference(k):
    g = torch.Generator().manual_seed(k)
    emb = torch.randn(50, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (50,), generator=g)
    out = knn_correct(emb, labels, 4, k, chunk=9)
    np.testing.assert_array_equal(out.numpy(), _knn_reference(emb, labels, 4, k))


def test_knn_correction_repairs_noisy_labels_in_clusters():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(200) % 5
    emb = torch.eye(5)[y] * 3 + 0.2 * torch.randn(200, 5, generator=g)
    noisy = y.clone()
    flip = torch.rand(200, generator=g) < 0.4
    noisy[flip] = (y[flip] + torch.randint(1, 5, (int(flip.sum()),), generator=g)) % 5
    out = knn_correct(emb, noisy, 5, 15)
    assert (out == y).double().mean() > 0.97
    assert (noisy == y).double().mean() < 0.7


def test_hybrid_loss_equals_mixed_target_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    yh = torch.tensor([0, 2, 2, 1, 3, 1])
    target = 0.3 * F.one_hot(y, 4) + 0.7 * F.one_hot(yh, 4)
    ref = -(target * F.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(hybrid_loss(logits, y, yh, 0.7), ref)
    torch.testing.assert_close(hybrid_loss(logits, y, y, 0.7), F.cross_entropy(logits, y))


def test_rank_auc_matches_pairwise_count_with_ties():
    s = torch.tensor([0.1, 0.4, 0.4, 0.9, 0.2, 0.4, 0.7])
    pos = torch.tensor([0, 1, 0, 1, 0, 1, 1], dtype=torch.bool)
    p, n = s[pos], s[~pos]
    ref = ((p[:, None] > n[None]).double() + 0.5 * (p[:, None] == n[None]).double()).mean().item()
    assert rank_auc(s, pos) == pytest.approx(ref)
    assert rank_auc(torch.tensor([1.0, 2.0]), torch.tensor([False, True])) == 1.0
    assert np.isnan(rank_auc(s, torch.ones(7, dtype=torch.bool)))


def test_instance_loss_rejects_batch_not_larger_than_k():
    z = _unit(10, 8, 0).float()
    protos = _unit(10, 8, 1).float()
    with pytest.raises(ValueError, match="batch size 10 must exceed the number of classes K=10"):
        instance_loss(z, z, protos, torch.ones(10))


def test_instance_loss_weights_and_gradients():
    zv = _unit(32, 8, 0).float().requires_grad_()
    za = _unit(32, 8, 1).float()
    protos = _unit(4, 8, 2).float()
    w = torch.ones(32)
    full = instance_loss(zv, za, protos, w)
    half = instance_loss(zv, za, protos, torch.cat([torch.ones(16), torch.zeros(16)]))
    assert 0 < half.item() < full.item()
    # Zero weight on every sample gives no loss and no gradient.
    zero = instance_loss(zv, za, protos, torch.zeros(32))
    assert zero.item() == 0.0
    full.backward()
    assert zv.grad is not None and zv.grad.abs().sum() > 0


def test_category_loss_rewards_class_structure():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 4
    base = F.normalize(torch.randn(4, 16, generator=g), dim=1)
    protos = base.clone()  # prototypes at the class centres
    zv = F.normalize(base[y] + 0.05 * torch.randn(64, 16, generator=g), dim=1)
    za = F.normalize(base[y] + 0.05 * torch.randn(64, 16, generator=g), dim=1)
    torch.manual_seed(0)
    ae = TiedAutoencoder(64, 16)  # input: the batch size
    structured = category_loss(zv, za, protos, ae).item()
    collapsed = category_loss(F.normalize(torch.ones(64, 16), dim=1), F.normalize(torch.ones(64, 16), dim=1),
                              protos, ae).item()
    # Collapse costs log K; distinct class representations cost less.
    assert collapsed == pytest.approx(np.log(4), abs=1e-4)
    assert structured < collapsed


def test_sinkhorn_hand_checked_two_by_two():
    # exp(scores / eps) = M = [[4, 1], [2, 1]]: both samples prefer prototype 0. By hand, one
    # iteration (prototype rows to 1/K, then sample columns to 1/B, times B) gives
    # [[4/7, 3/7], [2/5, 3/5]]; the converged equal partition is diag(a) M diag(b) with unit rows
    # and unit columns, i.e. b0/b1 = 1/(2 sqrt 2): [[2 - sqrt2, sqrt2 - 1], [sqrt2 - 1, 2 - sqrt2]]
    # (the weaker preference, sample 1, gives way).
    eps = 0.05
    scores = eps * torch.log(torch.tensor([[4.0, 1.0], [2.0, 1.0]], dtype=torch.float64))
    one = sinkhorn(scores, eps=eps, iters=1, distributed=False)
    torch.testing.assert_close(one, torch.tensor([[4 / 7, 3 / 7], [2 / 5, 3 / 5]], dtype=torch.float64))
    r2 = 2 ** 0.5
    conv = sinkhorn(scores, eps=eps, iters=500, distributed=False)
    torch.testing.assert_close(conv, torch.tensor([[2 - r2, r2 - 1], [r2 - 1, 2 - r2]], dtype=torch.float64))
    # A common shift of all scores (what the max-subtraction does) changes nothing.
    torch.testing.assert_close(sinkhorn(scores + 3.0, eps=eps, iters=1, distributed=False), one)


def test_omega_hand_checked_known_noisy_pair():
    # Samples 0-2 look like class A (e1), 3-5 like class B (e2); audio matches except sample 2,
    # whose audio is class B's (a noisy correspondence). Threshold rule, eps 0.5:
    #   omega_v[i] = mean visual sim over i's audio neighbours: s0 -> {1}: 1; s2 -> {3,4,5}: 0;
    #                s3 -> {2,4,5}: (0+1+1)/3;
    #   omega_a[i] = mean audio sim over i's visual neighbours: s0 -> {1,2}: (1+0)/2; s2 -> {0,1}: 0;
    #                s3 -> {4,5}: 1.
    e1, e2 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    zv = torch.stack([e1, e1, e1, e2, e2, e2])
    za = torch.stack([e1, e1, e2, e2, e2, e2])
    om_v, om_a = cross_modal_omega(zv, za, top_n=0, epsilon_v=0.5, epsilon_a=0.5)
    torch.testing.assert_close(om_v, torch.tensor([1, 1, 0, 2 / 3, 2 / 3, 2 / 3], dtype=torch.float64))
    torch.testing.assert_close(om_a, torch.tensor([0.5, 0.5, 0, 1, 1, 1], dtype=torch.float64))
    w = omega_weights(om_v, om_a)
    # (omega_v + omega_a) / 2 = [3/4, 3/4, 0, 5/6, 5/6, 5/6], rescaled to mean 1 (sum 4 -> 6/4).
    torch.testing.assert_close(w, torch.tensor([9 / 8, 9 / 8, 0, 5 / 4, 5 / 4, 5 / 4], dtype=torch.float64))
    assert rank_auc((om_v + om_a) / 2, torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool)) == 1.0
