"""The watchdog: started by Slurm only when a training job failed (afternotok). Decides once per
attempt, even when two watchdogs run, and resubmits or stops with a recorded reason."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from loguru import logger

from sidecar.errors import SidecarError
from sidecar.facts import gather
from sidecar.launch import submit_attempt
from sidecar.notify import make_notice, NoticeKind, notices_for_decision, send
from sidecar.policy import Action, Decision, decide, history_from_events
from sidecar.rundir import RunPaths, atomic_write_json, exclusive_create
from sidecar.slurm.types import SlurmClient
from sidecar.status import write_state


def handle_attempt(paths: RunPaths, cfg: Any, client: SlurmClient, attempt: int,
                   train_job: str | None, *, now: float | None = None,
                   wait_s: float = 30.0) -> Decision | None:
    """Decide what follows ``attempt`` and act on it. None when another watchdog owns it."""
    who = f"pid {os.getpid()} on {socket.gethostname()}"
    if not exclusive_create(paths.decide_claim(attempt), who + "\n"):
        logger.info("attempt {} is already handled by another watchdog; nothing to do", attempt)
        return None
    facts = gather(paths, attempt, train_job, client, cfg.monitoring, wait_s=wait_s)
    history = [h for h in history_from_events(list(paths.iter_events())) if h.attempt < attempt]
    decision = decide(facts, history, cfg.restart, time.time() if now is None else now)
    logger.info("attempt {} (job {}, {}): {} - {}", attempt, train_job, facts.state.value,
                decision.action.value, decision.reason)
    if decision.action is Action.NOTHING:
        # Not decided: let the watchdog that runs when this job really ends take it.
        paths.decide_claim(attempt).unlink(missing_ok=True)
        return decision
    atomic_write_json(paths.decision(attempt), {
        "attempt": attempt, "train_job": train_job, "state": facts.state.value,
        "exit_code": facts.exit_code, "signal": facts.signal, "nodes": list(facts.nodes),
        "decided_by": who, **decision.to_dict(),
    })
    paths.append_event("decided", attempt=attempt, train_job=train_job, state=facts.state.value,
                       exit_code=facts.exit_code, last_iteration=facts.last_iteration,
                       decision=decision.to_dict())
    next_job = None
    if decision.action is Action.RESTART:
        nxt = decision.next_attempt or attempt + 1
        if not paths.claim_attempt(nxt):
            logger.info("attempt {} was already submitted by someone else", nxt)
        else:
            try:
                sub = submit_attempt(client, paths, cfg.run.name, nxt, decision.reason,
                                     decision.exclude_nodes, decision.delay_s)
            except SidecarError as exc:
                paths.append_event("submit_failed", attempt=nxt, error=exc.message, tip=exc.tip)
                write_state(paths)
                send(cfg.notify, [make_notice(
                    NoticeKind.STOP, paths.run_id, str(paths.root), nxt, exc.message,
                    f"the restart after training job {train_job} could not be submitted; "
                    "fix the cause, then `autoexp-sidecar resume`")])
                raise
            next_job = sub.train_job
            logger.info("submitted attempt {}: training job {}, watchdog {}", nxt,
                        sub.train_job, sub.watchdog_job)
    elif decision.action is Action.STOP:
        paths.append_event("stopped", attempt=attempt, reason=decision.reason)
    elif decision.action is Action.FINISHED:
        paths.append_event("finished", attempt=attempt, reason=decision.reason)
    write_state(paths)
    # after the restart is submitted: a slow or failing notification delays nothing
    send(cfg.notify, notices_for_decision(paths.run_id, str(paths.root), attempt, train_job,
                                          decision, next_job))
    return decision
