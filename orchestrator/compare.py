"""Methods side by side: ``python -m orchestrator.compare METHOD... | NAME [--data SPEC] [--seeds N]``.

Runs each method at its defaults (or, with ``--from-sweep NAME``, at the best configuration a
finished sweep found for it), or the entries of a named comparison (``search_spaces/comparisons/``,
e.g. a paper's ablation table), under N seeds on one data set, as one Ray Tune experiment (one
trial per arm and seed, checkpointed and resumable like a sweep's) tracked as one MLflow parent
run with a child run per arm and seed. It prints and writes the paper-style table (mean ± std over
the seeds per arm, beside the published rows), the read against the papers where entries name
their published row, and per-class F where the methods report it (``class_f.png``). Files go to
``<storage>/<name>/tables/`` and to the parent run's artifacts ``tables/``.

The options shared with the sweep CLI mean the same. ``--set KEY=VALUE`` applies to every arm
whose config has the field; ``--set ARM.KEY=VALUE`` to one arm (by label or method). This module
parses the command line; :mod:`orchestrator.plan` builds the plan, :mod:`orchestrator.run` runs it.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator import cli


def make_parser() -> argparse.ArgumentParser:
    from orchestrator.methods import discover  # the method packages' specs only: no torch
    from orchestrator.specs import comparison_names

    names, named = ", ".join(discover()), ", ".join(comparison_names())
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.compare", formatter_class=cli.HelpFormatter,
        description="Run methods at their defaults (or a sweep's best), or a named comparison, under\n"
                    "N seeds on one data set; print the paper-style table (mean ± std) beside the "
                    "published rows.",
        epilog="examples:\n  python -m orchestrator.compare METHOD METHOD --seeds 3\n"
               "  python -m orchestrator.compare METHOD METHOD --from-sweep SWEEP --seeds 3\n"
               "  python -m orchestrator.compare NAME --only ENTRY,ENTRY --seeds 3\n\n"
               f"methods: {names}\nnamed comparisons: {named or '(none)'} (--list shows both)\n\n"
               "Exit status: 0 every run finished, 1 some failed, 2 bad input (nothing written), "
               "130 interrupted.\n")
    p.add_argument("methods", nargs="*", metavar="METHOD",
                   help=f"methods to compare ({names}), or one named comparison ({named})")
    p.add_argument("--list", action="store_true", help="list the methods and named comparisons and exit")
    p.add_argument("--only", metavar="ENTRY,...", help="run only these entries of a named comparison")
    p.add_argument("--from-sweep", action="append", default=[], metavar="NAME",
                   help="run the method that sweep NAME tuned at its best configuration (NAME: a "
                        "sweep run's --name, or a sweep, for its newest run; repeatable)")
    p.add_argument("--set", dest="sets", type=cli.keyval, action="append", default=[], metavar="[ARM.]KEY=VALUE",
                   help="override a config field of every arm that has it, or of ARM only (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted comparison (--name, "
                                                         "or the newest one in --storage)")
    cli.add_run_options(p, what="run")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = make_parser()
    args = p.parse_args(argv)
    if not args.list and not args.methods and not args.resume:
        p.error("name at least one METHOD (or --list)")
    if len(set(args.methods)) != len(args.methods):
        p.error(f"a method is named twice: {' '.join(args.methods)}")
    cli.check_run_args(p, args)
    return args


def list_methods() -> str:
    """The methods (name, task, description) and the named comparisons."""
    from orchestrator import methods as treg
    from orchestrator.specs import comparison_names, load_comparison

    reg = treg.discover()
    named = {n: load_comparison(n) for n in comparison_names()}
    w = max(len(n) for n in [*reg, *named])
    lines = ["methods:"] + [f"  {n.ljust(w)}  {s.task:<5}  {s.description}" for n, s in reg.items()]
    if named:
        lines += ["named comparisons:"] + [f"  {n.ljust(w)}  {len(c.entries):>2} entries  {c.description}"
                                           for n, c in named.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status as the sweep CLI's (0, 1, 2, 130)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        print(list_methods())
        return 0
    from orchestrator.run import execute

    return execute(args, "compare")


if __name__ == "__main__":
    sys.exit(main())
