"""LLP-sim v2's knobs and hidden truth: v1's label sets, states and events plus salience margins.

:class:`SimParamsV2` documents every knob; :func:`simulate_truth` draws the weak labels, modality
states and event intervals exactly as v1 does (same embedded LLP figures) and adds, per (video,
labelled class, modality), a salience margin: a logistic latent drawn conditionally on the state,
minus the per-class presence threshold (module docstring of :mod:`trainables.tasks.avvp.llp_sim_v2`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trainables.tasks.avvp.classes import NUM_CLASSES, NUM_SEGMENTS
from trainables.tasks.avvp.llp_sim import (
    MAX_LABELS, SimTruth, _intervals, _label_set_table, _length_q, _state_table, load_stats,
)

_P_CLIP = 1e-3  # presence shares are kept inside [_P_CLIP, 1 - _P_CLIP] for the logistic threshold

@dataclass(frozen=True)
class SimParamsV2:
    """Knobs of LLP-sim v2 (recorded in the file metadata under ``params.sim``).

    Latent vectors have i.i.d. N(0, 1/latent_dim) entries, so a knob's value is the expected norm of
    its contribution (as in v1). Larger ``*_strength``/``salience_floor`` = easier; larger
    ``noise``/``nuisance``/``segment_var_*``/``class_similarity`` = harder.

    Attributes:
        latent_dim: Dimension of the latent space.
        audio_strength: Norm of a fully salient audio event's prototype in a segment.
        visual_strength: Same for the visual (res152-like) stream.
        motion_ratio: Motion (r2plus1d-like) strength as a multiple of the visual strength.
        class_strength_spread: Log-normal sigma of a per-class, per-modality strength factor.
        class_similarity: Share of a prototype's variance from its semantic group (confusable
            classes, ``llp_sim.CLASS_GROUPS``).
        modes: Appearance modes per class and modality (a video's instance picks one uniformly).
        mode_spread: Share of a prototype's variance that is mode-specific.
        instance_var: Norm of the per-(video, class) deviation, inside a class subspace.
        instance_rank: Dimension of that class subspace.
        salience_width: Margin scale of the salience-to-strength link (module docstring, 1).
        salience_floor: Strength fraction of a present event right at the presence threshold.
        absent_leak: Strength fraction of a labelled-but-absent event right at the threshold.
        segment_var_audio: Log-normal sigma of the per-segment strength factor within audio events.
        segment_var_visual: Same within visual events (motion shares it).
        segment_corr: Lag-1 correlation over segments of that factor.
        noise: Norm of i.i.d. per-segment latent noise.
        nuisance: Norm of a per-video scene vector added to every segment.
        context: Video-level bleed: every segment of a modality gets ``context`` times the
            prototypes of the classes present anywhere in that modality of the video.
        background_rate_audio: Chance that an unlabelled class shows faintly in an audio segment
            (the rest of the soundscape; a labelled class that is not on shows nothing but its
            salience leak). Two-state Markov chains over segments.
        background_rate_visual: Same for the visual scene (motion shares it).
        background_strength: Strength of such a background class, relative to its class strength,
            along its class direction (no particular mode).
        background_corr: Lag-1 correlation over segments of the background chains.
        obs_noise: Std of uniform noise per output dimension.
        frame_jitter: Std of per-frame deviations when res152 is stored with 8 frames (zero-sum).
        modality_noise_scale: Multiplier of the audio-only / visual-only shares (as v1).
        neither_scale: Multiplier of the 'neither' share (as v1).
        av_sync: Chance that an audio-visual class's events share their relative position.
    """

    latent_dim: int = 64
    audio_strength: float = 1.0
    visual_strength: float = 1.0
    motion_ratio: float = 0.6
    class_strength_spread: float = 0.3
    class_similarity: float = 0.4
    modes: int = 3
    mode_spread: float = 0.3
    instance_var: float = 0.4
    instance_rank: int = 4
    salience_width: float = 0.6
    salience_floor: float = 0.15
    absent_leak: float = 0.3
    segment_var_audio: float = 0.5
    segment_var_visual: float = 0.5
    segment_corr: float = 0.6
    noise: float = 0.8
    nuisance: float = 0.8
    context: float = 0.15
    background_rate_audio: float = 0.38
    background_rate_visual: float = 0.13
    background_strength: float = 0.3
    background_corr: float = 0.7
    obs_noise: float = 0.3
    frame_jitter: float = 0.3
    modality_noise_scale: float = 1.0
    neither_scale: float = 1.0
    av_sync: float = 0.8

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if v < 0:
                raise ValueError(f"SimParamsV2.{k} must be >= 0, got {v}")
        for k in ("class_similarity", "mode_spread", "background_rate_audio", "background_rate_visual",
                  "av_sync", "salience_floor", "absent_leak", "segment_corr", "background_corr"):
            if getattr(self, k) > 1:
                raise ValueError(f"SimParamsV2.{k} must be in [0, 1], got {getattr(self, k)}")
        if self.class_similarity + self.mode_spread > 1:
            raise ValueError("SimParamsV2.class_similarity + mode_spread must be <= 1, got "
                             f"{self.class_similarity + self.mode_spread}")
        for k in ("segment_corr", "background_corr"):
            if getattr(self, k) >= 1:
                raise ValueError(f"SimParamsV2.{k} must be < 1")
        for k in ("latent_dim", "modes", "instance_rank"):
            if getattr(self, k) < 1 or int(getattr(self, k)) != getattr(self, k):
                raise ValueError(f"SimParamsV2.{k} must be an integer >= 1, got {getattr(self, k)}")
        if self.salience_width <= 0:
            raise ValueError(f"SimParamsV2.salience_width must be > 0, got {self.salience_width}")


@dataclass
class SimTruthV2(SimTruth):
    """v1's truth plus the salience latents.

    Attributes:
        would_audio: (N, 3, 10) bool interval each labelled slot's audio event has or would have.
        would_visual: Same for the visual event.
        margin_audio: (N, 3) float salience margin ``z - t`` (> 0 present, <= 0 absent; 0 unused).
        margin_visual: Same for the visual modality.
    """

    would_audio: np.ndarray = None
    would_visual: np.ndarray = None
    margin_audio: np.ndarray = None
    margin_visual: np.ndarray = None


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _margins(u: np.ndarray, p_absent: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Salience margins: the logistic latent drawn conditionally on presence, minus its threshold."""
    p = np.clip(p_absent, _P_CLIP, 1 - _P_CLIP)
    q = np.where(on, p + u * (1 - p), u * p)
    q = np.clip(q, 1e-9, 1 - 1e-9)
    return _logit(q) - _logit(p)


def absence_shares(params: SimParamsV2, stats: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Per modality, (25,) share of a class's labels that are absent from it (the state table)."""
    t = _state_table(load_stats() if stats is None else stats, params)
    return {"audio": t[:, 2] + t[:, 3], "visual": t[:, 1] + t[:, 3]}


def simulate_truth(n: int, rng: np.random.Generator, params: SimParamsV2,
                   stats: Mapping[str, Any] | None = None) -> SimTruthV2:
    """Weak labels, modality states, events and salience margins of ``n`` videos.

    The label sets, states and intervals are drawn as in v1 (same figures); the margins add one
    draw per (video, slot, modality).
    """
    stats = load_stats() if stats is None else stats
    table, probs = _label_set_table(stats)
    classes = table[rng.choice(len(table), size=n, p=probs)]
    used = classes >= 0
    cls0 = np.where(used, classes, 0)
    state_p = _state_table(stats, params)[cls0]  # (N, 3, 4): both, audio_only, visual_only, neither
    r = rng.random((n, MAX_LABELS, 1))
    states = np.minimum((r > state_p.cumsum(-1)).sum(-1), 3)
    states = np.where(used, states, -1)
    all_neither = ((states == 3) | ~used).all(1)  # a video shows something (as v1)
    states[all_neither[:, None] & used] = 0
    audio_on = used & ((states == 0) | (states == 1))
    visual_on = used & ((states == 0) | (states == 2))
    q = _length_q(stats)[cls0]
    u_a = rng.random((n, MAX_LABELS))
    u_v = np.where(rng.random((n, MAX_LABELS)) < params.av_sync, u_a, rng.random((n, MAX_LABELS)))
    would_a = _intervals(rng, q[..., 0], u_a) & used[..., None]
    would_v = _intervals(rng, q[..., 1], u_v) & used[..., None]
    slot_a, slot_v = would_a & audio_on[..., None], would_v & visual_on[..., None]
    absent = absence_shares(params, stats)
    m_a = _margins(rng.random((n, MAX_LABELS)), absent["audio"][cls0], audio_on)
    m_v = _margins(rng.random((n, MAX_LABELS)), absent["visual"][cls0], visual_on)

    labels = np.zeros((n, NUM_CLASSES), np.uint8)
    gt_a = np.zeros((n, NUM_SEGMENTS, NUM_CLASSES), np.uint8)
    gt_v = np.zeros((n, NUM_SEGMENTS, NUM_CLASSES), np.uint8)
    rows = np.arange(n)
    for s in range(MAX_LABELS):
        ok = used[:, s]
        labels[rows[ok], classes[ok, s]] = 1
        gt_a[rows[ok], :, classes[ok, s]] |= slot_a[ok, s].astype(np.uint8)
        gt_v[rows[ok], :, classes[ok, s]] |= slot_v[ok, s].astype(np.uint8)
    return SimTruthV2(classes, states, labels, gt_a, gt_v, slot_a, slot_v, would_a, would_v,
                      np.where(used, m_a, 0.0), np.where(used, m_v, 0.0))
