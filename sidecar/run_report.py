"""``autoexp-sidecar inspect`` and ``list``: a run's status joined with Slurm's view (thin I/O)
and its rendering as text (pure)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from loguru import logger

from sidecar.errors import SlurmError
from sidecar import time_lost
from sidecar.config.schema import ResolvedConfig
from sidecar.history import History, read_history
from sidecar.rundir import RunPaths
from sidecar.status import AttemptView, RunStatus, collect_attempts, summarize
from sidecar.slurm.types import JobInfo, SlurmClient


def _fmt_time(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else None


def build_status(paths: RunPaths, client: SlurmClient | None, budget_max: int | None,
                 now: float | None = None) -> RunStatus:
    history = read_history(paths)
    for w in history.warnings:
        logger.warning("{}: {}", paths.events, w)
    views = collect_attempts(paths, history)
    if client is not None:
        for v in views:
            _fill_from_slurm(client, v)
    return summarize(paths.run_id, str(paths.root), history, views, budget_max,
                     time.time() if now is None else now)


def _job_info(client: SlurmClient, job_id: str) -> JobInfo | None:
    try:
        return client.job_info(job_id)
    except SlurmError:
        return None


def _fill_from_slurm(client: SlurmClient, v: AttemptView) -> None:
    submitter = (v.submitting or {}).get("submitter_job")
    apply_job_info(v, {j: i for j in (v.train_job, v.watchdog_job, submitter)
                       if j and (i := _job_info(client, str(j))) is not None})


def apply_job_info(v: AttemptView, infos: Mapping[str, JobInfo]) -> None:
    """Put Slurm's view of an attempt's jobs into its view (a job Slurm did not answer for,
    or does not know: UNKNOWN)."""
    if v.train_job:
        train = infos.get(v.train_job)
        if train is None:
            v.train_state = "UNKNOWN"
        else:
            v.train_state = train.state.value
            v.start, v.end = _fmt_time(train.start_time), _fmt_time(train.end_time)
            v.nodes = list(train.nodes)
    if v.watchdog_job:
        wd = infos.get(v.watchdog_job)
        v.watchdog_state = wd.state.value if wd is not None else "UNKNOWN"
    submitter = (v.submitting or {}).get("submitter_job")
    if submitter:
        sub = infos.get(str(submitter))
        v.submitter_state = sub.state.value if sub is not None else None  # None: the deadline decides


# ----------------------------------------------------------------------------- many runs, batched
@dataclass
class Report:
    """One run: its status and the time lost to failures."""

    status: RunStatus
    time_lost: time_lost.TimeLost
    starts: dict[int, float | None]  # attempt -> its training job started (epoch s, Slurm)
    ends: dict[int, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {**self.status.to_dict(), "time_lost": self.time_lost.to_dict()}


def job_ids(views: Sequence[AttemptView]) -> list[str]:
    return [str(j) for v in views
            for j in (v.train_job, v.watchdog_job, (v.submitting or {}).get("submitter_job")) if j]


def _epoch(t: datetime | None) -> float | None:
    return t.timestamp() if t is not None else None


def report_from(paths: RunPaths, cfg: ResolvedConfig, history: History, views: list[AttemptView],
                infos: Mapping[str, JobInfo] | None, now: float) -> Report:
    """Pure but for what ``paths`` and ``views`` already read: ``infos`` is Slurm's answer for
    the run's jobs (None: Slurm not asked)."""
    starts: dict[int, float | None] = {}
    ends: dict[int, float | None] = {}
    if infos is not None:
        for v in views:
            apply_job_info(v, infos)
            train = infos.get(v.train_job or "")
            if train is not None:
                starts[v.attempt], ends[v.attempt] = _epoch(train.start_time), _epoch(train.end_time)
    st = summarize(paths.run_id, str(paths.root), history, views, cfg.restart.max_retries, now)
    tl = time_lost.compute(views, history, starts, ends,
                           time_lost.run_gpus(cfg.slurm.nodes, cfg.slurm.gpus_per_node))
    return Report(st, tl, starts, ends)


