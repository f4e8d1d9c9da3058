"""The declaration every named sweep makes (one module per sweep, each defining ``SPEC``)."""

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
        default_data: Data spec used on a GPU machine.
        default_epochs: Epochs per trial on a GPU machine.
        cpu_data: Data spec used when no GPU is present (the CLI says so).
        cpu_epochs: Epochs per trial when no GPU is present.
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
    default_data: str = "llp-sim"
    default_epochs: int = 25
    cpu_data: str = "llp-sim-small"
    cpu_epochs: int = 3
    cpu_num_samples: int = 4
    num_samples: int = 20
    grid: Mapping[str, Sequence[Any]] | None = None

    def __post_init__(self) -> None:
        if not self.metric or not self.mode:
            from trainables.core.method import method_task

            task = method_task(self.trainable)
            if not self.metric:
                object.__setattr__(self, "metric", task.select_metric)
            if not self.mode:
                object.__setattr__(self, "mode", task.mode)
        if self.mode not in ("max", "min"):
            raise ValueError(f"sweep {self.name}: mode must be 'max' or 'min', got {self.mode!r}")
