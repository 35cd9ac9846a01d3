"""autoexp-sidecar inspect RUN [--json] [--no-slurm]"""

from __future__ import annotations

import argparse

from sidecar.cli.common import add_run_arg

HELP = "show a run: status, each attempt with job ids, Slurm state, error type, reason, budget"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-slurm", action="store_true",
                   help="read only the run directory (no Slurm queries)")


def run(args: argparse.Namespace) -> int:
    import json

    from sidecar.cli.common import client_for, load_run_config, resolve_run
    from sidecar.run_report import build_status, render_text

    paths = resolve_run(args.run)
    cfg = load_run_config(paths)
    client = None if args.no_slurm else client_for(cfg)
    st = build_status(paths, client, cfg.restart.max_retries)
    if args.json:
        print(json.dumps(st.to_dict(), indent=2, default=str))
    else:
        print(render_text(st))
    return 0
