"""The ``avar`` trainable: noise-tolerant audio-visual action recognition (Algorithm 1).

Schedule (epochs counted from 0):

* ``warmup_epochs`` epochs of cross-entropy on the given labels;
* then phases alternate every epoch, Phase 1 first: Phase 1 trains encoders and prototypes with
  ``L_c = L_ins + L_cat`` (omega-weighted swapped prediction + category-level contrast), Phase 2
  trains everything with the hybrid loss against kNN-corrected labels.

Omega and the corrected labels are recomputed after every epoch from the current encoders (the
same weights the next epoch starts from, so this is the paper's "each epoch" estimate) and are
part of the checkpoint.

Variants: ``late_fusion_ce`` (cross-entropy on the given labels throughout), ``none`` (warm-up,
then hybrid supervision every epoch; no contrastive phase), ``ins`` (L_c = L_ins), ``cat``
(L_c = L_cat), ``full``.

Choices where the restated method leaves room (all documented at the function that makes them):

* Each epoch visits every training video once, with one random clip of its 10 (clip-level
  training, as with video backbones); evaluation scores all clips.
* Omega and kNN work on video-level embeddings (mean of the normalised clip embeddings); the kNN
  vote counts the given labels, ties go to the lowest class; omega of a pair is the mean of both
  directions, clipped at 0 and rescaled to mean 1; an empty threshold set falls back to the
  nearest neighbour.
* Sinkhorn is the paper's plain equal-partition Sinkhorn-Knopp on the raw cosine scores (eps 0.05,
  3 iterations). ``sinkhorn_standardize`` (ours, off) first divides the scores by their batch
  standard deviation (then use eps ~0.5), a guard against a collapse to uniform predictions (loss
  stuck at log K); the plain version does not need it on AR-sim: it sits near log K for ~10
  epochs, leaves it within ~20 and gives the same L_ins result (docs/benchmarks.md, "Action
  recognition").
* One Adam state serves both phases (the restated method names one Adam optimiser).
  ``phase_optimizers`` (ours, off) gives Phase 1 its own state; see the Config note and the
  measured variant table (docs/benchmarks.md) for why it matters for the ablation order.
* A category representation is prototype k's column of the batch's soft assignments (a vector
  over the batch), so the tied autoencoder's input width is the per-rank batch size and
  contrastive epochs drop the short last batch.
* A Phase 1 epoch updates encoders, prototypes and the autoencoder (the classifier gets no
  gradient); ``none`` runs Phase 2 every epoch after the warm-up.

Under ``torch.distributed`` every rank holds the full (small, resident) data set, takes its
``rank::world`` share of each global batch, averages gradients with all-reduce and runs Sinkhorn
over the global batch; omega/kNN are computed identically on every rank. The category-level
representations are built from each rank's own shard (a documented approximation).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from trainables.tasks.avar.data import AVARSplit, load_avar
from trainables.methods.avar.losses import (category_loss, cross_modal_omega, hybrid_loss, instance_loss,
                                    knn_correct, omega_weights, rank_auc)
from trainables.methods.avar.model import AVARNet
from trainables.data.format import read_meta
from trainables.core.dist import dist_info
from trainables.core.loop import Reporter, fit_loop
from trainables.core.config import check_fields, from_preset
from trainables.core.seed import set_seed

VARIANTS = ("late_fusion_ce", "none", "ins", "cat", "full")

# Named bundles of settings (Config.from_preset). ``paper``: the paper's values. ``sim``: the
# deviations the simulated sets need, being tiny next to Kinetics (2,000 training videos on
# avar-sim-small): the paper's lr 5e-5 barely moves the MLPs in 60 epochs. lr 3e-4 was chosen on
# the Full variant alone by an lr grid (docs/benchmarks.md, "Action recognition"), with narrower
# MLPs; the paper's neighbour and kNN sizes are kept.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "sim": dict(lr=3e-4, hidden_dim=256, embed_dim=128, cls_hidden=256, top_n=32, knn_k=10),
}


@dataclass
class Config:
    """Hyper-parameters; defaults are the paper's where it states them.

    Attributes:
        variant: One of ``late_fusion_ce``, ``none``, ``ins``, ``cat``, ``full``.
        epochs: Training epochs (paper: 60).
        batch_size: Global batch (paper: 64); must exceed K for the instance-level loss.
        lr: Adam learning rate (paper: 5e-5; the simulated data sets, being tiny next to
            Kinetics, need a larger one: see docs/benchmarks.md, "Action recognition").
        weight_decay: Adam weight decay.
        warmup_epochs: Cross-entropy warm-up epochs (paper: 2; Table VI: 0/2/5/10).
        hidden_dim: Encoder MLP hidden width.
        embed_dim: Shared-space size.
        cls_hidden: First classifier layer width.
        ae_hidden: Tied autoencoder code size (a bottleneck below the per-rank batch size, the
            autoencoder's input size).
        cat_omega: Also scale the category representations by the omega weights (an addition;
            the paper weights only the instance-level loss, Eq. 10).
        tau1: Temperature of the noise-estimation similarity (paper: 1).
        tau2: Prototype softmax temperature (paper: 0.1).
        tau_cat: Temperature of the category-level contrast.
        top_n: Neighbours for omega (paper: 16 on UCF101, 32 on Kinetics); 0 uses thresholds.
        epsilon_v: Visual similarity threshold of the threshold rule.
        epsilon_a: Audio similarity threshold of the threshold rule.
        sinkhorn_iters: Sinkhorn-Knopp iterations.
        sinkhorn_eps: Sinkhorn entropic regularisation (paper/SwAV: 0.05 on raw cosine scores;
            about 0.5 when ``sinkhorn_standardize``).
        sinkhorn_standardize: Ours, off by default: divide the scores by their batch std before
            Sinkhorn (guards against the collapse to uniform predictions that K <= d prototypes
            allow; see ``instance_loss``). Not needed on AR-sim v2 (measured at lr 1e-3: same
            L_ins clip top-1, 86.1 both ways; Full 89.3 with it vs 88.2 without, 3 seeds).
        knn_k: Neighbours voting for a corrected label.
        phase_optimizers: Ours, off by default: separate Adam states for Phase 1 (contrastive) and
            for the supervised epochs (warm-up, Phase 2). With one shared Adam (the default: the
            restated method names one Adam optimiser) the second-moment estimate mixes both
            phases' gradients, so a Phase 1 loss with larger gradients shrinks the steps of the next
            hybrid epoch and with them how far the classifier fits wrong corrected labels; on
            AR-sim at lr 1e-3 that coupling, not the representation, is what puts L_cat above
            L_ins (see docs/benchmarks.md, "Action recognition").
        alpha_start: Hybrid weight of the corrected label before ``alpha_switch_epoch`` (0.6).
        alpha_end: ... from ``alpha_switch_epoch`` on (0.8; use 0.9/0.9 on clean data).
        alpha_switch_epoch: Epoch at which alpha switches (paper: 20).
        seed: Seed for ``set_seed`` and the batch sampler.
        select_metric: Metric that selects the reported "best" epoch.
        eval_chunk: Clips per forward pass during evaluation.
    """

    variant: str = "full"
    epochs: int = 60
    batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_epochs: int = 2
    hidden_dim: int = 512
    embed_dim: int = 256
    cls_hidden: int = 512
    ae_hidden: int = 32
    tau1: float = 1.0
    tau2: float = 0.1
    tau_cat: float = 0.1
    cat_omega: bool = False
    top_n: int = 32
    epsilon_v: float = 0.5
    epsilon_a: float = 0.5
    sinkhorn_iters: int = 3
    sinkhorn_eps: float = 0.05
    sinkhorn_standardize: bool = False
    knn_k: int = 10
    phase_optimizers: bool = False
    alpha_start: float = 0.6
    alpha_end: float = 0.8
    alpha_switch_epoch: int = 20
    seed: int = 0
    select_metric: str = "val/clip_top1"
    eval_chunk: int = 8192

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Config":
        """The :data:`PRESETS` bundle ``name`` with ``overrides`` on top."""
        return from_preset(cls, PRESETS, "AVAR", name, overrides)

    def validate(self) -> None:
        """Raises ValueError naming the bad key (checks that need the data: :func:`check_data`)."""
        check_fields(self, choices={"variant": VARIANTS},
                     at_least_one=("epochs", "batch_size", "eval_chunk", "knn_k", "sinkhorn_iters"),
                     positive=("lr", "tau1", "tau2", "tau_cat", "sinkhorn_eps"),
                     non_negative=("warmup_epochs", "top_n", "weight_decay"),
                     unit=("alpha_start", "alpha_end"))


def phase_of(cfg: Config, epoch: int) -> str:
    """The phase of an epoch: ``warmup``, ``ce``, ``contrastive`` (Phase 1) or ``hybrid`` (Phase 2)."""
    if cfg.variant == "late_fusion_ce":
        return "ce"
    if epoch < cfg.warmup_epochs:
        return "warmup"
    if cfg.variant == "none":
        return "hybrid"
    return "contrastive" if (epoch - cfg.warmup_epochs) % 2 == 0 else "hybrid"


def alpha_at(cfg: Config, epoch: int) -> float:
    """The hybrid-supervision weight of the corrected labels in ``epoch``."""
    return cfg.alpha_start if epoch < cfg.alpha_switch_epoch else cfg.alpha_end


@torch.no_grad()
def video_embeddings(model: AVARNet, split: AVARSplit, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Video-level shared-space embeddings: mean of the normalised clip embeddings, renormalised."""
    n, t = split.visual.shape[:2]
    v = split.visual.reshape(n * t, -1)
    a = split.audio.reshape(n * t, -1)
    zs_v, zs_a = [], []
    for s in range(0, n * t, chunk):
        h_v, h_a = model.encode(v[s:s + chunk], a[s:s + chunk])
        zs_v.append(F.normalize(h_v, dim=1))
        zs_a.append(F.normalize(h_a, dim=1))
    z_v = torch.cat(zs_v).reshape(n, t, -1).mean(1)
    z_a = torch.cat(zs_a).reshape(n, t, -1).mean(1)
    return F.normalize(z_v, dim=1), F.normalize(z_a, dim=1)


@torch.no_grad()
def evaluate(model: AVARNet, split: AVARSplit, prefix: str, chunk: int = 8192) -> dict[str, float]:
    """Clip top-1/top-5 and video top-1 (mean of the clip softmax predictions), in percent.

    Scored against the clean labels where the split has them, else the given labels.
    """
    n, t = split.visual.shape[:2]
    y = split.clean_label if split.clean_label is not None else split.label
    v = split.visual.reshape(n * t, -1)
    a = split.audio.reshape(n * t, -1)
    logits = torch.cat([model(v[s:s + chunk], a[s:s + chunk]) for s in range(0, n * t, chunk)])
    yc = y.repeat_interleave(t)
    top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
    prob = F.softmax(logits, dim=1).reshape(n, t, -1).mean(1)
    return {
        f"{prefix}/clip_top1": 100.0 * (top5[:, 0] == yc).double().mean().item(),
        f"{prefix}/clip_top5": 100.0 * (top5 == yc[:, None]).any(1).double().mean().item(),
        f"{prefix}/video_top1": 100.0 * (prob.argmax(1) == y).double().mean().item(),
    }


def check_data(cfg: Config, num_classes: int) -> None:
    """The config checks that need the data set's number of classes K (run at plan time too).

    Raises:
        ValueError: ``batch_size`` too small for the instance-level loss.
    """
    if cfg.variant in ("ins", "full") and cfg.batch_size <= num_classes:
        raise ValueError(f"batch_size={cfg.batch_size} must exceed the number of classes K={num_classes} "
                         f"for the instance-level loss (Sinkhorn equal partition over the batch)")


def check_spec(cfg: Config, data_spec: str) -> None:
    """:func:`check_data` for a data spec (``avar-sim-small``, ``avar=PATH``), before any trial."""
    from trainables.data.registry import data_num_classes

    k = data_num_classes(data_spec)
    if k is not None:
        check_data(cfg, k)


def fit(cfg: Config, data_path: str | os.PathLike, *, reporter: Reporter | None = None,
        resume_state: dict[str, Any] | None = None, device: str | torch.device | None = None) -> dict[str, float]:
    """Trains the model and returns the selected epoch's metrics (:func:`trainables.core.loop.fit_result`).

    Args:
        cfg: Hyper-parameters.
        data_path: An AVAR data set (``avar-sim`` or ``avar`` kind) directory or file.
        reporter: Called as ``reporter(epoch, metrics, state_fn)`` after every epoch.
        resume_state: A dict returned by a ``state_fn`` to continue from.
        device: Torch device (default: CUDA when available, else CPU).

    Returns:
        The metrics of the epoch selected by ``cfg.select_metric`` (``val/...``, ``train/...``),
        ``test/...`` of the selected weights when the data set has a test split, ``best_epoch``,
        ``last_epoch``, ``last/val/...`` and ``seed``.
    """
    cfg.validate()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    seed = set_seed(cfg.seed)
    meta = read_meta(data_path)
    data = {"train": load_avar(data_path, "train").to(dev), "val": load_avar(data_path, "val").to(dev),
            "test": load_avar(data_path, "test").to(dev) if meta["splits"].get("test", 0) else None}
    train = data["train"]
    k = train.num_classes
    n, t = train.visual.shape[:2]
    if n == 0 or len(data["val"]) == 0:
        raise ValueError(f"{data_path}: fit needs videos in both the train and val splits "
                         f"(have {n} train, {len(data['val'])} val)")
    rank, world = dist_info()
    check_data(cfg, k)
    use_ins = cfg.variant in ("ins", "full")
    use_cat = cfg.variant in ("cat", "full")
    if cfg.batch_size < world:
        raise ValueError(f"batch_size={cfg.batch_size} is smaller than the world size {world}")
    if use_cat and cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the world size {world} "
                         f"(the category-level autoencoder's input is the per-rank batch)")

    model = AVARNet(train.visual.shape[-1], train.audio.shape[-1], k, hidden_dim=cfg.hidden_dim,
                    embed_dim=cfg.embed_dim, cls_hidden=cfg.cls_hidden, ae_hidden=cfg.ae_hidden,
                    ae_input=cfg.batch_size // world).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Ours (``phase_optimizers``): Phase 1 gets its own Adam state, so the contrastive losses'
    # gradient scale does not set the step size of the supervised epochs (see the Config note).
    opt_c = (torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
             if cfg.phase_optimizers else opt)

    def refresh() -> dict[str, torch.Tensor]:
        model.eval()
        z_v, z_a = video_embeddings(model, train, cfg.eval_chunk)
        om_v, om_a = cross_modal_omega(z_v, z_a, top_n=cfg.top_n, epsilon_v=cfg.epsilon_v,
                                       epsilon_a=cfg.epsilon_a, tau1=cfg.tau1)
        corrected = knn_correct(torch.cat([z_v, z_a], dim=1), train.label, k, cfg.knn_k)
        return {"omega_v": om_v, "omega_a": om_a, "corrected": corrected}

    if resume_state is not None:
        extra = resume_state["extra"]
        est = {key: extra[key].to(dev) for key in ("omega_v", "omega_a", "corrected")}
        if cfg.phase_optimizers:
            opt_c.load_state_dict(extra["optimizer_contrastive"])
    else:
        est = refresh()

    def extra_state() -> dict[str, Any]:
        s: dict[str, Any] = {key: v.cpu().clone() for key, v in est.items()}
        if cfg.phase_optimizers:
            s["optimizer_contrastive"] = copy.deepcopy(opt_c.state_dict())
        return s

    def epoch_fn(net, epoch: int, gen: torch.Generator) -> tuple[float, dict[str, float]]:
        phase, alpha = phase_of(cfg, epoch), alpha_at(cfg, epoch)
        weights = omega_weights(est["omega_v"], est["omega_a"])
        perm = torch.randperm(n, generator=gen).to(dev)
        clip = torch.randint(t, (n,), generator=gen).to(dev)
        step_opt = opt_c if phase == "contrastive" else opt
        total, steps = 0.0, 0
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            if phase == "contrastive" and ((use_ins and len(idx) <= k) or (use_cat and len(idx) < cfg.batch_size)):
                # The short tail cannot be equally partitioned into K clusters, nor fed to the
                # fixed-width category autoencoder.
                break
            if len(idx) < world:
                break
            idx = idx[rank::world]
            loss = _batch_loss(cfg, model, train, idx, clip, phase, alpha, est["corrected"], weights,
                               use_ins, use_cat)
            step_opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                for p in model.parameters():
                    if p.grad is not None:
                        torch.distributed.all_reduce(p.grad)
                        p.grad /= world
            step_opt.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1), {"train/alpha": alpha}

    def epoch_end(epoch: int) -> dict[str, float]:
        est.update(refresh())
        out: dict[str, float] = {}
        if train.clean_label is not None:
            out["train/corrected_label_acc"] = 100.0 * (est["corrected"] == train.clean_label).double().mean().item()
            out["train/given_label_acc"] = 100.0 * (train.label == train.clean_label).double().mean().item()
            out["train/omega_auc"] = rank_auc((est["omega_v"] + est["omega_a"]) / 2, train.corr_ok)
        return out

    result = fit_loop(cfg=cfg, model=model, data=data, device=dev, epoch_fn=epoch_fn, optimizer=opt,
                      evaluate_fn=lambda net, split: evaluate(net, data[split], split, cfg.eval_chunk),
                      reporter=reporter, resume_state=resume_state, epoch_end_fn=epoch_end,
                      extra_state_fn=extra_state)
    result["seed"] = float(seed)
    return result


