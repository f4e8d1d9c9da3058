"""Data specs -> data set paths: generating and caching presets, validating user paths.

Each task registers its presets and its path prefix (``TASK.presets``, a
:class:`trainables.data.presets.PresetFamily`); this module names none of them. Specs:

* a preset name (``llp-sim``, ``llp-sim-small``, ``llp-sim-tiny``, ``avar-sim``, ...), for
  families that take them with generator options ``NAME:key=value,...``;
* ``PREFIX=PATH`` (``llp=PATH``, ``avar=PATH``): a converted data set of a kind the family accepts.

Presets are generated on first use into ``cache_root()/<preset>-<params_key>/`` and reused after.
Generation happens in a temporary directory that is renamed into place, under a file lock, so
concurrent trials on one machine build a preset once and never see a half-written one.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from trainables.data import format as fmt
from trainables.data.presets import PresetFamily


@lru_cache(maxsize=1)
def families() -> dict[str, PresetFamily]:
    """Every task's preset family, by task name (``trainables/tasks/*`` with ``TASK.presets``)."""
    import trainables.tasks as pkg
    from trainables.core.method import resolve

    out: dict[str, PresetFamily] = {}
    for m in pkgutil.iter_modules(pkg.__path__):
        task = getattr(importlib.import_module(f"{pkg.__name__}.{m.name}"), "TASK", None)
        ref = getattr(task, "presets", "")
        if ref:
            out[task.name] = resolve(ref)
    return out


def _family_of(name: str) -> PresetFamily | None:
    return next((f for f in families().values() if name in f.presets), None)


def _family_of_prefix(prefix: str) -> PresetFamily | None:
    return next((f for f in families().values() if f.path_prefix == prefix), None)


def all_presets() -> tuple[str, ...]:
    """Every preset name of every task."""
    return tuple(n for f in families().values() for n in f.presets)


def path_forms() -> str:
    """The path forms of a data spec, one per task (``llp=PATH or avar=PATH``)."""
    return " or ".join(f"{f.path_prefix}=PATH" for f in families().values())


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


def preset_params(
    name: str, seed: int = 0, options: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The kind and cache-key parameters of a preset.

    Raises:
        ValueError: Unknown preset name, or options for a preset that takes none.
    """
    fam = _family_of(name)
    if fam is None:
        raise ValueError(f"unknown data preset {name!r}; expected one of {list(all_presets())} "
                         f"or {path_forms()}")
    if options and not fam.takes_options:
        raise ValueError(f"data preset {name!r} takes no options (got {sorted(options)})")
    return fam.params(name, int(seed), dict(options or {}))


def make_preset(
    name: str, out: str | os.PathLike, *, seed: int = 0, options: dict[str, Any] | None = None
) -> Path:
    """Generates preset ``name`` into directory ``out`` (no caching).

    Returns:
        The path of the written data file (or directory, as the task's maker returns it).
    """
    fam = _family_of(name)
    if fam is None:
        raise ValueError(f"unknown data preset {name!r}; expected one of {list(all_presets())}")
    return fam.make(name, Path(out), int(seed), dict(options or {}))


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
    fam = _family_of_prefix(prefix)
    if not raw:
        raise ValueError(f"data spec {spec!r}: no path after '='")
    path = Path(raw).expanduser().resolve()  # absolute: Ray workers run in other directories
    if not path.exists():
        raise ValueError(f"data spec {spec!r}: {path} does not exist")
    try:
        meta = fmt.read_meta(path)
    except fmt.DataFormatError as e:
        raise ValueError(f"data spec {spec!r}: {e}") from e
    kind = meta.get("kind", "")
    if not fam.accepts_kind(kind):
        raise ValueError(f"data spec {spec!r}: {path} holds kind {kind!r}, expected "
                         f"{' or '.join(k.rstrip('*') for k in fam.kinds)}")
    return kind, fmt.data_file(path).parent


def _is_path_spec(spec: str) -> bool:
    prefix = spec.partition("=")[0]
    return "=" in spec and _family_of_prefix(prefix) is not None


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
    if _is_path_spec(spec):
        return _path_spec(spec)[1]
    name, options = split_options(spec)
    if _family_of(name) is not None:
        return cached_preset(name, seed=seed, options=options)
    raise ValueError(f"unknown data spec {spec!r}; expected one of {list(all_presets())}, {path_forms()}")


def data_num_classes(spec: str) -> int | None:
    """The number of classes of a data spec, without generating anything (None if unknown).

    Raises:
        ValueError: A malformed spec or a path that is not a data set.
    """
    spec = spec.strip()
    if _is_path_spec(spec):
        k = fmt.read_meta(_path_spec(spec)[1]).get("params", {}).get("num_classes")
        return int(k) if k is not None else None
    name, options = split_options(spec)
    fam = _family_of(name)
    return fam.num_classes(name, options) if fam else None


def describe_data(spec: str, *, seed: int = 0) -> str:
    """One line saying what a spec is (sizes, storage, where it is cached); generates nothing."""
    spec = spec.strip()
    if _is_path_spec(spec):
        kind, d = _path_spec(spec)
        meta = fmt.read_meta(d)
        sizes = "/".join(str(meta["splits"].get(s, 0)) for s in fmt.SPLITS)
        return (f"{spec}: {kind} data set, {sizes} train/val/test videos, truth for "
                f"{', '.join(s for s in fmt.SPLITS if s in meta['truth_splits']) or 'no split'}, "
                f"fingerprint {fmt.fingerprint(d)}")
    name, options = split_options(spec)
    fam = _family_of(name)
    if fam is None:
        raise ValueError(f"unknown data spec {spec!r}; expected one of {list(all_presets())}, {path_forms()}")
    kind, params = preset_params(name, seed, options)
    where = fmt.cache_root() / f"{name}-{fmt.params_key(kind, params)}"
    return fam.describe(name, seed, options, where, _is_complete(where))
