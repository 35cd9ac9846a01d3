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

    from sidecar.cli.common import client_for, load_run_config, setup_logging
    from sidecar.errors import SidecarError
    from sidecar.history import EventKind
    from sidecar.launch import cancel_watchdog
    from sidecar.rundir import RunPaths, atomic_write_json
    from sidecar.watchdog import record_completion

    setup_logging()
    paths = RunPaths.of(args.run).require()
    now = time.time()
    signal = args.signal or None
    atomic_write_json(paths.end_record(args.attempt), {
        "attempt": args.attempt, "job_id": args.job, "exit_code": args.exit_code,
        "signal": signal, "time": now})
    paths.append_event(EventKind.ENDED, now=now, attempt=args.attempt, train_job=args.job,
                       exit_code=args.exit_code, signal=signal)
    if args.exit_code == 0 and signal is None:
        cfg = load_run_config(paths)
        record_completion(paths, cfg, args.attempt, args.job, now=now)
        # --kill-on-invalid-dep=yes would also end it; cancelling says so in the history.
        try:
            cancel_watchdog(client_for(cfg), paths, args.attempt, "training completed")
        except SidecarError as exc:
            logger.warning("could not cancel the watchdog: {}", exc.message)
    return 0
