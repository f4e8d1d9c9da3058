"""Finding what a run runs: a named sweep (``search_spaces/<name>.py``, or a ``module[:ATTR]``
defining a ``SweepSpec``) or a named comparison (``search_spaces/comparisons/<name>.py``)."""

from __future__ import annotations

import importlib

from search_spaces.base import SweepSpec


class PlanError(Exception):
    """Bad input to a run CLI (sweep or comparison); the message says what and where."""


# ----------------------------------------------------------------------------- specs

def sweep_names() -> list[str]:
    """The named sweeps' module names under ``search_spaces/``, without importing any of them
    (a sweep's name is its module's name), so ``--help`` and errors stay fast."""
    import pkgutil

    import search_spaces

    return sorted(m.name for m in pkgutil.iter_modules(search_spaces.__path__)
                  if not m.name.startswith("_") and m.name != "base" and not m.ispkg)


def load_spec(ref: str) -> SweepSpec:
    """A registered sweep by name, or ``package.module[:ATTR]`` defining a ``SweepSpec``.

    A name is looked up in its own module first (``search_spaces/<name>.py``), so only that
    sweep's imports load; an unknown name is reported without importing any sweep.
    """
    if ref in sweep_names():
        spec = getattr(importlib.import_module(f"search_spaces.{ref}"), "SPEC", None)
        if isinstance(spec, SweepSpec) and spec.name == ref:
            return spec
    if "." in ref or ":" in ref:
        mod_name, _, attr = ref.partition(":")
        try:
            spec = getattr(importlib.import_module(mod_name), attr or "SPEC", None)
        except ImportError as e:
            raise PlanError(f"cannot import sweep module {mod_name!r}: {e}") from None
        if isinstance(spec, SweepSpec):
            return spec
        raise PlanError(f"{ref!r} does not define a SweepSpec {attr or 'SPEC'}")
    import search_spaces

    reg = search_spaces.registry() if ref in sweep_names() else {}
    if ref in reg:  # a module whose SPEC has another name: the registry knows it
        return reg[ref]
    raise PlanError(f"unknown sweep {ref!r}; known sweeps: {', '.join(sweep_names()) or '(none)'} "
                     "(python -m orchestrator.sweep --list)")


def list_sweeps() -> str:
    """One line per registered sweep: name, metric/mode, description."""
    import search_spaces

    reg = search_spaces.registry()
    width = max((len(n) for n in reg), default=4)
    lines = [f"{'NAME'.ljust(width)}  {'METRIC (MODE)':24}  DESCRIPTION"]
    for name, spec in reg.items():
        grid = " [--grid]" if spec.grid else ""
        lines.append(f"{name.ljust(width)}  {f'{spec.metric} ({spec.mode})':24}  {spec.description}{grid}")
    return "\n".join(lines)


def describe_space(spec: SweepSpec, seed: int = 0) -> list[str]:
    """The space's distributions, read by running it once on a throwaway Optuna trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    consts = spec.space(trial) or {}
    out = [f"{k}: {d!r}" for k, d in trial.distributions.items()]
    out += [f"{k}: derived (example {v!r})" for k, v in dict(consts).items()]
    return out


def comparison_names() -> list[str]:
    """The named comparisons' module names, without importing any of them."""
    import pkgutil

    import search_spaces.comparisons as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def load_comparison(name: str):
    """The named comparison ``name`` (its module's ``SPEC``).

    Raises:
        PlanError: No such comparison.
    """
    from search_spaces.base import ComparisonSpec

    if name in comparison_names():
        spec = getattr(importlib.import_module(f"search_spaces.comparisons.{name}"), "SPEC", None)
        if isinstance(spec, ComparisonSpec):
            return spec
    raise PlanError(f"unknown comparison {name!r}; named comparisons: {', '.join(comparison_names()) or '(none)'}")
