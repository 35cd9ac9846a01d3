"""``autoexp-sidecar inspect``: the run's status joined with Slurm's view (thin I/O) and its
rendering as text (pure)."""

from __future__ import annotations

import time
from datetime import datetime

from loguru import logger

from sidecar.errors import SlurmError
from sidecar.history import read_history
from sidecar.rundir import RunPaths
from sidecar.status import AttemptView, RunStatus, collect_attempts, summarize
from sidecar.slurm.types import SlurmClient


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


def _fill_from_slurm(client: SlurmClient, v: AttemptView) -> None:
    if v.train_job:
        try:
            info = client.job_info(v.train_job)
            v.train_state = info.state.value
            v.start, v.end = _fmt_time(info.start_time), _fmt_time(info.end_time)
            v.nodes = list(info.nodes)
        except SlurmError:
            v.train_state = "UNKNOWN"
    if v.watchdog_job:
        try:
            v.watchdog_state = client.job_info(v.watchdog_job).state.value
        except SlurmError:
            v.watchdog_state = "UNKNOWN"
    submitter = (v.submitting or {}).get("submitter_job")
    if submitter:
        try:
            v.submitter_state = client.job_info(str(submitter)).state.value
        except SlurmError:
            v.submitter_state = None  # unknown: the submission's deadline decides


def _short(t: str | None) -> str:
    return t[11:] if t and len(t) >= 19 else (t or "-")


def error_type_cell(decided: str | None, marker: str | None) -> str:
    """What the decision went by, and the sidecar's marker too when it said something else
    (a NODE_FAIL job's surviving ranks often log NCCL errors)."""
    if decided and marker and marker != decided:
        return f"{decided} (marker: {marker})"
    return decided or marker or "-"


def render_text(st: RunStatus) -> str:
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
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return "\n".join(lines)
