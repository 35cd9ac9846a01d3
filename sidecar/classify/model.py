"""Plain values of the classifier: failure classes, signals, hits, verdicts, hang settings.

Everything here is a frozen dataclass or an Enum so that the sidecar, the watchdog and the
policy can pass them around, compare them and serialise them without surprises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FailureClass(enum.Enum):
    """What a restart does about a failure."""

    TRANSIENT = "transient"  # a restart (maybe on other nodes) is expected to help
    PERMANENT = "permanent"  # a restart repeats it (OOM, code or config bug)
    TERMINAL = "terminal"  # a scheduler lifecycle event (time limit, preemption, requeue)


@dataclass(frozen=True)
class Signal:
    """One named log pattern and what a line matching it means."""

    name: str
    pattern: str
    error_type: str
    failure_class: FailureClass
    cascade: bool = False  # a consequence of an earlier failure, never the root cause
    description: str = ""


@dataclass(frozen=True)
class SignalHit:
    """A log line that matched a signal."""

    line_no: int
    line: str
    signal: str
    error_type: str
    failure_class: FailureClass
    node: str | None
    cascade: bool

    def to_json(self) -> dict:
        return {
            "line_no": self.line_no,
            "signal": self.signal,
            "error_type": self.error_type,
            "class": self.failure_class.value,
            "node": self.node,
        }


@dataclass(frozen=True)
class HangConfig:
    """How the sidecar decides that a live job is hung (see ``progress.ProgressTracker``)."""

    enabled: bool = True
    pace_factor: float = 10.0  # hung after this many recent iteration intervals without one
    floor_s: float = 5.0  # never call a hang sooner than this after the last iteration
    ceiling_s: float = 1800.0  # always call a hang after this long without an iteration
    startup_timeout_s: float = 1800.0  # before the first iteration: no output at all this long
    checkpoint_timeout_s: float = 3600.0  # a checkpoint save may run silently this long


@dataclass(frozen=True)
class MonitoringConfig:
    """A validated monitoring preset: ordered signals (first match wins), never-fire rules."""

    name: str
    signals: tuple[Signal, ...]
    ignore: tuple[str, ...]
    hang: HangConfig
    kill_grace_s: float = 2.0


@dataclass(frozen=True)
class Verdict:
    """What a log says: the root cause, the evidence after it, the node, and progress."""

    root: SignalHit | None
    evidence: tuple[SignalHit, ...]
    node: str | None
    last_iteration: int | None
    last_checkpoint: int | None
    evidence_total: int = 0  # all evidence hits seen, ``evidence`` keeps only the first few

    @property
    def failure_class(self) -> FailureClass | None:
        return self.root.failure_class if self.root else None

    @property
    def error_type(self) -> str | None:
        return self.root.error_type if self.root else None
