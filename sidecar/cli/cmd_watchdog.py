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


def run(args: argparse.Namespace) -> int:
    from sidecar.cli.common import client_for, load_run_config, setup_logging
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
                              wait_s=args.wait_s)
    if decision is not None:
        print(f"{decision.action.value}: {decision.reason}")
    return 0
