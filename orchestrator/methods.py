"""Methods and tasks, discovered: ``trainables/methods/*`` export ``METHOD``, ``trainables/tasks/*``
export ``TASK`` (see :mod:`trainables.core.method`). This module names none of them.

A sweep's ``trainable`` is a discovered method's name, or any importable module: a package that
exports ``METHOD``, or a plain module defining a dataclass ``Config`` and ``fit`` (then its task is
``TASK_NAME`` in that module, default ``avvp``), so a new method can be swept before it has a
folder here.

Also here: applying ``--set KEY=VALUE`` pairs to a plan's base settings (:func:`apply_sets`) and
checking a config with the method's data checks (:func:`checked_config`); building a config from
values is :func:`trainables.core.config.build_config`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from functools import lru_cache
from types import ModuleType
from collections.abc import Callable
from typing import Any

from trainables.core.config import build_config, coerce_value, config_fields, field_default
from trainables.core.method import MethodSpec, TaskSpec, discover_specs, resolve, task_spec


@lru_cache(maxsize=1)
def discover() -> dict[str, MethodSpec]:
    """Every method under ``trainables/methods/``, by name."""
    import trainables.methods as pkg

    return discover_specs(pkg, "METHOD", MethodSpec, packages_only=True)


@lru_cache(maxsize=1)
def discover_tasks() -> dict[str, TaskSpec]:
    """Every task under ``trainables/tasks/``, by name."""
    import trainables.tasks as pkg

    return discover_specs(pkg, "TASK", TaskSpec, packages_only=True)


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
        d = field_default(f)
        if name.endswith("_epochs") and name not in base and type(d) is int and d > epochs:
            base[name] = int(epochs)
            capped.append(name)
    return capped


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
