"""A run's status, derived from its history and (optionally) Slurm's view of its jobs.

``summarize`` is pure: the typed history, the per-attempt files, job states and the time in,
a RunStatus out. ``inspect``, ``resume`` and the chaos soak all use it; nothing caches it.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from sidecar.history import EventKind, History
from sidecar.rundir import RunPaths, read_json
from sidecar.slurm.types import JobState

# A just-claimed attempt has no "submitting" event for a few milliseconds; give it this long
# before calling it abandoned.
CLAIM_GRACE_S = 60.0


class RunState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_TO_RESTART = "waiting to restart"
    FINISHED = "finished"
    STOPPED = "stopped"
    SUBMITTING = "submitting"  # a watchdog (or resume) is submitting the next attempt right now
    BROKEN = "broken"  # no watchdog will act on the next failure: `autoexp-sidecar resume`
    UNKNOWN = "unknown"


@dataclass
class AttemptView:
    attempt: int
    train_job: str | None = None
    watchdog_job: str | None = None
    train_state: str | None = None
    watchdog_state: str | None = None
    start: str | None = None
    end: str | None = None
    nodes: list[str] = field(default_factory=list)
    restart_reason: str | None = None  # why this attempt was submitted
    error_type: str | None = None  # what the decision went by (the marker's until decided)
    marker_error_type: str | None = None  # what the sidecar's marker said
    marker_line: str | None = None
    decision: str | None = None  # what followed it
    decision_reason: str | None = None
    last_iteration: int | None = None
    first_iteration: int | None = None
    last_checkpoint: int | None = None
    claimed_at: float | None = None  # when the attempt directory was made
    submitting: dict[str, Any] | None = None  # the open "submitting" event, if any
    submitter_state: str | None = None  # Slurm's state of the job doing that submission


@dataclass
class RunStatus:
    run_id: str
    run_dir: str
    state: RunState
    detail: str
    budget_used: int
    budget_max: int | None
    attempts: list[AttemptView]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d


def _st(s: str | None) -> JobState:
    return JobState.parse(s) if s else JobState.UNKNOWN


def _submission_in_progress(a: AttemptView, now: float) -> str | None:
    """Why attempt ``a`` (no training job id yet) is still being submitted, or None when
    nobody is submitting it any more."""
    sub = a.submitting
    if sub is not None:
        job = sub.get("submitter_job")
        if job and a.submitter_state is not None:
            if _st(a.submitter_state).is_active:
                return f"watchdog job {job} is submitting attempt {a.attempt}"
            return None
        deadline = sub.get("deadline")
        if isinstance(deadline, (int, float)) and now < deadline:
            return f"{sub.get('by') or 'someone'} is submitting attempt {a.attempt}"
        return None
    if a.claimed_at is not None and now - a.claimed_at < CLAIM_GRACE_S:
        return f"attempt {a.attempt} was claimed {now - a.claimed_at:.0f} s ago"
    return None


def summarize(run_id: str, run_dir: str, history: History, attempts: list[AttemptView],
              budget_max: int | None, now: float) -> RunStatus:
    decided = history.decisions()
    for a in attempts:
        d = decided.get(a.attempt)
        if d:
            a.decision = a.decision or d.get("action")
            a.decision_reason = a.decision_reason or d.get("reason")
            a.error_type = d.get("error_type") or a.error_type
    budget_used = history.budget_used()

    def out(state: RunState, detail: str) -> RunStatus:
        return RunStatus(run_id, run_dir, state, detail, budget_used, budget_max, list(attempts))

    outcome = history.outcome()
    if outcome is not None:
        if outcome.kind is EventKind.FINISHED:
            return out(RunState.FINISHED, str(outcome.get("reason") or "training completed"))
        return out(RunState.STOPPED, str(outcome.get("reason") or "stopped"))
    if not attempts:
        return out(RunState.UNKNOWN, "no attempt has been submitted")
    last = attempts[-1]
    failed = history.last_submit_failure()
    if failed is not None:
        return out(RunState.BROKEN, f"submitting attempt {failed.attempt} failed: "
                   f"{failed.get('error')}; fix the cause, then `autoexp-sidecar resume`")
    if last.train_job is None:
        busy = _submission_in_progress(last, now)
        if busy is not None:
            return out(RunState.SUBMITTING, f"{busy} (sbatch retries while the controller "
                       "is unreachable); wait, do not resume")
        return out(RunState.BROKEN, f"attempt {last.attempt} was claimed but never submitted; "
                   "`autoexp-sidecar resume` submits it")
    ts, ws = _st(last.train_state), _st(last.watchdog_state)
    if last.train_state is None:
        return out(RunState.UNKNOWN, f"attempt {last.attempt}: training job {last.train_job} "
                   "(Slurm not asked)")
    wd_alive = ws.is_active
    if ts.is_active:
        running = ts in (JobState.RUNNING, JobState.COMPLETING)
        st = RunState.RUNNING if running else RunState.QUEUED
        if not wd_alive:
            return out(RunState.BROKEN, f"attempt {last.attempt}: training job {last.train_job} "
                       f"is {ts.value} but its watchdog {last.watchdog_job or '(none)'} is "
                       f"{ws.value}: a failure would not be restarted; run "
                       "`autoexp-sidecar resume` to re-arm it")
        return out(st, f"attempt {last.attempt}: training job {last.train_job} {ts.value}")
    if ts == JobState.COMPLETED:
        return out(RunState.FINISHED, f"training job {last.train_job} completed")
    if last.decision is None:
        if wd_alive:
            return out(RunState.WAITING_TO_RESTART, f"attempt {last.attempt} ended "
                       f"{ts.value}; watchdog {last.watchdog_job} is {ws.value}")
        if ts == JobState.UNKNOWN:
            return out(RunState.UNKNOWN, f"Slurm has no record of training job {last.train_job}")
        return out(RunState.BROKEN, f"attempt {last.attempt} ended {ts.value} but no watchdog "
                   "decided what follows; run `autoexp-sidecar resume`")
    if last.decision == "restart":
        return out(RunState.BROKEN, f"attempt {last.attempt} was to be restarted but the next "
                   "attempt was never submitted; run `autoexp-sidecar resume`")
    return out(RunState.UNKNOWN, f"attempt {last.attempt}: {last.decision}")


def collect_attempts(paths: RunPaths, history: History) -> list[AttemptView]:
    """Per-attempt files and events, without asking Slurm."""
    views: dict[int, AttemptView] = {n: AttemptView(n) for n in paths.attempt_numbers()}
    for ev in history.events:
        n = ev.attempt
        if n is None:
            continue
        v = views.setdefault(n, AttemptView(n))
        if ev.kind is EventKind.SUBMITTED:
            v.train_job = v.train_job or ev.get("train_job")
            v.restart_reason = ev.get("reason")
        elif ev.kind in (EventKind.ARMED, EventKind.WATCHDOG_ARMED):
            v.watchdog_job = ev.get("watchdog_job") or v.watchdog_job
            v.train_job = v.train_job or ev.get("train_job")
    for n, v in views.items():
        last_sub = history.submission(n)
        v.submitting = (dict(last_sub.data) if last_sub is not None
                        and last_sub.kind is EventKind.SUBMITTING else None)
        v.train_job = paths.read_job_id(paths.train_job_file(n)) or v.train_job
        v.watchdog_job = paths.read_job_id(paths.watchdog_job_file(n)) or v.watchdog_job
        try:
            v.claimed_at = paths.attempt_dir(n).stat().st_mtime
        except OSError:
            v.claimed_at = None
        marker = read_json(paths.marker(n))
        if isinstance(marker, dict):
            v.marker_error_type = marker.get("error_type")
            v.error_type = v.marker_error_type
            v.marker_line = str(marker.get("line", ""))[:300]
        prog = read_json(paths.progress(n))
        if isinstance(prog, dict):
            v.last_iteration = prog.get("last_iteration")
            v.first_iteration = prog.get("first_iteration")
            v.last_checkpoint = prog.get("last_checkpoint")
    return [views[k] for k in sorted(views)]
