"""Handing a run on to its next attempt, exactly once, whoever holds the decision's claim.

The party that holds ``attempts/<n>/decide.claim`` (sidecar.claims) owns what follows attempt n:
its decision and the submission of attempt n+1. When it took the claim over from a holder that
died, part of that work may be done already; every step here first looks for it:

- a recorded decision (``decision.json``) is acted on, not made again (the budget counts once);
- a next attempt with a ``submitted`` record is left alone;
- a next attempt whose sbatch went through but whose id was never recorded (the holder died
  right after sbatch returned) is found by its job comment and adopted, not submitted again.
"""

from __future__ import annotations

from typing import Any, Mapping

from loguru import logger

from sidecar.config.schema import ResolvedConfig
from sidecar.errors import SidecarError
from sidecar.history import EventKind, read_history
from sidecar.launch import adopt_attempt, submit_attempt
from sidecar.policy import Action, Decision
from sidecar.rundir import RunPaths, atomic_write_json, atomic_write_text, read_json
from sidecar.slurm.types import SlurmClient


def decision_from_record(d: Mapping[str, Any]) -> Decision | None:
    """A Decision as ``Decision.to_dict`` wrote it (decision.json); None when unreadable."""
    try:
        action = Action(d["action"])
        nxt = d.get("next_attempt")
        return Decision(
            action, str(d.get("reason") or ""), d.get("error_type"), d.get("class"),
            bool(d.get("counts_against_budget")), int(d.get("budget_used") or 0),
            int(d.get("budget_max") or 0), int(nxt) if nxt is not None else None,
            tuple(str(n) for n in d.get("exclude_nodes") or ()), float(d.get("delay_s") or 0.0))
    except (KeyError, TypeError, ValueError):
        return None


def recorded_decision(paths: RunPaths, attempt: int) -> Decision | None:
    """The decision on ``attempt`` in the history (the first ``decided`` event), if any."""
    d = read_history(paths).decisions().get(attempt)
    return decision_from_record(d) if d is not None else None


def complete_record(paths: RunPaths, attempt: int, decision: Decision, who: str) -> None:
    """What a holder that died after its ``decided`` event may not have written."""
    if read_json(paths.decision(attempt)) is None:
        atomic_write_json(paths.decision(attempt), {"attempt": attempt, "decided_by": who,
                                                    **decision.to_dict()})
    outcome = {Action.STOP: EventKind.STOPPED, Action.FINISHED: EventKind.FINISHED}.get(decision.action)
    if outcome and not any(e.attempt == attempt for e in read_history(paths).of_kind(outcome)):
        paths.append_event(outcome, attempt=attempt, reason=decision.reason)


def submitted(paths: RunPaths, attempt: int) -> str | None:
    """The training job of ``attempt`` if its submission was recorded."""
    job = paths.read_job_id(paths.train_job_file(attempt))
    if job:
        return job
    for e in read_history(paths).of_kind(EventKind.SUBMITTED):
        if e.attempt == attempt and e.get("train_job"):
            return str(e.get("train_job"))
    return None


def handled(paths: RunPaths, attempt: int, decision: Decision) -> bool:
    """Whether everything ``decision`` on ``attempt`` called for is on record: a claim whose
    holder is gone after that was finished, not orphaned (a fast holder can be gone before a
    slower party looks at its claim)."""
    if read_json(paths.decision(attempt)) is None:
        return False
    if decision.action is Action.RESTART:
        return submitted(paths, decision.next_attempt or attempt + 1) is not None
    outcome = {Action.STOP: EventKind.STOPPED, Action.FINISHED: EventKind.FINISHED}.get(decision.action)
    return outcome is None or any(e.attempt == attempt for e in read_history(paths).of_kind(outcome))


def submit_next(paths: RunPaths, cfg: ResolvedConfig, client: SlurmClient, attempt: int,
                decision: Decision, dependency: str | None = None) -> str | None:
    """Submit the attempt that follows ``attempt`` after a RESTART decision, unless it was
    submitted (or adopted) already. Returns its training job id (None: not a restart)."""
    if decision.action is not Action.RESTART:
        return None
    nxt = decision.next_attempt or attempt + 1
    done = submitted(paths, nxt)
    if done:
        logger.info("attempt {} was already submitted: training job {}", nxt, done)
        return done
    if not paths.claim_attempt(nxt):
        # claimed by a holder of this decision that died before recording its sbatch
        sub = adopt_attempt(client, paths, cfg.run.name, nxt, decision.reason)
        if sub is not None:
            logger.warning("attempt {}: adopted training job {} (submitted, never recorded)",
                           nxt, sub.train_job)
            return sub.train_job
    try:
        sub = submit_attempt(client, paths, cfg.run.name, nxt, decision.reason,
                             decision.exclude_nodes, decision.delay_s, dependency)
    except SidecarError as exc:
        paths.append_event(EventKind.SUBMIT_FAILED, attempt=nxt, error=exc.message, tip=exc.tip)
        raise
    logger.info("submitted attempt {}: training job {}, watchdog {}", nxt, sub.train_job,
                sub.watchdog_job)
    return sub.train_job


def relaunch_here(paths: RunPaths, attempt: int, decision: Decision, job: str) -> int | None:
    """Record the next attempt as running in ``job`` (the caller's allocation): it shares the
    job id and its watchdog. The batch script starts it. Returns its number (None: taken)."""
    nxt = decision.next_attempt or attempt + 1
    if not paths.claim_attempt(nxt):
        logger.info("attempt {} is already claimed; not relaunching it here", nxt)
        return None
    atomic_write_text(paths.train_job_file(nxt), job + "\n")
    wd = paths.read_job_id(paths.watchdog_job_file(attempt))
    if wd:
        atomic_write_text(paths.watchdog_job_file(nxt), wd + "\n")
    paths.append_event(EventKind.SUBMITTED, attempt=nxt, train_job=job, reason=decision.reason,
                       in_allocation=True, exclude_nodes=[], delay_s=0.0)
    logger.info("attempt {} runs in this allocation (job {})", nxt, job)
    return nxt
