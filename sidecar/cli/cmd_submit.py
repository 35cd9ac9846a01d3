"""autoexp-sidecar submit CONFIG [key=value ...] [--dry-run | --render-only]"""

from __future__ import annotations

import argparse

HELP = "create a run directory and submit the training job with its watchdog"
DESCRIPTION = (
    "Validate CONFIG (plus key=value overrides), create the run directory, render train.sbatch "
    "and watchdog.sbatch, and submit attempt 1: the training job and its watchdog "
    "(--dependency=afternotok). A bad config submits nothing."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="YAML config (presets + overrides)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="overrides, e.g. slurm.partition=booster restart.max_retries=5")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dry-run", action="store_true",
                   help="validate and print the rendered scripts; create and submit nothing")
    g.add_argument("--render-only", action="store_true",
                   help="create the run directory with its scripts but submit nothing "
                        "(then `sbatch RUN/train.sbatch` arms its own watchdog)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from datetime import datetime
    from pathlib import Path

    import yaml

    from sidecar.cli.common import client_for
    from sidecar.config import load_config
    from sidecar.launch import submit_attempt
    from sidecar.render import render_train_script, render_watchdog_script
    from sidecar.history import EventKind
    from sidecar.rundir import RunPaths, atomic_write_text

    cfg = load_config(args.config, args.overrides, now=datetime.now())
    paths = RunPaths.of(Path(cfg.run.root) / cfg.run.name)
    python = sys.executable
    train = render_train_script(cfg, paths, python)
    watchdog = render_watchdog_script(cfg, paths, python)
    frozen = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    if args.dry_run:
        print(f"# run directory (not created): {paths.root}")
        print("# ---- run.yaml\n" + frozen)
        print(f"# ---- {paths.train_script.name}\n{train}")
        print(f"# ---- {paths.watchdog_script.name}\n{watchdog}")
        return 0
    client = None if args.render_only else client_for(cfg)
    paths.create(run_id=cfg.run.name)
    atomic_write_text(paths.config, frozen)
    atomic_write_text(paths.train_script, train, mode=0o755)
    atomic_write_text(paths.watchdog_script, watchdog, mode=0o755)
    paths.append_event(EventKind.CREATED, run_dir=str(paths.root), config=str(args.config),
                       overrides=list(args.overrides))
    if args.render_only:
        print(f"run directory: {paths.root}")
        print(f"submit it with: sbatch {paths.train_script}")
        return 0
    assert client is not None  # only --render-only has none, and it returned above
    paths.claim_attempt(1)
    sub = submit_attempt(client, paths, cfg.run.name, 1, reason="")
    if args.json:
        print(json.dumps({"run_dir": str(paths.root), "attempt": 1,
                          "train_job": sub.train_job, "watchdog_job": sub.watchdog_job}))
    else:
        print(f"run directory: {paths.root}")
        print(f"training job:  {sub.train_job}")
        print(f"watchdog job:  {sub.watchdog_job} (afternotok:{sub.train_job})")
        print(f"follow it with: autoexp-sidecar inspect {paths.root}")
    return 0
