"""The watchdog: started by Slurm only when a training job failed (afternotok). Decides once per
attempt, even when two watchdogs run, and resubmits or stops with a recorded reason."""

from __future__ import annotations

import os
import socket
import time
from typing import Callable

from loguru import logger

from sidecar.config.schema import ResolvedConfig
from sidecar.errors import SidecarError
from sidecar.facts import gather
from sidecar.history import EventKind, read_history
from sidecar.launch import submit_attempt
from sidecar.notify import NoticeKind, make_notice, notices_for_decision, send
from sidecar.policy import Action, AttemptFacts, Decision, decide
from sidecar.render import TIMEOUT_SIGNAL
from sidecar.rundir import RunPaths, atomic_write_json, exclusive_create
from sidecar.slurm.types import JobState, SlurmClient


# While Slurm cannot be read, the watchdog asks again this often (each ask itself retries the
# Slurm command for up to its runner's retry window).
DEFER_RETRY_S = 10.0


def _who() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def _decide(paths: RunPaths, cfg: ResolvedConfig, facts: AttemptFacts, now: float | None) -> Decision:
    history = read_history(paths)
    for w in history.warnings:
        logger.warning("{}: {}", paths.events, w)
    return decide(facts, history.past_attempts(before=facts.attempt), cfg.restart,
                  time.time() if now is None else now)


def _record(paths: RunPaths, facts: AttemptFacts, decision: Decision) -> None:
    """The decision, as decision.json and in the history (``decided`` plus the outcome)."""
    atomic_write_json(paths.decision(facts.attempt), {
        "attempt": facts.attempt, "train_job": facts.job_id, "state": facts.state.value,
        "exit_code": facts.exit_code, "signal": facts.signal, "nodes": list(facts.nodes),
        "decided_by": _who(), **decision.to_dict(),
    })
    paths.append_event(EventKind.DECIDED, attempt=facts.attempt, train_job=facts.job_id,
                       state=facts.state.value, exit_code=facts.exit_code,
                       last_iteration=facts.last_iteration, decision=decision.to_dict())
    if decision.action is Action.STOP:
        paths.append_event(EventKind.STOPPED, attempt=facts.attempt, reason=decision.reason)
    elif decision.action is Action.FINISHED:
        paths.append_event(EventKind.FINISHED, attempt=facts.attempt, reason=decision.reason)


def handle_attempt(paths: RunPaths, cfg: ResolvedConfig, client: SlurmClient, attempt: int,
                   train_job: str | None, *, now: float | None = None, wait_s: float = 30.0,
                   defer_s: float = 0.0,
                   sleep: Callable[[float], None] = time.sleep) -> Decision | None:
    """Decide what follows ``attempt`` and act on it. None when another watchdog owns it.
    While Slurm cannot be read the decision is retried for ``defer_s``, then left to resume."""
    if not exclusive_create(paths.decide_claim(attempt), _who() + "\n"):
        logger.info("attempt {} is already handled by another watchdog; nothing to do", attempt)
        return None
    deadline = time.monotonic() + defer_s
    while True:
        facts = gather(paths, attempt, train_job, client, cfg.monitoring, wait_s=wait_s,
                       checkpoint_dir=cfg.backend.checkpoint_dir or paths.checkpoints,
                       timeout_signal=TIMEOUT_SIGNAL if cfg.slurm.signal_before_timeout_s else None)
        decision = _decide(paths, cfg, facts, now)
        logger.info("attempt {} (job {}, {}): {} - {}", attempt, train_job, facts.state.value,
                    decision.action.value, decision.reason)
        if decision.action is not Action.DEFER or time.monotonic() >= deadline:
            break
        sleep(DEFER_RETRY_S)
    if decision.action in (Action.NOTHING, Action.DEFER):
        # Not decided: the watchdog that runs when this job really ends (NOTHING), or
        # `autoexp-sidecar resume` once Slurm answers (DEFER), takes it.
        paths.decide_claim(attempt).unlink(missing_ok=True)
        if decision.action is Action.DEFER:
            paths.append_event(EventKind.DEFERRED, attempt=attempt, train_job=train_job,
                               reason=decision.reason)
        return decision
    _record(paths, facts, decision)
    next_job: str | None = None
    if decision.action is Action.RESTART:
        nxt = decision.next_attempt or attempt + 1
        if not paths.claim_attempt(nxt):
            logger.info("attempt {} was already submitted by someone else", nxt)
            return decision
        try:
            sub = submit_attempt(client, paths, cfg.run.name, nxt, decision.reason,
                                 decision.exclude_nodes, decision.delay_s)
        except SidecarError as exc:
            paths.append_event(EventKind.SUBMIT_FAILED, attempt=nxt, error=exc.message, tip=exc.tip)
            send(cfg.notify, [make_notice(
                NoticeKind.STOP, paths.run_id, str(paths.root), nxt, exc.message,
                f"the restart after training job {train_job} could not be submitted; "
                "fix the cause, then `autoexp-sidecar resume`")])
            raise
        logger.info("submitted attempt {}: training job {}, watchdog {}", nxt,
                    sub.train_job, sub.watchdog_job)
        next_job = sub.train_job
    # after the restart is submitted: a slow or failing notification delays nothing
    send(cfg.notify, notices_for_decision(paths.run_id, str(paths.root), attempt, train_job,
                                          decision, next_job))
    return decision


def record_completion(paths: RunPaths, cfg: ResolvedConfig, attempt: int, train_job: str,
                      *, now: float | None = None) -> Decision | None:
    """The training script exited 0: the policy decides (finished) at once, so the run does not
    wait for Slurm's COMPLETED (no watchdog runs after a success). None when already decided."""
    if not exclusive_create(paths.decide_claim(attempt), _who() + "\n"):
        return None
    facts = AttemptFacts(attempt=attempt, job_id=train_job, state=JobState.COMPLETED, exit_code=0,
                         stop_requested=paths.stop_request.exists())
    decision = _decide(paths, cfg, facts, now)
    _record(paths, facts, decision)
    send(cfg.notify, notices_for_decision(paths.run_id, str(paths.root), attempt, train_job,
                                          decision))
    return decision
