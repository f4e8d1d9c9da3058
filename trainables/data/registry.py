"""Data specs -> data set paths: generating and caching presets, validating user paths.

Specs:

* ``llp-sim``, ``llp-sim-small``, ``llp-sim-tiny``: LLP-sim presets (see ``llp_sim.PRESETS``).
* ``avar-sim``, ``avar-sim-small``, ``avar-sim-tiny``: simulated audio-visual action recognition
  data, built by ``trainables.tasks.avar.data.make_avar_sim``.
* ``llp=PATH``: a converted real LLP (or an LLP-sim) data set; ``avar=PATH``: a converted AVAR set.

Presets are generated on first use into ``cache_root()/<preset>-<params_key>/`` and reused after.
Generation happens in a temporary directory that is renamed into place, under a file lock, so
concurrent trials on one machine build a preset once and never see a half-written one.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainables.data import format as fmt
from trainables.tasks.avvp import llp_sim

LLP_PRESETS = tuple(llp_sim.PRESETS)
AVAR_PRESETS = ("avar-sim", "avar-sim-small", "avar-sim-tiny")
PRESETS: tuple[str, ...] = (*LLP_PRESETS, *AVAR_PRESETS)
PATH_KINDS = {"llp": ("llp", "llp-sim"), "avar": None}  # None: any kind starting with "avar"
_CPU_PRESET = {"llp-sim": "llp-sim-small", "avar-sim": "avar-sim-small"}


def is_cpu_only() -> bool:
    """True when no CUDA device is available (sweeps then use the small presets)."""
    import torch  # lazy: keeps `import trainables.data.registry` light

    return not torch.cuda.is_available()


def cpu_preset(spec: str) -> str:
    """The CPU-sized variant of a spec (``llp-sim`` -> ``llp-sim-small``); others unchanged.

    Generator options carry over (``avar-sim:noise_rate=0.8`` -> ``avar-sim-small:noise_rate=0.8``).
    """
    name, sep, rest = spec.partition(":")
    return _CPU_PRESET.get(name, name) + sep + rest


def _parse_value(raw: str) -> Any:
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return raw


def split_options(spec: str) -> tuple[str, dict[str, Any]]:
    """Splits ``NAME:key=value,key=value`` into the preset name and its options.

    Options are generator settings of AVAR presets (e.g. ``avar-sim-small:noise_rate=0.8,
    corr_rate=0.3,label_noise=sym``); numbers are parsed as int or float.

    Raises:
        ValueError: A malformed option (names the spec and the item).
    """
    name, sep, rest = spec.partition(":")
    opts: dict[str, Any] = {}
    if sep:
        for item in filter(None, (x.strip() for x in rest.split(","))):
            key, eq, raw = item.partition("=")
            if not eq or not key.strip() or not raw.strip():
                raise ValueError(f"data spec {spec!r}: option {item!r} is not KEY=VALUE")
            opts[key.strip()] = _parse_value(raw.strip())
        if not opts:
            raise ValueError(f"data spec {spec!r}: no options after ':'")
    return name, opts


def _avar_module():
    try:
        return importlib.import_module("trainables.tasks.avar.data")
    except ImportError as e:
        raise ValueError(f"AVAR presets need trainables.tasks.avar.data, which cannot be imported ({e})") from e


def preset_params(
    name: str, seed: int = 0, options: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The kind and cache-key parameters of a preset.

    Raises:
        ValueError: Unknown preset name, or options for a preset that takes none.
    """
    if options and name not in AVAR_PRESETS:
        raise ValueError(f"data preset {name!r} takes no options (got {sorted(options)})")
    if name in LLP_PRESETS:
        pre = llp_sim.PRESETS[name]
        return "llp-sim", {
            "preset": name, "seed": int(seed), "version": llp_sim.SIM_VERSION,
            "n_train": pre.n_train, "n_val": pre.n_val, "n_test": pre.n_test,
            "float16": pre.float16, "average_frames": pre.average_frames, "sim": asdict(pre.params),
        }
    if name in AVAR_PRESETS:
        mod = _avar_module()
        presets = getattr(mod, "PRESETS", None)
        # The AVAR module's own preset definition (if it exposes one) keys the cache, so a
        # change there regenerates instead of reusing stale data.
        definition = repr(presets.get(name)) if isinstance(presets, dict) else None
        if definition is not None and " at 0x" in definition:
            definition = None  # object reprs with addresses differ per process: useless as a key
        params = {"preset": name, "seed": int(seed), "definition": definition,
                  "version": getattr(mod, "SIM_VERSION", None)}
        if options:
            try:  # validated (and completed) by the generator itself: bad keys fail here
                params["options"] = mod.avar_sim_params(name, **options)
            except ValueError as e:
                raise ValueError(f"data preset {name!r}: {e}") from e
        return "avar-sim", params
    raise ValueError(f"unknown data preset {name!r}; expected one of {list(PRESETS)} or llp=PATH")


