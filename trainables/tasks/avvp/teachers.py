"""LLP-sim teachers: simulated CLIP/CLAP-like segment and class-prompt embeddings.

VAPLAN (Zhou et al., "Advancing Weakly-Supervised Audio-Visual Video Parsing via Segment-wise
Pseudo Labeling") labels segments with a pretrained image-text (CLIP) and audio-text (CLAP)
teacher. LLP-sim has no pixels or waveforms, so this module simulates the teachers' *outputs* from
the hidden truth: per modality, an ``(N, T, D)`` array of segment embeddings and a ``(C, D)`` array
of class text embeddings, whose quality against the truth is set by documented knobs
(:class:`TeacherParams`). The arrays go through exactly the same PLG code as real embeddings
(``trainables.methods.vaplan.pseudo``).

**Scale of the scores.** The PLG score is a softmax over the C classes of the cosine similarities,
with no temperature. Real CLIP/CLAP cosines sit in a narrow band (image-text cosines of CLIP are
about 0.2-0.3), so the scores sit near 1/C = 0.04 and the paper's thresholds (0.041 visual, 0.038
audio) are fractions of a percent away from uniform. The simulation works in *cosine units*: a
segment's cosine with class c is ``base_cos + x_c``, where ``x_c`` holds the evidence for c
(``strength`` for a clearly seen instance) plus noise, so the score of c is
``exp(x_c) / sum_j exp(x_j)`` and the knobs read directly as cosine margins.

**Construction** (exact, so the knobs mean what they say). A fixed random orthonormal basis holds
a text direction ``g``, a segment-content direction ``h`` and one direction ``u_c`` per class. The
text embedding of class c is ``sqrt(rho) g + sqrt(1 - rho) u_c`` (unit norm; two prompts have cosine
``rho = text_similarity``, as prompts sharing one template do). A segment is
``a g + sum_c x_c / sqrt(1 - rho) u_c + b h`` with ``a = base_cos / sqrt(rho)`` and ``b`` filling the
norm up to 1, so its cosine with class c is exactly ``base_cos + x_c``. That holds while the
evidence fits in a unit vector (``a^2 + sum_c x_c^2 / (1 - rho) < 0.99``: every visual segment of
the default teacher, about 94% of the audio ones); a segment with more evidence is rescaled to unit
norm, which shrinks all its margins by one factor, as a real unit-norm embedding must. The dimensions
beyond ``C + 2`` carry nothing; ``dim`` only sets the array width (CLIP ViT-B/32 and CLAP use 512).

**Evidence** per modality, from that modality's truth ``gt`` and the weak labels:

* a true (segment, class) is seen at the instance's strength: ``strength`` times a per-(video,
  class) log-normal factor (``strength_spread``; some instances are small, occluded or quiet);
* ``miss_rate``: a true segment is not seen (momentary occlusion, a quiet second);
* ``confusion_rate``: a whole instance is seen as another class (a group mate, e.g. cello for
  violin, with probability ``CONFUSION_IN_GROUP``, otherwise any class);
* ``background_rate``: a segment where a *labelled* class is not on in this modality still shows
  evidence of it at ``background_strength`` times its strength (off-screen sources, context: a road
  scene for a car that is only heard; the sound of a guitar before it is in view);
* ``distractor_rate``: a segment shows evidence of an *unlabelled* class at ``distractor_strength``
  times its strength (the rest of the scene or soundscape). PLG drops unlabelled classes, so this
  makes no false positive itself, but it raises the softmax normaliser and so pushes the scores of
  absent labelled classes below 1/C. The audio threshold 0.038 is *below* 1/25, so without it an
  absent labelled class would pass about half the time whatever the noise;
* ``noise``: per (segment, class) Gaussian cosine noise (isotropic embedding noise projected on the
  class directions) of that standard deviation.

Misses, background and distractors follow two-state Markov chains over segments, the noise an AR(1)
process, all with lag-1 correlation ``temporal_corr``: neighbouring seconds of a video look alike, which is
why the teachers' errors come in runs and their event-level F is not far below the segment-level F.

**Calibration** (:data:`DEFAULT_TEACHERS`). A few knobs per modality were fitted so that the pseudo
labels at the paper's thresholds reach the quality the paper measured for the *real* teachers on LLP
val (:data:`PAPER_QUALITY`): visual segment/event F 71.1/64.8 at tau_v 0.041 and 51.5 (segment) at
tau_v 0.042, the collapse the paper reports; audio 80.3/71.5 at tau_a 0.038. Quality is measured
with the project's AVVP metrics by :func:`teacher_quality`; nothing was fitted to any method's
training outcome. :func:`measure` reports the figures on an LLP-sim split
(``python -m trainables.tasks.avvp.teachers llp-sim-small``).

Everything is a pure function of the arrays and the seed (the data layer can cache the result).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

# The paper's measured pseudo-label quality of the real teachers on LLP val after PLG (Tables 1-4):
# segment-level and event-level F, per modality, at tau_v = 0.041 and tau_a = 0.038.
PAPER_QUALITY: dict[str, dict[str, float]] = {
    "visual": {"seg": 71.1, "event": 64.8},
    "audio": {"seg": 80.3, "event": 71.5},
}
PAPER_TAU: dict[str, float] = {"visual": 0.041, "audio": 0.038}
MODALITIES = ("audio", "visual")
# Share of confusions that go to a class of the same semantic group (llp_sim.CLASS_GROUPS).
CONFUSION_IN_GROUP = 0.75
_STREAM_TAG = {"audio": 1, "visual": 2}  # separates the two teachers' random streams


@dataclass(frozen=True)
class TeacherParams:
    """Quality knobs of one simulated teacher (see the module docstring for the model).

    The field defaults are the calibrated visual teacher (``DEFAULT_TEACHERS["visual"]``).

    Attributes:
        dim: Embedding width (>= C + 2; only sets the array size).
        text_similarity: Cosine between two class prompts' text embeddings (0 <= rho < 1).
        base_cos: Cosine of a segment with a class it shows no evidence of.
        strength: Cosine margin of a clearly seen class (the mean of the instance strengths).
        strength_spread: Log-normal sigma of the per-(video, class) instance strength.
        miss_rate: Chance that a true (segment, class) shows no evidence.
        confusion_rate: Chance that a (video, class) instance is seen as another class.
        background_rate: Chance that a labelled class not on in this modality at a segment shows
            evidence there anyway.
        background_strength: That evidence's strength relative to the instance strength.
        distractor_rate: Chance that an *unlabelled* class shows evidence at a segment (other
            sounds or objects of the scene). It creates no false positive by itself (PLG keeps only
            labelled classes) but raises the softmax normaliser, which pushes the scores of absent
            labelled classes below 1/C.
        distractor_strength: That evidence's strength relative to the instance strength.
        noise: Standard deviation of the per-(segment, class) cosine noise.
        temporal_corr: Lag-1 correlation over segments of misses, background and noise.
    """

    dim: int = 64
    text_similarity: float = 0.8
    base_cos: float = 0.22
    strength: float = 0.069
    strength_spread: float = 0.45
    miss_rate: float = 0.07
    confusion_rate: float = 0.05
    background_rate: float = 0.118
    background_strength: float = 1.0
    distractor_rate: float = 0.1
    distractor_strength: float = 1.0
    noise: float = 0.01
    temporal_corr: float = 0.68

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if v < 0:
                raise ValueError(f"TeacherParams.{k} must be >= 0, got {v}")
        for k in ("miss_rate", "confusion_rate", "background_rate", "distractor_rate", "temporal_corr"):
            if getattr(self, k) > 1:
                raise ValueError(f"TeacherParams.{k} must be in [0, 1], got {getattr(self, k)}")
        if not self.text_similarity < 1:
            raise ValueError(f"TeacherParams.text_similarity must be < 1, got {self.text_similarity}")
        if self.temporal_corr >= 1:
            raise ValueError("TeacherParams.temporal_corr must be < 1 (1 would freeze the first segment)")


# The calibrated teachers (module docstring, "Calibration"). Set by judgement, not fitted: dim,
# text_similarity, base_cos, miss/confusion rates, distractors, noise, and the audio
# strength_spread. Fitted (Nelder-Mead on the truth of 4,000 LLP-sim videos with LLP-sim's default
# SimParams, simulate_truth seeded 1, teacher seed 0), to PAPER_QUALITY and nothing else; the rounded
# values below give on that sample:
# * visual: strength, strength_spread, background_rate, temporal_corr, to seg/event F 71.1/64.8 at
#   0.041 and seg F 51.5 at 0.042 (rounded: 71.1/64.2 and 51.1);
# * audio: strength, background_rate, temporal_corr, to seg/event F 80.3/71.5 at 0.038 (rounded:
#   80.3/71.5). Its low temporal_corr: the audio gap between segment and event F (8.8 points) is
#   larger than the visual one (6.3), i.e. the real CLAP labels are more fragmented.
DEFAULT_TEACHERS: dict[str, TeacherParams] = {
    "visual": TeacherParams(),
    "audio": TeacherParams(
        text_similarity=0.3, base_cos=0.1, strength=0.37, strength_spread=0.25, miss_rate=0.07,
        confusion_rate=0.05, background_rate=0.041, background_strength=1.0, distractor_rate=0.8,
        distractor_strength=0.3, noise=0.05, temporal_corr=0.24,
    ),
}


@dataclass
class TeacherEmbeddings:
    """A teacher's output for one set of videos.

    Attributes:
        seg_emb: ``(N, T, D)`` float32 unit-norm segment embeddings.
        text_emb: ``(C, D)`` float32 unit-norm class text embeddings.
        meta: How they were made (``teacher``, ``modality``, ``seed``, ``params``), for cache keys.
    """

    seg_emb: np.ndarray
    text_emb: np.ndarray
    meta: dict[str, Any]


def class_groups(num_classes: int) -> np.ndarray:
    """``(C,)`` semantic group index per class: LLP-sim's groups for LLP's 25 classes.

    Any other class count gets one group per class (confusions then go to any class).
    """
    from trainables.tasks.avvp.classes import LLP_CLASSES
    from trainables.tasks.avvp.llp_sim import CLASS_GROUPS

    if num_classes != len(LLP_CLASSES):
        return np.arange(num_classes)
    group = np.arange(num_classes)  # a class in no group is its own group
    for g, names in enumerate(CLASS_GROUPS.values()):
        for name in names:
            group[LLP_CLASSES.index(name)] = num_classes + g
    return group


def _markov(rng: np.random.Generator, shape: tuple[int, int, int], rate: float, corr: float) -> np.ndarray:
    """``(N, T, C)`` bool two-state Markov chains over axis 1: P(on) = rate, lag-1 correlation corr."""
    n, t, c = shape
    stay_on = rate + corr * (1.0 - rate)  # P(1 -> 1); P(0 -> 1) below keeps the rate stationary
    turn_on = rate * (1.0 - corr)
    u = rng.random(shape)
    out = np.empty(shape, bool)
    out[:, 0] = u[:, 0] < rate
    for i in range(1, t):  # a loop over the T segments, vectorised over videos and classes
        out[:, i] = u[:, i] < np.where(out[:, i - 1], stay_on, turn_on)
    return out


def _ar1(rng: np.random.Generator, shape: tuple[int, int, int], std: float, corr: float) -> np.ndarray:
    """``(N, T, C)`` stationary Gaussian AR(1) noise over axis 1 with standard deviation ``std``."""
    z = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = z[:, 0]
    innov = np.sqrt(1.0 - corr * corr)
    for i in range(1, shape[1]):
        out[:, i] = corr * out[:, i - 1] + innov * z[:, i]
    return std * out


def _confusion_targets(rng: np.random.Generator, n: int, groups: np.ndarray) -> np.ndarray:
    """``(N, C)`` class each (video, class) instance is mistaken for, when it is (never itself)."""
    c = groups.shape[0]
    same = (groups[:, None] == groups[None, :]) & ~np.eye(c, dtype=bool)
    # Weights per source class: CONFUSION_IN_GROUP spread over its group mates, the rest uniform
    # over all other classes (all of it when the class has no group mate).
    n_mates = same.sum(1, keepdims=True)
    w = np.where(n_mates > 0, (1.0 - CONFUSION_IN_GROUP) / (c - 1), 1.0 / (c - 1)) * ~np.eye(c, dtype=bool)
    w = w + np.where(same, CONFUSION_IN_GROUP / np.maximum(n_mates, 1), 0.0)
    cum = np.cumsum(w / w.sum(1, keepdims=True), axis=1)  # (C, C) rows: source class
    u = rng.random((n, c, 1))
    return np.minimum((u > cum[None]).sum(-1), c - 1)


def evidence(
    gt: np.ndarray, labels: np.ndarray, p: TeacherParams, rng: np.random.Generator,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """``(N, T, C)`` cosine margins the teacher sees (before noise), from one modality's truth.

    Args:
        gt: ``(N, T, C)`` truth of the modality (bool or 0/1).
        labels: ``(N, C)`` weak labels.
        p: Teacher knobs.
        rng: Random stream (consumed).
        groups: ``(C,)`` semantic group per class (default :func:`class_groups`).
    """
    gt = np.asarray(gt) != 0
    lab = np.asarray(labels) != 0
    n, t, c = gt.shape
    groups = class_groups(c) if groups is None else np.asarray(groups)
    # Per-instance strength, log-normal with mean p.strength (the -sigma^2/2 keeps the mean).
    sig = p.strength_spread
    inst = p.strength * np.exp(sig * rng.standard_normal((n, c)) - 0.5 * sig * sig)
    seen = gt & ~_markov(rng, (n, t, c), p.miss_rate, p.temporal_corr)
    x = seen * inst[:, None, :]
    # Confused instances move their evidence (and its strength) to the class they are taken for.
    confused = (rng.random((n, c)) < p.confusion_rate) & gt.any(1)
    target = _confusion_targets(rng, n, groups)
    vi, ci = np.nonzero(confused)
    moved = x[vi, :, ci]  # (K, T)
    x[vi, :, ci] = 0.0
    np.maximum.at(x, (vi[:, None], np.arange(t)[None, :], target[vi, ci][:, None]), moved)
    # Background evidence of labelled classes where they are not on (off-screen, context).
    bg = _markov(rng, (n, t, c), p.background_rate, p.temporal_corr) & lab[:, None, :] & ~gt
    x = np.maximum(x, bg * (p.background_strength * inst)[:, None, :])
    # Distractors: evidence of unlabelled classes (the rest of the scene or soundscape).
    dis = _markov(rng, (n, t, c), p.distractor_rate, p.temporal_corr) & ~lab[:, None, :] & ~gt
    return np.maximum(x, dis * (p.distractor_strength * inst)[:, None, :])


def text_basis(dim: int, text_similarity: float, c: int, seq: np.random.SeedSequence
               ) -> tuple[np.ndarray, np.ndarray]:
    """A teacher's fixed orthonormal basis ``(D, D)`` and class text embeddings ``(C, D)``.

    Column 0 is the text direction ``g``, column 1 the segment-content direction ``h``, columns
    ``2..C+1`` the class directions ``u_c`` (module docstring, "Construction").
    """
    if dim < c + 2:
        raise ValueError(f"TeacherParams.dim must be >= C + 2 = {c + 2}, got {dim}")
    rng = np.random.default_rng(seq)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))  # a uniformly random rotation (sign fix makes QR's Q unique)
    g, u = q[:, 0], q[:, 2 : 2 + c].T
    rho = text_similarity
    return q, np.sqrt(rho) * g[None, :] + np.sqrt(1.0 - rho) * u


def embed_margins(x: np.ndarray, q: np.ndarray, base_cos: float, text_similarity: float) -> np.ndarray:
    """Unit-norm segment embeddings ``(N, T, D)`` whose cosine with class c is ``base_cos + x_c``.

    Args:
        x: ``(N, T, C)`` cosine margins.
        q: The basis of :func:`text_basis`.
        base_cos: Cosine of a segment with a class it shows no evidence of.
        text_similarity: The ``rho`` the text embeddings were built with.
    """
    c = x.shape[-1]
    rho = text_similarity
    coef = x / np.sqrt(1.0 - rho)  # coordinates on the class directions u_c
    a = base_cos / np.sqrt(rho)  # coordinate on the text direction g
    # b fills the norm up to 1, so cosines are exactly base_cos + x; where the evidence alone
    # exceeds unit norm, b stays 0.1 and the normalisation below rescales the segment.
    b = np.sqrt(np.maximum(1.0 - a * a - (coef * coef).sum(-1, keepdims=True), 0.01))
    emb = a * q[:, 0] + b * q[:, 1] + coef @ q[:, 2 : 2 + c].T
    emb /= np.linalg.norm(emb, axis=-1, keepdims=True)
    return emb


def simulate_teacher(
    gt: Any, labels: Any, modality: str, params: TeacherParams | None = None, *, seed: int = 0,
    groups: np.ndarray | None = None,
) -> TeacherEmbeddings:
    """Simulated teacher embeddings of one modality from its hidden truth.

    Args:
        gt: ``(N, T, C)`` truth of the modality (``gt_visual`` for the CLIP-like teacher,
            ``gt_audio`` for the CLAP-like one), bool or 0/1, numpy or torch.
        labels: ``(N, C)`` weak video-level labels.
        modality: ``"visual"`` or ``"audio"`` (picks the default knobs and the random stream).
        params: Knobs; default ``DEFAULT_TEACHERS[modality]``.
        seed: Seed. The text embeddings depend only on (seed, modality, params), so they are the
            same for every split; the segment draws depend on the rows too, so call this once on
            all videos (or with a different seed per split) to keep splits' draws independent.
        groups: ``(C,)`` semantic group per class, for confusions (default :func:`class_groups`).

    Returns:
        The embeddings (float32, unit norm) and their metadata.
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    p = DEFAULT_TEACHERS[modality] if params is None else params
    gt = _numpy(gt)
    labels = _numpy(labels)
    if gt.ndim != 3 or labels.shape != (gt.shape[0], gt.shape[2]):
        raise ValueError(f"expected gt (N, T, C) and labels (N, C), got {gt.shape} and {labels.shape}")
    n, t, c = gt.shape
    s_world, s_draw = np.random.SeedSequence([int(seed), _STREAM_TAG[modality]]).spawn(2)
    q, text = text_basis(p.dim, p.text_similarity, c, s_world)
    rng = np.random.default_rng(s_draw)
    x = evidence(gt, labels, p, rng, groups) + _ar1(rng, (n, t, c), p.noise, p.temporal_corr)
    emb = embed_margins(x, q, p.base_cos, p.text_similarity)
    meta = {"teacher": "llp-sim", "modality": modality, "seed": int(seed), "params": asdict(p)}
    return TeacherEmbeddings(emb.astype(np.float32), text.astype(np.float32), meta)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def plg_labels(seg_emb: np.ndarray, text_emb: np.ndarray, labels: np.ndarray, tau: float) -> np.ndarray:
    """VAPLAN's PLG rule in numpy: ``softmax_c(cos) >= tau AND label`` (``(N, T, C)`` bool).

    The same rule as ``trainables.methods.vaplan.pseudo.segment_pseudo_labels`` (a test checks
    they agree), restated here so that this task module does not import a method.
    """
    e = seg_emb / np.linalg.norm(seg_emb, axis=-1, keepdims=True)
    w = text_emb / np.linalg.norm(text_emb, axis=-1, keepdims=True)
    cos = (e @ w.T).astype(np.float64)
    s = np.exp(cos - cos.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    return (s >= tau) & (np.asarray(labels) != 0)[:, None, :]


def pseudo_label_quality(seg_labels: Any, gt: Any) -> dict[str, float]:
    """Segment- and event-level F (0..100) of one modality's pseudo labels against its truth.

    Uses the project's AVVP metrics (the LLP protocol): ``seg``/``event`` are ``seg_A``/``event_A``
    of ``avvp_scores`` with the pair given for both streams, i.e. ``seg_V``/``event_V`` for the
    visual stream and ``seg_A``/``event_A`` for the audio one, as the paper reports them.
    """
    from trainables.tasks.avvp.metrics import avvp_scores

    y, g = _numpy(seg_labels) != 0, _numpy(gt) != 0
    s = avvp_scores(y, y, g, g)
    return {"seg": s["seg_A"], "event": s["event_A"]}


def teacher_quality(
    gt: Any, labels: Any, modality: str, params: TeacherParams | None = None, *, seed: int = 0,
    tau: float | None = None,
) -> dict[str, float]:
    """Simulates a teacher and scores its PLG pseudo labels against the truth.

    This is the calibration measurement: with the defaults and the paper's thresholds, on an
    LLP-sim val split, the figures should be near :data:`PAPER_QUALITY`.

    Args:
        gt: ``(N, T, C)`` truth of the modality.
        labels: ``(N, C)`` weak labels.
        modality: ``"visual"`` or ``"audio"``.
        params: Knobs (default ``DEFAULT_TEACHERS[modality]``).
        seed: Teacher seed.
        tau: PLG threshold (default ``PAPER_TAU[modality]``).

    Returns:
        ``{"seg", "event"}`` F-scores (0..100), plus ``"score_on"`` / ``"score_off"``, the mean PLG
        score of true and of labelled-but-absent (segment, class) pairs (diagnostics of the scale).
    """
    emb = simulate_teacher(gt, labels, modality, params, seed=seed)
    tau = PAPER_TAU[modality] if tau is None else tau
    y = plg_labels(emb.seg_emb, emb.text_emb, _numpy(labels), tau)
    out = pseudo_label_quality(y, gt)
    cos = emb.seg_emb @ emb.text_emb.T
    s = np.exp(cos) / np.exp(cos).sum(-1, keepdims=True)
    g = _numpy(gt) != 0
    off = (_numpy(labels) != 0)[:, None, :] & ~g
    out["score_on"] = float(s[g].mean()) if g.any() else float("nan")
    out["score_off"] = float(s[off].mean()) if off.any() else float("nan")
    return out


def with_params(modality: str, **changes: Any) -> TeacherParams:
    """The default teacher of ``modality`` with some knobs changed (for sweeps and studies)."""
    return replace(DEFAULT_TEACHERS[modality], **changes)


def measure(
    spec: str = "llp-sim-small", split: str = "val", *, seeds: tuple[int, ...] = (0,), data_seed: int = 0,
) -> dict[str, dict[str, float]]:
    """The calibration report: default teachers' pseudo-label quality on an AVVP data split.

    Args:
        spec: A data spec with truth for ``split`` (``llp-sim-tiny``, ``llp-sim-small``, ``llp-sim``,
            ``llp=PATH`` of an LLP-sim set); presets are generated on first use.
        split: The split to score (the paper's figures are on val).
        seeds: Teacher seeds; figures are means over them.
        data_seed: The preset's generation seed.

    Returns:
        ``{"visual": {"seg", "event", "seg_tau042", "paper_seg", "paper_event"}, "audio": {...}}``
        (``seg_tau042`` only for visual: the segment F at tau_v = 0.042).
    """
    from trainables.data.registry import resolve_data
    from trainables.tasks.avvp.data import load_avvp

    d = load_avvp(resolve_data(spec, seed=data_seed), split)
    if not d.has_truth:
        raise ValueError(f"{spec}: split {split!r} has no truth to score against")
    out: dict[str, dict[str, float]] = {}
    for modality, gt in (("visual", d.gt_visual), ("audio", d.gt_audio)):
        runs = [teacher_quality(gt, d.labels, modality, seed=s) for s in seeds]
        row = {k: float(np.mean([r[k] for r in runs])) for k in ("seg", "event")}
        if modality == "visual":
            row["seg_tau042"] = float(np.mean(
                [teacher_quality(gt, d.labels, modality, seed=s, tau=0.042)["seg"] for s in seeds]))
        row["paper_seg"] = PAPER_QUALITY[modality]["seg"]
        row["paper_event"] = PAPER_QUALITY[modality]["event"]
        out[modality] = row
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m trainables.tasks.avvp.teachers [SPEC] [SPLIT] [N_SEEDS]``: prints :func:`measure`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    spec = args[0] if args else "llp-sim-small"
    split = args[1] if len(args) > 1 else "val"
    seeds = tuple(range(int(args[2]) if len(args) > 2 else 1))
    rep = measure(spec, split, seeds=seeds)
    print(f"default LLP-sim teachers on {spec} {split}, teacher seeds {list(seeds)} (paper: real CLIP/CLAP on LLP val)")
    for modality, row in rep.items():
        extra = f", seg F at tau 0.042 {row['seg_tau042']:.1f} (paper 51.5)" if "seg_tau042" in row else ""
        print(f"  {modality:6s} tau {PAPER_TAU[modality]}: seg F {row['seg']:.1f} (paper {row['paper_seg']}), "
              f"event F {row['event']:.1f} (paper {row['paper_event']}){extra}")


if __name__ == "__main__":
    main()
