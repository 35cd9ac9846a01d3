"""autoexp-sidecar record --run DIR --attempt N --job ID --exit-code RC [--signal NAME]"""

from __future__ import annotations

import argparse

HELP = "record how a training attempt ended (run by train.sbatch's exit path)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True)
    p.add_argument("--attempt", required=True, type=int)
    p.add_argument("--job", required=True)
    p.add_argument("--exit-code", required=True, type=int)
    p.add_argument("--signal", default=None, help="the signal the batch shell received, if any")


def run(args: argparse.Namespace) -> int:
    import time

    from loguru import logger

    from sidecar.cli.common import setup_logging
    from sidecar.errors import SidecarError
    from sidecar.rundir import RunPaths, atomic_write_json
    from sidecar.status import write_state

    setup_logging()
    paths = RunPaths.of(args.run).require()
    now = time.time()
    signal = args.signal or None
    atomic_write_json(paths.end_record(args.attempt), {
        "attempt": args.attempt, "job_id": args.job, "exit_code": args.exit_code,
        "signal": signal, "time": now})
    ok = args.exit_code == 0 and signal is None
    paths.append_event("ended", now=now, attempt=args.attempt, train_job=args.job,
                       exit_code=args.exit_code, signal=signal)
    if ok:
        paths.append_event("finished", attempt=args.attempt, reason="Training job completed")
        # --kill-on-invalid-dep=yes would also end it; cancelling says so in the history.
        try:
            from sidecar.cli.common import client_for, load_run_config
            from sidecar.launch import cancel_watchdog

            cancel_watchdog(client_for(load_run_config(paths)), paths, args.attempt, "training completed")
        except SidecarError as exc:
            logger.warning("could not cancel the watchdog: {}", exc.message)
    write_state(paths)
    return 0
