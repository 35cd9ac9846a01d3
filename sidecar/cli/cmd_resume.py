"""autoexp-sidecar resume RUN [--force]"""

from __future__ import annotations

import argparse

from sidecar.cli.common import add_run_arg

HELP = "re-arm a run whose chain broke (e.g. its watchdog was cancelled by hand)"
DESCRIPTION = (
    "Re-arm a broken chain: a running training job without a live watchdog gets a new one; an "
    "ended attempt nobody decided on is decided now; a restart that was never submitted is "
    "submitted. A stopped or finished run is left alone unless --force, which removes the STOP "
    "request and submits a new attempt. Nothing is submitted while a watchdog is still "
    "submitting the next attempt, and --force refuses while the last training job is still "
    "pending, running or completing (two jobs would write the same checkpoints)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arg(p)
    p.add_argument("--force", action="store_true",
                   help="also restart a stopped or finished run (removes STOP, submits a new "
                        "attempt; refused while its training job is still active)")


def run(args: argparse.Namespace) -> int:
    from sidecar.cli.common import client_for, load_run_config, resolve_run, setup_logging
    from sidecar.resume import resume

    setup_logging()
    paths = resolve_run(args.run)
    cfg = load_run_config(paths)
    print(resume(paths, cfg, client_for(cfg), force=args.force))
    return 0
