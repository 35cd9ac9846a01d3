"""autoexp-sidecar watchdog --run DIR --attempt N --train-job ID (run by watchdog.sbatch)"""

from __future__ import annotations

import argparse

HELP = "decide what follows a failed attempt and resubmit or stop (run by the watchdog job)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="the run directory")
    p.add_argument("--attempt", required=True, type=int, help="the attempt that ended")
    p.add_argument("--train-job", required=True, help="its training job id")
    p.add_argument("--wait-s", type=float, default=30.0,
                   help="how long to wait for Slurm to show the job as ended (default 30)")
    p.add_argument("--defer-s", type=float, default=180.0,
                   help="while Slurm cannot be read, keep trying this long before leaving the "
                        "decision to `autoexp-sidecar resume` (default 180)")


def run(args: argparse.Namespace) -> int:
    from sidecar.cli.common import client_for, load_run_config, setup_logging
    from sidecar.policy import Action
    from sidecar.rundir import RunPaths
    from sidecar.watchdog import handle_attempt

    setup_logging()
    paths = RunPaths.of(args.run).require()
    cfg = load_run_config(paths)
    # attempts restarted inside the allocation share the job and this watchdog: the last one ended it
    attempt = max([n for n in paths.attempt_numbers() if n >= args.attempt
                   and paths.read_job_id(paths.train_job_file(n)) == str(args.train_job)],
                  default=args.attempt)
    decision = handle_attempt(paths, cfg, client_for(cfg), attempt, args.train_job,
                              wait_s=args.wait_s, defer_s=args.defer_s)
    if decision is not None:
        print(f"{decision.action.value}: {decision.reason}")
        if decision.action is Action.DEFER:
            print(f"not decided: run `autoexp-sidecar resume {paths.root}` once Slurm answers "
                  "(`scontrol ping`)")
            return 1
    return 0
