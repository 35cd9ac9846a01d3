"""The run directory: the single source of truth of a run, and every file-name convention.

Layout (one run, on the shared filesystem)::

    <run>/.autoexp-run             marks a run dir (holds the run id); the epilog hook looks for it
    <run>/run.yaml                 frozen, resolved config (what was submitted)
    <run>/train.sbatch             rendered training script; watchdog.sbatch likewise
    <run>/events.jsonl             append-only history (never rewritten)
    <run>/STOP                     an intentional stop request (``autoexp-sidecar stop``)
    <run>/logs/train-<job>.out     the training job's log (what the sidecar follows)
    <run>/logs/watchdog-<job>.out  a watchdog's log
    <run>/attempts/<n>/            per attempt: train_job, watchdog_job, marker.json, end.json,
                                   progress.json, decision.json, sidecar.log, claims,
                                   step.pgid (the training's process group)
    <run>/endings/<job>.json       written by the optional epilog hook (hooks/epilog)
    <run>/checkpoints/             default checkpoint dir of the backends

Rules: writes are atomic (temp file + fsync + os.replace); events are only appended; each
attempt is claimed with an exclusive create (mkdir / O_CREAT|O_EXCL are atomic on NFS and
Lustre), so two watchdogs never resubmit the same attempt; nothing read from here is executed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sidecar.errors import RunDirError
from sidecar.history import EventKind

RUN_MARKER = ".autoexp-run"
# Paths relative to the run directory that are also spelled in shell (the training script gets
# them from here through sidecar.render): {attempt} and {job} are filled by the caller.
ATTEMPT_DIR = "attempts/{attempt}"
TRAIN_LOG = "logs/train-{job}.out"
WATCHDOG_LOG = "logs/watchdog-{job}.out"
SIDECAR_LOG = ATTEMPT_DIR + "/sidecar.log"
STEP_PGID = ATTEMPT_DIR + "/step.pgid"  # the training's process group (the fast path ends it)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new content, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or garbled (a garbled file loses
    nothing: the history in events.jsonl is the record)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None


def exclusive_create(path: Path, text: str = "") -> bool:
    """Create ``path`` only if it does not exist. True for the one caller that created it."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        path.unlink(missing_ok=True)  # a full disk must not leave a claim nobody holds
        raise
    return True


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run directory."""

    root: Path

    @classmethod
    def of(cls, root: str | os.PathLike[str]) -> "RunPaths":
        return cls(Path(root).expanduser().resolve())

    # -- run level
    @property
    def run_marker(self) -> Path: return self.root / RUN_MARKER
    @property
    def config(self) -> Path: return self.root / "run.yaml"
    @property
    def train_script(self) -> Path: return self.root / "train.sbatch"
    @property
    def watchdog_script(self) -> Path: return self.root / "watchdog.sbatch"
    @property
    def events(self) -> Path: return self.root / "events.jsonl"
    @property
    def stop_request(self) -> Path: return self.root / "STOP"
    @property
    def logs(self) -> Path: return self.root / "logs"
    @property
    def attempts(self) -> Path: return self.root / "attempts"
    @property
    def endings(self) -> Path: return self.root / "endings"
    @property
    def checkpoints(self) -> Path: return self.root / "checkpoints"

    # -- logs (Slurm expands %j itself; we pass these patterns to sbatch --output)
    @property
    def train_log_pattern(self) -> Path: return self.root / TRAIN_LOG.format(job="%j")
    @property
    def watchdog_log_pattern(self) -> Path: return self.root / WATCHDOG_LOG.format(job="%j")

    def train_log(self, job_id: str) -> Path: return self.root / TRAIN_LOG.format(job=job_id)
    def watchdog_log(self, job_id: str) -> Path: return self.root / WATCHDOG_LOG.format(job=job_id)
    def ending(self, job_id: str) -> Path: return self.endings / f"{job_id}.json"

    # -- per attempt
    def attempt_dir(self, n: int) -> Path: return self.root / ATTEMPT_DIR.format(attempt=n)
    def train_job_file(self, n: int) -> Path: return self.attempt_dir(n) / "train_job"
    def watchdog_job_file(self, n: int) -> Path: return self.attempt_dir(n) / "watchdog_job"
    def marker(self, n: int) -> Path: return self.attempt_dir(n) / "marker.json"
    def end_record(self, n: int) -> Path: return self.attempt_dir(n) / "end.json"
    def progress(self, n: int) -> Path: return self.attempt_dir(n) / "progress.json"
    def decision(self, n: int) -> Path: return self.attempt_dir(n) / "decision.json"
    def sidecar_log(self, n: int) -> Path: return self.root / SIDECAR_LOG.format(attempt=n)
    def decide_claim(self, n: int) -> Path: return self.attempt_dir(n) / "decide.claim"
    def step_pgid(self, n: int) -> Path: return self.root / STEP_PGID.format(attempt=n)

    # -- operations
    def create(self, run_id: str) -> None:
        """Make a new, private run directory. Refuses to reuse a non-empty directory."""
        if self.root.exists() and any(self.root.iterdir()):
            raise RunDirError(
                f"run directory {self.root} already exists and is not empty",
                "choose another run name (run_name=...) or remove the old run directory",
            )
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        for d in (self.logs, self.attempts, self.endings, self.checkpoints):
            d.mkdir(exist_ok=True)
        atomic_write_text(self.run_marker, run_id + "\n")

    def require(self) -> "RunPaths":
        if not self.run_marker.is_file():
            raise RunDirError(
                f"{self.root} is not a run directory (no {RUN_MARKER})",
                "pass the run directory printed by `autoexp-sidecar submit`",
            )
        return self

    @property
    def run_id(self) -> str:
        try:
            return self.run_marker.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return self.root.name

    def claim_attempt(self, n: int) -> bool:
        """Claim attempt ``n`` (atomic mkdir). True for exactly one caller."""
        self.attempts.mkdir(parents=True, exist_ok=True)
        try:
            self.attempt_dir(n).mkdir()
        except FileExistsError:
            return False
        return True

    def attempt_numbers(self) -> list[int]:
        if not self.attempts.is_dir():
            return []
        return sorted(int(p.name) for p in self.attempts.iterdir() if p.name.isdigit())

    def latest_attempt(self) -> int | None:
        nums = self.attempt_numbers()
        return nums[-1] if nums else None

    def read_job_id(self, path: Path) -> str | None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text if text.isdigit() or "_" in text else None

    # -- history (read it with sidecar.history.read_history)
    def append_event(self, kind: EventKind, now: float | None = None, **fields: Any) -> dict[str, Any]:
        """Append one event to events.jsonl: one write of one line, fsynced. A short write
        (a full disk) is cut back off, so the file never keeps half a line."""
        event = {"time": time.time() if now is None else now, "event": EventKind(kind).value,
                 **fields}
        line = (json.dumps(event, sort_keys=True, default=str) + "\n").encode("utf-8")
        fd = os.open(self.events, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            # a torn last line (a writer killed mid-write) must not swallow this event
            if start and os.pread(fd, 1, start - 1) != b"\n":
                line = b"\n" + line
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(28, "short write to events.jsonl (no space left?)")
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        return event

    def iter_events(self) -> Iterator[dict[str, Any]]:
        """The raw event records in order (kept for callers of the old name; the typed reader
        is ``sidecar.history.read_history``). A garbled line is skipped."""
        from sidecar.history import read_history

        for ev in read_history(self).events:
            yield dict(ev.data)


def find_runs(root: str | os.PathLike[str]) -> list[RunPaths]:
    """The run directories directly under ``root`` (and ``root`` itself if it is one), by name."""
    base = Path(root).expanduser().resolve()
    found = [base] if (base / RUN_MARKER).is_file() else []
    try:
        children = sorted(base.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        children = []
    found += [p for p in children if (p / RUN_MARKER).is_file()]
    return [RunPaths(p) for p in found]
