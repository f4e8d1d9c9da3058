"""Named sweeps: ``python -m orchestrator.sweep NAME [options]``, ``--list`` and ``--show``.

Runs a named search space (``search_spaces/NAME.py``) with Ray Tune (Optuna TPE or the sweep's
grid), checkpointing every epoch, tracked in MLflow (a parent run with nested trial runs and
paper-style tables). Without a GPU the sweep shrinks to its CPU preset and says so. ``--seeds N``
repeats every configuration under N seeds; ``--show [NAME]`` prints a finished run's ranked table
again from MLflow. See docs/sweeps.md for every option.

This module parses the command line; :mod:`orchestrator.plan` builds the plan and
:mod:`orchestrator.run` runs it. Module-level imports are the standard library and light modules
only, so argument errors and unknown sweeps are reported before Ray, torch or MLflow load.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator import cli
from orchestrator.specs import list_sweeps, sweep_names


def make_parser() -> argparse.ArgumentParser:
    names = ", ".join(sweep_names())
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.sweep",
        formatter_class=cli.HelpFormatter,
        description="Run a named hyper-parameter sweep with Ray Tune + Optuna, tracked in MLflow.",
        epilog=f"named sweeps: {names}\n(--list shows each one's metric and description)\n\n"
               "Without a GPU the sweep uses its CPU preset (smaller data, fewer epochs and trials) "
               "and says so;\nany of --data, --max-epochs, --num-samples overrides the preset. "
               "Exit status: 0 every trial\nfinished, 1 some failed, 2 bad input (nothing written), "
               "130 interrupted. See docs/sweeps.md.\n\n"
               "examples:\n  python -m orchestrator.sweep NAME\n"
               "  python -m orchestrator.sweep NAME --grid --seeds 3\n"
               "  python -m orchestrator.sweep NAME --data SPEC --max-epochs 2 --num-samples 4\n"
               "  python -m orchestrator.sweep --show\n")
    p.add_argument("name", nargs="?", help=f"sweep name ({names}) or package.module[:SPEC]")
    p.add_argument("--list", action="store_true", help="list the named sweeps and exit")
    p.add_argument("--show", nargs="?", const="", metavar="NAME",
                   help="print the ranked table of a finished run again, from MLflow: NAME is a run "
                        "(--name) or a sweep (its newest run); without NAME the newest run")
    s = p.add_argument_group("search")
    s.add_argument("--num-samples", metavar="N", type=cli.positive_int("--num-samples"),
                   help="configurations to try (with --grid: repetitions of the grid); "
                        "default: the sweep's (CPU-only: its cpu_num_samples)")
    s.add_argument("--grid", action="store_true", help="run the sweep's grid instead of Optuna")
    s.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo",
                   help="asha stops weak trials early")
    s.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep (--name, or the newest one of NAME in --storage)")
    s.add_argument("--set", dest="sets", type=cli.keyval, action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the trainable's config for every trial (repeatable); "
                        "--set preset=NAME builds a named preset")
    cli.add_run_options(p)
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses and range-checks the command line (argparse exits with status 2 on bad values)."""
    p = make_parser()
    args = p.parse_args(argv)
    if not args.list and args.show is None and not args.name:
        p.error("a sweep NAME is required (or --list, --show)")
    cli.check_run_args(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; the exit status of :func:`orchestrator.run.execute` (0, 1, 2, 130)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        print(list_sweeps())
        return 0
    if args.show is not None:
        from orchestrator import results

        return results.show(args.show or args.name or "", args.mlflow_uri)
    from orchestrator.run import execute

    return execute(args, "sweep")


if __name__ == "__main__":
    sys.exit(main())