def make_preset(
    name: str, out: str | os.PathLike, *, seed: int = 0, options: dict[str, Any] | None = None
) -> Path:
    """Generates preset ``name`` into directory ``out`` (no caching).

    Returns:
        The path of the written data file (or directory, as the AVAR maker returns it).
    """
    if name in LLP_PRESETS:
        return llp_sim.make_preset(name, out, seed=seed)
    if name in AVAR_PRESETS:
        return Path(_avar_module().make_avar_sim(name, Path(out), seed=seed, **(options or {})))
    raise ValueError(f"unknown data preset {name!r}; expected one of {list(PRESETS)}")


def _is_complete(d: Path) -> bool:
    try:
        fmt.read_meta(d)
        return True
    except (fmt.DataFormatError, OSError):
        return False


def cached_preset(
    name: str, *, seed: int = 0, builder: Callable[[str, Path, int], Any] | None = None,
    options: dict[str, Any] | None = None,
) -> Path:
    """The cache directory of preset ``name``, generating it first if needed.

    Args:
        name: Preset name.
        seed: Generation seed (part of the cache key).
        options: Generator options of AVAR presets (part of the cache key).
        builder: ``builder(name, out_dir, seed)`` that writes the data set; defaults to
            :func:`make_preset` (tests pass a counting wrapper).

    Returns:
        The directory holding ``avtune.parquet``.
    """
    kind, params = preset_params(name, seed, options)
    root = fmt.cache_root()
    final = root / f"{name}-{fmt.params_key(kind, params)}"
    if _is_complete(final):
        return final
    builder = builder or (lambda n, out, s: make_preset(n, out, seed=s, options=options))
    with fmt.file_lock(root / f".{final.name}.lock"):
        if _is_complete(final):  # another process built it while we waited
            return final
        if final.exists():  # left by a crash before the rename cannot happen; be safe anyway
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
        try:
            builder(name, tmp, seed)
            if not _is_complete(tmp):
                raise fmt.DataFormatError(f"building preset {name!r} left no avtune data file in {tmp}")
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; a cache is shared like ~/.cache
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if _is_complete(final):  # lost a race with a lock-less builder: theirs is as good
                return final
            raise
    return final


def _path_spec(spec: str) -> tuple[str, Path]:
    prefix, _, raw = spec.partition("=")
    if not raw:
        raise ValueError(f"data spec {spec!r}: no path after '='")
    path = Path(raw).expanduser().resolve()  # absolute: Ray workers run in other directories
    if not path.exists():
        raise ValueError(f"data spec {spec!r}: {path} does not exist")
    try:
        meta = fmt.read_meta(path)
    except fmt.DataFormatError as e:
        raise ValueError(f"data spec {spec!r}: {e}") from e
    allowed = PATH_KINDS[prefix]
    kind = meta.get("kind", "")
    ok = kind.startswith("avar") if allowed is None else kind in allowed
    if not ok:
        want = "avar*" if allowed is None else " or ".join(allowed)
        raise ValueError(f"data spec {spec!r}: {path} holds kind {kind!r}, expected {want}")
    return kind, fmt.data_file(path).parent


