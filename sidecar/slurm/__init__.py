"""Slurm access: one interface (SlurmClient), two implementations, one runner.

``get_client()`` picks the implementation: the Slurm commands (CliSlurmClient, works everywhere)
or pyslurm (PyslurmClient) when it imports and was built for the cluster's Slurm version.
"""

from __future__ import annotations

from typing import Any

from sidecar.errors import SlurmError
from sidecar.slurm.cli_client import CliSlurmClient, SlurmCommands, build_sbatch_argv
from sidecar.slurm.runner import Completed, Runner, SlurmCommandError, make_runner, run
from sidecar.slurm.types import (
    ACTIVE_STATES,
    FAILED_STATES,
    TERMINAL_STATES,
    JobInfo,
    JobState,
    SlurmClient,
    SubmitRequest,
)

CLIENT_KINDS = ("auto", "cli", "pyslurm")

__all__ = [
    "ACTIVE_STATES", "CLIENT_KINDS", "FAILED_STATES", "TERMINAL_STATES", "CliSlurmClient",
    "Completed", "JobInfo", "JobState", "SlurmClient", "SlurmCommandError", "SlurmCommands",
    "SlurmError", "SubmitRequest", "build_sbatch_argv", "cluster_version", "get_client",
    "make_runner", "pyslurm_status", "run",
]


def cluster_version(runner: Runner = run, scontrol: str = "scontrol") -> str | None:
    """The cluster's Slurm version from ``scontrol --version`` (no controller needed), or None."""
    from sidecar.slurm.parse import parse_version

    try:
        return parse_version(runner([scontrol, "--version"], timeout_s=15, retries=0).stdout)
    except SlurmCommandError:
        return None


def pyslurm_status(runner: Runner = run, module: Any = None) -> tuple[Any, str]:
    """(the pyslurm module if usable for this cluster else None, a sentence saying why)."""
    from sidecar.slurm.pyslurm_client import load_pyslurm, pyslurm_version, same_major_minor

    try:
        mod = module if module is not None else load_pyslurm()
    except SlurmError as exc:
        return None, exc.message
    have = pyslurm_version(mod)
    want = cluster_version(runner)
    if want is None:
        return None, f"pyslurm {have} imports, but the cluster's Slurm version is unknown (`scontrol --version` failed)"
    if not same_major_minor(have, want):
        return None, f"pyslurm {have} does not match the cluster's Slurm {want} (major.minor must be equal)"
    return mod, f"pyslurm {have} matches Slurm {want}"


def get_client(kind: str = "auto", *, runner: Runner = run, commands: SlurmCommands | None = None,
               pyslurm_module: Any = None) -> SlurmClient:
    """A SlurmClient. ``auto``: pyslurm when usable for this cluster, else the Slurm commands.
    ``pyslurm``: raise SlurmError (why, what to do) when it is not usable. ``cli``: the commands."""
    if kind not in CLIENT_KINDS:
        raise SlurmError(f"unknown Slurm client kind {kind!r}", f"use one of: {', '.join(CLIENT_KINDS)}")
    if kind in ("auto", "pyslurm"):
        mod, why = pyslurm_status(runner, pyslurm_module)
        if mod is not None:
            from sidecar.slurm.pyslurm_client import PyslurmClient

            # auto: submissions pyslurm cannot express go through sbatch instead
            fallback = CliSlurmClient(runner=runner, commands=commands or SlurmCommands())
            return PyslurmClient(mod, fallback=fallback if kind == "auto" else None)
        if kind == "pyslurm":
            raise SlurmError(
                f"slurm.client is 'pyslurm' but {why}",
                "install the pyslurm built for this Slurm version (INSTALL.md), or set slurm.client: cli",
            )
    return CliSlurmClient(runner=runner, commands=commands or SlurmCommands())
