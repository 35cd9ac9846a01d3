"""The run's history (``events.jsonl``), typed: one Enum of event kinds and one reader.

Status (``inspect``), the policy's view of past attempts (the watchdog) and ``resume`` all read
the history through ``History``; nothing else parses events.jsonl. Reading is pure once the
lines are in hand (``History.parse``): a torn or garbled line, or an unknown kind, becomes a
warning and the rest of the history stands.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sidecar.policy import PastAttempt

if TYPE_CHECKING:
    from sidecar.rundir import RunPaths


class EventKind(str, enum.Enum):
    """Every kind of event a run's history holds (the ``event`` field of each line)."""

    CREATED = "created"  # submit made the run directory
    SUBMITTING = "submitting"  # an attempt is claimed and its sbatch is under way (may retry for minutes)
    SUBMITTED = "submitted"  # its training job id is known
    SUBMIT_FAILED = "submit_failed"
    ARMED = "armed"  # a plain `sbatch train.sbatch` registered itself as an attempt
    WATCHDOG_ARMED = "watchdog_armed"
    WATCHDOG_CANCELLED = "watchdog_cancelled"
    MARKER = "marker"  # the sidecar recorded a failure
    SIDECAR_CANCEL = "sidecar_cancel"  # the sidecar ended its job
    SIDECAR_END_STEP = "sidecar_end_step"  # the sidecar ended the training step (the fast path)
    ENDED = "ended"  # the training script recorded its exit
    DECIDED = "decided"  # the policy's decision on an ended attempt (first per attempt wins)
    DEFERRED = "deferred"  # a watchdog could not read Slurm and left the decision to resume
    STOP_REQUESTED = "stop_requested"
    STOPPED = "stopped"
    FINISHED = "finished"
    RESUMED = "resumed"  # `autoexp-sidecar resume` repaired or (--force) restarted the run


@dataclass(frozen=True)
class Event:
    kind: EventKind
    time: float
    attempt: int | None
    data: Mapping[str, Any]  # the whole record, as written

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _event(record: Any) -> Event | str:
    """An Event, or the reason the record is not one."""
    if not isinstance(record, dict) or "event" not in record:
        return "not an event object"
    try:
        kind = EventKind(record["event"])
    except ValueError:
        return f"unknown event kind {record['event']!r}"
    t = record.get("time")
    return Event(kind, float(t) if isinstance(t, (int, float)) else 0.0,
                 _int(record.get("attempt")), record)


@dataclass(frozen=True)
class History:
    events: tuple[Event, ...]
    warnings: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, lines: Iterable[bytes]) -> "History":
        events: list[Event] = []
        warnings: list[str] = []
        for no, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                warnings.append(f"events.jsonl line {no} is garbled (a torn write?); skipped")
                continue
            ev = _event(rec)
            if isinstance(ev, str):
                warnings.append(f"events.jsonl line {no}: {ev}; skipped")
            else:
                events.append(ev)
        return cls(tuple(events), tuple(warnings))

    @classmethod
    def of_records(cls, records: Iterable[Mapping[str, Any]]) -> "History":
        events: list[Event] = []
        warnings: list[str] = []
        for rec in records:
            ev = _event(rec)
            if isinstance(ev, str):
                warnings.append(ev)
            else:
                events.append(ev)
        return cls(tuple(events), tuple(warnings))

    def of_kind(self, *kinds: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind in kinds]

    def decisions(self) -> dict[int, Mapping[str, Any]]:
        """The decision on each attempt: the first ``decided`` event per attempt wins (two
        racing watchdogs decide once; a later one is a repeat)."""
        out: dict[int, Mapping[str, Any]] = {}
        for e in self.of_kind(EventKind.DECIDED):
            d = e.get("decision")
            if e.attempt is not None and e.attempt not in out and isinstance(d, dict):
                out[e.attempt] = d
        return out

    def past_attempts(self, before: int | None = None) -> list[PastAttempt]:
        """What the policy needs of earlier decisions, in attempt order."""
        firsts: dict[int, Event] = {}
        for e in self.of_kind(EventKind.DECIDED):
            if e.attempt is not None and e.attempt not in firsts and isinstance(e.get("decision"), dict):
                firsts[e.attempt] = e
        out = []
        for n in sorted(firsts):
            if before is not None and n >= before:
                continue
            e = firsts[n]
            d = e.get("decision")
            restart = d.get("action") == "restart"
            out.append(PastAttempt(
                attempt=n, error_type=d.get("error_type"),
                counted=bool(d.get("counts_against_budget")) and restart,
                timeout=d.get("class") == "terminal" and restart,
                last_iteration=_int(e.get("last_iteration")),
                excluded_nodes=tuple(str(x) for x in (d.get("exclude_nodes") or ())),
                in_allocation=e.get("placement") == "in_allocation",
                node=d.get("node") if isinstance(d.get("node"), str) else None,
                nodes=tuple(str(x) for x in (d.get("nodes") or ())),
            ))
        return out

    def budget_used(self) -> int:
        return sum(1 for p in self.past_attempts() if p.counted)

    def outcome(self) -> Event | None:
        """The ``stopped`` or ``finished`` event in force: a later ``resumed`` or ``submitted``
        of a newer attempt (``resume --force``) clears it."""
        current: Event | None = None
        for e in self.events:
            if e.kind in (EventKind.STOPPED, EventKind.FINISHED):
                current = e
            elif (current is not None and e.kind in (EventKind.RESUMED, EventKind.SUBMITTED)
                  and e.attempt is not None and e.attempt > (current.attempt or 0)):
                current = None
        return current

    def submission(self, attempt: int) -> Event | None:
        """The last ``submitting``/``submitted``/``submit_failed`` event of ``attempt``."""
        last = None
        for e in self.of_kind(EventKind.SUBMITTING, EventKind.SUBMITTED, EventKind.SUBMIT_FAILED):
            if e.attempt == attempt:
                last = e
        return last

    def last_submit_failure(self) -> Event | None:
        """A ``submit_failed`` not followed by a later ``submitted``."""
        failed = None
        for e in self.of_kind(EventKind.SUBMITTED, EventKind.SUBMIT_FAILED):
            failed = e if e.kind is EventKind.SUBMIT_FAILED else None
        return failed


def read_history(paths: "RunPaths") -> History:
    """The run's history from ``paths.events`` (a missing file is an empty history)."""
    try:
        with open(paths.events, "rb") as fh:
            return History.parse(fh)
    except FileNotFoundError:
        return History(())
