"""LLP-sim presets (``llp-sim``, ``llp-sim-small``, ``llp-sim-tiny``; v2: ``llp-sim-v2``,
``llp-sim-v2-small``, ``llp-sim-v2-tiny``) and ``llp=PATH`` specs."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainables.data.presets import PresetFamily


def _v2(name: str):
    """The v2 generator module when ``name`` is a v2 preset, else None."""
    if not name.startswith("llp-sim-v2"):
        return None
    from trainables.tasks.avvp import llp_sim_v2

    return llp_sim_v2


def _params(name: str, seed: int, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from trainables.tasks.avvp import llp_sim

    if options:
        raise ValueError(f"data preset {name!r} takes no options (got {sorted(options)})")
    v2 = _v2(name)
    if v2 is not None:
        pre = v2.PRESETS[name]
        return "llp-sim", {
            "preset": name, "seed": int(seed), "generator": v2.GENERATOR, "version": v2.SIM_VERSION,
            "n_train": pre.n_train, "n_val": pre.n_val, "n_test": pre.n_test, "float16": pre.float16,
            "average_frames": pre.average_frames, "sim": asdict(pre.params),
            "teacher_sim": {m: asdict(t) for m, t in pre.teachers.items()},
        }
    pre = llp_sim.PRESETS[name]
    return "llp-sim", {
        "preset": name, "seed": int(seed), "version": llp_sim.SIM_VERSION,
        "n_train": pre.n_train, "n_val": pre.n_val, "n_test": pre.n_test,
        "float16": pre.float16, "average_frames": pre.average_frames, "sim": asdict(pre.params),
    }


def _make(name: str, out: Path, seed: int, options: dict[str, Any]) -> Path:
    from trainables.tasks.avvp import llp_sim

    return (_v2(name) or llp_sim).make_preset(name, out, seed=seed)


def _describe(name: str, seed: int, options: dict[str, Any], where: Path, cached: bool) -> str:
    from trainables.tasks.avvp import llp_sim

    v2 = _v2(name)
    pre = (v2 or llp_sim).PRESETS[name]
    state = "cached" if cached else "generated on first use"
    what = ("simulated LLP v2 (salience-driven label noise, CLIP/CLAP-like teacher columns; hidden "
            "truth for all splits)" if v2 else "simulated LLP (hidden truth for all splits)")
    return (f"{name}: {what}, {pre.n_train}/{pre.n_val}/"
            f"{pre.n_test} train/val/test videos, {'float16' if pre.float16 else 'float32'}, "
            f"visual {'frame-averaged' if pre.average_frames else '8 frames'}, seed {seed}; "
            f"{state} at {where}")


def _num_classes(name: str, options: dict[str, Any]) -> int:
    from trainables.tasks.avvp.classes import NUM_CLASSES

    return NUM_CLASSES


FAMILY = PresetFamily(
    path_prefix="llp", kinds=("llp", "llp-sim"),
    presets={"llp-sim": "llp-sim-small", "llp-sim-small": "llp-sim-small", "llp-sim-tiny": "llp-sim-tiny",
             "llp-sim-v2": "llp-sim-v2-small", "llp-sim-v2-small": "llp-sim-v2-small",
             "llp-sim-v2-tiny": "llp-sim-v2-tiny"},
    params=_params, make=_make, describe=_describe, num_classes=_num_classes,
)
