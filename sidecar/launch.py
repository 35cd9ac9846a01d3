"""Submitting one attempt: the training job and its watchdog (thin I/O around the client).

The training job is submitted with ``--no-requeue`` (a cluster requeue would run in parallel
with our resubmission: failure-notes.md) and ``--chdir=<run>`` (the epilog hook finds runs by
it); its watchdog with ``--dependency=afternotok:<train>`` and ``--kill-on-invalid-dep=yes``
(without it a watchdog whose training job succeeded pends forever).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Iterable

from loguru import logger

from sidecar.errors import SidecarError
from sidecar.history import EventKind
from sidecar.rundir import RunPaths, atomic_write_text
from sidecar.slurm.cli_client import DEFAULT_SUBMIT_WINDOW_S
from sidecar.slurm.types import SlurmClient, SubmitRequest

# How long a submission may take before inspect calls it abandoned: two sbatch calls (training
# and watchdog), each retried for up to DEFAULT_SUBMIT_WINDOW_S while slurmctld is away.
SUBMISSION_DEADLINE_S = 2 * DEFAULT_SUBMIT_WINDOW_S + 60.0


def job_comment(run_id: str, attempt: int, role: str) -> str:
    """The comment that identifies a job of ours, so an ambiguous submit can be looked up."""
    return f"autoexp-sidecar:{run_id}:{attempt}:{role}"


def train_request(paths: RunPaths, run_name: str, attempt: int, reason: str,
                  exclude_nodes: Iterable[str] = (), delay_s: float = 0.0,
                  dependency: str | None = None) -> SubmitRequest:
    options: dict[str, str | int | bool] = {
        "output": str(paths.train_log_pattern),
        "no-requeue": True,
    }
    nodes = sorted(set(exclude_nodes))
    if nodes:
        options["exclude"] = ",".join(nodes)
    if delay_s > 0:
        options["begin"] = f"now+{int(round(delay_s))}"
    return SubmitRequest(
        script=str(paths.train_script), name=run_name,
        comment=job_comment(paths.run_id, attempt, "train"), options=options,
        dependency=dependency,
        env={"AUTOEXP_ATTEMPT": str(attempt), "AUTOEXP_RESTART_REASON": reason,
             "AUTOEXP_RUN_DIR": str(paths.root)},
        workdir=str(paths.root),
    )


def watchdog_request(paths: RunPaths, run_name: str, attempt: int, train_job: str) -> SubmitRequest:
    return SubmitRequest(
        script=str(paths.watchdog_script), name=f"{run_name}-watchdog",
        comment=job_comment(paths.run_id, attempt, "watchdog"),
        options={"output": str(paths.watchdog_log_pattern), "kill-on-invalid-dep": "yes"},
        dependency=f"afternotok:{train_job}",
        env={"AUTOEXP_ATTEMPT": str(attempt), "AUTOEXP_TRAIN_JOB": str(train_job),
             "AUTOEXP_RUN_DIR": str(paths.root)},
        workdir=str(paths.logs),
    )


@dataclass(frozen=True)
class Submitted:
    attempt: int
    train_job: str
    watchdog_job: str


def arm_watchdog(client: SlurmClient, paths: RunPaths, run_name: str, attempt: int,
                 train_job: str) -> str:
    wd = client.submit(watchdog_request(paths, run_name, attempt, train_job))
    atomic_write_text(paths.watchdog_job_file(attempt), wd + "\n")
    paths.append_event(EventKind.WATCHDOG_ARMED, attempt=attempt, watchdog_job=wd, train_job=train_job)
    return wd


def submit_attempt(client: SlurmClient, paths: RunPaths, run_name: str, attempt: int,
                   reason: str, exclude_nodes: Iterable[str] = (), delay_s: float = 0.0,
                   dependency: str | None = None) -> Submitted:
    """Submit attempt ``attempt`` (its directory must already be claimed by the caller). The
    ``submitting`` event first tells inspect and resume that a submission is under way."""
    now = time.time()
    paths.append_event(EventKind.SUBMITTING, now=now, attempt=attempt,
                       by=f"pid {os.getpid()} on {socket.gethostname()}",
                       submitter_job=os.environ.get("SLURM_JOB_ID"),
                       deadline=now + SUBMISSION_DEADLINE_S)
    req = train_request(paths, run_name, attempt, reason, exclude_nodes, delay_s, dependency)
    train = client.submit(req)
    atomic_write_text(paths.train_job_file(attempt), train + "\n")
    extra: dict[str, Any] = {"dependency": dependency} if dependency else {}
    paths.append_event(EventKind.SUBMITTED, attempt=attempt, train_job=train, reason=reason,
                       exclude_nodes=sorted(set(exclude_nodes)), delay_s=delay_s, **extra)
    wd = arm_watchdog(client, paths, run_name, attempt, train)
    return Submitted(attempt, train, wd)


def adopt_attempt(client: SlurmClient, paths: RunPaths, run_name: str, attempt: int,
                  reason: str) -> Submitted | None:
    """The training job of ``attempt`` that a party which died after its sbatch submitted
    but before it recorded the id (found by the job's comment), recorded now; None if there
    is none. Its watchdog is armed unless one was."""
    # a run of the same name elsewhere has the same comment: its jobs run in its own run dir
    found = [j for j in client.find_jobs(name=run_name, comment=job_comment(paths.run_id, attempt, "train"))
             if j.work_dir in (None, str(paths.root))]
    if not found:
        return None
    train = found[0].job_id
    atomic_write_text(paths.train_job_file(attempt), train + "\n")
    paths.append_event(EventKind.SUBMITTED, attempt=attempt, train_job=train, reason=reason,
                       adopted=True)
    wd = paths.read_job_id(paths.watchdog_job_file(attempt)) or arm_watchdog(
        client, paths, run_name, attempt, train)
    return Submitted(attempt, train, wd)


def cancel_watchdog(client: SlurmClient, paths: RunPaths, attempt: int, why: str) -> str | None:
    """Cancel the watchdog of ``attempt`` (nothing is left for it to do). Its id, or None."""
    wd = paths.read_job_id(paths.watchdog_job_file(attempt))
    if not wd:
        return None
    try:
        client.cancel(wd)
    except SidecarError as exc:
        # harmless: it starts, finds the attempt decided, and exits
        logger.warning("could not cancel watchdog {}: {}", wd, exc.message)
        return None
    paths.append_event(EventKind.WATCHDOG_CANCELLED, attempt=attempt, watchdog_job=wd, reason=why)
    return wd
