"""The declarations of named runs: a sweep (``search_spaces/<name>.py``, each defining ``SPEC``, a
:class:`SweepSpec`) and a comparison (``search_spaces/comparisons/<name>.py``, ``SPEC`` a
:class:`ComparisonSpec`: fixed entries side by side, e.g. a paper's ablation table)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A define-by-run Optuna space: receives an ``optuna.Trial``, suggests the tuned values and may
# return a dict of constants derived from them (e.g. alpha2 = 1 - alpha1).
DefineByRun = Callable[[Any], Mapping[str, Any] | None]


@dataclass(frozen=True)
class SweepSpec:
    """A named sweep.

    Attributes:
        name: CLI name (``python -m orchestrator.sweep NAME``).
        description: One line for ``--list``.
        trainable: Method name (a discovered ``METHOD``, see ``orchestrator.methods``) or module.
        metric: Metric the search optimises, e.g. ``val/seg_Type`` (default: the task's selection
            metric, e.g. ``val/seg_Type`` for AVVP).
        mode: ``max`` or ``min`` (default: the task's mode for its selection metric).
        space: Define-by-run Optuna space over config fields of the trainable.
        points_to_evaluate: Configurations tried first, starting with the paper defaults.
        base: Overrides of the trainable's config defaults that hold for every trial.
        default_data: Data spec used on a GPU machine (default: the task's).
        default_epochs: Epochs per trial on a GPU machine (default: the task's).
        cpu_data: Data spec used when no GPU is present (the CLI says so; default: the task's).
        cpu_epochs: Epochs per trial when no GPU is present (default: the task's).
        cpu_num_samples: Trials when no GPU is present and ``--num-samples`` is not given.
        num_samples: Trials on a GPU machine when ``--num-samples`` is not given.
        grid: Optional named grid, ``{param: [values]}``, run with ``--grid``.
    """

    name: str
    description: str
    trainable: str
    space: DefineByRun
    metric: str = ""
    mode: str = ""
    points_to_evaluate: Sequence[Mapping[str, Any]] = ()
    base: Mapping[str, Any] = field(default_factory=dict)
    default_data: str = ""
    default_epochs: int = 0
    cpu_data: str = ""
    cpu_epochs: int = 0
    cpu_num_samples: int = 4
    num_samples: int = 20
    grid: Mapping[str, Sequence[Any]] | None = None

    def __post_init__(self) -> None:
        _task_defaults(self, self.trainable)


def _task_defaults(spec: Any, method: str) -> None:
    """Fills a spec's unset metric, mode, data and epochs from its method's task."""
    from trainables.core.method import method_task

    task = None
    for attr, of_task in (("metric", "select_metric"), ("mode", "mode"), ("default_data", "default_data"),
                          ("cpu_data", "cpu_data"), ("default_epochs", "default_epochs"),
                          ("cpu_epochs", "cpu_epochs")):
        if not getattr(spec, attr):
            task = task or method_task(method)
            object.__setattr__(spec, attr, getattr(task, of_task))
    if spec.mode not in ("max", "min"):
        raise ValueError(f"{spec.name}: mode must be 'max' or 'min', got {spec.mode!r}")


@dataclass(frozen=True)
class Entry:
    """One row of a named comparison: a method at fixed settings.

    Attributes:
        label: The row's name in tables and MLflow (unique within the comparison).
        method: A discovered method's name.
        overrides: Config fields it sets (``preset`` builds a named preset; ``epochs`` keeps the
            entry's own schedule, e.g. its paper's, unless ``--max-epochs`` is given).
        reference: The label of the published row (the task's reference rows) it is read
            against, for a prediction table; empty for none.
    """

    label: str
    method: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""


@dataclass(frozen=True)
class ComparisonSpec:
    """A named comparison: ``python -m orchestrator.compare NAME`` runs its entries side by side
    under the same seeds and data, as one table (a paper's ablation, a prediction).

    Attributes:
        name: CLI name (the module's name).
        description: One line for ``--list``.
        entries: Its rows, in table order.
        metric: The validation metric that selects each run's epoch (default: the task's).
        mode: ``max`` or ``min`` (default: the task's).
        default_data, default_epochs, cpu_data, cpu_epochs: As :class:`SweepSpec`'s.
        columns: Further result keys the tables show per entry (mean ± std over seeds, at the
            selected epoch), e.g. ``denoise/precision_v`` or ``pseudo/seg_F_v``.
        paired: The entries are an expected order (worst to best): the tables add each step's
            per-seed paired differences of ``metric`` and ``columns``.
    """

    name: str
    description: str
    entries: Sequence[Entry]
    columns: Sequence[str] = ()
    paired: bool = False
    metric: str = ""
    mode: str = ""
    default_data: str = ""
    default_epochs: int = 0
    cpu_data: str = ""
    cpu_epochs: int = 0

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError(f"comparison {self.name}: no entries")
        labels = [e.label for e in self.entries]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"comparison {self.name}: labels {dup} appear twice")
        _task_defaults(self, self.entries[0].method)
