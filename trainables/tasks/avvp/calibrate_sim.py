"""Calibrating LLP-sim v2: teachers against the published curves, difficulty against HAN alone.

Two fits, each moving only its own knobs and looking only at its own target:

* ``teachers``: the simulated CLIP/CLAP teachers' knobs (:class:`~trainables.tasks.avvp.teachers_v2.
  TeacherParamsV2`: :data:`TEACHER_KNOBS`) against the real teachers'
  pseudo-label quality curves (``teachers_v2.PAPER_CURVES``), on the latents of a sample of videos
  drawn by the generator itself (no features, no training: seconds). Changing a teacher knob never
  changes the features (the teachers draw from their own streams).
* ``han``: four difficulty knobs of :class:`~trainables.tasks.avvp.llp_sim_v2.SimParamsV2`
  against the HAN row on real LLP test (:data:`HAN_REAL`) and nothing else, by Broyden's method
  (:func:`fit_han`): the audio and visual strengths and within-event variations against segment-
  and event-level F of audio and visual, one HAN run per evaluation on one seed; the result is
  then confirmed under several seeds with ``han``.

The prediction then runs every other method at its paper's defaults on the calibrated preset
without touching a knob: the named comparison ``llp_sim_v2_prediction`` (``python -m
orchestrator.compare llp_sim_v2_prediction --seeds 3``), through the same runs and tables as every
other comparison.

Commands (JSON to stdout and, with ``--json``, to a file)::

    python -m trainables.tasks.avvp.calibrate_sim teachers [--fit] [--n 4000] [--seed 1 | --seeds 0 1 2]
    python -m trainables.tasks.avvp.calibrate_sim han [--seeds 0 1 2] [--epochs 25] [--set KNOB=V ...]
    python -m trainables.tasks.avvp.calibrate_sim fit-han [--steps 4] [--set KNOB=START ...] [--history LOG]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from trainables.tasks.avvp import llp_sim_v2 as v2
from trainables.tasks.avvp import teachers_v2 as tv2

# HAN on real LLP test (the row VAPLAN's Table 5 (1) and the HAN paper report): segment- and
# event-level F of audio, visual, audio-visual, Type@AV, Event@AV.
HAN_REAL: dict[str, float] = {
    "seg_A": 60.1, "seg_V": 52.9, "seg_AV": 48.9, "seg_Type": 54.0, "seg_Event": 55.4,
    "event_A": 51.3, "event_V": 48.9, "event_AV": 43.0, "event_Type": 47.7, "event_Event": 48.0,
}
SCORES = tuple(HAN_REAL)
# The difficulty knobs the HAN fit moves, and the scores they are fitted to (as many as knobs).
HAN_KNOBS: dict[str, str] = {
    "audio_strength": "seg_A", "visual_strength": "seg_V",
    "segment_var_audio": "event_A", "segment_var_visual": "event_V",
}
TEACHER_KNOBS = ("gain", "saturation", "context_view", "context_bias", "noise_view", "private_noise")
# Knobs of the shared scene the teacher fit may move (fitted before the HAN fit, never after).
SCENE_KNOBS = {"visual": ("background_rate_visual",), "audio": ("background_rate_audio",)}
DEFAULT_PRESET = "llp-sim-v2-small"


# ---------------------------------------------------------------------------------------- teachers
def teacher_sample(n: int = 4000, seed: int = 1, params: v2.SimParamsV2 | None = None) -> dict[str, Any]:
    """The latents' projections on the teachers' class directions for ``n`` generated videos.

    Returns:
        ``{"labels", "gt": {modality: (n, 10, 25)}, "proj": {modality: [per-chunk projections]},
        "sim"}``: what :func:`teacher_curves` needs (the features are never drawn).
    """
    p = params or v2.PRESETS[DEFAULT_PRESET].params
    sim = v2.simulation(n, seed, p)
    proj: dict[str, list] = {m: [] for m in tv2.MODALITIES}
    for i in range(len(sim.starts)):
        lat = v2.latents_chunk(np.random.default_rng(sim.feature_streams[i]), sim.world, p, sim.truth, sim.chunk(i))
        for m in tv2.MODALITIES:
            proj[m].append(tv2.projections(lat[m], sim.world.concept[m], sim.world.context[m]))
    t = sim.truth
    return {"labels": t.labels, "gt": {"visual": t.gt_visual, "audio": t.gt_audio}, "proj": proj, "sim": sim}


def teacher_curves(sample: Mapping[str, Any], teachers: Mapping[str, tv2.TeacherParamsV2],
                   modalities: Sequence[str] = tv2.MODALITIES) -> dict[str, dict[float, dict[str, float]]]:
    """PLG quality per threshold of the given teachers on a :func:`teacher_sample`."""
    sim = sample["sim"]
    bases = tv2.teacher_bases(teachers, sim.teacher_seed, v2.absence_shares(sim.params))
    out = {}
    for m in modalities:
        xs = []
        for i, pr in enumerate(sample["proj"][m]):
            # One stream per chunk and modality, as in the data set (the visual teacher draws first).
            rng = np.random.default_rng(sim.teacher_streams[i])
            if m == "audio":
                tv2.margins(rng, sample["proj"]["visual"][i], teachers["visual"], bases["visual"])
            x = tv2.margins(rng, pr, teachers[m], bases[m])
            # Through the stored embeddings, as the data set holds them (float32, unit norm).
            xs.append(tv2.embed_margins(x, bases[m].q, teachers[m].base_cos,
                                        teachers[m].text_similarity).astype(np.float32))
        scores = tv2.plg_scores(np.concatenate(xs), bases[m].text.astype(np.float32))
        out[m] = tv2.curve(scores, sample["labels"], sample["gt"][m], m)
    return out


def nelder_mead(f, x0: np.ndarray, step: float = 0.4, iters: int = 120, tol: float = 1e-3
                ) -> tuple[np.ndarray, float, int]:
    """Minimises ``f`` from ``x0`` by Nelder-Mead (standard coefficients); returns
    ``(x, f(x), evaluations)``."""
    n = len(x0)
    pts = [np.asarray(x0, float)] + [np.asarray(x0, float) + step * np.eye(n)[i] for i in range(n)]
    vals = [f(x) for x in pts]
    evals = n + 1
    for _ in range(iters):
        order = np.argsort(vals)
        pts, vals = [pts[i] for i in order], [vals[i] for i in order]
        if vals[-1] - vals[0] < tol:
            break
        centre = np.mean(pts[:-1], axis=0)
        xr = centre + (centre - pts[-1])
        fr = f(xr)
        evals += 1
        if fr < vals[0]:
            xe = centre + 2 * (centre - pts[-1])
            fe = f(xe)
            evals += 1
            pts[-1], vals[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < vals[-2]:
            pts[-1], vals[-1] = xr, fr
        else:
            xc = centre + 0.5 * (pts[-1] - centre)
            fc = f(xc)
            evals += 1
            if fc < vals[-1]:
                pts[-1], vals[-1] = xc, fc
            else:  # shrink towards the best
                pts = [pts[0]] + [pts[0] + 0.5 * (x - pts[0]) for x in pts[1:]]
                vals = [vals[0]] + [f(x) for x in pts[1:]]
                evals += n
    i = int(np.argmin(vals))
    return pts[i], float(vals[i]), evals


def _fit_modality(m: str, teachers: Mapping[str, tv2.TeacherParamsV2], sim: v2.SimParamsV2, sample_of,
                  iters: int, knobs: Sequence[str], scene: Sequence[str], restarts: int
                  ) -> tuple[tv2.TeacherParamsV2, v2.SimParamsV2, float, int]:
    """One modality's Nelder-Mead over ``knobs`` (teacher) and ``scene`` (shared) in log scale."""
    names = [*knobs, *scene]

    def unpack(x: np.ndarray) -> tuple[tv2.TeacherParamsV2, v2.SimParamsV2]:
        vals = dict(zip(names, np.exp(x).tolist(), strict=True))
        sp = replace(sim, **{k: min(vals[k], 0.99) for k in scene})
        return replace(teachers[m], **{k: vals[k] for k in knobs}), sp

    def loss_of(x: np.ndarray) -> float:
        tp, sp = unpack(x)
        # The mean over the sample's worlds: a fit to one world's cliff need not hold in another.
        return float(np.mean([tv2.curve_loss(teacher_curves(s, {**teachers, m: tp}, (m,))[m], m)
                              for s in sample_of(sp)]))

    x = np.log([max(getattr(teachers[m], k), 1e-3) for k in knobs] + [max(getattr(sim, k), 1e-3) for k in scene])
    evals = 0
    for _ in range(restarts):  # a fresh simplex around the best point escapes a collapsed one
        x, loss, e = nelder_mead(loss_of, x, iters=iters)
        evals += e
    tp, sp = unpack(x)
    return tp, sp, loss, evals


