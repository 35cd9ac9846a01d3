"""Helpers of the real-cluster chain tests: submit a run of the local test workload, read its
run directory through the project's layout (sidecar.rundir), stop it, stop/start daemons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sidecar.history import read_history
from sidecar.rundir import RunPaths, read_json

import slurm_helpers

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "sidecar"]


def submit(tmp_path: Path, name: str, *overrides: str) -> tuple[Path, str]:
    """Submit examples/local.yaml (a long run, checkpoint every 5 iterations); (run dir, job).
    The run name gets a unique suffix: accounting keeps earlier runs' jobs of the same name."""
    out = subprocess.run(
        CLI + ["submit", str(REPO / "examples" / "local.yaml"), f"run.root={tmp_path}",
               f"run.name={name}-{os.getpid()}-{time.time_ns() % 10**9}", "backend.args.train_iters=100000",
               "backend.args.save_interval=5", *overrides, "--json"],
        text=True, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    return Path(info["run_dir"]), info["train_job"]


def cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CLI + list(args), text=True, capture_output=True, timeout=timeout_s)


def decision(run: Path, n: int) -> dict | None:
    d = read_json(RunPaths(run).decision(n))
    return d if isinstance(d, dict) else None


def job_of(run: Path, n: int) -> str | None:
    paths = RunPaths(run)
    return paths.read_job_id(paths.train_job_file(n))


def watchdog_of(run: Path, n: int) -> str | None:
    paths = RunPaths(run)
    return paths.read_job_id(paths.watchdog_job_file(n))


def decided_events(run: Path, n: int) -> list[dict]:
    return [dict(e.data) for e in read_history(RunPaths(run)).events
            if e.kind.value == "decided" and e.attempt == n]


def inspect_json(run: Path) -> dict:
    res = cli("inspect", str(run), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def stop(run: Path) -> None:
    cli("stop", str(run), timeout_s=60)


def job_state(job: str) -> str:
    from sidecar.slurm.cli_client import CliSlurmClient

    return CliSlurmClient().job_info(job).state.value


def kill_daemon(pid_file: Path) -> None:
    """SIGTERM the daemon of ``pid_file`` and wait for it to exit (the caller restores it)."""
    slurm_helpers.stop_daemon(pid_file)


def restore_cluster() -> None:
    """Bring back whatever daemon a test stopped (`scripts/local-slurm up` is idempotent)."""
    res = slurm_helpers.local_slurm("up", timeout_s=300)
    assert res.returncode == 0, f"scripts/local-slurm up failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
