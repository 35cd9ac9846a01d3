"""Time lost to failures: per failed attempt, the time from the failure to the next attempt
running, the iterations redone since the last checkpoint, and totals with GPU-hours.

Pure: the typed history, the attempt views and the Slurm start/end times come in as values;
``sidecar.run_report`` gathers them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from sidecar.history import EventKind, History
from sidecar.status import AttemptView


@dataclass(frozen=True)
class AttemptLoss:
    attempt: int  # the attempt that failed
    failed_at: float | None  # the error line seen (marker), else the job's end
    next_running_at: float | None  # attempt+1's training job started running
    gap_s: float | None  # next_running_at - failed_at
    redone_iterations: int | None  # last iteration logged - last checkpoint saved


@dataclass(frozen=True)
class TimeLost:
    attempts: list[AttemptLoss] = field(default_factory=list)
    total_gap_s: float = 0.0
    total_redone_iterations: int = 0
    gpus: int | None = None  # nodes x GPUs per node; None when the run uses no GPUs
    gpu_hours: float | None = None  # total_gap_s x gpus

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failure_times(history: History) -> dict[int, float]:
    """attempt -> when its failure was first known: the sidecar's marker, else the end record."""
    marker: dict[int, float] = {}
    ended: dict[int, float] = {}
    for ev in history.of_kind(EventKind.MARKER, EventKind.ENDED):
        if ev.attempt is None or not ev.time:
            continue
        if ev.kind is EventKind.MARKER:
            marker.setdefault(ev.attempt, ev.time)
        elif ev.get("exit_code") != 0 or ev.get("signal"):
            ended.setdefault(ev.attempt, ev.time)
    return {**ended, **marker}


def compute(views: Sequence[AttemptView], history: History,
            starts: Mapping[int, float | None], ends: Mapping[int, float | None],
            gpus: int | None) -> TimeLost:
    """``starts``/``ends``: attempt -> epoch seconds its training job started / ended (Slurm)."""
    failed = failure_times(history)
    by_n = {v.attempt: v for v in views}
    out: list[AttemptLoss] = []
    for v in views:
        if v.attempt + 1 not in by_n:
            continue  # only attempts something followed: a loss is measured up to the restart
        t_fail = failed.get(v.attempt, ends.get(v.attempt))
        t_next = starts.get(v.attempt + 1)
        gap = t_next - t_fail if t_fail is not None and t_next is not None else None
        redone = None
        if v.last_iteration is not None:
            redone = max(0, v.last_iteration - (v.last_checkpoint or 0))
        out.append(AttemptLoss(v.attempt, t_fail, t_next, None if gap is None else max(0.0, gap),
                               redone))
    total = sum(a.gap_s for a in out if a.gap_s is not None)
    return TimeLost(out, total, sum(a.redone_iterations or 0 for a in out), gpus,
                    None if gpus is None else total / 3600.0 * gpus)


def run_gpus(nodes: int, gpus_per_node: int | None) -> int | None:
    return nodes * gpus_per_node if gpus_per_node else None


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def render_text(tl: TimeLost) -> list[str]:
    if not tl.attempts:
        return ["time lost: none (no failed attempt was followed by another)"]
    lines = ["time lost:"]
    for a in tl.attempts:
        redone = "?" if a.redone_iterations is None else str(a.redone_iterations)
        lines.append(f"  attempt {a.attempt} -> {a.attempt + 1}: {fmt_duration(a.gap_s)} from the "
                     f"failure to the next attempt running, {redone} iterations redone")
    gpu = (f", {tl.gpu_hours:.2f} GPU-hours ({tl.gpus} GPUs)" if tl.gpu_hours is not None
           else " (no GPUs in the config: no GPU-hours)")
    lines.append(f"  total: {fmt_duration(tl.total_gap_s)}, {tl.total_redone_iterations} "
                 f"iterations redone{gpu}")
    return lines
