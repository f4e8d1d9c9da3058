"""Losses and label/noise estimators of the noise-tolerant AV action recognition method.

Notation: ``z_v``, ``z_a`` are L2-normalised shared-space embeddings (B, d); ``C`` and ``C'`` are
the two prototype sets (K, d), also normalised; ``S = cos / tau1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _dist_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, *, eps: float = 0.05, iters: int = 3,
             distributed: bool | None = None) -> torch.Tensor:
    """Equal-partition cluster assignments by Sinkhorn-Knopp over the (global) batch (Eq. 9).

    Solves ``max_Q tr(Q^T S) + eps H(Q)`` over the transport polytope where every sample carries
    mass 1/B and every prototype receives 1/K of the batch. Under ``torch.distributed`` the row
    and total sums are all-reduced, which is the same computation as on the concatenated global
    batch while each rank keeps only its own rows.

    Args:
        scores: (B_local, K) prototype scores (cosine similarities).
        eps: Entropic regularisation (the softness of the assignments).
        iters: Sinkhorn iterations.
        distributed: Use all-reduce across ranks (default: when torch.distributed is initialised).

    Returns:
        (B_local, K) assignments; each row sums to 1, each column sums to ~B_global / K.
    """
    dist = _dist_ready() if distributed is None else distributed
    # A common shift (the global max) keeps exp() in range without changing the solution.
    m = scores.double().max()
    if dist:
        torch.distributed.all_reduce(m, op=torch.distributed.ReduceOp.MAX)
    q = torch.exp((scores.double() - m) / eps).t()  # (K, B)
    k = q.shape[0]
    b = torch.tensor(float(q.shape[1]), dtype=q.dtype, device=q.device)
    if dist:
        torch.distributed.all_reduce(b)
    total = q.sum()
    if dist:
        torch.distributed.all_reduce(total)
    q = q / total
    for _ in range(iters):
        rows = q.sum(dim=1, keepdim=True)
        if dist:
            torch.distributed.all_reduce(rows)
        q = q / rows / k
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).t().to(scores.dtype)


@torch.no_grad()
def cross_modal_omega(z_v: torch.Tensor, z_a: torch.Tensor, *, top_n: int = 0,
                      epsilon_v: float = 0.5, epsilon_a: float = 0.5, tau1: float = 1.0,
                      chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-modal noise estimation (Eq. 2-6).

    For sample i, ``N_a(i)`` are the samples whose audio is similar to ``a_i`` (similarity above
    ``epsilon_a``, or the ``top_n`` most similar when ``top_n > 0``), self excluded;
    ``omega_v[i]`` is the mean visual similarity ``S(v_i, v_j)`` over ``j in N_a(i)``.
    Symmetrically ``omega_a[i]`` averages ``S(a_i, a_j)`` over the visual neighbours ``N_v(i)``.
    A clean pair agrees across modalities (its audio neighbours also look alike), so its omega is
    high; a video whose audio is unrelated gets neighbours that look unlike it. When the
    threshold selects nobody, the single most similar sample is used, so every sample gets an
    estimate.

    Args:
        z_v, z_a: (N, d) L2-normalised embeddings.
        top_n: Number of neighbours; 0 selects the threshold rule.
        epsilon_v, epsilon_a: Similarity thresholds (in units of ``S``) of the threshold rule.
        tau1: Temperature of ``S = cos / tau1``.
        chunk: Rows per block (memory is ``chunk * N``).

    Returns:
        ``(omega_v, omega_a)``, each (N,).
    """
    n = z_v.shape[0]
    om_v = torch.empty(n, dtype=z_v.dtype, device=z_v.device)
    om_a = torch.empty_like(om_v)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        sv = z_v[s:e] @ z_v.t() / tau1
        sa = z_a[s:e] @ z_a.t() / tau1
        rows = torch.arange(e - s, device=z_v.device)
        self_mask = torch.zeros_like(sv, dtype=torch.bool)
        self_mask[rows, rows + s] = True
        for sim_find, sim_use, eps, out in ((sa, sv, epsilon_a, om_v), (sv, sa, epsilon_v, om_a)):
            find = sim_find.masked_fill(self_mask, float("-inf"))
            if top_n > 0:
                idx = find.topk(min(top_n, n - 1), dim=1).indices
                out[s:e] = sim_use.gather(1, idx).mean(dim=1)
            else:
                sel = find > eps
                none = ~sel.any(dim=1)
                if none.any():
                    sel[none, find[none].argmax(dim=1)] = True
                out[s:e] = (sim_use * sel).sum(dim=1) / sel.sum(dim=1)
    return om_v, om_a


