"""LLP-sim: a simulated LLP with hidden per-modality truth for every split.

Why it exists: real LLP has dense truth only for val/test, so label *denoising* on the train split
can only be judged indirectly. LLP-sim keeps the schema of real LLP (same columns, shapes, class
order and filename pattern) and adds the truth of every split, so the precision/recall of removed
labels and the error of estimated noise ratios can be measured directly.

Generative story (all figures from the embedded ``llp_stats.json``, derived from the official CSVs):

1. **Weak label set** of each video: drawn from the empirical distribution of train label sets
   (``train_label_sets``), which fixes labels per video, class frequencies and co-occurrence.
2. **Modality state** of each (video, labelled class): audio-visual / audio-only / visual-only /
   neither, with the per-class shares of ``modality_split_eval`` (scalable by
   ``modality_noise_scale`` and ``neither_scale``). This is the modality-specific
   label noise: the weak label says "present", the truth may be "only audible" (e.g. off-screen
   speech, 76% of Speech) or "only visible".
3. **Events**: one interval per active (video, class, modality) whose length is
   ``1 + Binomial(9, q)`` with ``q`` set so that the mean matches ``mean_event_segments``; an
   audio-visual class shares its relative position across modalities (``av_sync``).
4. **Features** (official dimensions 128 / 2048 (or 8x2048 frames) / 512): built in a
   ``latent_dim`` space and mapped to each modality by a fixed random linear map, plus isotropic
   noise at the output dimension. A segment's audio latent holds class c's *audio* prototype only
   where the audio event of c is on; visual and motion latents hold c's visual/motion prototypes
   only where the *visual* event is on. So a model that trusts the weak labels for both modalities
   is taught wrong targets, and the visual F-scores suffer.

Everything is vectorised over videos (no per-video Python loops) and deterministic by seed:
features are generated in fixed-size chunks, each with its own spawned random stream, so the
bytes do not depend on the thread count.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from trainables.tasks.avvp.classes import LLP_CLASSES, NUM_CLASSES, NUM_SEGMENTS
from trainables.data import format as fmt

# Bump when a change to the generator changes the bytes of a preset (it keys the cache).
SIM_VERSION = 1
MAX_LABELS = 3
DIMS = {"audio": 128, "visual": 2048, "motion": 512}
FRAMES = 8
STATES = ("both", "audio_only", "visual_only", "neither")
_CHUNK = 512  # videos per feature chunk; part of the determinism contract (changes the bytes)

# Coarse semantic groups of the 25 classes: prototypes of one group share a component
# (``class_similarity``), so e.g. Violin and Cello are easier to confuse than Violin and Dog.
CLASS_GROUPS: dict[str, tuple[str, ...]] = {
    "music": ("Cello", "Banjo", "Violin_fiddle", "Accordion", "Acoustic_guitar", "Singing"),
    "engine": ("Car", "Chainsaw", "Lawn_mower", "Motorcycle", "Helicopter", "Vacuum_cleaner", "Blender"),
    "people": ("Speech", "Cheering", "Clapping", "Baby_laughter", "Baby_cry_infant_cry"),
    "animal": ("Dog", "Cat", "Chicken_rooster"),
    "household": ("Frying_(food)", "Fire_alarm", "Telephone_bell_ringing", "Basketball_bounce"),
}


def load_stats() -> dict[str, Any]:
    """The LLP figures embedded in the package (a copy of the shared ``llp_stats.json``)."""
    text = resources.files("trainables.tasks.avvp").joinpath("llp_stats.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class SimParams:
    """Difficulty knobs of LLP-sim (recorded in the file metadata under ``params``).

    Latent vectors (prototypes, nuisance, noise) have i.i.d. N(0, 1/latent_dim) entries, so a
    knob's value is the expected norm of its contribution; the per-segment noise has norm
    ``noise``. Larger ``*_strength`` = easier; larger ``noise``/``nuisance``/``distractor_*``/
    ``instance_var``/``class_similarity`` = harder.

    Attributes:
        latent_dim: Dimension of the latent space the features are generated in.
        audio_strength: Norm of a class's audio prototype in an audio segment where it is on.
        visual_strength: Same for the visual (res152-like) stream.
        motion_strength: Same for the motion (r2plus1d-like) stream, which follows visual truth.
        class_strength_spread: Log-normal sigma of a per-class, per-modality strength factor
            (some classes are harder to see or hear than others).
        class_similarity: Share (0..1) of a prototype's variance taken from its semantic group's
            shared component; higher makes within-group confusions likelier.
        instance_var: Norm of a per-(video, class) deviation from the prototype (intra-class
            variability; the same instance across the video's segments).
        noise: Norm of i.i.d. per-segment latent noise.
        nuisance: Norm of a per-video scene vector added to every segment (background).
        distractor_prob: Chance that a segment also carries an unlabelled class's prototype.
        distractor_strength: Relative strength of such a distractor (times the modality strength).
        leakage: Cross-modal leakage: an active *visual* event adds ``leakage`` times its class's
            audio prototype to the audio segment (and an audio event to visual/motion), i.e. the
            scene hints at what is heard. 0 = modalities independent given truth.
        context: Video-level bleed: every segment of a modality gets ``context`` times the
            prototypes of the classes present anywhere in that modality in the video.
        obs_noise: Std of isotropic (uniform) noise added per output dimension.
        frame_jitter: Std of per-frame deviations when res152 is stored with 8 frames; they sum
            to zero over a segment's frames, so frame-averaging recovers the averaged features.
        modality_noise_scale: Multiplier of the per-class audio-only and visual-only shares
            (1 = the real LLP figures, 0 = every labelled class is audio-visual, i.e. no
            modality-specific label noise); 'both' takes up the difference. The main handle on
            the weak-vs-true-label gap.
        neither_scale: Multiplier of the 'neither' share (a weak label with no event in either
            modality; about 1% in real LLP); 'both' takes up the difference. A video whose
            labels all come out 'neither' has them set to 'both' (real videos show something).
        av_sync: Chance that an audio-visual class's audio and visual events share their relative
            position (otherwise drawn independently).
    """

    latent_dim: int = 64
    audio_strength: float = 1.0
    visual_strength: float = 1.0
    motion_strength: float = 0.6
    class_strength_spread: float = 0.3
    class_similarity: float = 0.4
    instance_var: float = 0.5
    noise: float = 0.8
    nuisance: float = 0.8
    distractor_prob: float = 0.15
    distractor_strength: float = 0.6
    leakage: float = 0.15
    context: float = 0.15
    obs_noise: float = 0.3
    frame_jitter: float = 0.3
    modality_noise_scale: float = 1.0
    neither_scale: float = 1.0
    av_sync: float = 0.8

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if isinstance(v, (int, float)) and v < 0:
                raise ValueError(f"SimParams.{k} must be >= 0, got {v}")
        for k in ("class_similarity", "distractor_prob", "av_sync"):
            if getattr(self, k) > 1:
                raise ValueError(f"SimParams.{k} must be in [0, 1], got {getattr(self, k)}")
        if self.latent_dim < 1:
            raise ValueError(f"SimParams.latent_dim must be >= 1, got {self.latent_dim}")


@dataclass(frozen=True)
class SimPreset:
    """Sizes and storage of a named LLP-sim preset."""

    n_train: int
    n_val: int
    n_test: int
    float16: bool = False
    average_frames: bool = True
    params: SimParams = field(default_factory=SimParams)


PRESETS: dict[str, SimPreset] = {
    "llp-sim": SimPreset(10000, 649, 1200, float16=True),
    "llp-sim-small": SimPreset(2000, 300, 300),
    "llp-sim-tiny": SimPreset(256, 64, 64),
}


@dataclass
class SimTruth:
    """Labels and hidden truth of simulated videos (no features).

    Attributes:
        classes: (N, 3) int class index per label slot, -1 where unused.
        states: (N, 3) int index into ``STATES`` per slot (-1 where unused).
        labels: (N, 25) uint8 weak labels.
        gt_audio: (N, 10, 25) uint8 audio events.
        gt_visual: (N, 10, 25) uint8 visual events.
        slot_audio: (N, 3, 10) bool audio event mask per slot.
        slot_visual: (N, 3, 10) bool visual event mask per slot.
    """

    classes: np.ndarray
    states: np.ndarray
    labels: np.ndarray
    gt_audio: np.ndarray
    gt_visual: np.ndarray
    slot_audio: np.ndarray
    slot_visual: np.ndarray


def _label_set_table(stats: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Label sets as an (S, 3) class-index table (-1 padded) and their probabilities."""
    index = {c: i for i, c in enumerate(LLP_CLASSES)}
    sets = stats["train_label_sets"]
    table = np.full((len(sets), MAX_LABELS), -1, np.int64)
    probs = np.empty(len(sets))
    for i, (key, p) in enumerate(sets.items()):
        cls = [index[c] for c in key.split(",")]
        table[i, : len(cls)] = cls
        probs[i] = p
    return table, probs / probs.sum()


def _state_table(stats: Mapping[str, Any], params: SimParams) -> np.ndarray:
    """(25, 4) per-class probabilities of both / audio_only / visual_only / neither.

    The single-modality shares are scaled by ``modality_noise_scale`` and 'neither' by
    ``neither_scale``; 'both' takes the remainder (if the scaled shares exceed 1 they are
    renormalised and 'both' is 0).
    """
    split = stats["modality_split_eval"]
    p = np.array([[split[c][s] for s in STATES] for c in LLP_CLASSES], np.float64)
    p = p / p.sum(1, keepdims=True)
    noisy = p[:, 1:] * np.array([params.modality_noise_scale] * 2 + [params.neither_scale])
    total = noisy.sum(1, keepdims=True)
    noisy = np.where(total > 1, noisy / np.maximum(total, 1e-12), noisy)
    return np.concatenate([1 - noisy.sum(1, keepdims=True), noisy], axis=1).clip(0, 1)


def _length_q(stats: Mapping[str, Any]) -> np.ndarray:
    """(25, 2) Binomial q per class and modality (audio, visual) so that E[1+Bin(9,q)] = mean."""
    m = stats["mean_event_segments"]
    mean = np.array([[m[c]["audio"], m[c]["visual"]] for c in LLP_CLASSES], np.float64)
    return np.clip((mean - 1) / (NUM_SEGMENTS - 1), 0.0, 1.0)


def _intervals(rng: np.random.Generator, q: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(N, 3, 10) bool masks of intervals with lengths 1+Bin(9, q) placed at relative position u."""
    length = 1 + rng.binomial(NUM_SEGMENTS - 1, q)
    start = np.minimum((u * (NUM_SEGMENTS - length + 1)).astype(np.int64), NUM_SEGMENTS - length)
    t = np.arange(NUM_SEGMENTS)
    return (t >= start[..., None]) & (t < (start + length)[..., None])


def simulate_truth(n: int, rng: np.random.Generator, params: SimParams, stats: Mapping[str, Any] | None = None) -> SimTruth:
    """Draws weak labels, modality states and event intervals for ``n`` videos.

    Args:
        n: Number of videos.
        rng: Random generator (consumed).
        params: Knobs (``neither_scale`` and ``av_sync`` matter here).
        stats: LLP figures; defaults to the embedded ones.

    Returns:
        The labels and hidden truth.
    """
    stats = load_stats() if stats is None else stats
    table, probs = _label_set_table(stats)
    classes = table[rng.choice(len(table), size=n, p=probs)]
    used = classes >= 0
    cls0 = np.where(used, classes, 0)

    state_p = _state_table(stats, params)[cls0]  # (N, 3, 4)
    cum = state_p.cumsum(-1)
    r = rng.random((n, MAX_LABELS, 1))
    states = np.minimum((r > cum).sum(-1), len(STATES) - 1)
    states = np.where(used, states, -1)
    # A video whose every label is 'neither' would show nothing at all; real videos do not.
    all_neither = ((states == 3) | ~used).all(1)
    states[all_neither[:, None] & used] = 0

    audio_on = used & ((states == 0) | (states == 1))
    visual_on = used & ((states == 0) | (states == 2))
    q = _length_q(stats)[cls0]  # (N, 3, 2)
    u_a = rng.random((n, MAX_LABELS))
    u_v = np.where(rng.random((n, MAX_LABELS)) < params.av_sync, u_a, rng.random((n, MAX_LABELS)))
    slot_a = _intervals(rng, q[..., 0], u_a) & audio_on[..., None]
    slot_v = _intervals(rng, q[..., 1], u_v) & visual_on[..., None]

    labels = np.zeros((n, NUM_CLASSES), np.uint8)
    gt_a = np.zeros((n, NUM_SEGMENTS, NUM_CLASSES), np.uint8)
    gt_v = np.zeros((n, NUM_SEGMENTS, NUM_CLASSES), np.uint8)
    rows = np.arange(n)
    for s in range(MAX_LABELS):  # 3 slots, each vectorised over all videos
        ok = used[:, s]
        labels[rows[ok], classes[ok, s]] = 1
        gt_a[rows[ok], :, classes[ok, s]] |= slot_a[ok, s].astype(np.uint8)
        gt_v[rows[ok], :, classes[ok, s]] |= slot_v[ok, s].astype(np.uint8)
    return SimTruth(classes, states, labels, gt_a, gt_v, slot_a, slot_v)


def single_threaded_blas():
    """BLAS limited to one thread while chunks are generated: a multi-threaded BLAS splits a
    float32 product differently by thread count (seen: 1 vs 2 OpenBLAS threads moved 1.5-3.7% of
    the feature values by up to 6.7e-6), so the bytes would depend on ``OMP_NUM_THREADS``. The
    chunks still run side by side on the ``workers`` threads."""
    return threadpool_limits(limits=1, user_api="blas")


def _latent(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> np.ndarray:
    return rng.standard_normal((*shape, k), dtype=np.float32) / np.float32(np.sqrt(k))


@dataclass
class _World:
    """The fixed parts of a simulation: prototypes, per-class strengths and output maps."""

    proto: dict[str, np.ndarray]     # modality -> (25, k)
    strength: dict[str, np.ndarray]  # modality -> (25,)
    proj: dict[str, np.ndarray]      # modality -> (k, D)


def _make_world(rng: np.random.Generator, p: SimParams) -> _World:
    k = p.latent_dim
    group_of = np.zeros(NUM_CLASSES, np.int64)
    for g, names in enumerate(CLASS_GROUPS.values()):
        for name in names:
            group_of[LLP_CLASSES.index(name)] = g
    proto, strength, proj = {}, {}, {}
    base = {"audio": p.audio_strength, "visual": p.visual_strength, "motion": p.motion_strength}
    for m, d in DIMS.items():
        own = _latent(rng, (NUM_CLASSES,), k)
        shared = _latent(rng, (len(CLASS_GROUPS),), k)[group_of]
        v = np.sqrt(1 - p.class_similarity) * own + np.sqrt(p.class_similarity) * shared
        proto[m] = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        factor = np.exp(p.class_strength_spread * rng.standard_normal(NUM_CLASSES))
        strength[m] = (base[m] * factor).astype(np.float32)
        # Columns scaled so that a unit-norm latent maps to unit variance per output dimension.
        proj[m] = rng.standard_normal((k, d), dtype=np.float32)
    return _World(proto, strength, proj)


def _features_chunk(
    rng: np.random.Generator, world: _World, p: SimParams, truth: SimTruth, sl: slice,
    out: Mapping[str, np.ndarray], average_frames: bool,
) -> None:
    """Writes the features of videos ``sl`` into ``out`` (one random stream per chunk)."""
    k = p.latent_dim
    cls = truth.classes[sl]
    used = cls >= 0
    cls0 = np.where(used, cls, 0)
    n = cls.shape[0]
    on = {"audio": truth.slot_audio[sl], "visual": truth.slot_visual[sl]}
    # Which modality's truth drives which stream, and which one leaks into it.
    drive = {"audio": ("audio", "visual"), "visual": ("visual", "audio"), "motion": ("visual", "audio")}
    for m, d in DIMS.items():
        own_on, other_on = (on[x].astype(np.float32) for x in drive[m])
        proto = world.proto[m][cls0] * world.strength[m][cls0][..., None]  # (n, 3, k)
        proto *= used[..., None]
        inst = _latent(rng, (n, MAX_LABELS), k) * np.float32(p.instance_var) * used[..., None]
        z = np.einsum("nst,nsk->ntk", own_on, proto + inst)
        z += np.float32(p.leakage) * np.einsum("nst,nsk->ntk", other_on, proto)
        present = own_on.any(-1).astype(np.float32)  # (n, 3): class on anywhere in this stream
        z += np.float32(p.context) * np.einsum("ns,nsk->nk", present, proto)[:, None, :]
        z += np.float32(p.nuisance) * _latent(rng, (n,), k)[:, None, :]
        z += np.float32(p.noise) * _latent(rng, (n, NUM_SEGMENTS), k)
        # Distractors: an unlabelled class's prototype in some segments (background events).
        dis = rng.integers(0, NUM_CLASSES, (n, NUM_SEGMENTS))
        labelled = (dis[..., None] == cls[:, None, :]).any(-1)
        dmask = (rng.random((n, NUM_SEGMENTS)) < p.distractor_prob) & ~labelled
        z += (np.float32(p.distractor_strength) * dmask * world.strength[m][dis])[..., None] * world.proto[m][dis]
        x = z.reshape(n * NUM_SEGMENTS, k) @ world.proj[m]
        # Uniform noise of std obs_noise: 4x cheaper to draw than Gaussian at 2048 dims, and its
        # shape is irrelevant next to the Gaussian latent terms.
        noise = rng.random(x.shape, dtype=np.float32)
        noise -= np.float32(0.5)
        noise *= np.float32(p.obs_noise * np.sqrt(12.0))
        x += noise
        del noise
        x = x.reshape(n, NUM_SEGMENTS, d)
        if m == "visual" and not average_frames:
            jit = np.float32(p.frame_jitter) * rng.standard_normal((n, NUM_SEGMENTS, FRAMES, d), dtype=np.float32)
            jit -= jit.mean(axis=2, keepdims=True)  # frames average back to x exactly (up to rounding)
            out[m][sl] = x[:, :, None, :] + jit
        else:
            out[m][sl] = x


def make_llp_sim(
    out: str | os.PathLike,
    *,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int = 0,
    params: SimParams | None = None,
    float16: bool = False,
    average_frames: bool = True,
    preset: str | None = None,
    workers: int | None = None,
) -> Path:
    """Generates an LLP-sim data set and writes it (atomically) under ``out``.

    Args:
        out: Output directory (``avtune.parquet`` inside) or ``.parquet`` path.
        n_train: Train videos. ``n_val``/``n_test``: val and test videos.
        seed: Random seed; the same seed and parameters give identical bytes.
        params: Difficulty knobs (default :class:`SimParams`).
        float16: Store features as float16.
        average_frames: Store visual as (10, 2048) frame averages instead of (10, 8, 2048).
        preset: Preset name recorded in the metadata.
        workers: Threads for feature chunks (default: CPU count, max 4); does not change bytes.

    Returns:
        Path of the written file.
    """
    p = params or SimParams()
    root = np.random.SeedSequence(seed)
    s_world, s_truth, s_feat = root.spawn(3)
    n = n_train + n_val + n_test
    truth = simulate_truth(n, np.random.default_rng(s_truth), p)
    world = _make_world(np.random.default_rng(s_world), p)
    dtype = np.float16 if float16 else np.float32
    shapes = {"audio": (NUM_SEGMENTS, DIMS["audio"]),
              "visual": (NUM_SEGMENTS, DIMS["visual"]) if average_frames else (NUM_SEGMENTS, FRAMES, DIMS["visual"]),
              "motion": (NUM_SEGMENTS, DIMS["motion"])}
    feats = {m: np.empty((n, *s), dtype) for m, s in shapes.items()}
    starts = list(range(0, n, _CHUNK))
    streams = s_feat.spawn(len(starts))

    def run(i: int) -> None:
        sl = slice(starts[i], min(starts[i] + _CHUNK, n))
        _features_chunk(np.random.default_rng(streams[i]), world, p, truth, sl, feats, average_frames)

    workers = workers or min(4, os.cpu_count() or 1)
    with single_threaded_blas(), ThreadPoolExecutor(max_workers=workers) as ex:
        list(ex.map(run, range(len(starts))))

    split = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    ids = [f"sim{i:08d}_0_10" for i in range(n)]
    meta_params = {
        "sim": asdict(p), "version": SIM_VERSION, "seed": int(seed), "n_train": n_train, "n_val": n_val, "n_test": n_test,
        "float16": bool(float16), "average_frames": bool(average_frames),
    }
    return fmt.write_dataset(
        out, video_ids=ids, split=split,
        arrays={**feats, "labels": truth.labels, "gt_audio": truth.gt_audio, "gt_visual": truth.gt_visual},
        kind="llp-sim", params=meta_params, truth_splits=fmt.SPLITS,
        extra={"preset": preset, "stats": "llp_stats.json (embedded)"},
    )


def make_preset(name: str, out: str | os.PathLike, *, seed: int = 0, **overrides: Any) -> Path:
    """Generates a named preset (``llp-sim``, ``llp-sim-small``, ``llp-sim-tiny``).

    Args:
        name: Preset name.
        out: Output directory.
        seed: Random seed.
        **overrides: ``SimParams`` fields to change, or ``float16``/``average_frames``.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown LLP-sim preset {name!r}; expected one of {sorted(PRESETS)}")
    pre = PRESETS[name]
    storage = {"float16": pre.float16, "average_frames": pre.average_frames}
    for key in list(overrides):
        if key in storage:
            storage[key] = bool(overrides.pop(key))
    bad = set(overrides) - set(asdict(pre.params))
    if bad:
        raise ValueError(f"unknown LLP-sim knob(s) {sorted(bad)}; known: {sorted(asdict(pre.params))}")
    params = SimParams(**{**asdict(pre.params), **overrides})
    return make_llp_sim(out, n_train=pre.n_train, n_val=pre.n_val, n_test=pre.n_test, seed=seed,
                        params=params, preset=name, **storage)
