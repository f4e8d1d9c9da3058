"""The run flow both CLIs share: plan, check, start Ray, run the trials, report; the exit status.

Exit status: 0 every planned trial finished, 1 some failed, 2 bad input (nothing started or
written), 130 interrupted (the first Ctrl+C stops the trials at their last checkpoint, a second one
aborts at once; ``--resume`` continues either).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def execute(args: argparse.Namespace, kind: str) -> int:
    """Plans, checks and runs a sweep or a comparison; the exit status (module docstring).

    Args:
        args: The parsed command line (:func:`orchestrator.cli.add_run_options` and the CLI's own).
        kind: ``sweep`` or ``compare``.
    """
    from orchestrator import plan as plans
    from orchestrator import preflight
    from orchestrator.launch import run_trials, start_ray
    from orchestrator.specs import PlanError

    if not args.address and os.environ.get("RAY_ADDRESS"):
        # Honoured, and said: a stray RAY_ADDRESS must not silently pick the cluster.
        args.address = os.environ["RAY_ADDRESS"]
        print(f"[avtune] RAY_ADDRESS={args.address} is set: joining that cluster "
              "(--address local starts a private Ray instead)")
    if args.address == "local":
        args.address = None
    joined = bool(args.address and not args.dry_run)
    try:
        if joined:
            preflight.check_address(args.address)
        try:
            total = start_ray(args.address, verbose=args.verbose) if joined else None
        except (ConnectionError, TimeoutError, RuntimeError) as e:
            # Something answers at the address, but it is no Ray cluster we can join.
            raise PlanError(f"--address {args.address}: cannot join a Ray cluster there "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        plan = plans.build(args, kind, total)
        if not args.dry_run:
            preflight.check_tracking(plan.mlflow_uri)
            preflight.check_storage(plan.storage)
    except (PlanError, ValueError, FileNotFoundError) as e:
        # Bad input: nothing has been started or written. Data specs and paths are checked
        # where they are resolved, and their messages name the file.
        if joined:
            import ray

            ray.shutdown()
        print(f"error: {e}", file=sys.stderr)
        return 2
    for n in plan.notes:
        print(f"[avtune] {n}")
    print(plans.describe(plan), flush=True)
    if args.dry_run:
        return 0
    if not args.address:
        plan.total = start_ray(None, plan.total, verbose=args.verbose)
    try:
        rows = run_trials(plan)
    except KeyboardInterrupt:
        # Ctrl+C while preparing (before Tune listens for it) or a second Ctrl+C: abort now.
        from orchestrator import tracking

        tracking.kill_open_run(plan.mlflow_uri, plan.experiment, plan.sweep_id)
        saved = plan.resume or Path(plan.storage, plan.name).is_dir()
        print("[avtune] aborted: " + (f"resume with: {plan.resume_command}" if saved else
                                       "no trial had started; run the same command again"),
              file=sys.stderr)
        return 130
    from orchestrator import progress, report
    from orchestrator.rows import finished_rows

    status = report.exit_status(rows, plan.n_trials)
    if status == "interrupted":
        # No best trial or tables from partial trials: say what finished and how to go on.
        done = len(finished_rows(rows))
        print(f"[avtune] {done}/{plan.n_trials} trials finished")
        print(f"[avtune] interrupted: {done} of {plan.n_trials} trials finished; "
              f"resume with: {plan.resume_command}", file=sys.stderr)
        return 130
    print(progress.closing_text(plan, rows))
    return 0 if status == "finished" else 1
