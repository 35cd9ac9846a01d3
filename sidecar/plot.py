"""A picture of a run: training progress over wall time across attempts (``inspect --plot``).

Each attempt is a band labelled with its job id and how it ended; failures are marked with
their reason; the time lost between a failure and the next attempt running is shaded. What to
draw is decided by the pure ``build_model``; ``draw`` only hands it to matplotlib (the optional
``plot`` extra), and ``write_plot`` reads the logs and writes the file (.png/.svg/.pdf/.html).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Mapping

from sidecar import training_log
from sidecar.errors import SidecarError
from sidecar.rundir import RunPaths
from sidecar.run_report import Report, render_text
from sidecar.time_lost import fmt_duration

OUTCOME_COLOURS = {"restarted": "#f5b041", "stopped": "#e74c3c", "finished": "#58d68d",
                   "running": "#85c1e9", "unknown": "#d5d8dc"}


@dataclass(frozen=True)
class Band:
    attempt: int
    job: str
    start: float
    end: float
    outcome: str  # a key of OUTCOME_COLOURS
    label: str  # "attempt 2 · job 41\nCANCELLED → restarted"


@dataclass(frozen=True)
class FailureMark:
    time: float
    text: str


@dataclass(frozen=True)
class Gap:
    start: float
    end: float
    text: str


@dataclass
class PlotModel:
    title: str
    series: dict[int, list[training_log.Point]] = field(default_factory=dict)
    bands: list[Band] = field(default_factory=list)
    failures: list[FailureMark] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


def _outcome(decision: str | None, train_state: str | None, is_last: bool) -> str:
    if decision == "restart":
        return "restarted"
    if decision == "stop":
        return "stopped"
    if decision == "finished" or train_state == "COMPLETED":
        return "finished"
    if is_last and train_state in ("RUNNING", "PENDING", "COMPLETING"):
        return "running"
    return "unknown"


def spread_within_second(points: list[training_log.Point]) -> list[training_log.Point]:
    """Log times have whole seconds; several iterations in one second would draw a staircase.
    Spread each second's points evenly over it (display only)."""
    out: list[training_log.Point] = []
    i = 0
    while i < len(points):
        j = i
        while j < len(points) and points[j].time == points[i].time:
            j += 1
        n = j - i
        out.extend(replace(p, time=p.time + k / n) for k, p in enumerate(points[i:j]))
        i = j
    return out


def build_model(report: Report, logs: Mapping[int, training_log.AttemptLog], now: float) -> PlotModel:
    """What to draw: pure function of the report, the parsed logs and the time."""
    st = report.status
    tl = report.time_lost
    m = PlotModel(title=f"{st.run_id}: {st.state.value}, {len(st.attempts)} attempts, "
                        f"{fmt_duration(tl.total_gap_s)} lost between attempts, "
                        f"{tl.total_redone_iterations} iterations redone"
                        + (f", {tl.gpu_hours:.2f} GPU-h" if tl.gpu_hours is not None else ""))
    failed_at = {a.attempt: a for a in tl.attempts}
    for i, a in enumerate(st.attempts):
        pts = spread_within_second(logs.get(a.attempt, training_log.AttemptLog([], None)).points)
        m.series[a.attempt] = pts
        start = report.starts.get(a.attempt) or (pts[0].time if pts else None)
        end = report.ends.get(a.attempt) or (pts[-1].time if pts else None)
        is_last = i == len(st.attempts) - 1
        if start is None:
            continue
        if end is None or end < start:
            end = now if is_last else start
        outcome = _outcome(a.decision, a.train_state, is_last)
        label = f"attempt {a.attempt} · job {a.train_job or '?'}\n{a.train_state or '?'} → {outcome}"
        m.bands.append(Band(a.attempt, a.train_job or "?", start, end, outcome, label))
        loss = failed_at.get(a.attempt)
        t_fail = loss.failed_at if loss and loss.failed_at is not None else None
        if a.decision in ("restart", "stop") or a.error_type:
            reason = a.decision_reason or a.error_type or a.train_state or "failed"
            m.failures.append(FailureMark(t_fail if t_fail is not None else end, reason))
        if loss and loss.failed_at is not None and loss.next_running_at is not None:
            redone = "" if loss.redone_iterations is None else f", {loss.redone_iterations} it. redone"
            m.gaps.append(Gap(loss.failed_at, loss.next_running_at,
                              f"lost {fmt_duration(loss.gap_s)}{redone}"))
    return m