def query_jobs(client: SlurmClient | None, ids: Sequence[str]) -> dict[str, JobInfo] | None:
    """One batched Slurm query for every job id given (None without a client). Slurm not
    answering makes every job UNKNOWN, as for ``inspect`` one job at a time."""
    if client is None:
        return None
    try:
        return client.jobs_info(list(ids))
    except SlurmError as exc:
        logger.warning("Slurm did not answer for the runs' jobs: {}", exc.message)
        return {}


def build_report(paths: RunPaths, cfg: ResolvedConfig, client: SlurmClient | None,
                 now: float | None = None) -> Report:
    history = read_history(paths)
    for w in history.warnings:
        logger.warning("{}: {}", paths.events, w)
    views = collect_attempts(paths, history)
    return report_from(paths, cfg, history, views, query_jobs(client, job_ids(views)),
                       time.time() if now is None else now)


def list_row(rep: Report) -> dict[str, Any]:
    """One line of ``autoexp-sidecar list``: pure."""
    st = rep.status
    last = st.attempts[-1] if st.attempts else None
    iters = [a.last_iteration for a in st.attempts if a.last_iteration is not None]
    failure = next((a.decision_reason or a.error_type for a in reversed(st.attempts)
                    if a.decision in ("restart", "stop") or a.error_type), None)
    return {"run": st.run_id, "status": st.state.value, "attempt": last.attempt if last else None,
            "budget_used": st.budget_used, "budget_max": st.budget_max,
            "last_iteration": max(iters) if iters else None, "last_failure": failure,
            "time_lost_s": rep.time_lost.total_gap_s, "gpu_hours_lost": rep.time_lost.gpu_hours,
            "run_dir": st.run_dir}


def render_list(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "no run directories here"
    head = ("run", "status", "attempt", "budget", "last iter", "last failure", "time lost", "run dir")
    out: list[Sequence[str]] = [head]
    for r in rows:
        budget = f"{r['budget_used']}/{r['budget_max']}" if r["budget_max"] is not None else str(r["budget_used"])
        fail = str(r["last_failure"] or "-")
        out.append((str(r["run"]), str(r["status"]).upper(), str(r["attempt"] or "-"), budget,
                    "-" if r["last_iteration"] is None else str(r["last_iteration"]),
                    fail if len(fail) <= 48 else fail[:45] + "...",
                    time_lost.fmt_duration(r["time_lost_s"]) if r["time_lost_s"] else "-",
                    str(r["run_dir"])))
    return "\n".join(table(out))


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]


def _short(t: str | None) -> str:
    return t[11:] if t and len(t) >= 19 else (t or "-")


def error_type_cell(decided: str | None, marker: str | None) -> str:
    """What the decision went by, and the sidecar's marker too when it said something else
    (a NODE_FAIL job's surviving ranks often log NCCL errors)."""
    if decided and marker and marker != decided:
        return f"{decided} (marker: {marker})"
    return decided or marker or "-"


def render_text(st: RunStatus, tl: time_lost.TimeLost | None = None) -> str:
    lines = [f"run:      {st.run_id}", f"dir:      {st.run_dir}",
             f"status:   {st.state.value.upper()} - {st.detail}"]
    budget = f"{st.budget_used}/{st.budget_max}" if st.budget_max is not None else str(st.budget_used)
    lines.append(f"budget:   {budget} retries used")
    lines.append("")
    head = ("#", "train", "watchdog", "state", "start", "end", "iters", "error_type", "what followed")
    rows = [head]
    for a in st.attempts:
        iters = "-"
        if a.first_iteration is not None or a.last_iteration is not None:
            iters = f"{a.first_iteration if a.first_iteration is not None else '?'}-" \
                    f"{a.last_iteration if a.last_iteration is not None else '?'}"
        followed = a.decision_reason or ("-" if a.decision is None else a.decision)
        rows.append((str(a.attempt), a.train_job or "-", a.watchdog_job or "-",
                     a.train_state or "?", _short(a.start), _short(a.end), iters,
                     error_type_cell(a.error_type, a.marker_error_type), followed))
    lines.extend(table(rows))
    if tl is not None:
        lines.append("")
        lines.extend(time_lost.render_text(tl))
    return "\n".join(lines)
