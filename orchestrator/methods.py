"""Methods and tasks, discovered: ``trainables/methods/*`` export ``METHOD``, ``trainables/tasks/*``
export ``TASK`` (see :mod:`trainables.core.method`). This module names none of them.

A sweep's ``trainable`` is a discovered method's name, or any importable module: a package that
exports ``METHOD``, or a plain module defining a dataclass ``Config`` and ``fit`` (then its task is
``TASK_NAME`` in that module, default ``avvp``), so a new method can be swept before it has a
folder here.

Also here: turning ``--set KEY=VALUE`` strings into a method's config (:func:`coerce_value`,
:func:`build_config`), which validates it before any trial starts.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from functools import lru_cache
from types import ModuleType
from collections.abc import Callable
from typing import Any

from trainables.core.method import MethodSpec, TaskSpec, discover_specs, resolve, task_spec


@lru_cache(maxsize=1)
def discover() -> dict[str, MethodSpec]:
    """Every method under ``trainables/methods/``, by name."""
    import trainables.methods as pkg

    return discover_specs(pkg, "METHOD", MethodSpec, packages_only=True)


def get_task(name: str) -> TaskSpec:
    """The task ``trainables.tasks.<name>`` declares as ``TASK`` (KeyError if none)."""
    return task_spec(name)


def get_method(key: str) -> MethodSpec:
    """The spec of a discovered method, or one for an importable module name.

    Raises:
        KeyError: ``key`` is neither a discovered method nor an importable module.
    """
    reg = discover()
    if key in reg:
        return reg[key]
    try:
        found = importlib.util.find_spec(key) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        mod = importlib.import_module(key)
        spec = getattr(mod, "METHOD", None)
        if isinstance(spec, MethodSpec):
            return spec
        return MethodSpec(name=key, task=getattr(mod, "TASK_NAME", "avvp"), config=f"{key}:Config",
                          fit=f"{key}:fit", prepare=_ref(mod, key, "prepare"),
                          extra_kwargs=_ref(mod, key, "extra_kwargs"),
                          extra_bundles=_ref(mod, key, "extra_bundles"))
    raise KeyError(f"unknown method {key!r}; known methods: {', '.join(reg)}")


def _ref(mod: ModuleType, key: str, name: str) -> str | None:
    return f"{key}:{name}" if callable(getattr(mod, name, None)) else None


def task_of(key: str) -> TaskSpec:
    """The task the method ``key`` trains on."""
    return get_task(get_method(key).task)


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A method with its pieces imported: ``Config`` (a dataclass) and ``fit``."""

    spec: MethodSpec
    Config: type
    fit: Any


def load(key: str) -> Loaded:
    """Imports the method's config class and ``fit`` and checks their shape.

    Raises:
        KeyError: Unknown method.
        TypeError: ``Config`` is not a dataclass or ``fit`` is not callable.
    """
    spec = get_method(key)
    cls, fit = spec.config_class(), spec.fit_fn()
    if not dataclasses.is_dataclass(cls) or not callable(fit):
        raise TypeError(f"method {key}: {spec.config} must be a dataclass and {spec.fit} callable")
    return Loaded(spec, cls, fit)


def load_hook(ref: str | None) -> Callable[..., Any] | None:
    """Resolves a ``"module:function"`` hook reference (``None`` stays ``None``)."""
    if not ref:
        return None
    fn = resolve(ref)
    if not callable(fn):
        raise AttributeError(f"hook {ref!r} is not callable")
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


def apply_sets(cfg_cls: type, base: dict[str, Any], sets: list[tuple[str, str]], epochs: int, *,
               label: str = "") -> list[str]:
    """Applies ``--set KEY=VALUE`` pairs to ``base`` and caps stage lengths at ``epochs``.

    Stage lengths (a ``*_epochs`` field, e.g. a denoising estimator's or a first stage's, left at
    an integer default above ``epochs``) follow a shortened run, or a 3-epoch CPU preset would
    still pay for a 25-epoch first stage.

    Args:
        cfg_cls: The method's Config class.
        base: Keys already set (the sweep's base); updated in place.
        sets: ``(key, raw string)`` pairs, in command-line order.
        epochs: The run's epochs.
        label: Prefix of the key in error messages (``"han."`` for a per-method ``--set``).

    Returns:
        The capped field names.

    Raises:
        ValueError: A key is ``epochs``/``seed`` (they have their own flags), unknown, or its value
            does not parse; the message names the ``--set`` item.
    """
    for key, raw in sets:
        if key in ("epochs", "seed"):
            raise ValueError(f"--set {label}{key}=...: use --{'max-epochs' if key == 'epochs' else 'seed'} instead")
        try:
            base[key] = coerce_value(cfg_cls, key, raw)
        except KeyError as e:
            raise ValueError(f"--set {label}{key}={raw}: {e.args[0]}") from None
    capped = []
    for name, f in config_fields(cfg_cls).items():
        d = _default_of(f)
        if name.endswith("_epochs") and name not in base and type(d) is int and d > epochs:
            base[name] = int(epochs)
            capped.append(name)
    return capped


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


def checked_config(entry: MethodSpec, cfg_cls: type, values: dict[str, Any], data: str) -> Any:
    """:func:`build_config`, then the method's ``check`` hook (the checks that need the data, e.g.
    its class count), so a plan is refused before any trial starts.

    Raises:
        TypeError, ValueError, KeyError: From the config or the hook.
    """
    cfg = build_config(cfg_cls, values)
    check = load_hook(entry.check)
    if check is not None:
        check(cfg, data)
    return cfg