def omega_weights(omega_v: torch.Tensor, omega_a: torch.Tensor) -> torch.Tensor:
    """Per-sample weights of the swapped prediction from the two omegas.

    The mean of both directions, clipped at 0 (negative agreement means no trust) and rescaled to
    mean 1 over the training set so that the loss scale does not drift as omegas change.
    """
    w = ((omega_v + omega_a) / 2).clamp(min=0)
    m = w.mean()
    return w / m if m > 0 else torch.ones_like(w)


def _global_std(s: torch.Tensor) -> torch.Tensor:
    """Standard deviation of all entries of ``s`` over the global batch (all ranks)."""
    stats = torch.stack([s.sum(), (s * s).sum(), torch.tensor(float(s.numel()), dtype=s.dtype, device=s.device)])
    if _dist_ready():
        torch.distributed.all_reduce(stats)
    mean = stats[0] / stats[2]
    return (stats[1] / stats[2] - mean * mean).clamp(min=0).sqrt() + 1e-6


def instance_loss(z_v: torch.Tensor, z_a: torch.Tensor, protos: torch.Tensor, weights: torch.Tensor,
                  *, tau2: float = 0.1, sk_eps: float = 0.05, sk_iters: int = 3,
                  standardize: bool = False) -> torch.Tensor:
    """Instance-level swapped-prediction loss weighted by omega (Eq. 7-10).

    ``p_m(k|x) = softmax_k(z_m^T c_k / tau2)``; ``q_m`` = Sinkhorn equal-partition assignments of
    the batch scores of modality m; the loss is
    ``mean_i w_i * (H(q_a[i], p_v[i]) + H(q_v[i], p_a[i])) / 2`` (cross-entropies), so a clean pair
    teaches each modality to predict the other's cluster and a noisy pair (low omega) barely counts.

    With K prototypes and a d >= K dimensional space the swapped prediction has a trivial
    stationary point (log K): embeddings orthogonal to all prototypes, scores near zero, uniform
    Sinkhorn targets and uniform predictions. ``standardize=True`` (ours, off by default) divides
    the scores by their (global) batch standard deviation before Sinkhorn, so the targets stay as
    confident as ``sk_eps`` says whatever the score scale. With the paper's plain version
    (eps 0.05, 3 iterations) training on AR-sim sits near log K for the first ~10 epochs and then
    leaves it, ending where the standardised version ends (L_ins clip top-1 86.1 both ways).

    Raises:
        ValueError: If the (global) batch is not larger than the number of prototypes.
    """
    k = protos.shape[0]
    b = z_v.shape[0]
    if _dist_ready():
        t = torch.tensor([b], device=z_v.device)
        torch.distributed.all_reduce(t)
        b = int(t.item())
    if b <= k:
        raise ValueError(f"instance-level loss: batch size {b} must exceed the number of classes K={k} "
                         f"(Sinkhorn equal partition); raise batch_size")
    c = F.normalize(protos, dim=1)
    s_v, s_a = z_v @ c.t(), z_a @ c.t()
    if standardize:
        q_v = sinkhorn(s_v.detach() / _global_std(s_v.detach()), eps=sk_eps, iters=sk_iters)
        q_a = sinkhorn(s_a.detach() / _global_std(s_a.detach()), eps=sk_eps, iters=sk_iters)
    else:
        q_v = sinkhorn(s_v.detach(), eps=sk_eps, iters=sk_iters)
        q_a = sinkhorn(s_a.detach(), eps=sk_eps, iters=sk_iters)
    lp_v = F.log_softmax(s_v / tau2, dim=1)
    lp_a = F.log_softmax(s_a / tau2, dim=1)
    per = -((q_a * lp_v).sum(1) + (q_v * lp_a).sum(1)) / 2
    return (weights * per).mean()


class TiedAutoencoder(nn.Module):
    """One hidden layer, decoder weight = encoder weight transposed; shared by both modalities.

    Its input is a category representation, i.e. a vector over the (local) batch, so ``dim`` is
    the per-rank batch size.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden, dim) / dim**0.5)
        self.b_enc = nn.Parameter(torch.zeros(hidden))
        self.b_dec = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x @ self.weight.t() + self.b_enc)
        return h @ self.weight + self.b_dec


def category_representations(z: torch.Tensor, protos: torch.Tensor, tau2: float,
                             weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-class representations of a batch (K, B).

    Row k is prototype k's column of the batch's soft assignments,
    ``u_k = [softmax_j(z_i^T c'_j / tau2)[k]]_i``: which samples of the batch belong to class k.
    With ``weights`` (omega) each sample's entry is scaled, so samples whose audio and visual
    disagree shape the class representations less.
    """
    u = F.softmax(z @ F.normalize(protos, dim=1).t() / tau2, dim=1).t()
    return u if weights is None else u * weights[None, :]


