"""What the sweep and compare CLIs share: option parsing with the same names and meanings.

Only the standard library is imported here, so a bad flag is reported before Ray, torch or MLflow
load (``python -m orchestrator.sweep --seed -1`` answers in well under a second).
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
from collections.abc import Iterable


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default after its help, unless the help already says it or there is
    none to show (None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if ("default" in text or d is None or d is False or d is argparse.SUPPRESS or d == []
                or not action.option_strings):
            return text
        return f"{text} (default: {d})"


def positive_int(name: str):
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v
    return conv


def nonneg_float(name: str, strictly_positive: bool = False):
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
        if not math.isfinite(v) or v < 0 or (strictly_positive and v == 0):
            raise argparse.ArgumentTypeError(f"{name} must be {'> 0' if strictly_positive else '>= 0'}, got {s}")
        return v
    return conv


def seed(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer, got {s!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"--seed must be in [0, 2**32), got {v}")
    return v


def keyval(s: str) -> tuple[str, str]:
    key, sep, val = s.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {s!r}")
    return key.strip(), val


def add_run_options(p: argparse.ArgumentParser, *, what: str = "trial") -> None:
    """The options every run CLI takes: data, epochs, seeds, resources, cluster, tracking, storage."""
    g = p.add_argument_group("data, length and seeds")
    from trainables.data.registry import all_presets, path_forms

    g.add_argument("--data", metavar="SPEC", help=f"a preset ({', '.join(all_presets())}) or {path_forms()} "
                                                  "(default: the preset's data; on a CPU-only machine the CPU preset's)")
    g.add_argument("--max-epochs", metavar="N", type=positive_int("--max-epochs"),
                   help=f"epochs per {what}; a method's stage lengths (*_epochs) are capped at it too "
                        "(default: the preset's; CPU-only: the CPU preset's)")
    g.add_argument("--seed", metavar="S", type=seed, default=0, help="first seed (of every run; of the TPE sampler)")
    g.add_argument("--seeds", metavar="N", type=positive_int("--seeds"), default=1,
                   help="run every configuration under N seeds (seed, seed+1, ...); tables report mean ± std")
    g.add_argument("--metric", metavar="KEY",
                   help=f"the validation metric each {what}'s result is read at (its selected epoch) "
                        "and a sweep optimises, e.g. val/seg_Type (default: the sweep's or the task's)")
    g.add_argument("--mode", choices=("max", "min"),
                   help="whether --metric is better high or low (default: the sweep's or the task's)")
    r = p.add_argument_group("resources")
    r.add_argument("--gpus-per-trial", metavar="G", type=nonneg_float("--gpus-per-trial"),
                   help="GPUs per trial (per worker with --workers-per-trial); fractions share a GPU "
                        "(default: 0.125 with a GPU, else 0)")
    r.add_argument("--cpus-per-trial", metavar="C", type=nonneg_float("--cpus-per-trial", strictly_positive=True),
                   help="CPUs per trial (per worker with --workers-per-trial), also its torch threads "
                        "(default: 1)")
    r.add_argument("--workers-per-trial", metavar="W", type=positive_int("--workers-per-trial"), default=1,
                   help="Ray Train DDP workers per trial; 1 runs the trial in-process")
    r.add_argument("--max-concurrent", metavar="K", type=positive_int("--max-concurrent"),
                   help="cap on trials running at once (default: as many as the resources fit)")
    r.add_argument("--max-failures", metavar="N", type=int, default=2, help="retries of a failed trial from its checkpoint")
    c = p.add_argument_group("cluster, tracking and storage")
    c.add_argument("--address", metavar="ADDR", help="join a running Ray cluster ('auto' on a cluster node, HOST:PORT, "
                                     "ray://HOST:PORT; default: $RAY_ADDRESS if set, else 'local': a "
                                     "private Ray on 127.0.0.1)")
    c.add_argument("--mlflow-uri", metavar="URI",
                   help="MLflow tracking URI (default: $AVTUNE_MLFLOW_URI, else mlflow.db at the root of the "
                        "avtune checkout holding the working directory, else in the working directory)")
    c.add_argument("--storage", metavar="PATH", default="./ray_results",
                   help="Tune results and checkpoints: a local path or s3://bucket/prefix (shared on multi-node)")
    c.add_argument("--name", dest="run_name", metavar="NAME", help="experiment name: Tune directory and MLflow parent run "
                                                   "(default: NAME-<timestamp>)")
    o = p.add_argument_group("output")
    o.add_argument("--dry-run", action="store_true", help="print what would run; start and write nothing")
    o.add_argument("-v", "--verbose", action="store_true",
                   help="also show Ray Tune's status tables, result dumps and the workers' output")


def check_run_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Range checks across options (argparse exits with status 2)."""
    g = args.gpus_per_trial
    if g is not None and g > 1 and g != int(g):
        p.error(f"--gpus-per-trial above 1 must be a whole number, got {g}")
    if args.max_failures < 0:
        p.error(f"--max-failures must be >= 0, got {args.max_failures}")
    if args.run_name is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]+", args.run_name):
        p.error(f"--name may hold letters, digits, '_', '.', '-' only, got {args.run_name!r}")


def command(prog: str, positional: Iterable[str], options: Iterable[tuple[str, object]]) -> str:
    """A shell command line: ``prog`` with positional words and ``(flag, value)`` options (value
    None: absent; True: a bare flag)."""
    words = ["python", "-m", prog, *positional]
    for flag, value in options:
        if value is None or value is False:
            continue
        words.append(flag)
        if value is not True:
            words.append(str(value))
    return " ".join(shlex.quote(w) for w in words)
