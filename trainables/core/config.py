"""Config helpers shared by every method's config dataclass."""

from __future__ import annotations

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
