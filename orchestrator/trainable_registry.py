"""Which trainable module runs behind a sweep's ``trainable`` key.

A trainable is a plain module with a config dataclass ``Config`` and
``fit(cfg, data_path, *, reporter=None, resume_state=None, device=None, **extra) -> dict``
(see docs/architecture.md). An entry may also name optional hooks, each as ``"module:function"``:

* ``extra_kwargs``: ``f(cfg, data_path) -> dict`` of further keyword arguments for ``fit``
  (called inside the trial, e.g. a handle to a shared evaluator pool);
* ``extra_bundles``: ``f(cfg) -> list[dict]`` of resource bundles appended to the trial's
  placement group (e.g. CPUs for evaluator actors);
* ``prepare``: ``f(base_cfg, data_path, device)`` run once before any trial starts (JoMoLD trains
  its noise estimator here, so every trial reuses the one on-disk cache instead of training its own).

A sweep may also name any importable module (``"mypkg.my_trainable"``) instead of a registered
key, so a new trainable can be swept without editing this file.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable


@dataclass(frozen=True)
class TrainableEntry:
    """One registered trainable.

    Attributes:
        module: Importable module defining ``Config`` and ``fit``.
        extra_kwargs: Optional ``"module:function"`` returning extra ``fit`` kwargs.
        extra_bundles: Optional ``"module:function"`` returning extra resource bundles.
        prepare: Optional ``"module:function"`` run once in the driver before the trials.
    """

    module: str
    extra_kwargs: str | None = None
    extra_bundles: str | None = None
    prepare: str | None = None


TRAINABLES: dict[str, TrainableEntry] = {
    "han": TrainableEntry("trainables.han"),
    "jomold": TrainableEntry("trainables.jomold", prepare="trainables.jomold:ensure_estimator"),
    "rlld": TrainableEntry(
        "trainables.rlld",
        extra_kwargs="orchestrator.rlld_pool:evaluator_kwargs",
        extra_bundles="orchestrator.rlld_pool:extra_bundles",
    ),
    "avar": TrainableEntry("trainables.avar.train"),
}


def get_entry(key: str) -> TrainableEntry:
    """The entry for a registered key, or an ad-hoc entry for an importable module name.

    Raises:
        KeyError: ``key`` is neither registered nor an importable module.
    """
    if key in TRAINABLES:
        return TRAINABLES[key]
    import importlib.util

    try:
        found = importlib.util.find_spec(key) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return TrainableEntry(key)
    raise KeyError(f"unknown trainable {key!r}; registered: {', '.join(sorted(TRAINABLES))}")


def load_module(key: str) -> ModuleType:
    """Imports the trainable module and checks that it defines ``Config`` and ``fit``."""
    entry = get_entry(key)
    mod = importlib.import_module(entry.module)
    if not dataclasses.is_dataclass(getattr(mod, "Config", None)) or not callable(getattr(mod, "fit", None)):
        raise TypeError(f"trainable module {entry.module} must define a dataclass Config and fit()")
    return mod


def load_hook(ref: str | None) -> Callable[..., Any] | None:
    """Resolves a ``"module:function"`` reference (``None`` stays ``None``)."""
    if not ref:
        return None
    mod_name, sep, fn_name = ref.partition(":")
    if not sep or not fn_name:
        raise ValueError(f"hook {ref!r} must look like 'module:function'")
    fn = getattr(importlib.import_module(mod_name), fn_name, None)
    if not callable(fn):
        raise AttributeError(f"hook {ref!r}: {mod_name} has no function {fn_name}")
    return fn


# --set preset=NAME: a config's named bundle of settings (its from_preset), not a field.
PRESET_KEY = "preset"


def config_fields(cfg_cls: type) -> dict[str, dataclasses.Field]:
    """The init fields of a config dataclass, by name."""
    return {f.name: f for f in dataclasses.fields(cfg_cls) if f.init}


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def coerce_value(cfg_cls: type, key: str, raw: str) -> Any:
    """Parses a ``--set KEY=VALUE`` string into the type of the config field's default.

    Raises:
        KeyError: ``key`` is not a field of ``cfg_cls`` (the message lists the fields).
        ValueError: ``raw`` does not parse as the field's type (the message names the key).
    """
    import ast

    fields = config_fields(cfg_cls)
    if key == PRESET_KEY and callable(getattr(cfg_cls, "from_preset", None)):
        return raw.strip()
    if key not in fields:
        raise KeyError(f"unknown config key {key!r} for {cfg_cls.__module__}.{cfg_cls.__name__}; "
                       f"known keys: {', '.join(fields)}")
    default = _default_of(fields[key])
    try:
        if isinstance(default, bool):
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, str):
            return raw
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
        if isinstance(default, (list, tuple)) and not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list like {list(default)!r}")
        return type(default)(value) if isinstance(default, (list, tuple)) else value
    except ValueError as e:
        raise ValueError(f"--set {key}={raw}: not a valid {type(default).__name__} ({e})") from None


def build_config(cfg_cls: type, overrides: dict[str, Any]) -> Any:
    """``cfg_cls()`` with ``overrides`` applied; unknown keys are an error that names them.

    The key ``preset`` (``--set preset=NAME``) builds ``cfg_cls.from_preset(NAME, **rest)`` for
    configs that define named presets; the other overrides apply on top of the preset.
    """
    overrides = dict(overrides)
    preset = overrides.pop(PRESET_KEY, None)
    fields = config_fields(cfg_cls)
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise KeyError(f"unknown config key(s) {unknown} for {cfg_cls.__module__}.{cfg_cls.__name__}; "
                       f"known keys: {', '.join(fields)}")
    if preset is None:
        cfg = cfg_cls(**overrides)
    elif callable(getattr(cfg_cls, "from_preset", None)):
        cfg = cfg_cls.from_preset(preset, **overrides)
    else:
        raise KeyError(f"{cfg_cls.__module__}.{cfg_cls.__name__} has no named presets; "
                       f"drop --set {PRESET_KEY}={preset}")
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()  # range checks of the trainable itself, before any trial starts
    return cfg
