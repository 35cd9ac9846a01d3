"""Helpers for tests that run against the real local Slurm cluster (scripts/local-slurm).

Only the tier-3 tests (``@pytest.mark.slurm``) use these. Everything goes through the
project's own ``scripts/local-slurm``; nothing here depends on files outside the repo.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
LOCAL_SLURM = REPO / "scripts" / "local-slurm"
DEFAULT_LAB = Path("/var/tmp/autoexp-slurm")


def lab_dir() -> Path:
    """The lab dir of scripts/local-slurm (state, logs, pid files)."""
    return Path(os.environ.get("AUTOEXP_SLURM_LAB") or DEFAULT_LAB)


def slurmctld_pid_file() -> Path:
    return lab_dir() / "run" / "slurmctld.pid"


def slurmd_pid_file(node: str) -> Path:
    return lab_dir() / "run" / f"slurmd-{node}.pid"


_COMM = {"munged.pid": "munged", "mysqld.pid": "mariadbd", "slurmdbd.pid": "slurmdbd",
         "slurmctld.pid": "slurmctld"}


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is the daemon the file is for
    (a stale pid file may name a reused pid), else None."""
    pid_file = Path(pid_file)
    try:
        pid = int(pid_file.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    want = _COMM.get(pid_file.name) or ("slurmd" if pid_file.name.startswith("slurmd-") else None)
    if want is not None and comm != want:
        return None
    return pid


def controller_up(timeout_s: float = 10) -> bool:
    """True when ``scontrol ping`` says the controller is UP."""
    if shutil.which("scontrol") is None:
        return False
    try:
        out = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=timeout_s
        ).stdout
    except (subprocess.TimeoutExpired, OSError):
        return False
    return "is UP" in out


def local_slurm(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/local-slurm <args>``; output captured, never raises on exit code."""
    return subprocess.run(
        [str(LOCAL_SLURM), *args], capture_output=True, text=True, timeout=timeout_s
    )


def stop_daemon(pid_file: Path, timeout_s: float = 30) -> None:
    """SIGTERM the daemon of ``pid_file``, wait until it has exited, SIGKILL after ``timeout_s``
    (the caller restores it)."""
    pid = read_pid(pid_file)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)


def stop_slurmctld(timeout_s: float = 30) -> None:
    """Kill slurmctld (SIGTERM via its pid file) and wait until it has exited."""
    stop_daemon(slurmctld_pid_file(), timeout_s)


def start_slurmctld() -> None:
    """Bring slurmctld back with ``scripts/local-slurm up`` (quick: the rest is already up)."""
    res = local_slurm("up", timeout_s=120)
    if res.returncode != 0:
        raise RuntimeError(
            f"scripts/local-slurm up failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}"
        )


@contextlib.contextmanager
def controller_down(seconds: float | None = None) -> Iterator[None]:
    """Stop slurmctld for the body of the ``with`` (and at least ``seconds``), then restart it.

    >>> with controller_down(5):
    ...     ...  # Slurm commands now fail with "Unable to contact slurm controller"
    """
    t0 = time.monotonic()
    stop_slurmctld()
    try:
        yield
        if seconds is not None:
            left = seconds - (time.monotonic() - t0)
            if left > 0:
                time.sleep(left)
    finally:
        start_slurmctld()


def wait_until(predicate, timeout_s: float = 60, interval_s: float = 0.2, what: str = "condition"):
    """Poll ``predicate()`` until it returns a truthy value; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)
