"""Config helpers shared by every method's config dataclass: presets, range checks, and building
a config from plain values (``--set KEY=VALUE`` strings parsed to each field's type)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def from_preset(cls: type, presets: Mapping[str, Mapping[str, Any]], label: str, name: str,
                overrides: Mapping[str, Any]) -> Any:
    """``cls`` built from the named bundle ``presets[name]`` with ``overrides`` on top.

    Each method's ``Config.from_preset(name, **overrides)`` calls this with its own table, so a
    preset is an explicit, inspectable dict rather than a constructor that remembers which
    fields were passed.

    Raises:
        ValueError: ``name`` is not a preset (the message lists the known ones).
    """
    if name not in presets:
        raise ValueError(f"unknown {label} preset {name!r}; expected one of {sorted(presets)}")
    return cls(**{**presets[name], **overrides})


def check_fields(cfg: Any, *, choices: Mapping[str, tuple[Any, ...]] = {}, at_least_one: tuple[str, ...] = (),
                 positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                 unit: tuple[str, ...] = ()) -> None:
    """Range checks of a config's fields, each failure naming the key and its value.

    Args:
        cfg: The config.
        choices: ``{field: allowed values}``.
        at_least_one: Fields that must be >= 1 (counts: epochs, batch sizes).
        positive: Fields that must be > 0 (rates, temperatures).
        non_negative: Fields that must be >= 0 (weights, optional stage lengths).
        unit: Fields that must lie in [0, 1] (probabilities, smoothing, mixing weights).

    Raises:
        ValueError: The first field out of range.
    """
    for key, allowed in choices.items():
        if getattr(cfg, key) not in allowed:
            raise ValueError(f"{key} must be one of {list(allowed)}, got {getattr(cfg, key)!r}")
    rules = ((at_least_one, lambda v: v >= 1, ">= 1"), (positive, lambda v: v > 0, "> 0"),
             (non_negative, lambda v: v >= 0, ">= 0"), (unit, lambda v: 0 <= v <= 1, "in [0, 1]"))
    for keys, ok, text in rules:
        for key in keys:
            if not ok(getattr(cfg, key)):
                raise ValueError(f"{key} must be {text}, got {getattr(cfg, key)}")


# --set preset=NAME: a config's named bundle of settings (its from_preset), not a field.
PRESET_KEY = "preset"


def config_fields(cfg_cls: type) -> dict[str, dataclasses.Field]:
    """The init fields of a config dataclass, by name."""
    return {f.name: f for f in dataclasses.fields(cfg_cls) if f.init}


def field_default(f: dataclasses.Field) -> Any:
    """A dataclass field's default value (None if it has none)."""
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
    default = field_default(fields[key])
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
