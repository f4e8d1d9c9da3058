"""VALOR's label elaboration: segment pseudo labels per modality from modality-independent teachers.

For every video, segment t and class c, a teacher of modality m (CLIP for the visual stream, CLAP
for the audio stream) gives the logit ``z[t, c] = scale_m * cos(e_t, w_c)`` of the segment's
embedding against the class prompt's text embedding. Each class is thresholded on its own (no
softmax over classes), strictly, and only classes of the video's weak label survive:

    Y_m[t, c] = 1(z[t, c] > theta_m[c]) AND y[c]

(:func:`trainables.tasks.avvp.pseudo_labels.harvest` with ``strict=True``; VAPLAN's PLG is the same
rule on softmax scores with ``>=``). Nothing refines the labels afterwards. The rule and its
constants are read from the official code (Franklin905/VALOR), whose behaviour is the fact to match
here: the paper's text could not be read. UWAV (Lai et al., CVPR 2025), by VALOR's first author,
states the same rule (its Eq. 10: class-wise thresholds, strict, times the weak label).

Sources of the labels (``teacher``):

* ``released``: the data set's ``pseudo_visual``/``pseudo_audio`` columns, e.g. VALOR's released
  labels added by ``python -m orchestrator.data convert-valor`` (no thresholds apply).
* ``data``: the data set's teacher embedding columns (``teacher_visual``/``teacher_audio`` and the
  class text embeddings of ``prompt_v``/``prompt_a``; :mod:`trainables.tasks.avvp.teacher_data`).
  Default thresholds: the official per-class constants (:data:`OFFICIAL_THETA_V`/``_A``), in the
  units of CLIP ViT-L/14's and CLAP's logits with VALOR's own prompts; other teachers need their
  own (``theta_v``/``theta_a``, or ``threshold_search="val"``). On a simulated data set's teacher
  columns (LLP-sim v2) no default exists yet: it is an error that says so.
* ``sim``: LLP-sim's simulated teachers, the same ones VAPLAN reads (one draw over all splits, seed
  ``teacher_seed``), at ``scale`` 100 (CLIP's). Default thresholds: :data:`SIM_THETA_V`/``_A``.
* ``truth``: the hidden truth as segment labels (an oracle bound, not a teacher).
* ``auto``: ``released`` if the data set has the columns, else ``data`` if it has teacher
  columns, else ``sim`` where the train split has hidden truth.

``threshold_search="val"`` replaces the thresholds by per-class values chosen on the validation
split's truth (:func:`search_thresholds`): a protocol variant (tables mark its rows), since the
shared protocol never looks at validation truth to make training labels.

**LLP-sim thresholds** (:data:`SIM_THETA_V` 24.5, :data:`SIM_THETA_A` 23.5, in units of 100 * cos).
The official constants are calibrated to real CLIP/CLAP and do not transfer to the simulator's
cosine scale, and the paper's procedure for them is not known here. So the simulator's thresholds
were fixed once, as VALOR's user would fix them with the best knowledge available: the single
threshold per modality that maximises the segment-level F of the harvested labels against the
hidden truth, averaged over calibration draws that no run trains or validates on (three draws of
4,000 videos of LLP-sim's default truth, truth seeds 1-3, teacher seeds 0-2; :mod:`.calibrate`
reproduces it; each draw alone gives the same optimum within 0.25). Measured there: visual
seg/event F 74.1/69.6, audio 88.0/81.3. VALOR's real harvest on LLP test is A 80.5, V 61.7 (UWAV
Table 3): under VALOR's rule the simulated teachers, whose knobs were fitted to VAPLAN's softmax PLG
(a rule whose normaliser the simulated distractors move; the per-class rule does not see them), are
7-12 points *better* than VALOR's real teachers. That is a property of the simulator, measured, not
an outcome of the method.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainables.data.format import read_meta
from trainables.tasks.avvp import teacher_data as td
from trainables.tasks.avvp import valor_layout as vl
from trainables.tasks.avvp.pseudo_labels import SHORT, harvest, label_quality
from trainables.tasks.avvp.teachers import simulate_teacher

MODALITIES = ("visual", "audio")
SOURCES = ("auto", "released", "data", "sim", "truth")
SEARCHES = ("none", "val")
SPLITS = ("train", "val", "test")

# The official per-class thresholds (LLP class order) on the teachers' logits: CLIP ViT-L/14
# (logit scale 100, so cosines 0.14-0.20) and CLAP 630k-fusion (its learned logit scale).
OFFICIAL_THETA_V: tuple[float, ...] = (20, 15, 18, 14, 15, 18, 18, 15, 15, 15, 15, 18, 15, 15, 15,
                                       15, 15, 15, 15, 16, 14, 15, 15, 15, 18)
OFFICIAL_THETA_A: tuple[float, ...] = (0, 0, 1, 4, 6, -2, 4, 4, 2, 2, 2, 1, 2, 3, 0, 2, 2, 2, 0, 2,
                                       -1, 2, 3, 3, 0)
# LLP-sim's thresholds, in units of 100 * cos (module docstring, "LLP-sim thresholds").
SIM_THETA_V = 24.5
SIM_THETA_A = 23.5
# CLIP's logit scale; the simulated teachers are read at the same scale.
CLIP_SCALE = 100.0


def source_of(cfg: Any, data_path) -> str:
    """The label source ``cfg.teacher`` resolves to on this data set (module docstring).

    Raises:
        ValueError: The chosen source is not available in the data set.
    """
    released = vl.has_released_labels(data_path)
    teachers = set(td.teachers_of(data_path)) >= set(MODALITIES)
    truth = "train" in read_meta(data_path)["truth_splits"]
    if cfg.teacher == "auto":
        if released:
            return "released"
        if teachers:
            return "data"
        if truth:
            return "sim"
        raise ValueError(f"{data_path}: no released pseudo labels, no teacher embeddings and no hidden "
                         "truth to simulate teachers from; add VALOR's labels with python -m "
                         "orchestrator.data convert-valor (or embeddings with convert-teachers)")
    need = {"released": (released, ("no pseudo_visual/pseudo_audio columns (python -m "
                                    "orchestrator.data convert-valor)")),
            "data": (teachers, ("no teacher_visual/teacher_audio columns (python -m orchestrator.data "
                                "convert-teachers)")),
            "sim": (truth, "no hidden truth on the train split to simulate teachers from"),
            "truth": (truth, "no hidden truth on the train split (teacher='truth' is an LLP-sim oracle)")}
    ok, why = need[cfg.teacher]
    if not ok:
        raise ValueError(f"{data_path}: teacher={cfg.teacher!r} but the data set has {why}")
    return cfg.teacher


def _cosines(e: np.ndarray, w: np.ndarray) -> torch.Tensor:
    e = torch.nn.functional.normalize(torch.as_tensor(e).float(), dim=-1)
    w = torch.nn.functional.normalize(torch.as_tensor(w).float(), dim=-1)
    return e @ w.T


def teacher_logits(cfg: Any, data_path, data: dict[str, Any], source: str
                   ) -> dict[str, dict[str, torch.Tensor]]:
    """``{split: {"visual": z, "audio": z}}``: the teachers' logits (N, T, C), float32 CPU.

    ``sim`` draws the simulated teachers once over the videos of every split in ``data`` (in split
    order, as VAPLAN does, so both methods see the same teachers) and cuts them back.
    """
    splits = [s for s in SPLITS if data.get(s) is not None]
    scale = {"visual": cfg.logit_scale_v, "audio": cfg.logit_scale_a}
    out: dict[str, dict[str, torch.Tensor]] = {s: {} for s in splits}
    for m in MODALITIES:
        if source == "data":
            template = cfg.prompt_v if m == "visual" else cfg.prompt_a
            for s in splits:
                ids, emb, text = td.load_teacher(data_path, s, m, template)
                if list(ids) != list(data[s].video_ids):
                    raise ValueError(f"{data_path}: teacher rows of {s} are not in the split's order")
                out[s][m] = scale[m] * _cosines(emb, text)
            continue
        gt = torch.cat([(data[s].gt_visual if m == "visual" else data[s].gt_audio).cpu() for s in splits])
        lab = torch.cat([data[s].labels.cpu() for s in splits])
        sim = simulate_teacher(gt, lab, m, seed=cfg.teacher_seed)
        z = CLIP_SCALE * _cosines(sim.seg_emb, sim.text_emb)
        for s, part in zip(splits, torch.split(z, [len(data[s]) for s in splits])):
            out[s][m] = part.clone()
    return out


def default_thresholds(cfg: Any, source: str, modality: str, *, simulated: bool = False
                       ) -> float | tuple[float, ...]:
    """``theta_v``/``theta_a`` if set, else the source's default (module docstring).

    Raises:
        ValueError: Teacher columns of a simulated data set (LLP-sim v2) without thresholds: the
            official constants are in real CLIP/CLAP units, and no calibration to those simulated
            teachers exists yet.
    """
    given = cfg.theta_v if modality == "visual" else cfg.theta_a
    if given is not None:
        return given
    if source == "sim":
        return SIM_THETA_V if modality == "visual" else SIM_THETA_A
    if simulated:
        raise ValueError("teacher='data' on a simulated data set: VALOR's official thresholds are in "
                         "real CLIP/CLAP logit units and no calibration to these simulated teachers "
                         "exists; set theta_v and theta_a (or threshold_search='val', a protocol variant)")
    return OFFICIAL_THETA_V if modality == "visual" else OFFICIAL_THETA_A


def search_thresholds(scores: torch.Tensor, labels: torch.Tensor, gt: torch.Tensor,
                      default: float | tuple[float, ...]) -> np.ndarray:
    """Per-class thresholds chosen on a split's truth (the ``threshold_search="val"`` variant).

    For class c, among the segments of the videos labelled with c, the threshold that maximises the
    F1 of ``score > theta`` against the truth (every cut between two distinct scores is tried; the
    threshold is the midpoint of the cut). A class no labelled segment of which is true keeps its
    default.

    Args:
        scores: (N, T, C) teacher logits.
        labels: (N, C) weak labels.
        gt: (N, T, C) truth of the modality.
        default: The thresholds a class without evidence keeps.

    Returns:
        (C,) float64 thresholds.
    """
    s_all, y, g_all = scores.double().cpu().numpy(), labels.cpu().numpy() != 0, gt.cpu().numpy() != 0
    c_n = s_all.shape[2]
    out = np.broadcast_to(np.asarray(default, np.float64), (c_n,)).copy()
    for c in range(c_n):
        s, g = s_all[y[:, c], :, c].ravel(), g_all[y[:, c], :, c].ravel()
        if not g.any():
            continue
        order = np.argsort(-s, kind="stable")
        s, g = s[order], g[order]
        tp = np.cumsum(g)
        f1 = 2.0 * tp / (np.arange(1, len(s) + 1) + g.sum())  # passing the top k
        cut = np.r_[s[:-1] > s[1:], True]  # a threshold can only fall between distinct scores
        k = int(np.flatnonzero(cut)[np.argmax(f1[cut])])
        out[c] = (s[k] + s[k + 1]) / 2.0 if k + 1 < len(s) else s[k] - 1.0
    return out


def harvest_labels(cfg: Any, data_path, data: dict[str, Any]
                   ) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, float]]:
    """The segment pseudo labels of every split in ``data`` and their quality figures.

    Returns:
        ``({split: {"visual": Y_v, "audio": Y_a}}, metrics)``: bool (N, T, C) CPU labels, and
        ``pseudo/seg_F_v``... on val and ``pseudo/train_seg_F_v``... on train (where the data has
        truth), ``pseudo/pos_per_video_v``/``_a`` on train, and for searched thresholds their mean
        ``pseudo/theta_mean_v``/``_a``.

    Raises:
        ValueError: A source the data set lacks, or a threshold search without teacher scores or
            validation truth.
    """
    source = source_of(cfg, data_path)
    splits = [s for s in SPLITS if data.get(s) is not None]
    metrics: dict[str, float] = {}
    if source in ("released", "truth"):
        if cfg.threshold_search != "none":
            raise ValueError(f"threshold_search={cfg.threshold_search!r} needs teacher scores; "
                             f"teacher={source!r} has none")
        if source == "truth":
            labels = {s: {"visual": data[s].gt_visual.bool().cpu(), "audio": data[s].gt_audio.bool().cpu()}
                      for s in splits}
        else:
            labels = {s: {m: torch.from_numpy(y) for m, y in
                          vl.load_released_labels(data_path, s, data[s].video_ids).items()}
                      for s in splits}
    else:
        z = teacher_logits(cfg, data_path, data, source)
        labels = {s: {} for s in splits}
        simulated = read_meta(data_path)["kind"] == "llp-sim"
        for m in MODALITIES:
            thr = default_thresholds(cfg, source, m, simulated=simulated)
            if cfg.threshold_search == "val":
                val = data["val"]
                if not val.has_truth:
                    raise ValueError(f"{data_path}: threshold_search='val' needs truth on the val split")
                gt = val.gt_visual if m == "visual" else val.gt_audio
                thr = search_thresholds(z["val"][m], val.labels, gt, thr)
                metrics[f"pseudo/theta_mean_{SHORT[m]}"] = float(np.mean(thr))
            for s in splits:
                labels[s][m] = harvest(z[s][m], thr, data[s].labels.cpu(), strict=True)
    if "val" in labels:
        metrics.update(label_quality(labels["val"], data["val"], "pseudo/"))
    metrics.update(label_quality(labels["train"], data["train"], "pseudo/train_"))
    metrics.update({f"pseudo/pos_per_video_{SHORT[m]}": float(labels["train"][m].sum((1, 2)).float().mean())
                    for m in MODALITIES})
    return labels, metrics
