"""autoexp-sidecar list [ROOT] [--json] [--no-slurm]"""

from __future__ import annotations

import argparse

HELP = "every run under a root in one table: status, attempt, budget, last iteration, last failure, time lost"
DESCRIPTION = (
    "List the run directories under ROOT (default $AUTOEXP_RUN_ROOT or ~/autoexp-runs), e.g. "
    "the runs of a sweep, with Slurm's view of all their jobs from one batched query."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", metavar="ROOT", nargs="?", default=None,
                   help="directory holding run directories (default $AUTOEXP_RUN_ROOT or ~/autoexp-runs)")
    p.add_argument("--json", action="store_true", help="print JSON (one object per run)")
    p.add_argument("--no-slurm", action="store_true",
                   help="read only the run directories (no Slurm query)")


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from loguru import logger

    from sidecar.cli.common import client_for, default_run_root, load_run_config, setup_logging
    from sidecar.errors import SidecarError
    from sidecar.history import read_history
    from sidecar.run_report import job_ids, list_row, query_jobs, render_list, report_from
    from sidecar.rundir import find_runs
    from sidecar.status import collect_attempts

    setup_logging("WARNING")
    root = args.root or str(default_run_root())
    loaded = []
    for paths in find_runs(root):
        try:
            cfg = load_run_config(paths, compile_monitoring=False)  # list needs no classifier
        except SidecarError as exc:
            logger.warning("skipping {}: {}", paths.root, exc.message)
            continue
        history = read_history(paths)
        loaded.append((paths, cfg, history, collect_attempts(paths, history)))
    infos = None
    if loaded and not args.no_slurm:
        # one query for every job of every run (a client of the first run's kind)
        infos = query_jobs(client_for(loaded[0][1]), [j for *_, v in loaded for j in job_ids(v)])
    now = time.time()
    rows = [list_row(report_from(p, c, h, v, infos, now)) for p, c, h, v in loaded]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(render_list(rows))
    return 0
