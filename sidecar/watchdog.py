"""The watchdog: started by Slurm only when a training job failed (afternotok). Decides once per
attempt, even when two watchdogs run, and resubmits or stops with a recorded reason."""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

from loguru import logger

from sidecar.claims import take_claim
from sidecar.config.schema import ResolvedConfig
from sidecar.errors import SidecarError
from sidecar.facts import gather
from sidecar.handoff import complete_record, handled, recorded_decision, relaunch_here, submit_next
from sidecar.history import EventKind, read_history
from sidecar.placement import Placement, place
from sidecar.policy import Action, AttemptFacts, Decision, PastAttempt, decide
from sidecar.notify import NoticeKind, make_notice, notices_for_decision, send
from sidecar.render import TIMEOUT_SIGNAL
from sidecar.rundir import RunPaths, atomic_write_json
from sidecar.slurm.types import JobInfo, JobState, SlurmClient


# While Slurm cannot be read, the watchdog asks again this often (each ask itself retries the
# Slurm command for up to its runner's retry window).
DEFER_RETRY_S = 10.0


def _who() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def _decide(paths: RunPaths, cfg: ResolvedConfig, facts: AttemptFacts,
            now: float | None) -> tuple[Decision, list[PastAttempt]]:
    history = read_history(paths)
    for w in history.warnings:
        logger.warning("{}: {}", paths.events, w)
    past = history.past_attempts(before=facts.attempt)
    return decide(facts, past, cfg.restart, time.time() if now is None else now), past


def _record(paths: RunPaths, facts: AttemptFacts, decision: Decision,
            placement: tuple[Placement, str] | None = None) -> None:
    """The decision, in the history (``decided`` plus the outcome) and as decision.json. The
    history first: a holder that dies after it has decided (sidecar.handoff)."""
    where: dict[str, Any] = ({"placement": placement[0].value, "placement_reason": placement[1]}
                             if placement else {})
    cause = facts.marker or facts.log_cause
    line_node = cause.line_node if cause else None  # where the root line came from (srun --label)
    paths.append_event(EventKind.DECIDED, attempt=facts.attempt, train_job=facts.job_id,
                       state=facts.state.value, exit_code=facts.exit_code,
                       last_iteration=facts.last_iteration, decision=decision.to_dict(), **where)
    atomic_write_json(paths.decision(facts.attempt), {
        "attempt": facts.attempt, "train_job": facts.job_id, "state": facts.state.value,
        "exit_code": facts.exit_code, "signal": facts.signal, "nodes": list(facts.nodes),
        "line_node": line_node, "decided_by": _who(), **decision.to_dict(),
    })
    if decision.action is Action.STOP:
        paths.append_event(EventKind.STOPPED, attempt=facts.attempt, reason=decision.reason)
    elif decision.action is Action.FINISHED:
        paths.append_event(EventKind.FINISHED, attempt=facts.attempt, reason=decision.reason)


def gather_facts(paths: RunPaths, cfg: ResolvedConfig, client: SlurmClient, attempt: int,
                 train_job: str | None, *, wait_s: float = 30.0, known: JobInfo | None = None) -> AttemptFacts:
    """``sidecar.facts.gather`` with what the run's config says (checkpoints, timeout signal)."""
    return gather(paths, attempt, train_job, client, cfg.monitoring, wait_s=wait_s,
                  checkpoint_dir=cfg.backend.checkpoint_dir or paths.checkpoints,
                  timeout_signal=TIMEOUT_SIGNAL if cfg.slurm.signal_before_timeout_s else None,
                  known=known, ntasks_per_node=cfg.slurm.ntasks_per_node)


def _claim(paths: RunPaths, attempt: int, client: SlurmClient | None) -> bool:
    claimed, how = take_claim(paths.decide_claim(attempt), client)
    if not claimed:
        logger.info("attempt {} is handled by another party ({}); nothing to do", attempt, how)
    elif how != "claimed":
        logger.warning("attempt {}: claim {}", attempt, how)
    return claimed


