"""``autoexp-sidecar doctor``: check a cluster for what the restart chain needs."""

from __future__ import annotations

import argparse
import os

HELP = "check this cluster: Slurm commands, controller, sacct, afternotok, pyslurm, run root"
DESCRIPTION = (
    "Checks what autoexp-sidecar needs and prints a table: the Slurm commands, the controller "
    "(scontrol ping), the Slurm version, accounting (sacct), afternotok + --kill-on-invalid-dep "
    "(submits two held test jobs and cancels them), pyslurm (optional), and whether the run root "
    "is writable and on a shared filesystem. Exit 0 only when every required check passes."
)


def default_run_root() -> str:
    return os.environ.get("AUTOEXP_RUN_ROOT") or os.path.join("~", "autoexp-runs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-root", metavar="PATH", default=None,
        help="where run directories go (default: $AUTOEXP_RUN_ROOT or ~/autoexp-runs)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from sidecar.doctor import exit_code, render_table, run_checks

    run_root = Path(os.path.expanduser(args.run_root or default_run_root()))
    results = run_checks(run_root)
    code = exit_code(results)
    if args.json:
        print(json.dumps({"ok": code == 0, "run_root": str(run_root),
                          "checks": [r.to_dict() for r in results]}, indent=2))
    else:
        print(render_table(results))
    return code
