"""The fast paths, run by train.sbatch itself while its batch host is alive.

- ``conclude``: the training step ended with a failure (a marker, a hang the sidecar ended, a
  non-zero exit). The job decides and submits what follows at once, through the same claim,
  policy and submission as the watchdog (``sidecar.watchdog.handle_attempt``), with the facts it
  knows itself: its exit code, the marker, the progress. Then it cancels its own watchdog, so
  no idle job waits in the queue. With ``restart.in_allocation`` a transient fault not tied to a
  node is restarted in this allocation instead (sidecar.placement): the next attempt shares the
  job id and the watchdog, and the batch script starts it. The watchdog stays the guarantee for what a dying job cannot
  do itself (node death, a scancel of the whole job, a time-limit kill, a killed batch script)
  and takes over a claim whose holder died before it submitted (sidecar.claims).
- ``continue_before_timeout``: Slurm's pre-timeout signal (``--signal=B:USR1@<margin>``)
  arrived. The continuation is submitted now with ``--dependency=afterany:<this job>``, so it
  waits in the queue during the margin instead of after the end; it does not use the budget.
"""

from __future__ import annotations

import os
from typing import Any

from loguru import logger

from sidecar.errors import SidecarError
from sidecar.launch import cancel_watchdog
from sidecar.policy import Action, Decision
from sidecar.rundir import RunPaths
from sidecar.slurm.types import JobInfo, JobState, SlurmClient
from sidecar.watchdog import gather_facts, handle_attempt


def _hand_over(paths: RunPaths, client: SlurmClient, attempt: int, decision: Decision | None,
               why: str) -> None:
    if decision is None or decision.action is Action.NOTHING:
        return  # not ours: the watchdog stays armed
    cancel_watchdog(client, paths, attempt, why)


# States in which Slurm itself is ending the job: the watchdog's to decide, with Slurm's record.
ENDED_FROM_OUTSIDE = frozenset({JobState.CANCELLED, JobState.TIMEOUT, JobState.NODE_FAIL,
                                JobState.PREEMPTED, JobState.DEADLINE, JobState.BOOT_FAIL})


def ended_from_outside(client: SlurmClient, job: str) -> JobState | None:
    """Slurm's state of ``job`` when Slurm is ending it (a scancel, the time limit), else None.

    A scancel signals the step and the batch shell in no fixed order: the training may end
    (exit 143) before the shell's TERM trap has run, and the step then looks failed (seen in CI:
    a cancelled attempt restarted as "no known cause"). scontrol already says CANCELLED while the
    processes are killed. A controller that cannot be asked is no reason to wait: None.
    """
    try:
        state = client.job_info(job).state
    except SidecarError as exc:
        logger.warning("fast path: could not ask Slurm for job {} ({}); deciding as failed", job, exc.message)
        return None
    return state if state in ENDED_FROM_OUTSIDE else None


def conclude(paths: RunPaths, cfg: Any, client: SlurmClient, attempt: int, job: str,
             exit_code: int) -> Decision | None:
    """Decide and act on a failed step from inside the job. None when another party decided,
    or when Slurm is ending the job from outside (the watchdog decides with its record)."""
    outside = ended_from_outside(client, job)
    if outside is not None:
        logger.info("fast path: job {} is {} in Slurm; the watchdog decides", job, outside.value)
        return None
    # the allocation's node list maps the log's srun --label task ids to nodes, as the watchdog
    # maps them with Slurm's record (only the labels: the policy's facts keep no nodes here)
    facts = gather_facts(paths, cfg, client, attempt, job,
                         known=JobInfo(job_id=job, state=JobState.FAILED, exit_code=exit_code,
                                       node_list=os.environ.get("SLURM_JOB_NODELIST")))
    decision = handle_attempt(paths, cfg, client, attempt, job, facts=facts,
                              relaunch_in=job if cfg.restart.in_allocation else None)
    if decision is not None:
        logger.info("fast path: attempt {} {} - {}", attempt, decision.action.value, decision.reason)
    if relaunched_here(paths, attempt, decision, job) is None:
        # the watchdog stays armed while the next attempt runs in this allocation
        _hand_over(paths, client, attempt, decision, "decided by the job itself (fast path)")
    return decision


def relaunched_here(paths: RunPaths, attempt: int, decision: Decision | None, job: str) -> int | None:
    """The attempt that follows ``attempt`` inside ``job`` (an in-allocation restart), if any."""
    if decision is None or decision.action is not Action.RESTART:
        return None
    nxt = decision.next_attempt or attempt + 1
    return nxt if paths.read_job_id(paths.train_job_file(nxt)) == job else None


def continue_before_timeout(paths: RunPaths, cfg: Any, client: SlurmClient, attempt: int,
                            job: str) -> Decision | None:
    """Submit the continuation of a job about to reach its time limit, to start after it."""
    facts = gather_facts(paths, cfg, client, attempt, job,
                         known=JobInfo(job_id=job, state=JobState.TIMEOUT))
    decision = handle_attempt(paths, cfg, client, attempt, job, facts=facts,
                              dependency=f"afterany:{job}")
    if decision is not None:
        logger.info("before the time limit: attempt {} {} - {}", attempt, decision.action.value,
                    decision.reason)
    _hand_over(paths, client, attempt, decision, "continuation submitted before the time limit")
    return decision


def outcome_lines(paths: RunPaths, attempt: int, job: str, decision: Decision | None) -> list[str]:
    """What ``record``/``conclude`` print for train.sbatch: the decision, and ``relaunch attempt
    N`` when the next attempt runs in this allocation (the batch script starts it)."""
    lines = ["already decided by another party" if decision is None
             else f"{decision.action.value}: {decision.reason}"]
    nxt = relaunched_here(paths, attempt, decision, job)
    if nxt is not None:
        lines.append(f"relaunch attempt {nxt}")
    return lines
