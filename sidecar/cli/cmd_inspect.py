"""autoexp-sidecar inspect RUN [--json] [--no-slurm]"""

from __future__ import annotations

import argparse

from sidecar.cli.common import add_run_arg

HELP = ("show a run: status, each attempt with job ids, Slurm state, error type, reason, budget, "
        "time lost; --plot draws its progress")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-slurm", action="store_true",
                   help="read only the run directory (no Slurm queries)")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw the run's progress across attempts to FILE (.png, .svg, .pdf, "
                        "or .html: the picture with the tables); needs the 'plot' extra (matplotlib)")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from sidecar.cli.common import client_for, load_run_config, resolve_run
    from sidecar.run_report import build_report, render_text

    if args.plot:
        from sidecar.plot import plot_format

        plot_format(args.plot)
    paths = resolve_run(args.run)
    cfg = load_run_config(paths)
    client = None if args.no_slurm else client_for(cfg)
    rep = build_report(paths, cfg, client)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2, default=str))
    else:
        print(render_text(rep.status, rep.time_lost))
    if args.plot:
        from sidecar.plot import write_plot

        out = write_plot(paths, rep, args.plot)
        print(f"picture of the run: {out}", file=sys.stderr if args.json else sys.stdout)
    return 0