def fit_teachers(n: int = 4000, seed: int | Sequence[int] = 1, params: v2.SimParamsV2 | None = None,
                 start: Mapping[str, tv2.TeacherParamsV2] | None = None, iters: int = 120,
                 knobs: Sequence[str] = TEACHER_KNOBS, scene_knobs: bool = True, restarts: int = 3
                 ) -> dict[str, Any]:
    """Nelder-Mead on the log of the knobs minimising ``teachers_v2.curve_loss``, one modality at a
    time, over the teacher knobs and, with ``scene_knobs``, the modality's :data:`SCENE_KNOBS` (how
    busy the soundscape / scene is: shared with the features, so fitted here, before the HAN fit,
    and never after it). A knob at 0 starts at 1e-3; ``restarts`` rounds, each from the last best.
    ``seed`` a list: one sample of ``n`` videos per seed (each seed draws its own world: class
    prototypes, text embeddings), the loss averaged over them.

    Returns:
        ``{"teachers": {modality: params dict}, "sim": the scene knobs, "loss": {modality: float},
        "evals": int}``.
    """
    sim = params or v2.PRESETS[DEFAULT_PRESET].params
    teachers = dict(start or tv2.DEFAULT_TEACHERS)
    cache: dict[tuple, dict[str, Any]] = {}
    losses, evals = {}, 0

    seeds = [seed] if isinstance(seed, int) else list(seed)

    def sample_of(sp: v2.SimParamsV2) -> list[dict[str, Any]]:
        key = tuple(sorted(asdict(sp).items()))
        if key not in cache:
            cache.clear()  # one scene setting at a time (memory)
            cache[key] = [teacher_sample(n, s, sp) for s in seeds]
        return cache[key]

    for m in tv2.MODALITIES:
        teachers[m], sim, losses[m], e = _fit_modality(m, teachers, sim, sample_of, iters, knobs,
                                                       list(SCENE_KNOBS[m]) if scene_knobs else [], restarts)
        evals += e
    return {"teachers": {m: asdict(p) for m, p in teachers.items()},
            "sim": {k: getattr(sim, k) for mk in SCENE_KNOBS.values() for k in mk},
            "loss": losses, "evals": evals}


