"""``autoexp-sidecar scan``: the sidecar, started in the background by the training script.

Its stdout/stderr go to ``attempts/<n>/sidecar.log`` (the template redirects them); it logs one
line per event there. It exits when the batch shell that started it is gone, or on SIGTERM,
after a final drain of the log.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

HELP = "follow a training log inside the allocation; write the marker; end a failed or hung job"
DESCRIPTION = (
    "The sidecar. Follows the training job's log from the start of this attempt, classifies each "
    "line with the run's monitoring preset, writes attempts/<N>/marker.json on the first root "
    "cause or a hang, and after the grace period (kill_grace_s) ends the training step (with "
    "restart.fast_path: the batch script then decides what follows) or cancels its own job "
    "(so that the watchdog starts). Started by train.sbatch; you rarely run it by hand."
)

DEFAULT_MONITORING = "megatron_production"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, metavar="DIR", help="the run directory")
    parser.add_argument("--attempt", required=True, type=int, metavar="N", help="attempt number")
    parser.add_argument("--job", required=True, metavar="JOBID", help="the training job's id (the one to cancel)")
    parser.add_argument("--log", required=True, metavar="PATH", help="the training job's log file (may not exist yet)")
    parser.add_argument("--start-offset", type=int, default=0, metavar="BYTES",
                        help="start reading the log at this byte offset (a step relaunched in the "
                        "same allocation appends to the same log; default 0)")
    parser.add_argument("--poll-s", type=float, default=0.1, metavar="S", help="seconds between reads of the log (default 0.1)")
    parser.add_argument("--parent-pid", type=int, default=None, metavar="PID",
                        help="exit when this process is gone (default: the parent, i.e. the batch shell)")
    parser.add_argument("--monitoring", default=None, metavar="PRESET",
                        help="monitoring preset to use instead of the run's (default: from run.yaml)")
    parser.add_argument("--no-cancel", action="store_true",
                        help="record markers but never cancel the job (tests, benchmarks, dry runs)")


def _setup_logging() -> None:
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, format="{time:YYYY-MM-DDTHH:mm:ss.SSSZZ} {level: <7} sidecar: {message}",
               level="INFO", backtrace=False, diagnose=False)


def _load_settings(args: argparse.Namespace, paths: Any) -> tuple[Any, str, bool]:
    """(monitoring config, slurm client kind). A broken run.yaml must not leave the job
    unwatched: the sidecar falls back to the default preset and says so."""
    from loguru import logger

    from sidecar.classify import load_monitoring_preset

    monitoring, client_kind, fast_path = None, "auto", False
    try:
        from sidecar.config import load_frozen

        cfg = load_frozen(paths.config)
        monitoring, client_kind = cfg.monitoring, cfg.slurm.client
        fast_path = bool(cfg.restart.fast_path)
    except Exception as exc:
        logger.error("cannot load {}: {}; using the {} preset", paths.config, exc,
                     args.monitoring or DEFAULT_MONITORING)
    if args.monitoring:
        monitoring = load_monitoring_preset(args.monitoring)
    if monitoring is None:
        monitoring = load_monitoring_preset(DEFAULT_MONITORING)
    return monitoring, client_kind, fast_path


def run(args: argparse.Namespace) -> int:
    import time

    from loguru import logger

    from sidecar.classify.tasks import task_nodes_from_env
    from sidecar.follow import LogFollower
    from sidecar.rundir import RunPaths
    from sidecar.scan import ScanContext, Scanner, process_alive, run_loop
    from sidecar.step import end_step

    _setup_logging()
    paths = RunPaths.of(args.run)
    stop: dict[str, int | None] = {"signal": None}

    def on_signal(signum: int, _frame: Any) -> None:  # only set a flag: the loop drains the log and exits
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Slurm sends SIGHUP/SIGUSR* to the batch step on some sites; the sidecar keeps going.
    for name in ("SIGHUP", "SIGUSR1", "SIGUSR2"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)

    parent = args.parent_pid if args.parent_pid is not None else os.getppid()
    start_ppid = os.getppid()
    monitoring, client_kind, fast_path = _load_settings(args, paths)
    client = None
    if not args.no_cancel:
        try:
            from sidecar.slurm import get_client

            client = get_client(client_kind)
        except Exception as exc:
            logger.error("no Slurm client ({}): {}; failures are recorded but the job is not cancelled",
                         client_kind, exc)
    hang = getattr(monitoring, "hang", None)
    # srun --label prefixes: the task's node from the allocation's layout
    nodes_of_tasks = task_nodes_from_env(os.environ)
    ctx = ScanContext(
        paths=paths, attempt=args.attempt, job_id=str(args.job),
        kill_grace_s=float(getattr(monitoring, "kill_grace_s", 2.0)),
        hang_enabled=bool(getattr(hang, "enabled", True)), client=client,
        task_nodes=nodes_of_tasks,
        end_step=(lambda: end_step(paths.step_pgid(args.attempt))) if fast_path and client else None,
    )
    scanner = Scanner.for_monitoring(ctx, monitoring, nodes_of_tasks)
    follower = LogFollower(args.log, start_offset=max(0, args.start_offset),
                           on_notice=lambda msg: logger.warning(msg))
    logger.info("started: pid {}, job {}, attempt {}, log {}, monitoring {}, grace {:g} s, cancel {}, "
                "watching parent pid {}", os.getpid(), ctx.job_id, ctx.attempt, args.log,
                getattr(monitoring, "name", "?"), ctx.kill_grace_s,
                "off (--no-cancel or no client)" if client is None else client_kind, parent)

    def should_stop() -> bool:
        if stop["signal"] is not None:
            logger.info("signal {} received; draining the log and exiting", stop["signal"])
            return True
        if not process_alive(parent) or (args.parent_pid is None and os.getppid() != start_ppid):
            logger.info("parent pid {} is gone; draining the log and exiting", parent)
            return True
        return False

    run_loop(scanner, follower, clock=time.time, sleep=time.sleep, poll_s=args.poll_s,
             should_stop=should_stop)
    m = scanner.marker
    logger.info("exiting: {} lines read, marker {}, cancelled {}", scanner.last_line_no,
                f"{m['error_type']} ({m['class']})" if m else "none", scanner.cancelled)
    return 0