def draw(model: PlotModel, out: IO[bytes] | str, fmt: str = "png") -> None:
    try:
        import matplotlib
    except ImportError:
        raise SidecarError("drawing the run needs matplotlib",
                           "pip install 'autoexp-sidecar[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def dt(t: float) -> float:
        # matplotlib's date numbers: days since its epoch (1970-01-01), for the local wall time
        return float(mdates.date2num(datetime.fromtimestamp(t)))  # type: ignore[no-untyped-call]

    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    for b in model.bands:
        ax.axvspan(dt(b.start), dt(b.end), color=OUTCOME_COLOURS[b.outcome], alpha=0.25, lw=0)
        ax.text(dt(b.start), 1.01, b.label, transform=ax.get_xaxis_transform(), fontsize=8,
                va="bottom", ha="left")
    for g in model.gaps:
        ax.axvspan(dt(g.start), dt(g.end), facecolor="none", edgecolor="#7f8c8d", hatch="///", lw=0)
        ax.text(dt(g.start + (g.end - g.start) / 2), 0.5, g.text, transform=ax.get_xaxis_transform(),
                rotation=90, fontsize=8, ha="center", va="center", color="#555")
    for f in model.failures:
        ax.axvline(dt(f.time), color="#c0392b", lw=1.5, ls="--")
        ax.text(dt(f.time), 0.02, " " + f.text[:70], transform=ax.get_xaxis_transform(),
                rotation=90, fontsize=7.5, color="#c0392b", ha="right", va="bottom",
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
    loss_ax = None
    for n, pts in sorted(model.series.items()):
        if not pts:
            continue
        ax.plot([dt(p.time) for p in pts], [p.iteration for p in pts], "-", lw=2,
                color="#1f4e79", label="iteration" if n == min(model.series) else None)
        losses = [(dt(p.time), p.loss) for p in pts if p.loss is not None]
        if losses:
            loss_ax = loss_ax or ax.twinx()
            loss_ax.plot([t for t, _ in losses], [v for _, v in losses], "-", lw=1, color="#8e44ad",
                         alpha=0.8, label="lm loss" if loss_ax.get_legend_handles_labels()[0] == [] else None)
    ax.set_ylabel("iteration")
    ax.set_xlabel("wall time")
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    if loss_ax is not None:
        loss_ax.set_ylabel("lm loss", color="#8e44ad")
    handles, labels = ax.get_legend_handles_labels()
    if loss_ax is not None:
        h2, l2 = loss_ax.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    from matplotlib.patches import Patch

    if model.gaps:
        handles.append(Patch(facecolor="none", edgecolor="#7f8c8d", hatch="///", label="time lost"))
        labels.append("time lost")
    for outcome in dict.fromkeys(b.outcome for b in model.bands):
        handles.append(Patch(color=OUTCOME_COLOURS[outcome], alpha=0.35))
        labels.append(f"attempt {outcome}")
    ax.legend(handles, labels, loc="best", fontsize=8, framealpha=0.9)
    fig.suptitle(model.title, fontsize=10, y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, format=fmt)
    plt.close(fig)


def read_logs(paths: RunPaths, report: Report) -> dict[int, training_log.AttemptLog]:
    logs = {}
    for a in report.status.attempts:
        if not a.train_job:
            continue
        try:
            with open(paths.train_log(a.train_job), "rb") as fh:
                logs[a.attempt] = training_log.parse(fh)
        except OSError:
            continue
    return logs


def plot_format(target: str) -> str:
    """The picture format a file name asks for (checked before any work is done)."""
    suffix = Path(target).suffix.lower().lstrip(".") or "png"
    suffix = "html" if suffix == "htm" else suffix
    if suffix not in ("png", "svg", "pdf", "html"):
        raise SidecarError(f"--plot {target}: unknown picture format .{suffix}",
                           "use a file name ending in .png, .svg, .pdf or .html")
    return suffix


def write_plot(paths: RunPaths, report: Report, target: str, now: float | None = None) -> Path:
    import time

    out = Path(target).expanduser()
    suffix = plot_format(target)
    model = build_model(report, read_logs(paths, report), time.time() if now is None else now)
    if suffix == "html":
        buf = io.BytesIO()
        draw(model, buf, "png")
        img = base64.b64encode(buf.getvalue()).decode()
        out.write_text(
            "<!doctype html><meta charset='utf-8'>"
            f"<title>{html.escape(report.status.run_id)}</title>"
            f"<h2>{html.escape(model.title)}</h2>"
            f"<img alt='progress of the run' src='data:image/png;base64,{img}'>"
            f"<pre>{html.escape(render_text(report.status, report.time_lost))}</pre>\n",
            encoding="utf-8")
        return out
    draw(model, str(out), suffix)
    return out
