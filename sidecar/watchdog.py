"""The watchdog: started by Slurm only when a training job failed (afternotok). Decides once per
attempt, even when two watchdogs run, and resubmits or stops with a recorded reason."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from loguru import logger

from sidecar.claims import take_claim
from sidecar.facts import gather
from sidecar.handoff import complete_record, recorded_decision, relaunch_here, submit_next
from sidecar.placement import Placement, place
from sidecar.policy import Action, AttemptFacts, Decision, decide, history_from_events
from sidecar.rundir import RunPaths, atomic_write_json
from sidecar.slurm.types import SlurmClient
from sidecar.status import write_state


def handle_attempt(paths: RunPaths, cfg: Any, client: SlurmClient, attempt: int,
                   train_job: str | None, *, now: float | None = None,
                   wait_s: float = 30.0, facts: AttemptFacts | None = None,
                   dependency: str | None = None, relaunch_in: str | None = None) -> Decision | None:
    """Decide what follows ``attempt`` and act on it. None when another party owns it.

    ``facts``: what the caller knows itself (the fast path inside the job: its exit code and
    the marker), instead of asking Slurm. ``dependency``: of the next training job (a
    continuation submitted before the time limit waits for this job to end). ``relaunch_in``: the
    caller's own job, where a restart may run again (sidecar.placement) instead of a new job."""
    who = f"pid {os.getpid()} on {socket.gethostname()}"
    claimed, how = take_claim(paths.decide_claim(attempt), client)
    if not claimed:
        logger.info("attempt {} is handled by another party ({}); nothing to do", attempt, how)
        return None
    if how != "claimed":
        logger.warning("attempt {}: claim {}", attempt, how)
    prior = recorded_decision(paths, attempt)
    if prior is not None:
        # the holder that died had decided: act on its decision, do not decide twice
        complete_record(paths, attempt, prior, who)
        submit_next(paths, cfg, client, attempt, prior, dependency)
        write_state(paths)
        return prior
    if facts is None:
        facts = gather(paths, attempt, train_job, client, cfg.monitoring, wait_s=wait_s)
    history = [h for h in history_from_events(list(paths.iter_events())) if h.attempt < attempt]
    decision = decide(facts, history, cfg.restart, time.time() if now is None else now)
    placement, where = Placement.NEW_JOB, ""
    if relaunch_in:
        placement, where = place(decision, facts, history, cfg.restart)
    logger.info("attempt {} (job {}, {}): {} - {}", attempt, train_job, facts.state.value,
                decision.action.value, decision.reason)
    if decision.action is Action.NOTHING:
        # Not decided: let the watchdog that runs when this job really ends take it.
        paths.decide_claim(attempt).unlink(missing_ok=True)
        return decision
    # the history first: a holder that dies after this line has decided (sidecar.handoff)
    paths.append_event("decided", attempt=attempt, train_job=train_job, state=facts.state.value,
                       exit_code=facts.exit_code, last_iteration=facts.last_iteration,
                       decision=decision.to_dict(), placement=placement.value,
                       **({"placement_reason": where} if where else {}))
    atomic_write_json(paths.decision(attempt), {
        "attempt": attempt, "train_job": train_job, "state": facts.state.value,
        "exit_code": facts.exit_code, "signal": facts.signal, "nodes": list(facts.nodes),
        "decided_by": who, **decision.to_dict(),
    })
    if decision.action is Action.RESTART and placement is Placement.IN_ALLOCATION:
        relaunch_here(paths, attempt, decision, str(relaunch_in))
    elif decision.action is Action.RESTART:
        submit_next(paths, cfg, client, attempt, decision, dependency)
    elif decision.action is Action.STOP:
        paths.append_event("stopped", attempt=attempt, reason=decision.reason)
    elif decision.action is Action.FINISHED:
        paths.append_event("finished", attempt=attempt, reason=decision.reason)
    write_state(paths)
    return decision
