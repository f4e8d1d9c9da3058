"""VAPLAN's segment pseudo labels for a data set: teacher scores from the data or a simulated
teacher, cached, then thresholded (PLG) and scored against the hidden truth where there is one.

Teacher scores ``s`` (N, T, C) are what PLG thresholds, so they are what is cached: computing them
once per (data set, teacher, prompt) makes a threshold trial cost no extraction.

* ``teacher="data"``: the data set's ``teacher_visual``/``teacher_audio`` columns and the text
  embeddings of the chosen prompt (:mod:`trainables.tasks.avvp.teacher_data`).
* ``teacher="sim"``: LLP-sim's simulated teachers (:mod:`trainables.tasks.avvp.teachers`), built
  from each split's hidden truth with the calibrated default quality (prompts do not apply).
* ``teacher="truth"``: an oracle, not a teacher: the segment labels *are* the hidden truth of each
  modality (every split must have it). It bounds what segment-level supervision can give on a data
  set, so a variant's gain can be read against a reference rather than argued about.
* ``teacher="auto"``: ``data`` when the data set has teacher columns, else ``sim`` when it has
  hidden truth (LLP-sim); real LLP without teacher columns is an error that says what to run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainables.core.stage_cache import cached_stage, stage_key
from trainables.data.format import fingerprint
from trainables.methods.vaplan.pseudo import PROMPTS, class_scores
from trainables.tasks.avvp import teacher_data as td
from trainables.tasks.avvp.pseudo_labels import SHORT, harvest, label_quality
from trainables.tasks.avvp.teachers import simulate_teacher



def teacher_source(cfg: Any, data_path) -> str:
    """``data`` or ``sim`` for ``cfg.teacher`` on this data set (see the module docstring).

    Raises:
        ValueError: No teacher available (real data without teacher columns), or a bad choice.
    """
    has_cols = set(td.teachers_of(data_path)) >= {"visual", "audio"}
    if cfg.teacher == "data" or (cfg.teacher == "auto" and has_cols):
        if not has_cols:
            raise ValueError(f"{data_path}: teacher='data' but the data set has no teacher_visual and "
                             "teacher_audio columns (python -m orchestrator.data convert-teachers)")
        return "data"
    from trainables.data.format import read_meta

    if "train" not in read_meta(data_path)["truth_splits"]:
        raise ValueError(f"{data_path}: no teacher embeddings and no hidden truth to simulate a "
                         "teacher from; add CLIP/CLAP embeddings (python -m orchestrator.data "
                         "convert-teachers)")
    return "sim"


def teacher_scores(cfg: Any, data_path, data: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """``{split: {"visual": s, "audio": s}}``, (N, T, C) float32 CPU, for the splits of ``data``
    (resident :class:`~trainables.tasks.avvp.data.AVVPSplit` objects, in their row order).

    A simulated teacher is one teacher for the whole data set: it is drawn once over the videos of
    every split (so all splits share its text embeddings), then cut back into the splits.
    """
    source = teacher_source(cfg, data_path)
    templates = {"visual": cfg.prompt_v, "audio": cfg.prompt_a}
    splits = [s for s in ("train", "val", "test") if data.get(s) is not None]
    ids = {s: list(data[s].video_ids) for s in splits}
    key = stage_key({"data": fingerprint(data_path), "splits": splits, "source": source,
                     "templates": templates if source == "data" else None,
                     "seed": cfg.teacher_seed if source == "sim" else None})

    def compute() -> dict[str, Any]:
        out: dict[str, Any] = {"video_ids": ids}
        for m in ("visual", "audio"):
            if source == "data":
                for s in splits:
                    got, emb, text = td.load_teacher(data_path, s, m, templates[m])
                    if got != ids[s]:
                        raise ValueError(f"{data_path}: teacher rows of {s} are not in the split's order")
                    out[f"{s}/{m}"] = class_scores(emb, text).float().cpu()
                continue
            gt = torch.cat([(data[s].gt_visual if m == "visual" else data[s].gt_audio).cpu() for s in splits])
            lab = torch.cat([data[s].labels.cpu() for s in splits])
            sim = simulate_teacher(gt, lab, m, seed=cfg.teacher_seed)
            scores = class_scores(sim.seg_emb, sim.text_emb).float().cpu()
            for s, part in zip(splits, torch.split(scores, [len(ids[s]) for s in splits])):
                out[f"{s}/{m}"] = part.clone()
        return out

    blob, _ = cached_stage("vaplan-teachers", key, compute)
    if blob["video_ids"] != ids:
        raise ValueError(f"{data_path}: cached teacher scores do not match the data set's videos")
    return {s: {m: blob[f"{s}/{m}"] for m in ("visual", "audio")} for s in splits}


def truth_labels(split_data: Any, split: str) -> dict[str, torch.Tensor]:
    """The oracle's segment labels (``teacher="truth"``): the split's hidden truth per modality.

    Raises:
        ValueError: The split has no hidden truth (real LLP's train split).
    """
    if not split_data.has_truth:
        raise ValueError(f"teacher='truth' needs hidden truth on the {split} split "
                         "(LLP-sim has it; real LLP's train split does not)")
    return {"visual": split_data.gt_visual.bool(), "audio": split_data.gt_audio.bool()}


def plg(cfg: Any, scores: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Segment pseudo labels ``{"visual": Y_v, "audio": Y_a}`` (bool, (N, T, C), on ``labels``'s
    device): ``s >= tau AND weak label``, the AVVP task's one harvesting rule
    (:func:`trainables.tasks.avvp.pseudo_labels.harvest`, inclusive, one threshold per modality)."""
    taus = {"visual": cfg.tau_v, "audio": cfg.tau_a}
    return {m: harvest(scores[m].to(labels.device), taus[m], labels) for m in ("visual", "audio")}


def quality(seg_labels: dict[str, torch.Tensor], split_data: Any, prefix: str) -> dict[str, float]:
    """Pseudo-label quality against the truth (``{}`` without truth).

    Keys ``{prefix}seg_F_v``, ``{prefix}event_F_v`` (segment- and event-level F of the visual
    pseudo labels, the paper's Tables 1-4), audio likewise, and ``{prefix}video_precision_v``/``_a``:
    the precision of the video-level pseudo labels against the modality's video-level truth.
    """
    out = label_quality(seg_labels, split_data, prefix)
    if not out:
        return out
    true_a, true_v = split_data.modality_truth()
    for m, true in (("visual", true_v), ("audio", true_a)):
        s = SHORT[m]
        vid = seg_labels[m].any(1).cpu()
        out[f"{prefix}video_precision_{s}"] = float(100.0 * (vid & true.cpu()).sum() / max(int(vid.sum()), 1))
    return out


def video_targets(seg_labels: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Video-level pseudo labels ``(yhat_a, yhat_v)`` as float (N, C): any over segments."""
    return seg_labels["audio"].any(1).float(), seg_labels["visual"].any(1).float()


def summary(labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean number of positive segment labels per video, per modality (a sanity figure)."""
    return {f"pseudo/pos_per_video_{SHORT[m]}": float(np.mean(y.sum((1, 2)).cpu().numpy()))
            for m, y in labels.items()}


__all__ = ["PROMPTS", "plg", "quality", "teacher_scores", "teacher_source", "truth_labels", "video_targets",
           "summary"]