def handle_attempt(paths: RunPaths, cfg: ResolvedConfig, client: SlurmClient, attempt: int,
                   train_job: str | None, *, now: float | None = None, wait_s: float = 30.0,
                   defer_s: float = 0.0, sleep: Callable[[float], None] = time.sleep,
                   facts: AttemptFacts | None = None, dependency: str | None = None,
                   relaunch_in: str | None = None) -> Decision | None:
    """Decide what follows ``attempt`` and act on it. None when another party owns it.
    While Slurm cannot be read the decision is retried for ``defer_s``, then left to resume.

    ``facts``: what the caller knows itself (the fast path inside the job: its exit code and the
    marker) instead of Slurm's record. ``dependency``: of the next training job (a continuation
    submitted before the time limit waits for this job to end). ``relaunch_in``: the caller's
    own job, where a restart may run again (sidecar.placement) instead of in a new job."""
    if not _claim(paths, attempt, client):
        return None
    prior = recorded_decision(paths, attempt)
    if prior is not None and handled(paths, attempt, prior):
        logger.info("attempt {} was handled already ({}); nothing to do", attempt, prior.action.value)
        return None
    if prior is not None:
        # the holder that died had decided: act on its decision, do not decide twice
        complete_record(paths, attempt, prior, _who())
        submit_next(paths, cfg, client, attempt, prior, dependency)
        return prior
    deadline = time.monotonic() + defer_s
    while True:
        if facts is None or facts.attempt != attempt:
            facts = gather_facts(paths, cfg, client, attempt, train_job, wait_s=wait_s)
        decision, past = _decide(paths, cfg, facts, now)
        logger.info("attempt {} (job {}, {}): {} - {}", attempt, train_job, facts.state.value,
                    decision.action.value, decision.reason)
        if decision.action is not Action.DEFER or time.monotonic() >= deadline:
            break
        facts = None
        sleep(DEFER_RETRY_S)
    if decision.action in (Action.NOTHING, Action.DEFER):
        # Not decided: the watchdog that runs when this job really ends (NOTHING), or
        # `autoexp-sidecar resume` once Slurm answers (DEFER), takes it.
        paths.decide_claim(attempt).unlink(missing_ok=True)
        if decision.action is Action.DEFER:
            paths.append_event(EventKind.DEFERRED, attempt=attempt, train_job=train_job,
                               reason=decision.reason)
        return decision
    placement = place(decision, facts, past, cfg.restart) if relaunch_in else None
    next_job: str | None = None
    _record(paths, facts, decision, placement)
    if decision.action is Action.RESTART and placement and placement[0] is Placement.IN_ALLOCATION:
        relaunch_here(paths, attempt, decision, str(relaunch_in))
    elif decision.action is Action.RESTART:
        try:
            next_job = submit_next(paths, cfg, client, attempt, decision, dependency)
        except SidecarError as exc:
            send(cfg.notify, [make_notice(
                NoticeKind.STOP, paths.run_id, str(paths.root), decision.next_attempt or attempt + 1,
                exc.message, f"the restart after training job {train_job} could not be submitted; "
                "fix the cause, then `autoexp-sidecar resume`")])
            raise
    # after the restart is submitted: a slow or failing notification delays nothing
    send(cfg.notify, notices_for_decision(paths.run_id, str(paths.root), attempt, train_job,
                                          decision, next_job))
    return decision


def record_completion(paths: RunPaths, cfg: ResolvedConfig, attempt: int, train_job: str,
                      *, now: float | None = None) -> Decision | None:
    """The training script exited 0: the policy decides (finished) at once, so the run does not
    wait for Slurm's COMPLETED (no watchdog runs after a success). None when already decided."""
    if not _claim(paths, attempt, None):
        return None
    facts = AttemptFacts(attempt=attempt, job_id=train_job, state=JobState.COMPLETED, exit_code=0,
                         stop_requested=paths.stop_request.exists())
    decision, _ = _decide(paths, cfg, facts, now)
    _record(paths, facts, decision)
    send(cfg.notify, notices_for_decision(paths.run_id, str(paths.root), attempt, train_job,
                                          decision))
    return decision