def _batch_loss(cfg: Config, model: AVARNet, train: AVARSplit, idx: torch.Tensor, clip: torch.Tensor,
                phase: str, alpha: float, corrected: torch.Tensor, weights: torch.Tensor,
                use_ins: bool, use_cat: bool) -> torch.Tensor:
    """The loss of one batch of clips in ``phase`` (see the module docstring for the schedule)."""
    v, a = train.visual[idx, clip[idx]], train.audio[idx, clip[idx]]
    model.normalize_prototypes()
    h_v, h_a = model.encode(v, a)
    if phase in ("warmup", "ce"):
        return F.cross_entropy(model.classify(h_v, h_a), train.label[idx])
    if phase == "hybrid":
        return hybrid_loss(model.classify(h_v, h_a), train.label[idx], corrected[idx], alpha)
    z_v, z_a = F.normalize(h_v, dim=1), F.normalize(h_a, dim=1)
    loss = h_v.new_zeros(())
    if use_ins:
        loss = loss + instance_loss(z_v, z_a, model.protos, weights[idx], tau2=cfg.tau2,
                                    sk_eps=cfg.sinkhorn_eps, sk_iters=cfg.sinkhorn_iters,
                                    standardize=cfg.sinkhorn_standardize)
    if use_cat:
        loss = loss + category_loss(z_v, z_a, model.protos_cat, model.ae, tau2=cfg.tau2,
                                    tau_cat=cfg.tau_cat, weights=weights[idx] if cfg.cat_omega else None)
    return loss
