"""Where RLLD's terminal rewards come from: the task network's validation scores.

:class:`Evaluator` is the protocol the learner talks to; :class:`LocalEvaluator` scores in process
(synchronously); :class:`trainables.methods.rlld.pool.RayValidationPool` scores on Ray actors.
Also the per-class validation scores of our ``terminal_credit="class"`` option and the
counterfactual request layout.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

import torch
from torch import nn

from trainables.methods.rlld.config import Config
from trainables.tasks.avvp.backbone import DTYPES
from trainables.tasks.avvp.data import AVVPSplit


class Evaluator(Protocol):
    """Where terminal rewards come from.

    ``submit(step, state_dict)`` requests a validation pass of the task weights published at the
    end of episode ``step`` (the learner's request key: one request per episode);
    ``poll()`` returns (and forgets) the results that have arrived as ``[(step, metrics)]`` with
    ``val/<score>`` keys (0..100) and ``eval_s`` (seconds the pass took); ``wait(step)`` blocks
    until ``step``'s result is available to ``poll``; ``pending()`` counts submitted steps whose
    results ``poll`` has not yet returned; ``close()`` releases resources. An evaluator may return
    a step more than once (after a retry): the learner applies each step once.
    Optional attribute ``num_workers`` (default 1) is used for the utilisation metric.
    """

    def submit(self, step: int, state_dict: Mapping[str, torch.Tensor]) -> None: ...

    def poll(self) -> list[tuple[int, dict[str, float]]]: ...

    def wait(self, step: int) -> None: ...

    def pending(self) -> int: ...

    def close(self) -> None: ...


def build_task_model(cfg: Config, dims: tuple[int, int, int], num_classes: int = 25) -> nn.Module:
    """HAN sized for the data (``dims`` = audio, visual, motion feature sizes)."""
    from trainables.tasks.avvp.han import HAN

    a, v, m = dims
    return HAN(audio_dim=a, visual_dim=v, motion_dim=m, d_model=cfg.d_model,
               num_classes=num_classes, dropout=cfg.dropout, cls_dropout=cfg.cls_dropout)


def class_scores(probs: Mapping[str, torch.Tensor], split: AVVPSplit, *, kind: str = "soft",
                 protocol: str = "han", threshold: float = 0.5, eps: float = 1e-6
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class validation score of the audio and the visual branch (ours).

    ``ll``: 100 x the mean log-likelihood of the video-level modality truth (``gt.any(time)``)
    under the task network's video-level audio / visual probabilities (``a_prob``, ``v_prob``):
    exactly what a revised modality label trains, scored by a proper scoring rule, so it improves
    when the training targets of that class and modality get closer to the truth (<= 0).

    ``soft`` / ``hard``: segment-level ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`` (0..100) over all
    segments; ``soft`` counts with the frame probabilities (``TP = sum p g``,
    ``FP = sum p (1 - g)``, ``FN = sum (1 - p) g``), ``hard`` the decoded 0/1 predictions; a class with neither truth nor
    predictions scores 0. Caveat measured on LLP-sim: for a class whose segments are often positive,
    F1 grows with the level of the predictions, so removing labels, even noisy ones, tends to lower
    it; ``ll`` has no such bias.

    Returns:
        ``(s_a, s_v)``, each (C,) float32.
    """
    if kind == "ll":
        out = []
        for p, g in ((probs["a_prob"], split.gt_audio), (probs["v_prob"], split.gt_visual)):
            t = g.bool().any(dim=1).float()
            p = p.float().to(t.device).clamp(eps, 1.0 - eps)
            out.append(100.0 * (t * torch.log(p) + (1.0 - t) * torch.log1p(-p)).mean(dim=0))
        return out[0], out[1]
    if kind == "hard":
        from trainables.tasks.avvp.metrics import decode

        pa, pv = decode(probs["frame_prob"], probs["a_prob"], probs["v_prob"],
                        probs["global_prob"], protocol=protocol, threshold=threshold)
        pa, pv = torch.as_tensor(pa), torch.as_tensor(pv)
    else:
        fp = probs["frame_prob"].float()
        pa, pv = fp[:, :, 0], fp[:, :, 1]
    out = []
    for p, g in ((pa, split.gt_audio), (pv, split.gt_visual)):
        p = p.float().to(g.device)
        g = g.float()
        tp = (p * g).sum(dim=(0, 1))
        fp_ = (p * (1.0 - g)).sum(dim=(0, 1))
        fn = ((1.0 - p) * g).sum(dim=(0, 1))
        out.append(100.0 * 2.0 * tp / (2.0 * tp + fp_ + fn + eps))
    return out[0], out[1]


def validation_scores(model: nn.Module, split: AVVPSplit, cfg: Config) -> dict[str, float]:
    """``val/<score>`` of ``model`` on ``split`` plus ``eval_s`` (the pass's wall time); with
    ``terminal_credit="class"`` also ``val_cls_a/<c>`` and ``val_cls_v/<c>``
    (:func:`class_scores`)."""
    from trainables.tasks.avvp.eval import predict, score

    t0 = time.perf_counter()
    probs = predict(model, split, batch_size=cfg.eval_batch_size, with_ca=cfg.with_ca)
    out = score(probs, split, prefix="val", protocol=cfg.protocol, threshold=cfg.threshold)
    if cfg.terminal_credit == "class":
        f_a, f_v = class_scores(probs, split, kind=cfg.class_score, protocol=cfg.protocol,
                                threshold=cfg.threshold)
        out.update({f"val_cls_a/{c}": float(x) for c, x in enumerate(f_a.tolist())})
        out.update({f"val_cls_v/{c}": float(x) for c, x in enumerate(f_v.tolist())})
    out["eval_s"] = time.perf_counter() - t0
    return out


CF_PREFIX = "cf/"  # weight keys of the counterfactual update in an evaluation request
CF_RESULT = "cf:"  # score keys of the counterfactual update in an evaluation result


def counterfactual_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The counterfactual update's scores of an evaluation result, with their plain keys."""
    return {k[len(CF_RESULT):]: v for k, v in metrics.items() if k.startswith(CF_RESULT)}


class LocalEvaluator:
    """Synchronous in-process evaluator: ``submit`` runs the validation pass at once.

    Args:
        cfg: RLLD config (model size, protocol, threshold).
        split: The validation split, already on ``device``.
        device: Where the evaluation model lives.
    """

    num_workers = 1

    def __init__(self, cfg: Config, split: AVVPSplit, device: torch.device | str = "cpu"):
        from trainables.tasks.avvp.eval import feature_dims

        self.cfg = cfg
        self.split = split
        self.device = torch.device(device)
        self.model = build_task_model(cfg, feature_dims(split), split.labels.shape[-1]).to(self.device)
        self._ready: dict[int, dict[str, float]] = {}

    @classmethod
    def from_path(cls, cfg: Config, data_path, device: torch.device | str = "cpu") -> "LocalEvaluator":
        """Loads the validation split of ``data_path`` onto ``device``."""
        from trainables.tasks.avvp.eval import load_resident

        dev = torch.device(device)
        split = load_resident(data_path, dev, splits=("val",),
                              feature_dtype=DTYPES[cfg.feature_dtype])["val"]
        return cls(cfg, split, dev)

    def evaluate(self, state_dict: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Scores task weights on the validation split.

        Keys prefixed ``cf/`` are a second set of weights (the ``counterfactual`` update); their
        scores come back prefixed ``cf:`` and ``eval_s`` covers both passes.
        """
        main = {k: v for k, v in state_dict.items() if not k.startswith(CF_PREFIX)}
        cf = {k[len(CF_PREFIX):]: v for k, v in state_dict.items() if k.startswith(CF_PREFIX)}
        self.model.load_state_dict(main)
        out = validation_scores(self.model, self.split, self.cfg)
        if cf:
            self.model.load_state_dict(cf)
            other = validation_scores(self.model, self.split, self.cfg)
            out.update({CF_RESULT + k: v for k, v in other.items() if k != "eval_s"})
            out["eval_s"] += other["eval_s"]
        return out

    def submit(self, step: int, state_dict: Mapping[str, torch.Tensor]) -> None:
        self._ready[int(step)] = self.evaluate(state_dict)

    def poll(self) -> list[tuple[int, dict[str, float]]]:
        out = sorted(self._ready.items())
        self._ready.clear()
        return out

    def wait(self, step: int) -> None:
        return None

    def pending(self) -> int:
        return len(self._ready)

    def close(self) -> None:
        self._ready.clear()

