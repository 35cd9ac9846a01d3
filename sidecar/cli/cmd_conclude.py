"""autoexp-sidecar conclude --run DIR --attempt N --job ID (--exit-code RC | --before-timeout)"""

from __future__ import annotations

import argparse

HELP = "decide and submit what follows a step from inside the job (the fast path; run by train.sbatch)"
DESCRIPTION = (
    "The fast path (`record` runs it too, for a failed step). With --exit-code: the training "
    "step failed while the batch script lives; "
    "decide with the watchdog's policy and claim, submit the next attempt (or stop), and cancel "
    "this attempt's watchdog. With --before-timeout: Slurm's pre-timeout signal arrived; submit "
    "the continuation with --dependency=afterany:<job> now. Prints the decision, and "
    "`relaunch attempt N` when the next attempt runs in this allocation (restart.in_allocation). "
    "Does nothing "
    "when restart.fast_path is false or another party already decided."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="the run directory")
    p.add_argument("--attempt", required=True, type=int, help="this attempt")
    p.add_argument("--job", required=True, help="this training job's id ($SLURM_JOB_ID)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--exit-code", type=int, help="the training step's exit code")
    how.add_argument("--before-timeout", action="store_true",
                     help="the pre-timeout signal arrived: submit the continuation now")


def run(args: argparse.Namespace) -> int:
    from sidecar.cli.common import client_for, load_run_config, setup_logging
    from sidecar.fastpath import conclude, continue_before_timeout, outcome_lines
    from sidecar.rundir import RunPaths

    setup_logging()
    paths = RunPaths.of(args.run).require()
    cfg = load_run_config(paths)
    if not cfg.restart.fast_path:
        print("fast path off (restart.fast_path: false): the watchdog decides")
        return 0
    client = client_for(cfg)
    if args.before_timeout:
        decision = continue_before_timeout(paths, cfg, client, args.attempt, args.job)
        print("already decided by another party" if decision is None
              else f"{decision.action.value}: {decision.reason}")
    else:
        decision = conclude(paths, cfg, client, args.attempt, args.job, args.exit_code)
        print("\n".join(outcome_lines(paths, args.attempt, args.job, decision)))
    return 0
