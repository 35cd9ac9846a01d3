"""``autoexp-sidecar resume``: a pure plan from the run's status (``plan_resume``), and a thin
executor that carries it out. The repair for each broken state is one small step, and no plan
ever starts a second training job beside a live one."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sidecar.config.schema import ResolvedConfig
from sidecar.history import EventKind, read_history
from sidecar.launch import arm_watchdog, submit_attempt
from sidecar.rundir import RunPaths, exclusive_create
from sidecar.run_report import build_status
from sidecar.slurm.types import JobState, SlurmClient
from sidecar.status import RunState, RunStatus
from sidecar.watchdog import handle_attempt


class Step(enum.Enum):
    NOTHING = "nothing"  # the chain is intact (or the run ended and --force was not given)
    REFUSE = "refuse"  # acting now could run two copies of the run
    SUBMIT_CLAIMED = "submit claimed"  # an attempt was claimed but its submission was lost
    ARM_WATCHDOG = "arm watchdog"  # a live training job has no live watchdog
    SUBMIT_NEXT = "submit next"  # a restart was decided but never submitted
    DECIDE = "decide"  # an attempt ended and nobody decided
    FORCE_NEW = "force new"  # --force: a new attempt for a stopped or finished run


@dataclass(frozen=True)
class ResumePlan:
    step: Step
    attempt: int | None
    reason: str
    train_job: str | None = None


def plan_resume(st: RunStatus, *, force: bool, stop_requested: bool) -> ResumePlan:
    """What ``resume`` should do for a run in status ``st`` (pure)."""
    last = st.attempts[-1] if st.attempts else None
    latest = last.attempt if last else 0
    live = last is not None and last.train_job is not None and JobState.parse(last.train_state).is_active
    if st.state is RunState.SUBMITTING:
        return ResumePlan(Step.REFUSE, latest, f"{st.detail}")
    if st.state is RunState.BROKEN and last is not None:
        if last.train_job is None:
            return ResumePlan(Step.SUBMIT_CLAIMED, last.attempt, st.detail)
        if live:
            return ResumePlan(Step.ARM_WATCHDOG, last.attempt, st.detail, last.train_job)
        if last.decision == "restart":
            return ResumePlan(Step.SUBMIT_NEXT, last.attempt + 1,
                              last.decision_reason or "resumed")
        return ResumePlan(Step.DECIDE, last.attempt, st.detail, last.train_job)
    ended = st.state in (RunState.STOPPED, RunState.FINISHED)
    if force and (ended or stop_requested):
        if live:
            assert last is not None
            return ResumePlan(Step.REFUSE, last.attempt,
                              f"training job {last.train_job} (attempt {last.attempt}) is still "
                              f"{last.train_state}: a second job would write the same checkpoints. "
                              f"Cancel it (scancel {last.train_job}) or let it end, then resume "
                              "--force")
        return ResumePlan(Step.FORCE_NEW, latest + 1, f"forced by user (run was {st.state.value})")
    if ended:
        return ResumePlan(Step.NOTHING, None, f"run is {st.state.value} ({st.detail}); nothing to "
                          "re-arm. Use --force to start a new attempt anyway.")
    return ResumePlan(Step.NOTHING, None, f"run is {st.state.value} ({st.detail}); the chain is "
                      "intact, nothing to do")


def resume(paths: RunPaths, cfg: ResolvedConfig, client: SlurmClient, *, force: bool = False) -> str:
    st = build_status(paths, client, cfg.restart.max_retries)
    plan = plan_resume(st, force=force, stop_requested=paths.stop_request.exists())
    return execute(plan, paths, cfg, client)


def execute(plan: ResumePlan, paths: RunPaths, cfg: ResolvedConfig, client: SlurmClient) -> str:
    name = cfg.run.name
    n = plan.attempt
    if plan.step is Step.NOTHING:
        return plan.reason
    if plan.step is Step.REFUSE:
        return f"not resuming: {plan.reason}"
    assert n is not None
    if plan.step is Step.FORCE_NEW:
        paths.stop_request.unlink(missing_ok=True)
        while not paths.claim_attempt(n):
            n += 1
        paths.append_event(EventKind.RESUMED, attempt=n, reason=plan.reason)
        sub = submit_attempt(client, paths, name, n, "Resumed by user (autoexp-sidecar resume --force)")
        return f"submitted attempt {n}: training job {sub.train_job}, watchdog {sub.watchdog_job}"
    if plan.step is Step.SUBMIT_CLAIMED:
        # one resume per failed submission: two resumes at once submit once
        tries = len([e for e in read_history(paths).of_kind(EventKind.SUBMIT_FAILED, EventKind.RESUMED)
                     if e.attempt == n])
        if not exclusive_create(paths.attempt_dir(n) / f"resubmit-{tries}.claim"):
            return f"attempt {n} is being resubmitted by another resume"
        paths.append_event(EventKind.RESUMED, attempt=n, reason=plan.reason)
        sub = submit_attempt(client, paths, name, n, "Resubmitted by autoexp-sidecar resume")
        return f"submitted attempt {n}: training job {sub.train_job}, watchdog {sub.watchdog_job}"
    if plan.step is Step.ARM_WATCHDOG:
        assert plan.train_job is not None
        paths.append_event(EventKind.RESUMED, attempt=n, reason=plan.reason)
        wd = arm_watchdog(client, paths, name, n, plan.train_job)
        return f"armed a new watchdog {wd} for training job {plan.train_job} (attempt {n})"
    if plan.step is Step.SUBMIT_NEXT:
        if not paths.claim_attempt(n):
            return f"attempt {n} is already claimed; inspect the run"
        paths.append_event(EventKind.RESUMED, attempt=n, reason="restart decided but never submitted")
        sub = submit_attempt(client, paths, name, n, plan.reason)
        return f"submitted attempt {n}: training job {sub.train_job}, watchdog {sub.watchdog_job}"
    # Step.DECIDE: ended, nobody decided (a watchdog died or was cancelled). Decide now, here.
    paths.decide_claim(n).unlink(missing_ok=True)
    d = handle_attempt(paths, cfg, client, n, plan.train_job, wait_s=5.0)
    return f"decided attempt {n}: {d.action.value} - {d.reason}" if d else "another watchdog decided"
