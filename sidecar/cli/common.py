"""Helpers shared by the subcommands (stdlib-only imports at top level)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidecar.config import ResolvedConfig
    from sidecar.rundir import RunPaths
    from sidecar.slurm.types import SlurmClient


def default_run_root() -> Path:
    return Path(os.environ.get("AUTOEXP_RUN_ROOT") or "~/autoexp-runs").expanduser()


def resolve_run(arg: str) -> RunPaths:
    """A run given as a directory, or as a run name under the run root."""
    from sidecar.rundir import RunPaths

    p = Path(arg).expanduser()
    if not p.exists() and not p.is_absolute() and len(p.parts) == 1:
        cand = default_run_root() / arg
        if cand.exists():
            p = cand
    return RunPaths.of(p).require()


def load_run_config(paths: RunPaths, compile_monitoring: bool = True) -> ResolvedConfig:
    from sidecar.config import load_frozen

    return load_frozen(paths.config, compile_monitoring)


def client_for(cfg: ResolvedConfig) -> SlurmClient:
    from sidecar.slurm import get_client

    return get_client(getattr(cfg.slurm, "client", "auto") or "auto")


def setup_logging(level: str = "INFO") -> None:
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=level,
               format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {message}")


def add_run_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN",
                        help="the run directory (or a run name under $AUTOEXP_RUN_ROOT, "
                             "default ~/autoexp-runs)")