def _class_nce(anchor: torch.Tensor, positive: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE over classes: row k of ``anchor`` must match row k of ``positive``, not the others."""
    logits = F.normalize(anchor, dim=1) @ F.normalize(positive, dim=1).t() / tau
    return F.cross_entropy(logits, torch.arange(anchor.shape[0], device=anchor.device))


def category_loss(z_v: torch.Tensor, z_a: torch.Tensor, protos: torch.Tensor, ae: TiedAutoencoder,
                  *, tau2: float = 0.1, tau_cat: float = 0.1,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """Category-level loss ``L_cat = (l_cv + l_ca + l_rv + l_ra) / 4`` (Eq. 11-13).

    Category representations ``u_v``, ``u_a`` (K, B) come from the second prototype set (see
    :func:`category_representations`); the shared tied-weight autoencoder reconstructs them
    (``r_v``, ``r_a``).

    * intra-modal (Eq. 12): ``l_rm = NCE(r_m, u_m)``, a class's reconstruction must identify its
      own category representation among the K of the same modality;
    * inter-modal (Eq. 13): ``l_cv = NCE(u_v, r_a)``, ``l_ca = NCE(u_a, r_v)``, the visual
      representation of a class must identify the same class's audio representation (through the
      shared autoencoder) and vice versa, i.e. both modalities must put the same samples in the
      same class, and different classes must select different samples.

    A class representation aggregates the whole batch, so it is a class-level, not an
    instance-level, constraint (instance contrast would reward the video-specific nuisance).
    Collapsing every sample onto one assignment makes all rows parallel and costs ``log K``.
    """
    u_v = category_representations(z_v, protos, tau2, weights)
    u_a = category_representations(z_a, protos, tau2, weights)
    r_v, r_a = ae(u_v), ae(u_a)
    l_rv = _class_nce(r_v, u_v, tau_cat)
    l_ra = _class_nce(r_a, u_a, tau_cat)
    l_cv = _class_nce(u_v, r_a, tau_cat)
    l_ca = _class_nce(u_a, r_v, tau_cat)
    return (l_cv + l_ca + l_rv + l_ra) / 4


@torch.no_grad()
def knn_correct(emb: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int,
                chunk: int = 2048) -> torch.Tensor:
    """Corrected labels: majority vote of the given labels of the k nearest neighbours.

    Neighbours by cosine similarity of ``emb`` (N, d), the sample itself excluded; ties go to the
    lowest class index.

    Returns:
        (N,) int64 corrected labels.
    """
    n = emb.shape[0]
    e = F.normalize(emb, dim=1)
    k = min(k, n - 1)
    out = torch.empty(n, dtype=torch.long, device=emb.device)
    for s in range(0, n, chunk):
        t = min(s + chunk, n)
        sim = e[s:t] @ e.t()
        r = torch.arange(t - s, device=emb.device)
        sim[r, r + s] = float("-inf")
        idx = sim.topk(k, dim=1).indices
        votes = torch.zeros(t - s, num_classes, device=emb.device)
        votes.scatter_add_(1, labels[idx], torch.ones_like(idx, dtype=votes.dtype))
        # argmax returns the first maximum: lowest class index on ties.
        out[s:t] = votes.argmax(dim=1)
    return out


def hybrid_loss(logits: torch.Tensor, y: torch.Tensor, y_hat: torch.Tensor, alpha: float) -> torch.Tensor:
    """Hybrid supervision (Eq. 17): cross-entropy against ``(1 - alpha) y + alpha y_hat``."""
    logp = F.log_softmax(logits, dim=1)
    return -((1 - alpha) * logp.gather(1, y[:, None]) + alpha * logp.gather(1, y_hat[:, None])).mean()


def rank_auc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """ROC AUC of ``scores`` separating ``positive`` from the rest (Mann-Whitney, average ranks).

    Returns NaN when one of the two groups is empty.
    """
    s = scores.detach().double().cpu()
    pos = positive.detach().bool().cpu()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(s)
    ss = s[order]
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, len(s) + 1, dtype=torch.double)
    # Average the ranks of tied scores.
    uniq, inv, counts = torch.unique_consecutive(ss, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg = ends - (counts.double() - 1) / 2
    ranks[order] = avg[inv]
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
