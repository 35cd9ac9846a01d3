"""The sidecar: follow the training log inside the allocation, write the marker, end the job.

One ``Scanner`` per attempt. The loop (``run_loop``) only moves lines from the follower to the
scanner and asks it what to do on each tick; the decisions (``decide_cancel``, ``build_marker``)
are pure functions of values and ``now``. Time comes from the injected ``clock`` (epoch
seconds) and ``sleep``, so tests drive hours of fake time in milliseconds.

What the scanner does:
- each line goes to the ProgressTracker (pace, checkpoints) and to the LineClassifier; the line
  still being written (a progress bar's redraws, no newline yet) to the ProgressTracker only;
- the first root cause (RootCauseTracker.feed -> True) is written at once, atomically, to
  ``attempts/<n>/marker.json`` and an event ``marker`` is appended; later hits (cascade
  included) are kept as evidence (at most ``MAX_EVIDENCE``) and the marker is rewritten with
  them when the grace ends and at exit;
- after ``kill_grace_s`` the job is cancelled (scancel of its own id) so that Slurm ends it as
  CANCELLED and starts the watchdog, which sees CANCELLED + marker = a detected failure. A
  TERMINAL root cause (time limit, preemption, requeue printed by slurmstepd) is recorded but
  never cancelled: Slurm is already ending the job, and a cancel would turn a TIMEOUT, which does
  not use the failure budget, into a CANCELLED, which does;
- a hang (ProgressTracker.hang_reason) gets a ``hang`` marker and the same cancel;
- a root the family layer is unsure of (confidence ``low``: a bare "Killed", a generic
  exception) is written at once but ends the job only when confirmed: a later failure line or
  a stall; until then the training goes on, and if the job ends by itself the marker says why;
- with the fast path on (``restart.fast_path``), the training step is ended instead of the
  job (``ScanContext.end_step``, sidecar.step): the batch script then decides and submits the
  next attempt itself, without waiting for the watchdog to be scheduled;
- progress.json is rewritten every ``progress_interval_s`` and on each checkpoint save.

Nothing read from the log is executed or evaluated: lines are only matched and stored as text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol, Sequence

from loguru import logger

from sidecar.claims import pid_alive
from sidecar.follow import LogFollower
from sidecar.history import EventKind
from sidecar.classify.model import Role
from sidecar.classify.tasks import labelled_node as line_node
from sidecar.rundir import RunPaths, atomic_write_json

MAX_EVIDENCE = 20
# How much of a line the marker and its evidence keep (the classifier looks at more: its own
# MAX_LINE_BYTES; the follower buffers more: follow.MAX_BUFFERED_LINE_BYTES).
MARKER_LINE_BYTES = 4096
PROGRESS_INTERVAL_S = 2.0
# A failed scancel (controller busy) is retried; after this many tries the job is left to end
# by itself and the marker still tells the watchdog what happened.
CANCEL_TRIES = 5
CANCEL_RETRY_S = 3.0
MAX_LOGGED_ERRORS = 20


class Canceller(Protocol):
    def cancel(self, job_id: str, signal: str | None = None) -> Any: ...


# -- pure helpers -----------------------------------------------------------------------------
def line_text(line: str | bytes, limit: int = MARKER_LINE_BYTES) -> str:
    """A log line as text for the marker: bytes decoded with errors=replace, cut to ``limit``."""
    if isinstance(line, str):
        line = line.encode("utf-8", "replace")
    return line[:limit].decode("utf-8", "replace")


def printable(text: str) -> str:
    """``text`` with control characters escaped: one log line stays one line of our log."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def class_value(failure_class: Any) -> str:
    """``FailureClass.TRANSIENT`` -> "transient"; a plain string passes through."""
    return str(getattr(failure_class, "value", failure_class)).lower()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def build_marker(
    *,
    error_type: str,
    failure_class: str,
    signal: str,
    line: str | bytes,
    line_no: int | None,
    node: str | None,
    now: float,
    job_id: str,
    attempt: int,
    source: str,
    first_iteration: int | None,
    last_iteration: int | None,
    last_checkpoint: int | None,
    evidence: list[dict[str, Any]] | None = None,
    layer: str = "curated",
    confidence: str = "high",
    role: str = "cause",
    tip: str = "",
    superseded: list[dict[str, Any]] | None = None,
    line_node: str | None = None,
) -> dict[str, Any]:
    """The marker.json content. Pure; the keys are the interface read by the watchdog.
    ``layer``/``confidence``/``role`` say which classifier layer decided and how sure it is;
    ``superseded`` lists earlier roots this one replaced (a symptom printed before the cause);
    ``line_node`` is the node the line came from (srun --label), for the reader: ``node`` is the
    node the failure blames, which the policy may exclude."""
    return {
        "error_type": error_type,
        "class": failure_class,
        "signal": signal,
        "line": line_text(line),
        "line_no": line_no,
        "node": node,
        "time": now,
        "time_iso": iso(now),
        "job_id": job_id,
        "attempt": attempt,
        "source": source,
        "evidence": list(evidence or [])[:MAX_EVIDENCE],
        "first_iteration": first_iteration,
        "last_iteration": last_iteration,
        "last_checkpoint": last_checkpoint,
        "layer": layer,
        "confidence": confidence,
        "role": role,
        "tip": tip,
        "superseded": list(superseded or []),
        "line_node": line_node,
    }