def resolve_data(spec: str, *, seed: int = 0) -> Path:
    """Turns a data spec into the directory of an avtune data set.

    Args:
        spec: ``llp-sim``, ``llp-sim-small``, ``llp-sim-tiny``, ``avar-sim``, ``avar-sim-small``,
            ``avar-sim-tiny`` (AVAR presets take generator options: ``avar-sim-small:noise_rate=0.8,
            corr_rate=0.3``), ``llp=PATH`` or ``avar=PATH``.
        seed: Generation seed of presets (ignored for paths).

    Returns:
        A directory holding ``avtune.parquet`` (presets are generated and cached on first use).

    Raises:
        ValueError: Unknown spec, or a path that is missing or of the wrong kind.
    """
    spec = spec.strip()
    prefix = spec.partition("=")[0]
    if "=" in spec and prefix in PATH_KINDS:
        return _path_spec(spec)[1]
    name, options = split_options(spec)
    if name in PRESETS:
        return cached_preset(name, seed=seed, options=options)
    raise ValueError(
        f"unknown data spec {spec!r}; expected one of {list(PRESETS)}, llp=PATH or avar=PATH"
    )


def data_num_classes(spec: str) -> int | None:
    """The number of classes of a data spec, without generating anything (None if unknown).

    Raises:
        ValueError: A malformed spec or a path that is not a data set.
    """
    spec = spec.strip()
    prefix = spec.partition("=")[0]
    if "=" in spec and prefix in PATH_KINDS:
        meta = fmt.read_meta(_path_spec(spec)[1])
        k = meta.get("params", {}).get("num_classes")
        return int(k) if k is not None else None
    name, options = split_options(spec)
    if name in AVAR_PRESETS:
        return int(_avar_module().avar_sim_params(name, **options)["num_classes"])
    if name in LLP_PRESETS:
        from trainables.tasks.avvp.classes import NUM_CLASSES

        return NUM_CLASSES
    return None


def describe_data(spec: str, *, seed: int = 0) -> str:
    """One line saying what a spec is (sizes, storage, where it is cached); generates nothing."""
    spec = spec.strip()
    prefix = spec.partition("=")[0]
    if "=" in spec and prefix in PATH_KINDS:
        kind, d = _path_spec(spec)
        meta = fmt.read_meta(d)
        sizes = "/".join(str(meta["splits"].get(s, 0)) for s in fmt.SPLITS)
        return (f"{spec}: {kind} data set, {sizes} train/val/test videos, truth for "
                f"{', '.join(s for s in fmt.SPLITS if s in meta['truth_splits']) or 'no split'}, "
                f"fingerprint {fmt.fingerprint(d)}")
    if spec in LLP_PRESETS:
        pre = llp_sim.PRESETS[spec]
        kind, params = preset_params(spec, seed)
        where = fmt.cache_root() / f"{spec}-{fmt.params_key(kind, params)}"
        state = "cached" if _is_complete(where) else "generated on first use"
        return (f"{spec}: simulated LLP (hidden truth for all splits), {pre.n_train}/{pre.n_val}/"
                f"{pre.n_test} train/val/test videos, {'float16' if pre.float16 else 'float32'}, "
                f"visual {'frame-averaged' if pre.average_frames else '8 frames'}, seed {seed}; "
                f"{state} at {where}")
    name, options = split_options(spec)
    if name in AVAR_PRESETS:
        kind, params = preset_params(name, seed, options)  # validates the options
        opts = params.get("options", {})
        noise = ", ".join(f"{k}={opts[k]}" for k in ("label_noise", "noise_rate", "corr_rate", "corr_profile")
                          if k in opts) or "preset noise"
        return (f"{name}: simulated audio-visual action recognition (trainables.tasks.avar.data), {noise}, "
                f"seed {seed}")
    raise ValueError(f"unknown data spec {spec!r}; expected one of {list(PRESETS)}, llp=PATH or avar=PATH")
