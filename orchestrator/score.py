"""Scoring another codebase's predictions: ``python -m orchestrator.score [--task NAME] ...``.

The scorer belongs to its task (``TASK.scorer``, e.g. AVVP's LLP F-scores in
``trainables.tasks.avvp.scoring``); this entry point finds it, so the orchestrator names no task.
With one task that scores, ``--task`` is not needed. Never imports Ray or MLflow.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def scorers() -> dict[str, str]:
    """Task name -> its scorer's ``"module:function"``, for every task that has one."""
    from orchestrator.methods import discover_tasks

    return {name: t.scorer for name, t in discover_tasks().items() if t.scorer}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the chosen task's scorer; its exit status (0 ok, 2 bad input)."""
    from trainables.core.method import resolve

    argv = list(sys.argv[1:] if argv is None else argv)
    found = scorers()
    task = None
    if "--task" in argv:
        i = argv.index("--task")
        if i + 1 >= len(argv):
            print("error: --task needs a task name", file=sys.stderr)
            return 2
        task = argv[i + 1]
        del argv[i:i + 2]
    elif len(found) == 1:
        task = next(iter(found))
    if task not in found:
        print(f"error: {'--task ' + task + ': ' if task else ''}choose a task that scores predictions "
              f"with --task ({', '.join(found) or 'none'})", file=sys.stderr)
        return 2
    return int(resolve(found[task])(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