# "1: [default0]:..." - srun --label's task number in front of every line of a step
def enum_value(value: Any, default: str) -> str:
    return str(getattr(value, "value", value)) if value is not None else default


def evidence_entry_from_marker(marker: dict[str, Any]) -> dict[str, Any]:
    """A replaced root, kept in the marker's ``superseded`` list."""
    return {k: marker.get(k) for k in ("line_no", "line", "signal", "error_type", "class", "role", "layer")}


def evidence_entry(hit: Any, line: str | bytes) -> dict[str, Any]:
    return {
        "line_no": hit.line_no,
        "line": line_text(line),
        "signal": hit.signal,
        "error_type": hit.error_type,
        "class": class_value(hit.failure_class),
    }


class Action(enum.Enum):
    NONE = "none"  # nothing to do (no failure, terminal, already cancelled)
    WAIT = "wait"  # failure recorded; grace period still running
    CANCEL = "cancel"  # end the job now


@dataclass(frozen=True)
class CancelDecision:
    action: Action
    reason: str


SYMPTOM_GRACE_S = 10.0


def decide_cancel(
    marker: dict[str, Any] | None, detected_at: float | None, now: float, grace_s: float,
    *, cancelled: bool, next_try_at: float | None = None, confirmations: int = 0,
) -> CancelDecision:
    """Whether to end the job now. Pure. Called only while the job is still running.
    ``confirmations``: failure lines (or a stall) seen after the marker's line."""
    if marker is None or detected_at is None:
        return CancelDecision(Action.NONE, "no failure detected")
    if marker.get("class") == "terminal":
        return CancelDecision(Action.NONE, f"terminal ({marker.get('error_type')}): Slurm is already ending the job")
    if cancelled:
        return CancelDecision(Action.NONE, "job already cancelled")
    if marker.get("confidence") == "low" and confirmations == 0:
        # a family rule unsure of itself (a bare "Killed", a generic exception) is recorded but
        # does not end a job that may be training on: a second failure line, a stall, or the
        # job ending by itself confirms it
        return CancelDecision(Action.WAIT, f"{marker.get('error_type')} (low confidence): waiting for "
                              "a second failure line, a stall or the job's own end")
    if marker.get("role") == "symptom":
        # a survivor's connection error comes first; torch elastic reports the dead rank only at
        # its next monitor round (1.9 s after the gloo error in a real kill -9 of a rank):
        # cancelling sooner would lose the line that names the cause
        grace_s = max(grace_s, SYMPTOM_GRACE_S)
    left = detected_at + grace_s - now
    if left > 0:
        return CancelDecision(Action.WAIT, f"grace: {left:.1f} s left")
    if next_try_at is not None and now < next_try_at:
        return CancelDecision(Action.WAIT, f"cancel retry in {next_try_at - now:.1f} s")
    return CancelDecision(
        Action.CANCEL,
        f"{marker.get('error_type')} ({marker.get('source')}) detected {now - detected_at:.1f} s ago "
        f"and the job is still running after the {grace_s:g} s grace",
    )


def progress_record(progress: Any, last_output_time: float | None, now: float) -> dict[str, Any]:
    return {
        "first_iteration": getattr(progress, "first_iteration", None),
        "last_iteration": getattr(progress, "last_iteration", None),
        "last_checkpoint": getattr(progress, "last_checkpoint", None),
        "last_output_time": last_output_time,
        "updated": now,
    }


# -- the scanner ------------------------------------------------------------------------------
@dataclass
class ScanContext:
    paths: RunPaths
    attempt: int
    job_id: str
    kill_grace_s: float = 2.0
    hang_enabled: bool = True
    client: Canceller | None = None  # None: record only, never cancel (tests, benchmarks)
    task_nodes: tuple[str, ...] = ()  # the node of each srun task (see line_node)
    progress_interval_s: float = PROGRESS_INTERVAL_S
    # the fast path: end the training step only (the batch script decides what follows);
    # None: cancel the whole job and leave it to the watchdog
    end_step: Callable[[], str] | None = None


