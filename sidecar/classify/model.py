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


class Role(enum.Enum):
    """What a matching line says about the failure, for choosing the root cause of an episode.

    One failure prints lines of every role: the cause on one rank, symptoms on the others (a
    peer closed the connection, the store went away), the launcher's report that a process
    died, and the cascade (abort, SIGTERM to the rest, summaries). ``tracker.py`` ranks them.
    """

    CAUSE = "cause"  # says what went wrong (an OOM, a NCCL timeout, a code error)
    DEATH = "death"  # a process was killed (SIGKILL): a fact about a rank; a memory verdict explains it
    SYMPTOM = "symptom"  # what a survivor sees when a peer dies (connection closed, store gone)
    CASCADE = "cascade"  # a consequence of an earlier failure, never the root cause
    # says nothing failed; it changes how the lines after it are read (Python's "Exception
    # ignored in:" before a traceback it ignored): never a root, evidence or confirmation
    CONTEXT = "context"


class Layer(enum.Enum):
    """Which layer of the classifier named a line; earlier layers win."""

    USER = "user"  # signals the user added in their config
    CURATED = "curated"  # the preset's signals: known wordings
    FAMILY = "family"  # structure and vocabulary of a failure family (``families``)


class Confidence(enum.Enum):
    HIGH = "high"  # a known wording of this failure
    MEDIUM = "medium"  # the family's vocabulary in the family's structure (an exception line, a driver log)
    LOW = "low"  # the family's vocabulary only; restart decisions still follow the class


@dataclass(frozen=True)
class Signal:
    """One named log pattern and what a line matching it means."""

    name: str
    pattern: str
    error_type: str
    failure_class: FailureClass
    cascade: bool = False  # a consequence of an earlier failure, never the root cause
    description: str = ""
    role: Role = Role.CAUSE  # ``cascade: true`` in a preset is role cascade
    layer: Layer = Layer.CURATED
    tip: str = ""  # what the user can do about it (shown by classify and inspect)

    def __post_init__(self) -> None:
        if self.cascade and self.role is not Role.CASCADE:
            object.__setattr__(self, "role", Role.CASCADE)
        object.__setattr__(self, "cascade", self.role is Role.CASCADE)


@dataclass(frozen=True)
class SignalHit:
    """A log line that matched a signal."""

    line_no: int
    line: str
    signal: str
    error_type: str
    failure_class: FailureClass
    node: str | None
    cascade: bool = False
    role: Role = Role.CAUSE
    layer: Layer = Layer.CURATED
    confidence: Confidence = Confidence.HIGH
    tip: str = ""

    def __post_init__(self) -> None:
        if self.cascade and self.role is not Role.CASCADE:
            object.__setattr__(self, "role", Role.CASCADE)
        object.__setattr__(self, "cascade", self.role is Role.CASCADE)

    def to_json(self) -> dict:
        return {
            "line_no": self.line_no,
            "signal": self.signal,
            "error_type": self.error_type,
            "class": self.failure_class.value,
            "node": self.node,
            "role": self.role.value,
            "layer": self.layer.value,
            "confidence": self.confidence.value,
        }


@dataclass(frozen=True)
class HangConfig:
    """How the sidecar decides that a live job is hung (see ``progress.ProgressTracker``)."""

    enabled: bool = True
    pace_factor: float = 10.0  # hung after this many recent iteration intervals without one
    floor_s: float = 5.0  # never call a hang sooner than this after the last iteration
    ceiling_s: float = 1800.0  # always call a hang after this long without an iteration
    startup_timeout_s: float = 1800.0  # before the first iteration: no output at all this long
    checkpoint_timeout_s: float = 3600.0  # a save may run silently this long (the first one; the cap)
    save_factor: float = 5.0  # later saves: this many times the run's longest save so far ...
    save_floor_s: float = 60.0  # ... but at least this long


class ProgressKind(enum.Enum):
    """What a progress line says (``progress.py`` reads them; a preset's ``progress`` lists them)."""

    STEP = "step"  # a training step ended: the pace, and the start of training
    ACTIVITY = "activity"  # work between steps (a validation bar): the job is alive, not a step
    SAVING = "saving"  # a checkpoint save began: the save window replaces the pace
    SAVED = "saved"  # ... and ended (with its iteration: the last checkpoint)
    LOADED = "loaded"  # a checkpoint was loaded (with its iteration: the last checkpoint)


@dataclass(frozen=True)
class ProgressFormat:
    """One progress line format: a RE2 pattern with optional named groups ``iteration`` (the
    step's number), ``epoch`` and ``total`` (a per-epoch counter: the position is epoch x total
    + iteration; ``total`` alone: a counter whose run of steps ends at its total, as a bar at
    100%). A step without ``iteration`` still counts as a step (pace, training started)."""

    name: str
    pattern: str
    kind: ProgressKind = ProgressKind.STEP
    description: str = ""


@dataclass(frozen=True)
class FamilySettings:
    """The family layer (``families``): on or off, and rules the user switched off."""

    enabled: bool = True
    disabled: tuple[str, ...] = ()


@dataclass(frozen=True)
class MonitoringConfig:
    """A validated monitoring preset: ordered signals (first match wins; the user's own come
    first), never-fire rules, and the family layer behind them."""

    name: str
    signals: tuple[Signal, ...]
    ignore: tuple[str, ...]
    hang: HangConfig
    kill_grace_s: float = 2.0
    families: FamilySettings = FamilySettings()
    # the progress line formats, in order (the first that matches a line decides); None: the
    # built-in ones (``progress.BUILTIN_FORMATS``)
    progress: tuple[ProgressFormat, ...] | None = None


@dataclass(frozen=True)
class Verdict:
    """What a log says: the root cause, the evidence after it, the node, and progress."""

    root: SignalHit | None
    evidence: tuple[SignalHit, ...]
    node: str | None
    last_iteration: int | None
    last_checkpoint: int | None
    evidence_total: int = 0  # all evidence hits seen, ``evidence`` keeps only the first few
    superseded: tuple[SignalHit, ...] = ()  # earlier roots a stronger line replaced (symptom -> death -> memory)
    why: str = ""  # how the root was chosen over the other lines (for ``classify --explain``)

    @property
    def failure_class(self) -> FailureClass | None:
        return self.root.failure_class if self.root else None

    @property
    def error_type(self) -> str | None:
        return self.root.error_type if self.root else None
