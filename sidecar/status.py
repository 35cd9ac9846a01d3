"""A run's status, derived from its history and (optionally) Slurm's view of its jobs.

``summarize`` is pure: events + per-attempt files + job states in, a RunStatus out. ``inspect``
and the state.json summary both use it; state.json is only a cache of it.
"""

from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from sidecar.rundir import RunPaths, atomic_write_json, read_json
from sidecar.slurm.types import JobState


class RunState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_TO_RESTART = "waiting to restart"
    FINISHED = "finished"
    STOPPED = "stopped"
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
    error_type: str | None = None
    marker_line: str | None = None
    decision: str | None = None  # what followed it
    decision_reason: str | None = None
    last_iteration: int | None = None
    first_iteration: int | None = None
    last_checkpoint: int | None = None


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


def summarize(run_id: str, run_dir: str, events: Sequence[Mapping[str, Any]],
              attempts: Sequence[AttemptView], budget_max: int | None) -> RunStatus:
    budget_used = 0
    decided: dict[int, Mapping[str, Any]] = {}
    finished = stopped = None
    submit_failed = None
    for ev in events:
        kind = ev.get("event")
        if kind == "decided":
            n = ev.get("attempt")
            d = ev.get("decision") or {}
            if isinstance(n, int) and n not in decided:
                decided[n] = d
                if d.get("action") == "restart" and d.get("counts_against_budget"):
                    budget_used += 1
        elif kind == "finished":
            finished = ev
        elif kind == "stopped":
            stopped = ev
        elif kind == "submit_failed":
            submit_failed = ev
        elif kind == "submitted":
            submit_failed = None
    for a in attempts:
        d = decided.get(a.attempt)
        if d:
            a.decision = a.decision or d.get("action")
            a.decision_reason = a.decision_reason or d.get("reason")
            a.error_type = a.error_type or d.get("error_type")

    def out(state: RunState, detail: str) -> RunStatus:
        return RunStatus(run_id, run_dir, state, detail, budget_used, budget_max, list(attempts))

    if finished is not None:
        return out(RunState.FINISHED, str(finished.get("reason") or "training completed"))
    if stopped is not None:
        return out(RunState.STOPPED, str(stopped.get("reason") or "stopped"))
    if not attempts:
        return out(RunState.UNKNOWN, "no attempt has been submitted")
    last = attempts[-1]
    if submit_failed is not None:
        return out(RunState.BROKEN, f"submitting attempt {submit_failed.get('attempt')} failed: "
                   f"{submit_failed.get('error')}; fix the cause, then `autoexp-sidecar resume`")
    if last.train_job is None:
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


def collect_attempts(paths: RunPaths, events: Sequence[Mapping[str, Any]]) -> list[AttemptView]:
    """Per-attempt files and events, without asking Slurm."""
    views: dict[int, AttemptView] = {n: AttemptView(n) for n in paths.attempt_numbers()}
    for ev in events:
        n = ev.get("attempt")
        if not isinstance(n, int):
            continue
        v = views.setdefault(n, AttemptView(n))
        if ev.get("event") == "submitted":
            v.train_job = v.train_job or ev.get("train_job")
            v.restart_reason = ev.get("reason")
        elif ev.get("event") in ("armed", "watchdog_armed"):
            v.watchdog_job = ev.get("watchdog_job") or v.watchdog_job
            v.train_job = v.train_job or ev.get("train_job")
    for n, v in views.items():
        v.train_job = paths.read_job_id(paths.train_job_file(n)) or v.train_job
        v.watchdog_job = paths.read_job_id(paths.watchdog_job_file(n)) or v.watchdog_job
        marker = read_json(paths.marker(n))
        if isinstance(marker, dict):
            v.error_type = marker.get("error_type")
            v.marker_line = str(marker.get("line", ""))[:300]
        prog = read_json(paths.progress(n))
        if isinstance(prog, dict):
            v.last_iteration = prog.get("last_iteration")
            v.first_iteration = prog.get("first_iteration")
            v.last_checkpoint = prog.get("last_checkpoint")
    return [views[k] for k in sorted(views)]


def write_state(paths: RunPaths, budget_max: int | None = None) -> RunStatus:
    """Rewrite state.json from the history (no Slurm calls)."""
    events = list(paths.iter_events())
    status = summarize(paths.run_id, str(paths.root), events, collect_attempts(paths, events),
                       budget_max)
    data = status.to_dict()
    data["updated"] = time.time()
    atomic_write_json(paths.state, data)
    return status
