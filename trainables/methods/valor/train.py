"""VALOR (Lai et al., "Modality-Independent Teachers Meet Weakly-Supervised Audio-Visual Event
Parser", NeurIPS 2023): a HAN-style student trained on segment labels harvested per modality.

1. **Label elaboration** (:mod:`.harvest`): CLIP (visual) and CLAP (audio) score every segment
   against every class prompt; per-class thresholds on the logits, ANDed with the weak labels, give
   segment labels ``Y_v``, ``Y_a``. Done once, before training; nothing refines them.
2. **Student** (:class:`trainables.tasks.avvp.han.HAN` with options): HAN's projections, hybrid
   attention and attentive MMIL pooling, with 8 heads, feed-forward width 1024 and the visual
   stream attending to the audio stream its layer has just updated (``cross_input="updated"``).
3. **Objective** (:mod:`.losses`): BCE of the video-level probability against the weak labels plus
   BCE-with-logits of each modality's segment logits against its harvested labels.
4. **Schedule** (:mod:`.optim`): AdamW, 10 warm-up epochs then a cosine to ``lr_min``, gradients
   clipped at norm 1, batch 64, 60 epochs; the epoch with the best validation segment-level
   Type@AV is selected (the first of equal ones); decoding is HAN's (0.5 on segment and video
   probabilities).

Where the facts come from: VALOR's paper text could not be read here (only its abstract), so every
setting is the official code's (Franklin905/VALOR, its training scripts; where their argparse
defaults differ from the scripts, the scripts). The paper's statements remain to be checked against
these defaults. Presets (``Config.from_preset``): ``valor`` (the defaults), ``valor_plus`` (a
4-layer, 256-wide student, lr 3e-4 -> 3e-6), ``valor_plusplus`` (the same student; its inputs are
CLIP/CLAP features, i.e. a data set made with ``convert-valor --features``). The official code's
4-layer students start every layer from one layer's initial weights (``layer_init="clone"``, the
default); ``"independent"`` draws each layer's own.

``threshold_search="val"`` (per-class thresholds chosen on the validation truth) is a protocol
variant: :func:`mark` flags its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.core.config import check_fields, from_preset
from trainables.core.seed import set_seed
from trainables.methods.valor import harvest as hv
from trainables.methods.valor.losses import ValorWeights, valor_loss
from trainables.methods.valor.optim import OPTIMIZERS, make_optimizer
from trainables.tasks.avvp import backbone as bb
from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp.classes import NUM_CLASSES
from trainables.tasks.avvp.han import CROSS_INPUTS, HAN

LAYER_INITS = ("clone", "independent")
# The student sizes and rates of the official training scripts (VALOR+, VALOR++: d 256, 4 layers).
PRESETS: dict[str, dict[str, Any]] = {
    "valor": {},
    "valor_plus": {"d_model": 256, "num_layers": 4, "lr": 3e-4, "lr_min": 3e-6},
    "valor_plusplus": {"d_model": 256, "num_layers": 4, "lr": 3e-4, "lr_min": 3e-6},
}
MARK = ("‡", ("thresholds of the harvested labels chosen per class on the validation split's truth "
              "(a protocol variant; not comparable with rows of the shared protocol)"))


def _thresholds(value: Any, key: str) -> float | tuple[float, ...] | None:
    """One spelling of a threshold field: None, a float, or a tuple of C floats."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number or {NUM_CLASSES} numbers, got {value!r}") from None
    if len(out) != NUM_CLASSES:
        raise ValueError(f"{key} must be a number or {NUM_CLASSES} numbers, got {len(out)}")
    return out