def curve_table(curves: Mapping[str, Mapping[float, Mapping[str, float]]]) -> list[dict[str, Any]]:
    """Rows ``{modality, tau, seg, event, video_precision, paper_*}`` for reports."""
    rows = []
    for m, cur in curves.items():
        pts = tv2.PAPER_CURVES[m]["points"]
        for tau, q in cur.items():
            row = {"modality": m, "tau": tau, **{k: round(v, 1) for k, v in q.items()}}
            for key, vals in pts.items():
                if tau in vals:
                    row[f"paper_{key}"] = vals[tau]
            rows.append(row)
    return rows


def curve_spread(tables: Mapping[int, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Mean and std (ddof 0) over worlds of :func:`curve_table` rows, one row per (modality, tau):
    ``{modality, tau, seg, seg_std, event, event_std, video_precision, video_precision_std,
    paper_*}``. ``tables``: ``{seed: curve_table(...)}`` over the same thresholds."""
    first = next(iter(tables.values()))
    out = []
    for i, row in enumerate(first):
        vals = [t[i] for t in tables.values()]
        agg = {"modality": row["modality"], "tau": row["tau"]}
        for k in ("seg", "event", "video_precision"):
            xs = [float(v[k]) for v in vals]
            agg[k], agg[f"{k}_std"] = round(float(np.mean(xs)), 1), round(float(np.std(xs)), 1)
        agg.update({k: v for k, v in row.items() if k.startswith("paper_")})
        out.append(agg)
    return out


# --------------------------------------------------------------------------------------------- HAN
def build_preset(out: str | Path, overrides: Mapping[str, Any], *, seed: int = 0,
                 preset: str = DEFAULT_PRESET) -> Path:
    """Generates ``preset`` with knob ``overrides`` into ``out`` (single-threaded, deterministic)."""
    return v2.make_preset(preset, out, seed=seed, workers=1, **dict(overrides))


def run_han(data: Path, seed: int, epochs: int | None) -> dict[str, float]:
    """One HAN run at its defaults (``epochs`` None: the paper's 25) on one thread; returns the ten
    test scores, the selected epoch and the wall time."""
    import torch

    from trainables.methods.han.train import Config, fit

    torch.set_num_threads(1)
    cfg = Config(seed=seed) if epochs is None else Config(seed=seed, epochs=epochs)
    t0 = time.perf_counter()

    def report(epoch: int, metrics: Mapping[str, Any], state_fn: Any) -> None:
        if "val/seg_Type" in metrics:
            print(f"  han seed {seed} epoch {epoch}: val seg_Type {metrics['val/seg_Type']:.2f} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    res = fit(cfg, data, reporter=report, device="cpu")
    out = {k: float(res[f"test/{k}"]) for k in SCORES}
    out["best_epoch"] = float(res["best_epoch"])
    out["wall_s"] = time.perf_counter() - t0
    return out


def summarise(runs: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and std (ddof 0) over runs of every key the runs share."""
    keys = [k for k in runs[0] if all(k in r for r in runs)]
    return {k: {"mean": float(np.mean([r[k] for r in runs])), "std": float(np.std([r[k] for r in runs]))}
            for k in keys}


def han_scores(overrides: Mapping[str, Any], seeds: Sequence[int], epochs: int | None, *,
               preset: str = DEFAULT_PRESET, data_seed: int = 0) -> dict[str, Any]:
    """Builds the preset with ``overrides`` and runs HAN under ``seeds``."""
    with tempfile.TemporaryDirectory(prefix="llp-sim-v2-cal-") as d:
        data = build_preset(d, overrides, seed=data_seed, preset=preset)
        runs = [run_han(data.parent, s, epochs) for s in seeds]
    return {"method": "han", "preset": preset, "overrides": dict(overrides), "seeds": list(seeds),
            "epochs": epochs, "runs": runs, "summary": summarise(runs)}


def fit_han(start: Mapping[str, float] | None = None, *, steps: int = 4, seed: int = 0,
            epochs: int | None = None, tol: float = 1.0, rel_step: float = 0.2,
            preset: str = DEFAULT_PRESET, history: Sequence[Mapping[str, Any]] = (), log=None
            ) -> dict[str, Any]:
    """Broyden's method on :data:`HAN_KNOBS` (log scale) to the paired scores of :data:`HAN_REAL`.

    One HAN run (one seed) per evaluation. The Jacobian of the paired scores against the log-knobs
    starts from finite differences (each knob moved by ``rel_step`` from ``start``, one run each),
    then each Newton step (clipped to a factor of 1.5 per knob) is followed by Broyden's rank-one
    update. Stops when every paired score is within ``tol`` of the real row, or after ``steps``
    Newton steps. ``history`` (earlier evaluations, e.g. of an interrupted fit) is reused where a
    run at the same knobs is needed.

    Returns:
        ``{"knobs": the evaluated knobs closest to the target, "history": [{"knobs", "scores"}...],
        "target"}``.
    """
    names = list(HAN_KNOBS)
    target = np.array([HAN_REAL[HAN_KNOBS[k]] for k in names])
    base = asdict(v2.PRESETS[preset].params)
    done = [dict(h) for h in history]

    def evaluate(x: np.ndarray) -> np.ndarray:
        knobs = {k: round(float(v), 4) for k, v in zip(names, np.exp(x), strict=True)}
        hit = next((h for h in done if h["knobs"] == knobs), None)
        if hit is None:
            hit = {"knobs": knobs, "scores": han_scores(knobs, [seed], epochs, preset=preset)["runs"][0]}
            done.append(hit)
            if log:
                log(json.dumps(hit))
        return np.array([hit["scores"][HAN_KNOBS[k]] for k in names])

    x = np.log([float((start or {}).get(k, base[k])) for k in names])
    f = evaluate(x)
    jac = np.zeros((len(names), len(names)))
    for i in range(len(names)):
        dx = np.zeros(len(names))
        dx[i] = np.log1p(rel_step)
        jac[:, i] = (evaluate(x + dx) - f) / dx[i]
    for _ in range(steps):
        if np.all(np.abs(f - target) <= tol):
            break
        dx = np.clip(np.linalg.lstsq(jac, target - f, rcond=None)[0], -np.log(1.5), np.log(1.5))
        f_new = evaluate(x + dx)
        jac += np.outer(f_new - f - jac @ dx, dx) / float(dx @ dx)
        x, f = x + dx, f_new
    best = min(done, key=lambda h: sum((h["scores"][HAN_KNOBS[k]] - HAN_REAL[HAN_KNOBS[k]]) ** 2 for k in names))
    return {"knobs": best["knobs"], "history": done, "target": HAN_REAL, "jacobian": jac.tolist()}


# --------------------------------------------------------------------------------------------- CLI
def _parse_sets(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for it in items:
        key, eq, raw = it.partition("=")
        if not eq:
            raise ValueError(f"--set {it!r}: expected KNOB=VALUE")
        out[key] = float(raw) if raw.replace(".", "", 1).replace("e-", "", 1).lstrip("-").isdigit() else raw
    return out


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m trainables.tasks.avvp.calibrate_sim`` argument parser."""
    p = argparse.ArgumentParser(prog="python -m trainables.tasks.avvp.calibrate_sim",
                                description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("teachers", help="teacher curves (and with --fit, the teacher fit)")
    t.add_argument("--fit", action="store_true")
    t.add_argument("--n", type=int, default=4000, help="videos in the fitting sample")
    t.add_argument("--seed", type=int, default=1, help="seed of the fitting sample (its world)")
    t.add_argument("--seeds", type=int, nargs="+", metavar="S",
                   help="several worlds instead of --seed: the curves of each and their spread "
                        "(with --fit, the loss averaged over them)")
    t.add_argument("--preset", default=DEFAULT_PRESET, help="the preset whose knobs the sample uses")
    t.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                   help="knob overrides (teacher knobs as teacher_visual.gain=...)")
    t.add_argument("--no-scene", action="store_true", help="fit the teacher knobs only")
    for name, hlp in (("han", "HAN's ten test scores on the preset (with --set overrides)"),
                      ("fit-han", "Broyden's method on the difficulty knobs against the HAN row")):
        s = sub.add_parser(name, help=hlp)
        s.add_argument("--preset", default=DEFAULT_PRESET)
        s.add_argument("--epochs", type=int, default=None, help="default: the method's paper schedule")
        s.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE")
        if name == "fit-han":
            s.add_argument("--steps", type=int, default=4)
            s.add_argument("--seed", type=int, default=0)
            s.add_argument("--history", help="JSON lines of earlier evaluations to reuse")
        else:
            s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    for s in sub.choices.values():
        s.add_argument("--json", help="also write the result here")
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; prints the result as JSON."""
    args = build_parser().parse_args(argv)
    if args.command == "teachers":
        _, params, teachers, _ = v2.preset_knobs(args.preset, **_parse_sets(args.set))
        result: dict[str, Any] = {}
        seeds = args.seeds or [args.seed]
        if args.fit:
            result["fit"] = fit_teachers(args.n, seeds, params, teachers, scene_knobs=not args.no_scene)
            teachers = {m: tv2.TeacherParamsV2(**v) for m, v in result["fit"]["teachers"].items()}
            params = replace(params, **result["fit"]["sim"])
        by_seed = {s: teacher_curves(teacher_sample(args.n, s, params), teachers) for s in seeds}
        if args.seeds:
            result["curves_by_seed"] = {s: curve_table(c) for s, c in by_seed.items()}
            result["curves"] = curve_spread(result["curves_by_seed"])
        else:
            result["curves"] = curve_table(by_seed[args.seed])
        # The mean over one world is that world's loss, as the fit computes it.
        result["loss"] = {m: float(np.mean([tv2.curve_loss(c[m], m) for c in by_seed.values()]))
                          for m in tv2.MODALITIES}
    elif args.command == "han":
        result = han_scores(_parse_sets(args.set), args.seeds, args.epochs, preset=args.preset)
    else:
        start = {k: float(v) for k, v in _parse_sets(args.set).items()}
        history = [json.loads(x) for x in Path(args.history).read_text().splitlines()
                   if x.startswith("{")] if args.history else []
        result = fit_han(start, steps=args.steps, seed=args.seed, epochs=args.epochs, preset=args.preset,
                         history=history, log=lambda line: print(line, file=sys.stderr, flush=True))
    text = json.dumps(result, indent=1, default=float)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