@dataclass
class Scanner:
    """State of one attempt's scan. ``feed`` each line, ``tick`` while the job runs, ``finish``."""

    ctx: ScanContext
    classifier: Any  # LineClassifier
    roots: Any  # RootCauseTracker
    progress: Any  # ProgressTracker
    marker: dict[str, Any] | None = None
    detected_at: float | None = None
    cancelled: bool = False
    cancel_tries: int = 0
    next_cancel_at: float | None = None
    last_output_time: float | None = None
    last_line_no: int = 0
    errors: int = 0
    pre_root_hits: int = 0
    confirmations: int = 0  # hits (or a stall) after the marker: a low-confidence one is confirmed
    _marker_dirty: bool = False
    _progress_written_at: float | None = None
    _progress_last: dict[str, Any] | None = field(default=None, repr=False)
    _checkpoint_seen: Any = None

    @classmethod
    def for_monitoring(cls, ctx: ScanContext, monitoring: Any, task_nodes: tuple[str, ...] = ()) -> "Scanner":
        from sidecar.classify import LineClassifier, ProgressTracker, RootCauseTracker

        return cls(ctx, LineClassifier(monitoring, task_nodes), RootCauseTracker(),
                   ProgressTracker(monitoring.hang, getattr(monitoring, "progress", None)))

    # -- per line
    def feed(self, line_no: int, raw: bytes, now: float) -> None:
        self.last_output_time, self.last_line_no = now, line_no
        try:
            self.progress.observe(raw, now)
        except Exception as exc:  # a garbled line must never stop the sidecar
            self._error(f"progress tracking failed on line {line_no}: {exc!r}; line skipped")
        try:
            hit = self.classifier.classify(raw, line_no)
        except Exception as exc:
            self._error(f"classification failed on line {line_no}: {exc!r}; line skipped")
            return
        if hit is None:
            return
        if getattr(hit, "role", None) is Role.CONTEXT:  # read by the tracker only: not a failure line
            self.roots.feed(hit)
            return
        try:
            is_root = bool(self.roots.feed(hit))
        except Exception as exc:
            self._error(f"root-cause tracking failed on line {line_no}: {exc!r}")
            is_root = self.marker is None and not getattr(hit, "cascade", False)
        if self.marker is not None:
            self.confirmations += 1
        if is_root:
            hit = getattr(self.roots, "root", None) or hit  # as the context rules read it (tracker.py)
        if self.marker is None and is_root:
            self._write_first_marker(hit, raw, now)
        elif self.marker is not None and is_root:
            # a cause or a process death after a symptom (a survivor's connection error
            # printed before the launcher's report of the dead rank): the marker names it now
            replaced = evidence_entry_from_marker(self.marker)
            self._write_first_marker(hit, raw, now, keep=self.marker, replaced=replaced)
        elif self.marker is not None:
            if len(self.marker["evidence"]) < MAX_EVIDENCE:
                self.marker["evidence"].append(evidence_entry(hit, raw))
                self._marker_dirty = True
        else:
            # e.g. the srun/slurmstepd lines of a plain scancel: cascade only, no marker
            self.pre_root_hits += 1
            if self.pre_root_hits <= MAX_LOGGED_ERRORS:
                logger.info("line {}: {} ({}) before any root cause; not a root cause by itself",
                            line_no, hit.signal, hit.error_type)

    def feed_partial(self, tail: bytes, now: float) -> None:
        """The end of the line still being written (a progress bar redrawn with \\r): progress only."""
        observe = getattr(self.progress, "observe_partial", None)
        if not tail or observe is None:
            return
        try:
            observe(tail, now)
        except Exception as exc:  # a garbled line must never stop the sidecar
            self._error(f"progress tracking failed on the line being written: {exc!r}")

    def _write_first_marker(self, hit: Any, raw: bytes, now: float, keep: dict[str, Any] | None = None,
                            replaced: dict[str, Any] | None = None) -> None:
        p = self.progress
        self.marker = build_marker(
            error_type=hit.error_type, failure_class=class_value(hit.failure_class),
            signal=hit.signal, line=raw, line_no=hit.line_no, node=getattr(hit, "node", None),
            now=now, job_id=self.ctx.job_id, attempt=self.ctx.attempt, source="log",
            first_iteration=getattr(p, "first_iteration", None),
            last_iteration=getattr(p, "last_iteration", None),
            last_checkpoint=getattr(p, "last_checkpoint", None),
            layer=enum_value(getattr(hit, "layer", None), "curated"),
            confidence=enum_value(getattr(hit, "confidence", None), "high"),
            role=enum_value(getattr(hit, "role", None), "cause"),
            tip=getattr(hit, "tip", "") or "",
            evidence=keep["evidence"] if keep else None,
            superseded=[*(keep or {}).get("superseded", []), replaced] if replaced else None,
            line_node=line_node(raw, self.ctx.task_nodes),
        )
        if keep is not None and self.detected_at is not None:
            now = self.detected_at  # the kill grace keeps counting from the first detection
        self._publish_marker(now)

    def _write_hang_marker(self, reason: str, now: float) -> None:
        p = self.progress
        self.marker = build_marker(
            error_type="hang", failure_class="transient", signal="hang", line=reason,
            line_no=self.last_line_no or None, node=None, now=now, job_id=self.ctx.job_id,
            attempt=self.ctx.attempt, source="hang",
            first_iteration=getattr(p, "first_iteration", None),
            last_iteration=getattr(p, "last_iteration", None),
            last_checkpoint=getattr(p, "last_checkpoint", None),
        )
        self._job_ending()
        self._publish_marker(now)

    def _job_ending(self) -> None:
        """We end the job: the launcher's reports of the signals we send are not a new death."""
        mark = getattr(self.roots, "job_ending", None)
        if mark is not None:
            mark()

    def _publish_marker(self, now: float) -> None:
        m = self.marker
        assert m is not None
        self.detected_at = now
        self._save_marker()
        logger.warning("marker: {} ({}, signal {}, source {}) at line {}: {}", m["error_type"], m["class"],
                       m["signal"], m["source"], m["line_no"], printable(m["line"][:300]))
        self._maybe_write_progress(now, force=True)  # the watchdog reads both; keep them in step
        try:
            self.ctx.paths.append_event(
                EventKind.MARKER, now=now, attempt=self.ctx.attempt, job_id=self.ctx.job_id,
                error_type=m["error_type"], **{"class": m["class"]}, signal=m["signal"],
                source=m["source"], line_no=m["line_no"], node=m["node"],
            )
        except OSError as exc:
            self._error(f"cannot append the marker event: {exc}")

    def _save_marker(self) -> None:
        assert self.marker is not None
        if self.marker.get("node") is None:
            self.marker["node"] = self._verdict_node()
        try:
            atomic_write_json(self.ctx.paths.marker(self.ctx.attempt), self.marker)
            self._marker_dirty = False
        except OSError as exc:
            self._error(f"cannot write {self.ctx.paths.marker(self.ctx.attempt)}: {exc}")

    def _verdict_node(self) -> str | None:
        """The node the root cause points at, when a later line named it (e.g. NCCL's host)."""
        try:
            return getattr(self.roots.verdict(self.progress), "node", None)
        except Exception:
            return None

    def begin(self, now: float) -> None:
        """The scan starts: the startup timeout counts from here even if the log never appears."""
        start = getattr(self.progress, "start", None)
        if start is not None:
            start(now)
        logger.info("watching job {} attempt {} (grace {:g} s, hang detection {})", self.ctx.job_id,
                    self.ctx.attempt, self.ctx.kill_grace_s, "on" if self.ctx.hang_enabled else "off")

    # -- per tick, while the job is running
    def tick(self, now: float) -> None:
        unconfirmed = (self.marker is not None and self.marker.get("confidence") == "low"
                       and not self.confirmations)
        if (self.marker is None or unconfirmed) and self.ctx.hang_enabled:
            try:
                reason = self.progress.hang_reason(now)
            except Exception as exc:
                self._error(f"hang check failed: {exc!r}")
                reason = None
            if reason and self.marker is None:
                self._write_hang_marker(reason, now)
            elif reason and self.marker is not None:
                # the job stalled after an unsure hit: the hit is confirmed, its grace starts now
                self.confirmations += 1
                self.detected_at = now
                logger.warning("low-confidence {} confirmed by a stall: {}", self.marker["error_type"], reason)
        self._maybe_cancel(now)
        self._maybe_write_progress(now)

    def _maybe_cancel(self, now: float) -> None:
        d = decide_cancel(self.marker, self.detected_at, now, self.ctx.kill_grace_s,
                          cancelled=self.cancelled, next_try_at=self.next_cancel_at,
                          confirmations=self.confirmations)
        if d.action is not Action.CANCEL:
            return
        if self._marker_dirty:
            self._save_marker()  # the watchdog may start within a second of the cancel
        self.cancelled = True  # set first: a dry run or a failure must not retry every tick
        self._job_ending()
        if self.ctx.client is None:
            logger.warning("would cancel job {} (cancel disabled): {}", self.ctx.job_id, d.reason)
            return
        if self.ctx.end_step is not None and self._end_step(now, d.reason):
            return
        self.cancel_tries += 1
        logger.warning("cancelling job {}: {}", self.ctx.job_id, d.reason)
        try:
            self.ctx.client.cancel(self.ctx.job_id)
        except Exception as exc:
            if self.cancel_tries < CANCEL_TRIES:
                self.cancelled, self.next_cancel_at = False, now + CANCEL_RETRY_S
                logger.error("cancel of job {} failed (try {}/{}): {}; retrying in {:g} s",
                             self.ctx.job_id, self.cancel_tries, CANCEL_TRIES, exc, CANCEL_RETRY_S)
            else:
                logger.error("cancel of job {} failed {} times: {}; giving up (the marker stays)",
                             self.ctx.job_id, self.cancel_tries, exc)
            return
        try:
            self.ctx.paths.append_event(EventKind.SIDECAR_CANCEL, now=now, attempt=self.ctx.attempt,
                                        job_id=self.ctx.job_id, reason=d.reason)
        except OSError as exc:
            self._error(f"cannot append the cancel event: {exc}")

    def _end_step(self, now: float, reason: str) -> bool:
        """End the training step, not the job; False when that failed (then cancel the job)."""
        assert self.ctx.end_step is not None
        logger.warning("ending the training step of job {}: {}", self.ctx.job_id, reason)
        try:
            how = self.ctx.end_step()
        except Exception as exc:
            logger.error("cannot end the training step ({}); cancelling the job instead", exc)
            return False
        try:
            self.ctx.paths.append_event(EventKind.SIDECAR_END_STEP, now=now, attempt=self.ctx.attempt,
                                        job_id=self.ctx.job_id, reason=reason, how=how)
        except OSError as exc:
            self._error(f"cannot append the end-step event: {exc}")
        return True

    def _maybe_write_progress(self, now: float, force: bool = False) -> None:
        ckpt = getattr(self.progress, "last_checkpoint", None)
        new_ckpt = ckpt is not None and ckpt != self._checkpoint_seen
        due = self._progress_written_at is None or now - self._progress_written_at >= self.ctx.progress_interval_s
        if not (force or new_ckpt or due):
            return
        rec = progress_record(self.progress, self.last_output_time, now)
        same = self._progress_last is not None and {**rec, "updated": 0} == {**self._progress_last, "updated": 0}
        if same and not force:
            self._progress_written_at = now
            return
        try:
            atomic_write_json(self.ctx.paths.progress(self.ctx.attempt), rec)
        except OSError as exc:
            self._error(f"cannot write progress: {exc}")
            return
        self._progress_written_at, self._progress_last, self._checkpoint_seen = now, rec, ckpt
        if new_ckpt:
            logger.info("checkpoint saved at iteration {}", ckpt)

    # -- at exit
    def finish(self, now: float) -> None:
        """After the final drain: rewrite the marker with late evidence; never cancel here."""
        if self.marker is not None and self._marker_dirty:
            self._save_marker()
        self._maybe_write_progress(now, force=self.last_output_time is not None)
        if self.errors > MAX_LOGGED_ERRORS:
            logger.warning("{} errors in total while scanning (first {} logged)", self.errors, MAX_LOGGED_ERRORS)

    def _error(self, msg: str) -> None:
        self.errors += 1
        if self.errors <= MAX_LOGGED_ERRORS:
            logger.error(msg)


# -- the loop ---------------------------------------------------------------------------------
# (the batch shell is watched with sidecar.claims.pid_alive: a zombie counts as gone)
process_alive = pid_alive


def run_loop(
    scanner: Scanner,
    follower: LogFollower,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll_s: float,
    should_stop: Callable[[], bool],
) -> None:
    """Follow until ``should_stop()`` (SIGTERM, parent gone), then drain the log and finish."""
    scanner.begin(clock())
    while True:
        for line_no, raw in follower.poll():
            scanner.feed(line_no, raw, clock())
        scanner.feed_partial(follower.pending(), clock())
        if should_stop():
            break
        try:
            scanner.tick(clock())  # only reached while the job runs, so a cancel is never late
        except Exception as exc:  # a bug in one tick must not leave the job unwatched
            scanner._error(f"tick failed: {exc!r}")
        if not follower.behind:
            sleep(poll_s)
    # Final drain: a fatal line printed just before death is still classified and recorded.
    for line_no, raw in follower.close():
        scanner.feed(line_no, raw, clock())
    scanner.finish(clock())
