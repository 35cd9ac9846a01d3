"""Typed values shared by every Slurm client (CLI or pyslurm) and by the policy.

Unknown state strings map to JobState.UNKNOWN, never to an exception or to success.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, Protocol, Sequence


class JobState(enum.Enum):
    PENDING = "PENDING"
    CONFIGURING = "CONFIGURING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    SUSPENDED = "SUSPENDED"
    REQUEUED = "REQUEUED"
    REQUEUE_FED = "REQUEUE_FED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    RESIZING = "RESIZING"
    RESV_DEL_HOLD = "RESV_DEL_HOLD"
    REVOKED = "REVOKED"
    SIGNALING = "SIGNALING"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    STAGE_OUT = "STAGE_OUT"
    STOPPED = "STOPPED"
    PREEMPTED = "PREEMPTED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, text: str | None) -> "JobState":
        """Map Slurm's state text to a JobState.

        Handles sacct's ``CANCELLED by 0``, scontrol's flags after ``+`` (``COMPLETING+``),
        short codes from squeue's %t (``CD``, ``F``, ``NF``...) and case; anything else is UNKNOWN.
        """
        if not text:
            return cls.UNKNOWN
        word = text.strip().split()[0] if text.strip() else ""
        word = word.split("+")[0].upper()
        if word in _SHORT:
            return _SHORT[word]
        try:
            return cls(word)
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATES


_SHORT = {
    "PD": JobState.PENDING, "CF": JobState.CONFIGURING, "R": JobState.RUNNING,
    "CG": JobState.COMPLETING, "S": JobState.SUSPENDED, "RQ": JobState.REQUEUED,
    "RF": JobState.REQUEUE_FED, "RH": JobState.REQUEUE_HOLD, "RS": JobState.RESIZING,
    "RD": JobState.RESV_DEL_HOLD, "RV": JobState.REVOKED, "SI": JobState.SIGNALING,
    "SE": JobState.SPECIAL_EXIT, "SO": JobState.STAGE_OUT, "ST": JobState.STOPPED,
    "PR": JobState.PREEMPTED, "CD": JobState.COMPLETED, "CA": JobState.CANCELLED,
    "F": JobState.FAILED, "TO": JobState.TIMEOUT, "NF": JobState.NODE_FAIL,
    "OOM": JobState.OUT_OF_MEMORY, "BF": JobState.BOOT_FAIL, "DL": JobState.DEADLINE,
}

# The job will not run again under this id (barring a requeue by the cluster).
TERMINAL_STATES = frozenset({
    JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED, JobState.TIMEOUT,
    JobState.NODE_FAIL, JobState.OUT_OF_MEMORY, JobState.BOOT_FAIL, JobState.DEADLINE,
    JobState.PREEMPTED, JobState.REVOKED, JobState.SPECIAL_EXIT,
})
# The job still holds, or waits for, an allocation.
ACTIVE_STATES = frozenset({
    JobState.PENDING, JobState.CONFIGURING, JobState.RUNNING, JobState.COMPLETING,
    JobState.SUSPENDED, JobState.REQUEUED, JobState.REQUEUE_FED, JobState.REQUEUE_HOLD,
    JobState.RESIZING, JobState.RESV_DEL_HOLD, JobState.SIGNALING, JobState.STAGE_OUT,
    JobState.STOPPED,
})
# States that start an afternotok dependent (everything terminal except COMPLETED).
FAILED_STATES = TERMINAL_STATES - {JobState.COMPLETED}


@dataclass(frozen=True)
class JobInfo:
    """What Slurm knows about one job. Fields Slurm did not report are None / empty."""

    job_id: str
    state: JobState
    name: str | None = None
    comment: str | None = None
    exit_code: int | None = None  # the "3" in ExitCode=3:0
    signal: int | None = None  # the "15" in ExitCode=0:15
    reason: str | None = None
    nodes: tuple[str, ...] = ()  # expanded node names (n[1-2] -> n1, n2)
    node_list: str | None = None  # Slurm's compact form, as printed
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    restart_count: int = 0
    work_dir: str | None = None
    std_out: str | None = None
    source: str = ""  # "scontrol", "sacct", "squeue" or "pyslurm"


@dataclass(frozen=True)
class SubmitRequest:
    """One sbatch submission. ``options`` are long sbatch options without the dashes
    (``{"time": "00:10:00", "no-requeue": True}``); a True value is a bare flag."""

    script: str  # path to the batch script
    name: str
    comment: str | None = None  # used to find the job again after an ambiguous submit
    options: Mapping[str, str | int | bool] = field(default_factory=dict)
    dependency: str | None = None  # e.g. "afternotok:123"
    env: Mapping[str, str] = field(default_factory=dict)  # exported into the job's environment
    workdir: str | None = None


class SlurmClient(Protocol):
    """The one interface the rest of the system uses to talk to Slurm."""

    kind: str  # "cli" or "pyslurm"

    def submit(self, req: SubmitRequest) -> str:
        """Submit and return the job id. Never submits twice: after an ambiguous failure
        (e.g. a timeout) it looks the job up by name+comment before trying again."""

    def job_info(self, job_id: str) -> JobInfo:
        """Slurm's record of a job: scontrol first, then sacct. Unknown job -> state UNKNOWN."""

    def jobs_info(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """Many jobs in one batched query (not one per job); unknown jobs are left out."""

    def cancel(self, job_id: str, signal: str | None = None) -> None: ...

    def update(self, job_id: str, **fields: str) -> None:
        """scontrol update JobId=<id> Key=Value ... (e.g. ExcNodeList=n3 for a pending job)."""

    def find_jobs(self, name: str | None = None, comment: str | None = None,
                  active_only: bool = False) -> Sequence[JobInfo]: ...

    def failed_nodes(self, nodes: Sequence[str]) -> tuple[str, ...]:
        """Those of ``nodes`` Slurm reports down, drained or not responding."""

    def oom_steps(self, job_id: str) -> tuple[str, ...]:
        """The job's steps accounting recorded as OUT_OF_MEMORY (a memory cgroup OOM kill)."""

    def version(self) -> str: ...
