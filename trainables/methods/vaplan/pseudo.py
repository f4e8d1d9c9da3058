"""VAPLAN pseudo-label generation (PLG) from teacher embeddings.

Zhou et al., "Advancing Weakly-Supervised Audio-Visual Video Parsing via Segment-wise Pseudo
Labeling" (VAPLAN). A pretrained image-text (CLIP) or audio-text (CLAP) teacher embeds every 1-s
segment of a video and one text prompt per event class. For segment t of a video with weak labels
``y`` (C,):

* ``s_t = softmax_c(cos(e_t, w_c))``: a softmax over the C classes of the cosine similarities
  between the segment embedding ``e_t`` and the class text embeddings ``w_c``, with *no*
  temperature (the cosines are used as logits directly). Cosines of CLIP/CLAP lie in a narrow
  band, so the scores sit near ``1/C`` (0.04 for LLP's 25 classes);
* ``m_t = 1(s_t >= tau)``;
* the segment pseudo label ``Y_t = m_t AND y``: only classes of the video's weak label survive;
* the video-level pseudo label of the modality is 1 for a class where any segment is 1.

Because every score is close to 1/25, the threshold is delicate: the paper picks tau_v = 0.041 for
the visual (CLIP) and tau_a = 0.038 for the audio (CLAP) teacher, and reports that at tau_v = 0.042
the visual pseudo labels collapse (val segment-level F 71.1 -> 51.5).

Everything here is plain torch and vectorised over videos; numpy arrays are accepted as inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from trainables.tasks.avvp.pseudo_labels import harvest

# Prompt templates of the paper's prompt study; "[CLS]" is replaced by the class name. VP1 and AP2
# are the defaults the paper settles on for the visual and audio teacher respectively.
VISUAL_PROMPTS: dict[str, str] = {
    "VP1": "This photo contains the [CLS]",
    "VP2": "This photo contains the scene of [CLS]",
    "VP3": "This photo contains the visual scene of [CLS]",
    "VP4": "This is a photo of the [CLS]",
}
AUDIO_PROMPTS: dict[str, str] = {
    "AP1": "This is a sound of [CLS]",
    "AP2": "This sound contains the [CLS]",
}
PROMPTS: dict[str, str] = {**VISUAL_PROMPTS, **AUDIO_PROMPTS}
DEFAULT_VISUAL_PROMPT = "VP1"
DEFAULT_AUDIO_PROMPT = "AP2"
CLS_TOKEN = "[CLS]"

# The paper's thresholds on the softmax scores (chosen on LLP val; both close to 1/25 = 0.04).
# tau_v = 0.042 already collapses the visual pseudo labels (val seg F 71.1 -> 51.5).
TAU_VISUAL = 0.041
TAU_AUDIO = 0.038


def _tensor(x: Any, name: str, ndim: int) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    if t.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(t.shape)}")
    return t


def class_name_text(name: str) -> str:
    """A class name as prompt text: LLP's ``Violin_fiddle`` -> ``violin fiddle``.

    The LLP class names are identifiers (underscores, capitals, ``Frying_(food)``); prompts read
    better with spaces and lower case, which is also how CLIP/CLAP captions spell them.
    """
    return " ".join(name.replace("_", " ").replace("(", "").replace(")", "").split()).lower()


def prompts(template: str, class_names: Sequence[str], *, clean: bool = True) -> list[str]:
    """One prompt per class from a template.

    Args:
        template: A key of :data:`PROMPTS` (``"VP1"`` ... ``"AP2"``) or a literal template holding
            ``[CLS]``.
        class_names: Class names in class order (e.g. ``LLP_CLASSES``).
        clean: Pass the names through :func:`class_name_text` first.

    Returns:
        ``len(class_names)`` strings.

    Raises:
        ValueError: The template is neither a known key nor contains ``[CLS]``.
    """
    text = PROMPTS.get(template, template)
    if CLS_TOKEN not in text:
        raise ValueError(f"prompt template {template!r} is not one of {sorted(PROMPTS)} and has no {CLS_TOKEN}")
    return [text.replace(CLS_TOKEN, class_name_text(c) if clean else c) for c in class_names]


def class_scores(seg_emb: Any, text_emb: Any) -> torch.Tensor:
    """The PLG scores ``s``: softmax over classes of segment-text cosine similarities.

    Args:
        seg_emb: ``(N, T, D)`` segment embeddings (need not be normalised).
        text_emb: ``(C, D)`` class text embeddings (need not be normalised).

    Returns:
        ``(N, T, C)`` float32 scores; each (video, segment) row sums to 1.
    """
    e = _tensor(seg_emb, "seg_emb", 3).float()
    w = _tensor(text_emb, "text_emb", 2).to(e.device).float()
    if e.shape[-1] != w.shape[-1]:
        raise ValueError(f"embedding sizes differ: seg_emb {e.shape[-1]}, text_emb {w.shape[-1]}")
    cos = F.normalize(e, dim=-1) @ F.normalize(w, dim=-1).T
    return cos.softmax(dim=-1)  # no temperature: the cosines are the logits (paper)


def segment_pseudo_labels(seg_emb: Any, text_emb: Any, video_labels: Any, tau: float) -> torch.Tensor:
    """Segment-level pseudo labels ``Y = 1(s >= tau) AND y``.

    Args:
        seg_emb: ``(N, T, D)`` segment embeddings of one modality.
        text_emb: ``(C, D)`` class text embeddings of that modality's teacher.
        video_labels: ``(N, C)`` weak video-level labels (0/1 or bool).
        tau: Score threshold (:data:`TAU_VISUAL`, :data:`TAU_AUDIO`); ``>=`` is inclusive.

    Returns:
        ``(N, T, C)`` bool tensor on ``seg_emb``'s device.
    """
    s = class_scores(seg_emb, text_emb)
    y = _tensor(video_labels, "video_labels", 2).to(s.device)
    if tuple(y.shape) != (s.shape[0], s.shape[2]):
        raise ValueError(f"video_labels: expected shape {(s.shape[0], s.shape[2])}, got {tuple(y.shape)}")
    return harvest(s, tau, y)


def video_pseudo_labels(seg_labels: Any) -> torch.Tensor:
    """Video-level pseudo labels: a class is 1 where any segment's pseudo label is 1.

    Args:
        seg_labels: ``(N, T, C)`` segment pseudo labels (bool or 0/1).

    Returns:
        ``(N, C)`` bool tensor.
    """
    return (_tensor(seg_labels, "seg_labels", 3) != 0).any(dim=1)
