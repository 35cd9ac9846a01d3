"""Small fakes of the classify contracts (LineClassifier, RootCauseTracker, ProgressTracker) and
of the Slurm client, so the scan loop is tested on its own, with a fake clock."""

from __future__ import annotations

import enum
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path


class FakeClass(enum.Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    TERMINAL = "terminal"


@dataclass
class FakeHit:
    line_no: int
    line: str
    signal: str
    error_type: str
    failure_class: FakeClass
    node: str | None = None
    cascade: bool = False


# substring -> (signal, error_type, class, cascade)
RULES = {
    b"NCCL WARN": ("nccl_warn", "nccl", FakeClass.TRANSIENT, False),
    b"ncclSystemError": ("nccl_system_error", "nccl", FakeClass.TRANSIENT, False),
    b"CUDA out of memory": ("cuda_oom", "oom", FakeClass.PERMANENT, False),
    b"DUE TO TIME LIMIT": ("slurm_time_limit", "timeout", FakeClass.TERMINAL, False),
    b"ChildFailedError": ("elastic_child_failed", "cascade", FakeClass.TRANSIENT, True),
    b"SIGABRT": ("sigabrt", "cascade", FakeClass.TRANSIENT, True),
}


class FakeClassifier:
    def classify(self, line, line_no):
        if isinstance(line, str):
            line = line.encode()
        if b"RAISE-IN-CLASSIFIER" in line:
            raise ValueError("garbled")
        for needle, (sig, et, cls, cascade) in RULES.items():
            if needle in line:
                m = re.match(rb"(\w[\w.-]*):\d+:\d+ ", line)
                node = m.group(1).decode() if m else None
                return FakeHit(line_no, line.decode("utf-8", "replace"), sig, et, cls, node, cascade)
        return None


class FakeRoots:
    def __init__(self):
        self.root = None

    def feed(self, hit):
        if self.root is None and not hit.cascade:
            self.root = hit
            return True
        return False

    def verdict(self, progress):
        return type("V", (), {"node": self.root.node if self.root else None})()


ITER = re.compile(r"iteration\s+(\d+)/")
SAVED = re.compile(r"successfully saved checkpoint .* iteration\s+(\d+)")


class FakeProgress:
    """Pace-based hang detection: no iteration for k x median recent iteration time, clamped."""

    def __init__(self, pace_factor=10.0, floor_s=2.0, ceiling_s=600.0, checkpoint_timeout_s=1800.0):
        self.k, self.floor, self.ceiling, self.ckpt_timeout = pace_factor, floor_s, ceiling_s, checkpoint_timeout_s
        self.first_iteration = self.last_iteration = self.last_checkpoint = None
        self.saving_checkpoint = False
        self._save_started = None
        self._times: list[float] = []

    def observe(self, line, now):
        line = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        if m := ITER.search(line):
            n = int(m.group(1))
            self.first_iteration = n if self.first_iteration is None else self.first_iteration
            self.last_iteration = n
            self._times = (self._times + [now])[-9:]
        elif "saving checkpoint" in line:
            self.saving_checkpoint, self._save_started = True, now
        elif m := SAVED.search(line):
            self.saving_checkpoint, self.last_checkpoint = False, int(m.group(1))
            self._times = [now]

    def hang_reason(self, now):
        if self.saving_checkpoint:
            if now - self._save_started > self.ckpt_timeout:
                return "checkpoint save running too long"
            return None
        if len(self._times) < 3:
            return None
        pace = statistics.median(b - a for a, b in zip(self._times, self._times[1:]))
        limit = min(max(self.k * pace, self.floor), self.ceiling)
        silent = now - self._times[-1]
        if silent > limit:
            return f"no iteration for {silent:.1f} s (pace {pace:.2f} s, limit {limit:.1f} s)"
        return None


class FakeClient:
    def __init__(self, fail_times: int = 0):
        self.calls: list[tuple[str, float | None]] = []
        self.fail_times = fail_times
        self.succeeded = 0
        self.clock = None

    def cancel(self, job_id, signal=None):
        self.calls.append((job_id, self.clock() if self.clock else None))
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("Socket timed out on send/recv operation")
        self.succeeded += 1


@dataclass
class FakeWorld:
    """A fake clock whose sleep() advances time and plays scheduled appends to the log."""

    log: Path
    t: float = 1_700_000_000.0
    writes: list[tuple[float, bytes]] = field(default_factory=list)
    end_at: float = float("inf")

    def at(self, dt: float, data: bytes) -> None:
        self.writes.append((self.t + dt, data))
        self.writes.sort(key=lambda w: w[0])

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s
        while self.writes and self.writes[0][0] <= self.t:
            _, data = self.writes.pop(0)
            with open(self.log, "ab") as fh:
                fh.write(data)

    def stop(self) -> bool:
        return self.t >= self.end_at
