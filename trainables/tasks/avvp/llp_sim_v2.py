"""LLP-sim v2: label noise that follows the content, and teachers that see what the student sees.

LLP-sim v1 (:mod:`trainables.tasks.avvp.llp_sim`) draws the modality state of each (video, class)
independently of everything a model sees: an off-screen dog is a coin flip, and a teacher's error is
another. In real data a label is wrong for a reason (the dog is off-screen, barely visible, only
heard) and the same reason makes the features weak and the teachers unsure. v2 keeps v1's
calibration to the real LLP figures (label sets and co-occurrence, per-class modality shares, event
lengths, from the embedded ``llp_stats.json``) and adds, each a knob of :class:`SimParamsV2`:

1. **Salience.** Each (video, labelled class, modality) has a logistic latent ``z``; the class is
   present in the modality iff ``z`` exceeds a per-class threshold ``t`` set so that the presence
   shares equal v1's state table exactly (``z`` is drawn conditionally on the state). The margin
   ``z - t`` also sets how strongly the class shows: a present event shows at the fraction
   ``1 - (1 - salience_floor) exp(-margin / salience_width)`` of its strength (barely visible near
   the threshold); a labelled-but-absent one leaks its class's *context* direction (the road of a
   car that is only heard, the people of off-screen speech) at ``absent_leak x exp(margin /
   salience_width)`` over the interval it would have had. So noisy
   modality labels are the weak-evidence cases, and a class that is often off-screen is also faint
   when on screen. Within an event the strength varies over segments by a log-normal AR(1) factor
   (``segment_var_audio``/``segment_var_visual``, ``segment_corr``): an event fades in and out.
2. **Appearance.** Each class has ``modes`` prototypes per modality (a group component shared by
   confusable classes, ``class_similarity``; a class component; a mode component,
   ``mode_spread``); each video's instance picks a mode and adds a deviation of norm
   ``instance_var`` inside a class-specific ``instance_rank``-dimensional subspace.
3. **Teachers from the same latent.** The simulated CLIP (visual) and CLAP (audio) teachers read the
   same per-segment content latent the features are built from (with the same nuisance and noise
   draws, scaled by their own knobs, plus private noise): :mod:`trainables.tasks.avvp.teachers_v2`.
   Their segment embeddings and class-prompt text embeddings are written into the data set in the
   layout of :mod:`trainables.tasks.avvp.teacher_data` (columns ``teacher_visual``/``teacher_audio``,
   text under ``extra.teachers``), so every consumer reads them as it reads real CLIP/CLAP ones.

Features: per segment and modality a latent ``z = sum_slots strength * amp * (prototype +
instance) + context + background + nuisance + noise`` (``amp`` the salience factor above, on the
true event for present classes and on the would-be interval for absent ones), mapped to the official
dimensions by a fixed random linear map plus uniform noise of std ``obs_noise``, as in v1. Motion
follows the visual truth and salience with its own prototypes at ``motion_ratio`` of the visual
strength.

Determinism: as v1, features and teachers are drawn in fixed chunks of videos, each with its own
spawned random streams (features and teachers separately, so teacher knobs never change the
features), so the bytes do not depend on the thread count.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainables.data import format as fmt
from trainables.tasks.avvp import teachers_v2 as tv2
from trainables.tasks.avvp.classes import NUM_CLASSES, NUM_SEGMENTS
from trainables.tasks.avvp.llp_sim import CLASS_GROUPS, DIMS, FRAMES, MAX_LABELS, _latent, single_threaded_blas
from trainables.tasks.avvp.llp_sim_v2_truth import SimParamsV2, SimTruthV2, absence_shares, simulate_truth
from trainables.tasks.avvp.teacher_data import COLUMNS
from trainables.tasks.avvp.teachers import _ar1, _markov

# Bump when a change to the generator changes the bytes of a preset (it keys the cache).
SIM_VERSION = 2
GENERATOR = "llp-sim-v2"
_CHUNK = 512  # videos per chunk; part of the determinism contract (changes the bytes)
__all__ = ["CALIBRATED", "GENERATOR", "PRESETS", "SIM_VERSION", "SimParamsV2", "SimPresetV2", "SimTruthV2", "World",
           "absence_shares", "latents_chunk", "make_llp_sim_v2", "make_preset", "make_world",
           "preset_knobs", "simulate_truth", "simulation"]


@dataclass(frozen=True)
class SimPresetV2:
    """Sizes, storage and knobs of a named LLP-sim v2 preset."""

    n_train: int
    n_val: int
    n_test: int
    float16: bool = False
    average_frames: bool = True
    params: SimParamsV2 = field(default_factory=SimParamsV2)
    teachers: Mapping[str, tv2.TeacherParamsV2] = field(default_factory=lambda: dict(tv2.DEFAULT_TEACHERS))


# The difficulty knobs fitted to the HAN row on real LLP test and nothing else (HAN 25 epochs on
# llp-sim-v2-small, one seed per evaluation, Broyden steps on the log-knobs from the paired scores
# seg A / seg V / event A / event V):
#   python -m trainables.tasks.avvp.calibrate_sim fit-han --epochs 25 --set audio_strength=1.25 \
#       --set visual_strength=0.8 --set segment_var_audio=0.625 --set segment_var_visual=0.625
# The evaluated point closest to the target is kept (the later steps were dominated by the run-to-run
# noise of one seed); ``calibrate_sim han --seeds 0 1 2`` confirms it under three seeds. Figures:
# docs/benchmarks.md, "LLP-sim v2". Every other knob is SimParamsV2's default.
CALIBRATED = SimParamsV2(audio_strength=1.25, visual_strength=0.8, segment_var_audio=0.625,
                         segment_var_visual=0.625)

PRESETS: dict[str, SimPresetV2] = {
    "llp-sim-v2": SimPresetV2(10000, 649, 1200, float16=True, params=CALIBRATED),
    "llp-sim-v2-small": SimPresetV2(2000, 300, 300, params=CALIBRATED),
    "llp-sim-v2-tiny": SimPresetV2(256, 64, 64, params=CALIBRATED),
}


@dataclass
class World:
    """The fixed parts of a v2 simulation, per modality (``audio``, ``visual``, ``motion``).

    Attributes:
        proto: (25, modes, k) unit prototypes.
        concept: (25, k) unit class directions (the modes' shared part: what a teacher knows).
        context: (25, k) unit context directions: what a labelled class that is not on in this
            modality leaks into it (the road of a car that is only heard, a band off-screen).
        strength: (25,) per-class strength.
        basis: (25, rank, k) the class subspace of instance deviations.
        proj: (k, D) the output map.
    """

    proto: dict[str, np.ndarray]
    concept: dict[str, np.ndarray]
    context: dict[str, np.ndarray]
    strength: dict[str, np.ndarray]
    basis: dict[str, np.ndarray]
    proj: dict[str, np.ndarray]


def make_world(rng: np.random.Generator, p: SimParamsV2) -> World:
    """Draws prototypes, strengths, instance subspaces and output maps."""
    from trainables.tasks.avvp.classes import LLP_CLASSES

    k = p.latent_dim
    group_of = np.zeros(NUM_CLASSES, np.int64)
    for g, names in enumerate(CLASS_GROUPS.values()):
        for name in names:
            group_of[LLP_CLASSES.index(name)] = g
    base = {"audio": p.audio_strength, "visual": p.visual_strength,
            "motion": p.visual_strength * p.motion_ratio}
    w = World({}, {}, {}, {}, {}, {})
    own_share = 1.0 - p.class_similarity - p.mode_spread
    for m, d in DIMS.items():
        own = _latent(rng, (NUM_CLASSES,), k)
        shared = _latent(rng, (len(CLASS_GROUPS),), k)[group_of]
        mode = _latent(rng, (NUM_CLASSES, p.modes), k)
        common = np.sqrt(own_share) * own + np.sqrt(p.class_similarity) * shared
        v = common[:, None, :] + np.sqrt(p.mode_spread) * mode
        w.proto[m] = (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)
        w.concept[m] = (common / np.linalg.norm(common, axis=-1, keepdims=True)).astype(np.float32)
        w.strength[m] = (base[m] * np.exp(p.class_strength_spread * rng.standard_normal(NUM_CLASSES))
                         ).astype(np.float32)
        w.basis[m] = _latent(rng, (NUM_CLASSES, p.instance_rank), k)
        ctx = _latent(rng, (NUM_CLASSES,), k)
        w.context[m] = (ctx / np.linalg.norm(ctx, axis=-1, keepdims=True)).astype(np.float32)
        w.proj[m] = rng.standard_normal((k, d), dtype=np.float32)
    return w


def _amplitudes(rng: np.random.Generator, p: SimParamsV2, truth: SimTruthV2, sl: slice
                ) -> dict[str, np.ndarray]:
    """(n, 3, 10) salience amplitude of each slot's prototype per segment, for audio and visual."""
    out = {}
    for m, would, margin, sig in (("audio", truth.would_audio, truth.margin_audio, p.segment_var_audio),
                                  ("visual", truth.would_visual, truth.margin_visual, p.segment_var_visual)):
        mg = margin[sl]
        frac = np.where(mg > 0, 1 - (1 - p.salience_floor) * np.exp(-np.maximum(mg, 0) / p.salience_width),
                        p.absent_leak * np.exp(np.minimum(mg, 0) / p.salience_width))
        n = mg.shape[0]
        g = _ar1(rng, (n, NUM_SEGMENTS, MAX_LABELS), 1.0, p.segment_corr).transpose(0, 2, 1)
        factor = np.exp(sig * g - 0.5 * sig * sig)
        out[m] = (frac[..., None] * factor * would[sl]).astype(np.float32)
    out["motion"] = out["visual"]
    return out


def _background(rng: np.random.Generator, p: SimParamsV2, cls: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """(n, 10, 25) weights of faint unlabelled classes per segment (the rest of the soundscape or
    scene), Markov chains over segments; motion shares the visual scene."""
    labelled = np.zeros((n, NUM_CLASSES), bool)
    for s in range(MAX_LABELS):
        labelled[np.arange(n)[cls[:, s] >= 0], cls[cls[:, s] >= 0, s]] = True
    out = {}
    for m, rate in (("audio", p.background_rate_audio), ("visual", p.background_rate_visual)):
        on = _markov(rng, (n, NUM_SEGMENTS, NUM_CLASSES), rate, p.background_corr) & ~labelled[:, None, :]
        out[m] = on.astype(np.float32) * np.float32(p.background_strength)
    out["motion"] = out["visual"]
    return out


def latents_chunk(rng: np.random.Generator, world: World, p: SimParamsV2, truth: SimTruthV2, sl: slice
                  ) -> dict[str, dict[str, np.ndarray]]:
    """The per-segment latents of videos ``sl``, per modality.

    Returns:
        ``{modality: {"z": (n, 10, k) feature latent, "content": (n, 10, k) the same content at
        unit class strength, "noise": (n, 10, k) nuisance + noise}}``; the draws are those of the
        data set (a teacher fit reads exactly the data's latents).
    """
    k = p.latent_dim
    cls = truth.classes[sl]
    used = cls >= 0
    cls0 = np.where(used, cls, 0)
    n = cls.shape[0]
    amp = _amplitudes(rng, p, truth, sl)
    present = {"audio": truth.slot_audio[sl].any(-1), "visual": truth.slot_visual[sl].any(-1)}
    present["motion"] = present["visual"]
    amp_on = {"audio": truth.margin_audio[sl] > 0, "visual": truth.margin_visual[sl] > 0}
    amp_on["motion"] = amp_on["visual"]
    background = _background(rng, p, cls, n)
    out = {}
    for m in DIMS:
        mode = rng.integers(0, p.modes, (n, MAX_LABELS))
        proto = world.proto[m][cls0, mode] * used[..., None]  # (n, 3, k)
        coef = rng.standard_normal((n, MAX_LABELS, p.instance_rank), dtype=np.float32)
        coef *= np.float32(p.instance_var / np.sqrt(p.instance_rank))
        inst = np.einsum("nsr,nsrk->nsk", coef, world.basis[m][cls0]) * used[..., None]
        # A present class shows its appearance; a labelled-but-absent one leaks its context.
        on = (amp_on[m] & used)[..., None]
        look = np.where(on, proto + inst, world.context[m][cls0] * used[..., None])
        strength = world.strength[m][cls0] * used  # (n, 3)
        content = np.einsum("nst,nsk->ntk", amp[m], look)
        z = np.einsum("nst,nsk->ntk", amp[m] * strength[..., None], look)
        ctx = np.float32(p.context) * present[m].astype(np.float32)
        content += np.einsum("ns,nsk->nk", ctx, proto)[:, None, :]
        z += np.einsum("ns,nsk->nk", ctx * strength, proto)[:, None, :]
        content += background[m] @ world.concept[m]
        z += (background[m] * world.strength[m]) @ world.concept[m]
        noise = np.float32(p.nuisance) * _latent(rng, (n,), k)[:, None, :] \
            + np.float32(p.noise) * _latent(rng, (n, NUM_SEGMENTS), k)
        z += noise
        out[m] = {"z": z.astype(np.float32), "content": content.astype(np.float32), "noise": noise}
    return out


def features_from_latents(rng: np.random.Generator, world: World, p: SimParamsV2,
                          lat: Mapping[str, Mapping[str, np.ndarray]], average_frames: bool
                          ) -> dict[str, np.ndarray]:
    """Maps latents to the official feature dimensions (v1's output model)."""
    out = {}
    for m, d in DIMS.items():
        z = lat[m]["z"]
        n = z.shape[0]
        x = z.reshape(n * NUM_SEGMENTS, -1) @ world.proj[m]
        noise = rng.random(x.shape, dtype=np.float32)  # uniform, as v1 (cheap at 2048 dims)
        noise -= np.float32(0.5)
        noise *= np.float32(p.obs_noise * np.sqrt(12.0))
        x += noise
        del noise
        x = x.reshape(n, NUM_SEGMENTS, d)
        if m == "visual" and not average_frames:
            jit = np.float32(p.frame_jitter) * rng.standard_normal((n, NUM_SEGMENTS, FRAMES, d), dtype=np.float32)
            jit -= jit.mean(axis=2, keepdims=True)
            x = x[:, :, None, :] + jit
        out[m] = x
    return out


@dataclass
class Simulation:
    """The random world, truth and per-chunk streams of one generation (features not yet drawn)."""

    params: SimParamsV2
    truth: SimTruthV2
    world: World
    feature_streams: list[np.random.SeedSequence]
    teacher_streams: list[np.random.SeedSequence]
    teacher_seed: np.random.SeedSequence
    starts: list[int]
    n: int

    def chunk(self, i: int) -> slice:
        return slice(self.starts[i], min(self.starts[i] + _CHUNK, self.n))


def simulation(n: int, seed: int, params: SimParamsV2) -> Simulation:
    """The seeded pieces of a generation of ``n`` videos (``make_llp_sim_v2`` uses these)."""
    root = np.random.SeedSequence([int(seed), SIM_VERSION])
    s_world, s_truth, s_feat, s_teach = root.spawn(4)
    truth = simulate_truth(n, np.random.default_rng(s_truth), params)
    world = make_world(np.random.default_rng(s_world), params)
    starts = list(range(0, n, _CHUNK))
    t_world, t_draw = s_teach.spawn(2)
    return Simulation(params, truth, world, s_feat.spawn(len(starts)), t_draw.spawn(len(starts)),
                      t_world, starts, n)


def make_llp_sim_v2(
    out: str | os.PathLike, *, n_train: int, n_val: int, n_test: int, seed: int = 0,
    params: SimParamsV2 | None = None, teachers: Mapping[str, tv2.TeacherParamsV2] | None = None,
    float16: bool = False, average_frames: bool = True, preset: str | None = None,
    workers: int | None = None,
) -> Path:
    """Generates an LLP-sim v2 data set (features, truth, teacher embeddings) atomically.

    Args:
        out: Output directory (``avtune.parquet`` inside) or ``.parquet`` path.
        n_train: Train videos. ``n_val``/``n_test``: val and test videos.
        seed: Random seed; the same seed and knobs give identical bytes.
        params: Knobs (default :class:`SimParamsV2`).
        teachers: Teacher knobs per modality (default ``teachers_v2.DEFAULT_TEACHERS``).
        float16: Store features as float16 (teacher embeddings stay float32: the PLG thresholds
            sit fractions of a percent from uniform).
        average_frames: Store visual as (10, 2048) frame averages instead of (10, 8, 2048).
        preset: Preset name recorded in the metadata.
        workers: Threads for chunks (default: CPU count, max 4); does not change the bytes.

    Returns:
        Path of the written file.
    """
    p = params or SimParamsV2()
    tp = dict(teachers or tv2.DEFAULT_TEACHERS)
    n = n_train + n_val + n_test
    sim = simulation(n, seed, p)
    bases = tv2.teacher_bases(tp, sim.teacher_seed, absence_shares(p))
    dtype = np.float16 if float16 else np.float32
    vshape = (NUM_SEGMENTS, DIMS["visual"]) if average_frames else (NUM_SEGMENTS, FRAMES, DIMS["visual"])
    shapes = {"audio": (NUM_SEGMENTS, DIMS["audio"]), "visual": vshape, "motion": (NUM_SEGMENTS, DIMS["motion"])}
    arrays = {m: np.empty((n, *s), dtype) for m, s in shapes.items()}
    for m in tv2.MODALITIES:
        arrays[COLUMNS[m]] = np.empty((n, NUM_SEGMENTS, tp[m].dim), np.float32)

    def run(i: int) -> None:
        sl = sim.chunk(i)
        rng = np.random.default_rng(sim.feature_streams[i])
        lat = latents_chunk(rng, sim.world, p, sim.truth, sl)
        emb = tv2.teacher_embeddings(np.random.default_rng(sim.teacher_streams[i]), lat, sim.world, tp, bases)
        for m, x in features_from_latents(rng, sim.world, p, lat, average_frames).items():
            arrays[m][sl] = x
        for m, e in emb.items():
            arrays[COLUMNS[m]][sl] = e

    with single_threaded_blas(), ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as ex:
        list(ex.map(run, range(len(sim.starts))))

    t = sim.truth
    split = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    ids = [f"sim{i:08d}_0_10" for i in range(n)]
    meta_params = {
        "generator": GENERATOR, "version": SIM_VERSION, "seed": int(seed), "n_train": n_train,
        "n_val": n_val, "n_test": n_test, "float16": bool(float16), "average_frames": bool(average_frames),
        "sim": asdict(p), "teacher_sim": {m: asdict(tp[m]) for m in tv2.MODALITIES},
    }
    extra = {"preset": preset, "stats": "llp_stats.json (embedded)",
             "teachers": tv2.teacher_metadata(tp, bases)}
    return fmt.write_dataset(
        out, video_ids=ids, split=split,
        arrays={**arrays, "labels": t.labels, "gt_audio": t.gt_audio, "gt_visual": t.gt_visual},
        kind="llp-sim", params=meta_params, truth_splits=fmt.SPLITS, extra=extra,
    )


def preset_knobs(name: str, **overrides: Any) -> tuple[SimPresetV2, SimParamsV2, dict, dict[str, bool]]:
    """A preset with ``overrides`` applied: ``(preset, params, teachers, storage)``.

    ``overrides`` are :class:`SimParamsV2` fields, ``float16``/``average_frames``, or teacher knobs
    as ``teacher_visual.<field>`` / ``teacher_audio.<field>``.

    Raises:
        ValueError: An unknown preset or knob (the message lists the known ones).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown LLP-sim v2 preset {name!r}; expected one of {sorted(PRESETS)}")
    pre = PRESETS[name]
    storage = {"float16": pre.float16, "average_frames": pre.average_frames}
    teach = {m: asdict(t) for m, t in pre.teachers.items()}
    sim = asdict(pre.params)
    for key, value in overrides.items():
        head, dot, sub = key.partition(".")
        if key in storage:
            storage[key] = bool(value)
        elif dot and head.startswith("teacher_") and head[8:] in teach and sub in teach[head[8:]]:
            teach[head[8:]][sub] = value
        elif key in sim:
            sim[key] = value
        else:
            raise ValueError(f"unknown LLP-sim v2 knob {key!r}; known: {sorted(sim)}, float16, average_frames, "
                             f"teacher_visual.<{'|'.join(teach['visual'])}>, teacher_audio.<...>")
    teachers = {m: tv2.TeacherParamsV2(**v) for m, v in teach.items()}
    return pre, SimParamsV2(**sim), teachers, storage


def make_preset(name: str, out: str | os.PathLike, *, seed: int = 0, workers: int | None = None,
                **overrides: Any) -> Path:
    """Generates a named v2 preset (``llp-sim-v2``, ``-small``, ``-tiny``), optionally with knobs
    changed (:func:`preset_knobs`)."""
    pre, params, teachers, storage = preset_knobs(name, **overrides)
    return make_llp_sim_v2(out, n_train=pre.n_train, n_val=pre.n_val, n_test=pre.n_test, seed=seed,
                           params=params, teachers=teachers, preset=name, workers=workers, **storage)
