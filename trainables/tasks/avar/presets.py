"""AR-sim presets (``avar-sim``, ``avar-sim-small``, ``avar-sim-tiny``, with generator options such
as ``avar-sim-small:noise_rate=0.8,corr_rate=0.3``) and ``avar=PATH`` specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainables.data.presets import PresetFamily


def _params(name: str, seed: int, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from trainables.tasks.avar import data

    # The preset's own definition keys the cache, so a change there regenerates instead of
    # reusing stale data.
    params = {"preset": name, "seed": int(seed), "definition": repr(data.PRESETS.get(name)),
              "version": data.SIM_VERSION}
    if options:
        try:  # validated (and completed) by the generator itself: bad keys fail here
            params["options"] = data.avar_sim_params(name, **options)
        except ValueError as e:
            raise ValueError(f"data preset {name!r}: {e}") from e
    return data.KIND_SIM, params


def _make(name: str, out: Path, seed: int, options: dict[str, Any]) -> Path:
    from trainables.tasks.avar import data

    return Path(data.make_avar_sim(name, Path(out), seed=seed, **options))


def _describe(name: str, seed: int, options: dict[str, Any], where: Path, cached: bool) -> str:
    opts = _params(name, seed, options)[1].get("options", {})  # validates the options
    noise = ", ".join(f"{k}={opts[k]}" for k in ("label_noise", "noise_rate", "corr_rate", "corr_profile")
                      if k in opts) or "preset noise"
    return f"{name}: simulated audio-visual action recognition (trainables.tasks.avar.data), {noise}, seed {seed}"


def _num_classes(name: str, options: dict[str, Any]) -> int:
    from trainables.tasks.avar import data

    return int(data.avar_sim_params(name, **options)["num_classes"])


FAMILY = PresetFamily(
    path_prefix="avar", kinds=("avar*",),
    presets={"avar-sim": "avar-sim-small", "avar-sim-small": "avar-sim-small", "avar-sim-tiny": "avar-sim-tiny"},
    params=_params, make=_make, describe=_describe, num_classes=_num_classes, takes_options=True,
)
