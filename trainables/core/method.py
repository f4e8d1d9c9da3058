"""What a method package and a task package declare, so the orchestrator can find and run them.

A method is one folder ``trainables/methods/<name>/`` whose ``__init__.py`` exports ``METHOD``, a
:class:`MethodSpec`; a task (AVVP, action recognition) is one folder ``trainables/tasks/<name>/``
whose ``__init__.py`` exports ``TASK``, a :class:`TaskSpec`. Both name their heavy pieces as
``"module:attribute"`` strings, so importing a package to read its spec imports no torch: listing
sweeps or rejecting a bad flag stays fast.

The contract a method's ``fit`` keeps (checked for every method by ``tests/test_method_contract.py``)::

    fit(cfg, data_path, *, reporter=None, resume_state=None, device=None, **extra) -> dict

It returns :func:`trainables.core.loop.fit_result`'s keys: the selected epoch's ``epoch``,
``train/loss``, ``val/...`` and extras, ``test/...`` of the selected weights, ``best_epoch``,
``last_epoch``, ``last/val/...`` and ``seed``. ``reporter(epoch, metrics, state_fn)`` is called
after every epoch; ``state_fn()`` returns a checkpoint dict of tensors and plain values
(``torch.load(..., weights_only=True)`` loads it) that ``resume_state`` continues from.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def resolve(ref: str) -> Any:
    """Imports ``"module:attribute"`` and returns the attribute.

    Raises:
        ValueError: ``ref`` is not of that form.
        AttributeError: The module has no such attribute.
    """
    mod_name, sep, attr = ref.partition(":")
    if not sep or not attr:
        raise ValueError(f"reference {ref!r} must look like 'module:attribute'")
    obj = importlib.import_module(mod_name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AttributeError(f"reference {ref!r}: {mod_name} has no {attr}")
        obj = getattr(obj, part)
    return obj


def discover_specs(package: Any, attr: str, cls: type, *, packages_only: bool = False,
                   skip: Sequence[str] = ()) -> dict[str, Any]:
    """The ``attr`` objects of type ``cls`` that the modules of ``package`` export, by ``.name``.

    Used for methods (``trainables.methods.*.METHOD``) and sweeps (``search_spaces.*.SPEC``).

    Raises:
        RuntimeError: Two of them share a name.
    """
    import pkgutil

    out: dict[str, Any] = {}
    for m in pkgutil.iter_modules(package.__path__):
        if m.name.startswith("_") or m.name in skip or (packages_only and not m.ispkg):
            continue
        spec = getattr(importlib.import_module(f"{package.__name__}.{m.name}"), attr, None)
        if isinstance(spec, cls):
            if spec.name in out:
                raise RuntimeError(f"two {attr} objects are named {spec.name!r}")
            out[spec.name] = spec
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class MethodSpec:
    """One method, as its package declares it.

    Attributes:
        name: The name sweeps and the CLIs use (``han``, ``jomold``, ...).
        task: The task package it trains on (``avvp``, ``avar``).
        config: ``"module:Class"`` of its config dataclass (paper defaults, ``validate()``,
            optionally ``from_preset(name, **overrides)``).
        fit: ``"module:function"`` of its ``fit``.
        description: One line for listings.
        prepare: Optional ``"module:function"``, ``f(base_cfg, data_path, device)``, run once in
            the driver before any trial (JoMoLD trains its shared noise estimator here).
        extra_kwargs: Optional ``"module:function"``, ``f(cfg, data_path) -> dict`` of further
            ``fit`` keyword arguments, called inside the trial (RLLD's validation pool handle).
        extra_bundles: Optional ``"module:function"``, ``f(cfg) -> list[dict]`` of resource
            bundles appended to the trial's placement group.
        module: Shorthand: the module that holds ``Config`` and ``fit`` (then ``config``/``fit``
            default to it, and a hook given as a bare name is a function in it).
        check: Optional ``"module:function"``, ``f(cfg, data_spec)``, run at plan time for the
            checks that need the data (AVAR: batch size above the number of classes); raises
            ValueError.
        reference: Key of this method's published rows in the task's ``reference_rows``.
        smoke: Config overrides for a fast run on the task's ``tiny_data`` (the contract test and
            quick checks train 2 epochs with them).
        mark: Optional ``"module:function"``, ``f(cfg) -> (symbol, note) | None``: a config that
            runs a protocol variant (e.g. thresholds chosen on the validation set) returns the
            symbol tables put after its row's label and the footnote that explains it, so rows
            of different protocols are never read as comparable.
    """

    name: str
    task: str
    config: str = ""
    fit: str = ""
    description: str = ""
    prepare: str | None = None
    extra_kwargs: str | None = None
    extra_bundles: str | None = None
    check: str | None = None
    reference: str | None = None
    smoke: Mapping[str, Any] = field(default_factory=dict)
    mark: str | None = None
    module: str = ""

    def __post_init__(self) -> None:
        # ``module="pkg.train"`` is shorthand: Config and fit live there, and hooks given as a bare
        # function name are looked up there too.
        if self.module:
            for attr, default in (("config", "Config"), ("fit", "fit")):
                object.__setattr__(self, attr, getattr(self, attr) or f"{self.module}:{default}")
            for hook in ("prepare", "extra_kwargs", "extra_bundles", "check", "mark"):
                ref = getattr(self, hook)
                if ref and ":" not in ref:
                    object.__setattr__(self, hook, f"{self.module}:{ref}")
        if not self.config or not self.fit:
            raise ValueError(f"method {self.name!r}: give module=..., or config= and fit=")

    def config_class(self) -> type:
        return resolve(self.config)

    def fit_fn(self):
        return resolve(self.fit)


@dataclass(frozen=True)
class TaskSpec:
    """One task: how its results are scored, selected and tabled.

    Attributes:
        name: Package name under ``trainables/tasks/``.
        score_keys: The score names a result carries under ``test/`` and ``val/``, in table order.
        score_labels: Column headers of those scores in the paper-style table.
        select_metric: The default validation metric that selects an epoch (and a trial).
        mode: ``max`` or ``min`` for ``select_metric``.
        reference_rows: Published test rows, ``(label, scores in score_keys order)``, keyed by the
            method name they belong to; tables show the rows of the methods they compare.
        baseline: The method whose published rows every table shows (the papers' baseline).
        reference_note: What the reference rows are (shown under the table).
        data_note: Which data the task's simulated presets stand in for.
        tiny_data: The task's smallest simulated data spec (tests, smoke runs).
        default_data: The data spec a run uses on a GPU machine unless it says otherwise.
        cpu_data: The same on a CPU-only machine (the CLIs say when they take it).
        default_epochs: Epochs of a run on a GPU machine unless it says otherwise.
        cpu_epochs: The same on a CPU-only machine.
        presets: ``"module:attribute"`` of its :class:`trainables.data.presets.PresetFamily`
            (the simulated presets and the ``PREFIX=PATH`` specs the data registry resolves).
        commands: ``"module:function"`` adding the task's data commands to ``python -m
            orchestrator.data`` (``f(subparsers)``; each command sets ``func(args) -> int``).
        scorer: ``"module:function"``, ``main(argv) -> int`` of ``python -m orchestrator.score``
            for this task's predictions (scoring another codebase's output), or empty.
    """

    name: str
    score_keys: Sequence[str]
    score_labels: Sequence[str]
    select_metric: str
    mode: str = "max"
    reference_rows: Mapping[str, Sequence[tuple[str, Sequence[float]]]] = field(default_factory=dict)
    baseline: str | None = None
    reference_note: str = ""
    data_note: str = ""
    tiny_data: str = ""
    default_data: str = ""
    cpu_data: str = ""
    default_epochs: int = 25
    cpu_epochs: int = 3
    presets: str = ""
    commands: str = ""
    scorer: str = ""

    def references_for(self, methods: Sequence[str]) -> list[tuple[str, Sequence[float]]]:
        """The published rows of the baseline and ``methods`` (in that order, each method's once)."""
        out: list[tuple[str, Sequence[float]]] = []
        for m in dict.fromkeys([*([self.baseline] if self.baseline else []), *methods]):
            out.extend(self.reference_rows.get(m, ()))
        return out


def task_spec(name: str) -> TaskSpec:
    """The ``TASK`` of ``trainables.tasks.<name>``.

    Raises:
        KeyError: No such task package, or it exports no TaskSpec.
    """
    try:
        mod = importlib.import_module(f"trainables.tasks.{name}")
    except ImportError:
        raise KeyError(f"unknown task {name!r}") from None
    task = getattr(mod, "TASK", None)
    if not isinstance(task, TaskSpec):
        raise KeyError(f"trainables.tasks.{name} does not export a TaskSpec TASK")
    return task


def method_spec(name: str) -> MethodSpec:
    """The discovered method ``name`` (``trainables/methods/<pkg>/``'s ``METHOD``): how code that
    runs several methods (a benchmark) reaches one without importing its package.

    Raises:
        KeyError: No such method.
    """
    import trainables.methods as pkg

    methods = discover_specs(pkg, "METHOD", MethodSpec, packages_only=True)
    if name not in methods:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(methods)}")
    return methods[name]


def method_task(method: str) -> TaskSpec:
    """The task of a method: a discovered one under ``trainables/methods/`` (by its METHOD's
    name), or an importable module exporting ``METHOD`` or naming ``TASK_NAME`` (default avvp).

    Raises:
        KeyError: No such method.
    """
    import importlib.util

    import trainables.methods as pkg

    methods = discover_specs(pkg, "METHOD", MethodSpec, packages_only=True)
    if method in methods:
        return task_spec(methods[method].task)
    try:
        found = importlib.util.find_spec(method) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise KeyError(f"unknown method {method!r}; known methods: {', '.join(methods)}")
    mod = importlib.import_module(method)
    spec = getattr(mod, "METHOD", None)
    return task_spec(spec.task if isinstance(spec, MethodSpec) else getattr(mod, "TASK_NAME", "avvp"))
