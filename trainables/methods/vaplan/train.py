"""VAPLAN (Zhou et al.): HAN trained on segment-wise pseudo labels from CLIP/CLAP teachers.

Three stages, each a module of this package:

* **PLG** (:mod:`.pseudo`, :mod:`.labels`): teacher scores ``s`` per segment and class, thresholded
  (``tau_v`` 0.041, ``tau_a`` 0.038) and ANDed with the weak label: segment pseudo labels ``Y``.
* **PLE** (:mod:`.losses`): ``L = L_V + lambda L_S`` with the video-level pseudo labels in ``L_V``
  and the richness-aware loss ``L_S`` on the segment probabilities (lambda 0.5).
* **PLD** (:mod:`.denoise`): a first-stage model trained with ``L`` re-labels the training set
  (flip where ``BCE(P, Y) > alpha * mean of the K smallest``), and the model is retrained on the
  refined labels. The paper's final setup refines the **visual** labels only
  (``pld_modalities=("visual",)``, preset ``paper``); preset ``pld_both`` refines the audio labels
  too, with the audio K/alpha (6/400) of the paper's ablation. The first stage predicts in float32
  with autocast off (PLD compares losses near 0, which bf16 rounds away). It is cached
  (:mod:`trainables.core.stage_cache`) by its training settings and a digest of the train labels
  it learns from, so trials that differ only in PLD settings (K, alpha, modalities), or in PLG
  settings that give the same labels, share one.

``variant`` picks the paper's Table 5 row: ``han`` (1: HAN on the weak labels with Eq. 2's label
smoothing, ``smooth_a``/``smooth_v``), ``video`` (2, PLG video-level labels only), ``segment_bce``
(3, + naive segment BCE), ``richness`` (4, L_V + lambda L_S), ``full`` (5, + PLD); Table 6's
``sr_only`` and ``cr_only``. Training: the HAN backbone, Adam lr 3e-4, batch 32, 30 epochs (the
paper's); the learning-rate schedule, which the paper does not give, is HAN's (StepLR), as the HAN
code VAPLAN builds on.

The pseudo-label quality on val (where the data has truth) is logged every epoch;
``pseudo/final_seg_F``, the mean over modalities of the segment-level F of the labels the final
model is trained on (after PLD for ``full``), is the paper's criterion for tau, the prompts and
K/alpha (its Tables 1-4), and the metric ``vaplan_thresholds`` optimises.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import torch

from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.core.config import check_fields, from_preset
from trainables.core.seed import set_seed
from trainables.core.stage_cache import cached_stage, stage_key
from trainables.data.format import fingerprint
from trainables.methods.vaplan import labels as pl
from trainables.methods.vaplan.denoise import (ALPHA_AUDIO, ALPHA_VISUAL, K_AUDIO, K_VISUAL,
                                               denoise_pseudo_labels)
from trainables.methods.vaplan.losses import LAMBDA, MASKS, VARIANTS as LOSS_VARIANTS, ple_loss
from trainables.methods.vaplan.pseudo import (AUDIO_PROMPTS, TAU_AUDIO, TAU_VISUAL, VISUAL_PROMPTS)
from trainables.methods.vaplan import QUALITY_KEY
from trainables.tasks.avvp import backbone as bb
from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp.pseudo_labels import SHORT

log = logging.getLogger(__name__)

VARIANTS = ("han", "video", "segment_bce", "richness", "full", "sr_only", "cr_only")
TEACHERS = ("auto", "data", "sim", "truth")
MODALITIES = ("visual", "audio")
# Fields that only the second (PLD) stage reads: trials differing only here share the first stage.
PLD_FIELDS = ("pld_modalities", "pld_k_v", "pld_alpha_v", "pld_k_a", "pld_alpha_a", "variant", "epochs")
# Fields that decide only the PLG labels: the first stage is keyed by a digest of the labels instead.
LABEL_FIELDS = ("tau_v", "tau_a", "prompt_v", "prompt_a", "teacher", "teacher_seed")
# Row (1)'s label smoothing (Eq. 2, HAN's): the VAPLAN paper defers to HAN, whose official code
# smooths the visual targets with 0.9 (``0.9*y + 0.05``) and leaves the audio ones hard.
HAN_SMOOTH_A = 1.0
HAN_SMOOTH_V = 0.9

# Named bundles of settings (Config.from_preset). ``paper``: the paper's final setup (the
# defaults); ``pld_both``: PLD on both modalities, its ablation.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "pld_both": {"pld_modalities": MODALITIES},
}


@dataclass
class Config(bb.BackboneConfig):
    """VAPLAN's configuration: the HAN backbone's fields plus the pseudo-label stages (paper
    defaults).

    Attributes:
        variant: Table 5/6 row (module docstring).
        tau_v: Visual PLG threshold on the softmax scores (paper: 0.041).
        tau_a: Audio PLG threshold (paper: 0.038).
        prompt_v: Visual prompt template (VP1 default; VP2-VP4), for teachers from the data.
        prompt_a: Audio prompt template (AP2 default; AP1).
        lam: Weight lambda of the richness loss (paper: 0.5).
        richness_mask: Reading of pcr: ``label`` (P masked by the weak label; default) or ``none``
            (the literal unmasked sum, clamped); see :mod:`.losses`.
        smooth_a: Label smoothing of row (1) (``han``) only, audio (Eq. 2: 1.0, none);
            ``smooth_v``: visual (0.9). The other variants train on pseudo labels, unsmoothed.
        pld_modalities: Which modalities' labels PLD refines: ``("visual",)`` (the paper's final
            setup) or ``("visual", "audio")`` (its ablation; preset ``pld_both``).
        pld_k_v: PLD's K for the visual labels (paper: 5). ``pld_alpha_v``: its alpha (30).
        pld_k_a: PLD's K for the audio labels (paper's ablation: 6). ``pld_alpha_a``: its alpha
            (400). Read only when ``"audio"`` is in ``pld_modalities``.
        stage1_epochs: Epochs of the first-stage model that PLD re-labels with (default: as
            ``epochs``, the paper's "train with L, then refine, retrain").
        teacher: ``auto``, ``data`` (embedding columns of the data set), ``sim`` (LLP-sim) or
            ``truth`` (the oracle: the hidden truth as segment labels; an upper bound, LLP-sim only).
        teacher_seed: Seed of the simulated teachers.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-4
    variant: str = "full"
    tau_v: float = TAU_VISUAL
    tau_a: float = TAU_AUDIO
    prompt_v: str = "VP1"
    prompt_a: str = "AP2"
    lam: float = LAMBDA
    richness_mask: str = "label"
    smooth_a: float = HAN_SMOOTH_A
    smooth_v: float = HAN_SMOOTH_V
    pld_modalities: tuple[str, ...] = ("visual",)
    pld_k_v: int = K_VISUAL
    pld_alpha_v: float = ALPHA_VISUAL
    pld_k_a: int = K_AUDIO
    pld_alpha_a: float = ALPHA_AUDIO
    stage1_epochs: int = 30
    teacher: str = "auto"
    teacher_seed: int = 0

    def validate(self) -> None:
        """Raises ValueError naming the bad key."""
        super().validate()
        check_fields(self, choices={"variant": VARIANTS, "teacher": TEACHERS, "richness_mask": MASKS,
                                    "prompt_v": tuple(VISUAL_PROMPTS), "prompt_a": tuple(AUDIO_PROMPTS)},
                     at_least_one=("pld_k_v", "pld_k_a", "stage1_epochs"),
                     positive=("pld_alpha_v", "pld_alpha_a"), non_negative=("lam",),
                     unit=("tau_v", "tau_a"))
        mods = self.pld_modalities
        if (not isinstance(mods, (tuple, list)) or not mods or len(set(mods)) != len(mods)
                or not set(mods) <= set(MODALITIES)):
            raise ValueError(f"pld_modalities must be a non-empty subset of {list(MODALITIES)}, got {mods!r}")

    def __post_init__(self) -> None:
        # One spelling of each set: a tuple in MODALITIES order, from a list or ``"visual,audio"``
        # (what ``--set pld_modalities=...`` gives).
        mods = self.pld_modalities
        if isinstance(mods, str):
            mods = tuple(m.strip() for m in mods.split(",") if m.strip())
        if isinstance(mods, (tuple, list)) and set(mods) <= set(MODALITIES):
            mods = tuple(m for m in MODALITIES if m in mods)
        self.pld_modalities = mods

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Config":
        """The named bundle :data:`PRESETS` ``[name]`` with ``overrides`` on top."""
        return from_preset(cls, PRESETS, "VAPLAN", name, overrides)


def _loss_flags(cfg: Config) -> dict[str, Any]:
    name = {"full": "richness"}.get(cfg.variant, cfg.variant)
    return dict(LOSS_VARIANTS[name])


def train_ple(cfg: Config, data: dict, seg_labels: dict[str, torch.Tensor], dev: torch.device, *,
              reporter=None, resume_state=None, test: bool = True, epoch_metrics=None
              ) -> tuple[dict[str, float], torch.nn.Module]:
    """Trains HAN with the PLE objective on the train split's segment pseudo labels.

    Returns:
        ``(result, model)``: :func:`trainables.core.loop.fit_result` and the selected model.
    """
    train = data["train"]
    model = bb.build_model(cfg, train, dev)
    ya, yv = seg_labels["audio"], seg_labels["visual"]
    flags = _loss_flags(cfg)

    def step(net, info: tc.StepInfo) -> torch.Tensor:
        idx = info.local_idx
        with cd.autocast(dev):
            out = net(*ae.batch_inputs(train, idx, dev), with_ca=cfg.with_ca)
        seg = out.frame_prob.float()
        loss = ple_loss(out.global_prob, out.a_prob, out.v_prob, seg[:, :, 0], seg[:, :, 1],
                        ya[idx], yv[idx], train.labels[idx], lam=cfg.lam, mask=cfg.richness_mask,
                        num_videos=len(info.global_idx), **flags)
        # A share of the global-batch mean, times world because DDP averages gradients.
        return loss.total * info.world + bb.contrastive_term(cfg, out)

    result = tc.fit_loop(cfg=cfg, model=model, data=data, device=dev, step_fn=step,
                         evaluate_fn=ae.evaluator(cfg, data, with_ca=cfg.with_ca),
                         epoch_end_fn=(lambda epoch: dict(epoch_metrics)) if epoch_metrics else None,
                         reporter=reporter, resume_state=resume_state, test=test)
    return result, model


def stage1_config(cfg: Config) -> Config:
    """The first-stage model of PLD: ``cfg`` with the L objective, for ``stage1_epochs``."""
    return dataclasses.replace(cfg, variant="richness", epochs=cfg.stage1_epochs)


def labels_digest(seg_labels: dict[str, torch.Tensor]) -> str:
    """A hash of segment labels (what the first stage learns from, whatever PLG setting made them)."""
    h = hashlib.sha256()
    for m in MODALITIES:
        y = seg_labels[m].bool().cpu().contiguous()
        h.update(m.encode() + str(tuple(y.shape)).encode() + y.numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def frame_probs_float32(model: torch.nn.Module, split: Any, *, with_ca: bool,
                        batch_size: int = 2048) -> torch.Tensor:
    """``(N, T, 2, C)`` segment probabilities from a float32 forward with autocast off.

    PLD thresholds losses relative to the smallest ones; a bf16 forward rounds P >= 0.998 to 1.0,
    which makes those losses exactly 0 (see :mod:`.denoise`), so the first stage does not predict
    under the bf16 autocast that evaluation uses on CUDA.
    """
    net = cd.unwrap(model)
    dev = split.audio.device
    was_training = net.training
    net.eval()
    out = []
    try:
        with torch.autocast(device_type=dev.type, enabled=False):
            for start in range(0, len(split), batch_size):
                idx = slice(start, start + batch_size)
                feats = [x.float() for x in ae.batch_inputs(split, idx, dev)]
                out.append(net(*feats, with_ca=with_ca).frame_prob.float())
    finally:
        net.train(was_training)
    return torch.cat(out)


def first_stage(cfg: Config, data_path, data: dict, labels: dict[str, dict], dev: torch.device
                ) -> dict[str, torch.Tensor]:
    """The first-stage model's segment probabilities on train and val (cached; see the module)."""
    s1 = stage1_config(cfg)
    skip = PLD_FIELDS + LABEL_FIELDS + ("smooth_a", "smooth_v", "feature_dtype")  # smoothing: row (1) only
    spec = {k: v for k, v in dataclasses.asdict(s1).items() if k not in skip}
    key = stage_key({"data": fingerprint(data_path), "stage1": spec, "epochs": s1.epochs,
                     "labels": labels_digest(labels["train"]), "probs": "float32"})

    def compute() -> dict[str, Any]:
        log.info("vaplan: training the first-stage model for PLD (%d epochs)", s1.epochs)
        set_seed(s1.seed)  # its result must not depend on what ran before in this process
        _, model = train_ple(s1, data, labels["train"], dev, test=False)
        out: dict[str, Any] = {}
        for split in ("train", "val"):
            p = frame_probs_float32(model, data[split], with_ca=cfg.with_ca).cpu()
            out[f"{split}/audio"], out[f"{split}/visual"] = p[:, :, 0], p[:, :, 1]
        return out

    blob, _ = cached_stage("vaplan-stage1", key, compute)
    return blob


def refine(cfg: Config, probs: dict[str, torch.Tensor], split: str, seg_labels: dict[str, torch.Tensor]
           ) -> dict[str, torch.Tensor]:
    """PLD's refined labels of ``split`` from the first stage's probabilities: the modalities of
    ``cfg.pld_modalities`` refined, the others as they were."""
    kalpha = {"visual": (cfg.pld_k_v, cfg.pld_alpha_v), "audio": (cfg.pld_k_a, cfg.pld_alpha_a)}
    out = dict(seg_labels)
    for m in cfg.pld_modalities:
        k, alpha = kalpha[m]
        out[m] = denoise_pseudo_labels(probs[f"{split}/{m}"], seg_labels[m].cpu(), k, alpha
                                       ).to(seg_labels[m].device)
    return out


def final_quality(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """:data:`QUALITY_KEY`: the mean of the visual and audio segment F under ``prefix``
    (``pseudo/`` for PLG's labels, ``pseudo/pld_`` after PLD); ``{}`` without quality figures."""
    keys = [f"{prefix}seg_F_v", f"{prefix}seg_F_a"]
    if not all(k in metrics for k in keys):
        return {}
    return {QUALITY_KEY: (metrics[keys[0]] + metrics[keys[1]]) / 2.0}


def make_labels(cfg: Config, data_path, data: dict, dev: torch.device
                ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The train split's segment labels for ``cfg.variant`` (not ``han``) and the pseudo-label
    quality figures.

    Quality keys (against the truth, where the data has it; val is what the paper reports):
    ``pseudo/seg_F_v``..., after PLD ``pseudo/pld_seg_F_v``... (a modality PLD does not refine
    keeps its PLG figures there); ``pseudo/train_...`` on train; :data:`QUALITY_KEY`.
    """
    if cfg.teacher == "truth":
        labels = {s: pl.truth_labels(data[s], s) for s in ("train", "val")}
    else:
        scores = pl.teacher_scores(cfg, data_path, data)
        labels = {s: pl.plg(cfg, scores[s], data[s].labels) for s in ("train", "val")}
    metrics = {**pl.quality(labels["val"], data["val"], "pseudo/"),
               **pl.quality(labels["train"], data["train"], "pseudo/train_"),
               **pl.summary(labels["train"])}
    if cfg.variant != "full":
        return labels["train"], {**metrics, **final_quality(metrics, "pseudo/")}
    probs = first_stage(cfg, data_path, data, labels, dev)
    refined = {s: refine(cfg, probs, s, labels[s]) for s in ("train", "val")}
    metrics.update(pl.quality(refined["val"], data["val"], "pseudo/pld_"))
    metrics.update(pl.quality(refined["train"], data["train"], "pseudo/pld_train_"))
    metrics.update({f"pseudo/pld_flipped_{SHORT[m]}": float((refined["train"][m] != labels["train"][m]).sum())
                    for m in MODALITIES})
    return refined["train"], {**metrics, **final_quality(metrics, "pseudo/pld_")}


def fit(cfg: Config, data_path, *, reporter: tc.Reporter | None = None,
        resume_state: dict | None = None, device: str | torch.device | None = None
        ) -> dict[str, float]:
    """Trains VAPLAN and returns the selected epoch's metrics plus ``test/...`` and the
    pseudo-label quality (``pseudo/...``, every epoch, so sweeps can rank trials by it).

    Args:
        cfg: Configuration.
        data_path: AVVP data set (LLP-sim, or LLP with teacher embedding columns).
        reporter: ``reporter(epoch, metrics, state_fn)`` after every epoch.
        resume_state: A dict from ``state_fn()`` to continue from (the first stage is read back
            from its cache, so a resumed trial does not retrain it).
        device: Torch device (default: CUDA if available).
    """
    cfg.validate()
    dev = cd.resolve_device(device)
    seed = set_seed(cfg.seed)
    data = bb.load_data(cfg, data_path, dev)
    if cfg.variant == "han":  # row (1): HAN's own objective on the smoothed weak labels (Eq. 2)
        result, _ = bb.train_backbone(cfg, data, dev, bb.weak_targets(cfg, data["train"]),
                                      reporter=reporter, resume_state=resume_state)
        return result
    seg_labels, quality = make_labels(cfg, data_path, data, dev)
    set_seed(seed)  # the first stage drew numbers: start the final model from the seed's state
    result, _ = train_ple(cfg, data, seg_labels, dev, reporter=reporter, resume_state=resume_state,
                          epoch_metrics=quality)
    result["seed"] = float(seed)
    return result
