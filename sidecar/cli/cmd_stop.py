"""autoexp-sidecar stop RUN [--no-cancel]"""

from __future__ import annotations

import argparse

from sidecar.cli.common import add_run_arg

HELP = "stop a run on purpose: no restart follows"
DESCRIPTION = ("Write the run's STOP request and cancel its current training job; the watchdog "
               "then records the stop instead of restarting. With --no-cancel the current job "
               "runs on, but nothing is restarted after it ends.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arg(p)
    p.add_argument("--no-cancel", action="store_true",
                   help="let the current training job run; only prevent restarts")
    p.add_argument("--reason", default="Stop requested (autoexp-sidecar stop)")


def run(args: argparse.Namespace) -> int:
    import time

    from sidecar.cli.common import client_for, load_run_config, resolve_run
    from sidecar.history import EventKind
    from sidecar.rundir import atomic_write_json

    paths = resolve_run(args.run)
    cfg = load_run_config(paths)
    atomic_write_json(paths.stop_request, {"time": time.time(), "reason": args.reason})
    paths.append_event(EventKind.STOP_REQUESTED, reason=args.reason, cancel=not args.no_cancel)
    n = paths.latest_attempt()
    job = paths.read_job_id(paths.train_job_file(n)) if n else None
    if job and not args.no_cancel:
        client = client_for(cfg)
        info = client.job_info(job)
        if info.state.is_active:
            client.cancel(job)
            print(f"cancelled training job {job} (attempt {n})")
        paths.append_event(EventKind.STOPPED, attempt=n, reason=args.reason)
    print(f"stop requested for {paths.root}: no restart will follow")
    return 0
