"""autoexp-sidecar arm --run DIR --job ID (run by train.sbatch when submitted by plain sbatch)"""

from __future__ import annotations

import argparse

HELP = "register a training job started by plain `sbatch train.sbatch` and submit its watchdog"
DESCRIPTION = (HELP + ". Prints the attempt number (only that) on stdout. Idempotent: the "
               "same job is registered once.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True)
    p.add_argument("--job", required=True, help="the training job id ($SLURM_JOB_ID)")


def run(args: argparse.Namespace) -> int:
    from sidecar.cli.common import client_for, load_run_config, setup_logging
    from sidecar.launch import arm_watchdog
    from sidecar.history import EventKind
    from sidecar.rundir import RunPaths, atomic_write_text

    setup_logging()
    paths = RunPaths.of(args.run).require()
    for n in paths.attempt_numbers():
        if paths.read_job_id(paths.train_job_file(n)) == args.job:
            print(n)
            return 0
    n = (paths.latest_attempt() or 0) + 1
    while not paths.claim_attempt(n):
        n += 1
    atomic_write_text(paths.train_job_file(n), args.job + "\n")
    paths.append_event(EventKind.ARMED, attempt=n, train_job=args.job,
                       reason="started by plain sbatch")
    cfg = load_run_config(paths)
    arm_watchdog(client_for(cfg), paths, cfg.run.name, n, args.job)
    print(n)
    return 0
