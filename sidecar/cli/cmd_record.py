"""autoexp-sidecar record --run DIR --attempt N --job ID --exit-code RC [--signal NAME]"""

from __future__ import annotations

import argparse

HELP = ("record how a training step ended (run by train.sbatch); for a failed step with "
        "restart.fast_path on, decide and submit what follows (see `conclude`)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True)
    p.add_argument("--attempt", required=True, type=int)
    p.add_argument("--job", required=True)
    p.add_argument("--exit-code", required=True, type=int)
    p.add_argument("--signal", default=None, help="the signal the batch shell received, if any")
    p.add_argument("--after-pid", type=int, default=None, metavar="PID",
                   help="read nothing before this process (the step's sidecar, finishing its "
                   "marker) is gone; waits at most 10 s")


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
    if args.after_pid:
        from sidecar.claims import pid_alive

        deadline = time.monotonic() + 10.0
        while pid_alive(args.after_pid) and time.monotonic() < deadline:
            time.sleep(0.01)
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
    elif signal is None:
        # The step failed and nobody is ending this job from outside (a signal to the batch
        # shell is a scancel or the time limit: the watchdog's): the fast path, in this process
        # (one interpreter start less between the failure and the next job).
        cfg = load_run_config(paths)
        if cfg.restart.fast_path:
            from sidecar.fastpath import conclude, outcome_lines

            decision = conclude(paths, cfg, client_for(cfg), args.attempt, args.job, args.exit_code)
            print("\n".join(outcome_lines(paths, args.attempt, args.job, decision)))
    return 0
