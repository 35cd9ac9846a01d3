"""autoexp-sidecar submit CONFIG [key=value ...] [--dry-run | --render-only]"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidecar.config.schema import ResolvedConfig

HELP = "create a run directory and submit the training job with its watchdog"
DESCRIPTION = (
    "Validate CONFIG (plus key=value overrides), create the run directory, render train.sbatch "
    "and watchdog.sbatch, and submit attempt 1: the training job and its watchdog "
    "(--dependency=afternotok). A bad config submits nothing. With --sweep, one run per "
    "combination of values; every combination is validated before any is submitted."
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
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                   help="submit one run per value (repeatable: one run per combination), each "
                        "named after its values, e.g. --sweep backend.args.micro_batch_size=4,8")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON (one line per run)")


def run(args: argparse.Namespace) -> int:
    from datetime import datetime

    from sidecar.config import load_config
    from sidecar.errors import ConfigError
    from sidecar.sweep import combinations, run_name

    now = datetime.now()
    if not args.sweep:
        return _submit_one(load_config(args.config, args.overrides, now=now), args)
    base = load_config(args.config, args.overrides, now=now).run.name
    # validate every combination before submitting any: a bad value submits nothing
    cfgs = []
    for combo in combinations(args.sweep):
        sets = [f"{k}={v}" for k, v in combo] + [f"run.name={run_name(base, combo)}"]
        cfg = load_config(args.config, [*args.overrides, *sets], now=now)
        if not args.dry_run and cfg.run.dir.exists() and any(cfg.run.dir.iterdir()):
            raise ConfigError(f"sweep run directory {cfg.run.dir} already exists; nothing submitted",
                              "choose another run name prefix (run.name=...)")
        cfgs.append(cfg)
    for cfg in cfgs:
        _submit_one(cfg, args)
    if not args.json and not args.dry_run:
        print(f"{len(cfgs)} runs; see them all with: autoexp-sidecar list {cfgs[0].run.root}")
    return 0


def _submit_one(cfg: "ResolvedConfig", args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    import yaml

    from sidecar.cli.common import client_for
    from sidecar.errors import ConfigError
    from sidecar.launch import submit_attempt
    from sidecar.notify import unusable_urls
    from sidecar.render import render_train_script, render_watchdog_script
    from sidecar.history import EventKind
    from sidecar.rundir import RunPaths, atomic_write_text

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
    bad = unusable_urls(cfg.notify.urls)
    if bad:
        raise ConfigError(f"notify.urls: apprise does not understand {bad[0].split(':', 1)[0]}:// "
                          f"({len(bad)} of {len(cfg.notify.urls)} URLs)",
                          "see https://github.com/caronc/apprise/wiki for the URL of each service")
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