@dataclass
class Config(bb.BackboneConfig):
    """VALOR's configuration (defaults: the official training script of VALOR).

    Attributes:
        lr_min: Learning rate at the end of the cosine.
        warmup_epochs: Linear warm-up epochs.
        optimizer: ``adamw`` or ``adam``.
        weight_decay, beta1, beta2, eps: The optimiser's settings.
        grad_clip: Total gradient-norm clip (0 = none).
        nhead: Attention heads. ``dim_feedforward``: feed-forward width. ``num_layers``: hybrid
            attention layers. ``cross_input``: ``updated`` (official) or ``input`` (HAN).
        layer_init: ``clone`` (official: all layers start from one layer's weights) or
            ``independent``.
        w_seg_a, w_seg_v: Weights of the segment BCE terms (``w_video``: of the video BCE).
        w_audio, w_visual: Video-level modality terms on the harvested labels' union (ours; 0).
        teacher: ``auto``, ``released``, ``data``, ``sim`` or ``truth`` (:mod:`.harvest`).
        teacher_seed: Seed of LLP-sim's simulated teachers.
        theta_v, theta_a: Thresholds on the teachers' logits, one number or one per class; None:
            the source's default (:mod:`.harvest`).
        logit_scale_v, logit_scale_a: Logit scales of teachers read from the data's embedding
            columns (CLIP's is 100; CLAP's learned scale is not in the official code: set it for
            real CLAP embeddings).
        prompt_v, prompt_a: Prompt templates of those embedding columns.
        threshold_search: ``none`` or ``val`` (per-class thresholds from the validation truth; a
            protocol variant).
    """

    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-4
    lr_min: float = 1e-6
    warmup_epochs: int = 10
    optimizer: str = "adamw"
    weight_decay: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8
    grad_clip: float = 1.0
    nhead: int = 8
    dim_feedforward: int = 1024
    num_layers: int = 1
    cross_input: str = "updated"
    layer_init: str = "clone"
    w_audio: float = 0.0
    w_visual: float = 0.0
    w_seg_a: float = 1.0
    w_seg_v: float = 1.0
    teacher: str = "auto"
    teacher_seed: int = 0
    theta_v: Any = None
    theta_a: Any = None
    logit_scale_v: float = hv.CLIP_SCALE
    logit_scale_a: float = hv.CLIP_SCALE
    prompt_v: str = "VP1"
    prompt_a: str = "AP2"
    threshold_search: str = "none"

    def __post_init__(self) -> None:
        self.theta_v = _thresholds(self.theta_v, "theta_v")
        self.theta_a = _thresholds(self.theta_a, "theta_a")

    def validate(self) -> None:
        """Raises ValueError naming the bad key."""
        super().validate()
        check_fields(self, choices={"optimizer": OPTIMIZERS, "cross_input": CROSS_INPUTS,
                                    "layer_init": LAYER_INITS, "teacher": hv.SOURCES,
                                    "threshold_search": hv.SEARCHES},
                     at_least_one=("nhead", "dim_feedforward", "num_layers", "warmup_epochs"),
                     positive=("lr", "lr_min", "eps", "logit_scale_v", "logit_scale_a"),
                     non_negative=("weight_decay", "grad_clip", "w_seg_a", "w_seg_v", "w_audio",
                                   "w_visual", "w_video"),
                     unit=("beta1", "beta2"))
        if self.d_model % self.nhead:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by nhead ({self.nhead})")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Config:
        """The :data:`PRESETS` bundle ``name`` with ``overrides`` on top."""
        return from_preset(cls, PRESETS, "VALOR", name, overrides)

    @property
    def valor_weights(self) -> ValorWeights:
        return ValorWeights(self.w_video, self.w_seg_a, self.w_seg_v, self.w_audio, self.w_visual)


def mark(cfg: Config) -> tuple[str, str] | None:
    """The table mark of a protocol variant (validation-chosen thresholds), else None."""
    return MARK if cfg.threshold_search == "val" else None


def build_model(cfg: Config, train: Any, device: torch.device) -> HAN:
    """The student, sized from the data's feature dims, seeded by the caller."""
    da, dv, dm = ae.feature_dims(train)
    net = HAN(da, dv, dm, cfg.d_model, train.labels.shape[1], cfg.dropout, cfg.cls_dropout,
              nhead=cfg.nhead, dim_feedforward=cfg.dim_feedforward, num_layers=cfg.num_layers,
              cross_input=cfg.cross_input)
    if cfg.layer_init == "clone":
        for layer in net.hat_more:
            layer.load_state_dict(net.hat.state_dict())
    return net.to(device)


def fit(cfg: Config, data_path, *, reporter: tc.Reporter | None = None,
        resume_state: dict | None = None, device: str | torch.device | None = None
        ) -> dict[str, float]:
    """Harvests the segment labels, trains the student, returns the selected epoch's metrics plus
    ``test/...`` and the labels' quality (``pseudo/...``, every epoch, where the data has truth).

    Args:
        cfg: Configuration.
        data_path: AVVP data set (LLP-sim; LLP with released labels or teacher embeddings).
        reporter: ``reporter(epoch, metrics, state_fn)`` after every epoch.
        resume_state: A dict from ``state_fn()`` to continue from.
        device: Torch device (default: CUDA if available).
    """
    cfg.validate()
    dev = cd.resolve_device(device)
    seed = set_seed(cfg.seed)
    data = bb.load_data(cfg, data_path, dev)
    labels, quality = hv.harvest_labels(cfg, data_path, data)
    set_seed(seed)  # the student's initial weights do not depend on how the labels were made
    train = data["train"]
    model = build_model(cfg, train, dev)
    opt, sched = make_optimizer(cfg, model)
    ya, yv = labels["train"]["audio"].to(dev), labels["train"]["visual"].to(dev)
    weights = cfg.valor_weights

    def step(net, info: tc.StepInfo) -> torch.Tensor:
        idx = info.local_idx
        with cd.autocast(dev):
            out = net(*ae.batch_inputs(train, idx, dev), with_ca=cfg.with_ca)
        loss, _ = valor_loss(out, train.labels[idx], ya[idx], yv[idx], weights,
                             num_videos=len(info.global_idx))
        # A share of the global-batch mean, times world because DDP averages gradients.
        return loss * info.world + bb.contrastive_term(cfg, out)

    result = tc.fit_loop(cfg=cfg, model=model, data=data, device=dev, step_fn=step, optimizer=opt,
                         scheduler=sched, evaluate_fn=ae.evaluator(cfg, data, with_ca=cfg.with_ca),
                         epoch_end_fn=lambda epoch: dict(quality), reporter=reporter,
                         resume_state=resume_state)
    result["seed"] = float(seed)
    return result
