"""Claims: who decides what follows an attempt, and taking a claim over from a holder that died.

Deciding an attempt is claimed with an exclusive create of ``attempts/<n>/decide.claim``; the
claim holds its holder (Slurm job id, host, pid, time). Two parties may want the same attempt:
the fast path inside the dying job and the watchdog that Slurm starts after it. The first
claim wins; another party takes a claim over only when its holder is provably gone (its job is
terminal in Slurm, or its pid is gone on this same host). A slow holder (an sbatch retrying for
minutes) is alive and keeps its claim. A takeover is itself exclusive (one per dead holder),
so two parties that both see the holder gone cannot both take over.

``holder_gone`` is pure; ``take_claim`` is the thin I/O around it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from loguru import logger

from sidecar.errors import SlurmError
from sidecar.rundir import atomic_write_text, exclusive_create
from sidecar.slurm.types import JobState, SlurmClient


@dataclass(frozen=True)
class Holder:
    """The party that holds a claim."""

    job_id: str | None  # the Slurm job the holder runs in (None: outside any job)
    host: str
    pid: int
    time: float

    @classmethod
    def me(cls, now: float | None = None) -> "Holder":
        return cls(os.environ.get("SLURM_JOB_ID") or None, socket.gethostname(), os.getpid(),
                   time.time() if now is None else now)

    def to_text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        """The holder a claim file names; None for a claim that names none (an old
        ``pid N on host`` claim, or one torn by a crash), which is never taken over."""
        try:
            d = json.loads(text)
            return cls(d.get("job_id") or None, str(d["host"]), int(d["pid"]), float(d["time"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}" + (f" in job {self.job_id}" if self.job_id else "")


class Liveness(enum.Enum):
    ALIVE = "alive"
    GONE = "gone"


def holder_gone(holder: Holder, *, here: str, pid_alive: bool | None,
                job_state: JobState | None) -> tuple[Liveness, str]:
    """Whether ``holder`` is provably gone. ``pid_alive`` is only known on the holder's own host
    (None elsewhere); ``job_state`` is Slurm's state of the holder's job (None: not asked or
    unknown). Anything short of proof is ALIVE: a lost claim is repaired by ``resume``, a
    doubled job is not."""
    if holder.host == here and pid_alive is False:
        return Liveness.GONE, f"{holder.describe()}: the process is gone"
    if job_state is not None and job_state.is_terminal:
        return Liveness.GONE, f"{holder.describe()}: its job is {job_state.value}"
    return Liveness.ALIVE, f"{holder.describe()} may still be working"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2: stat.rindex(b")") + 3] != b"Z"
    except (OSError, ValueError):
        return True


def probe(holder: Holder, client: SlurmClient | None,
          alive: Callable[[int], bool] = pid_alive) -> tuple[Liveness, str]:
    """Look the holder up (its pid when it ran here, its job in Slurm) and judge."""
    here = socket.gethostname()
    pid_state = alive(holder.pid) if holder.host == here else None
    job_state = None
    if pid_state is not False and holder.job_id and client is not None:
        try:
            job_state = client.job_info(holder.job_id).state
        except SlurmError as exc:
            logger.warning("cannot ask Slurm about job {} (holder of a claim): {}", holder.job_id,
                           exc.message)
    return holder_gone(holder, here=here, pid_alive=pid_state, job_state=job_state)


def read_holder(path: Path) -> Holder | None:
    try:
        return Holder.parse(Path(path).read_text(encoding="utf-8"))
    except OSError:
        return None


def take_claim(path: Path, client: SlurmClient | None, me: Holder | None = None,
               alive: Callable[[int], bool] = pid_alive) -> tuple[bool, str]:
    """Claim ``path`` for ``me``: (True, how) for the one party that now holds it, (False, why
    not) otherwise."""
    me = me or Holder.me()
    if exclusive_create(path, me.to_text()):
        return True, "claimed"
    holder = read_holder(path)
    if holder is None:
        return False, f"{path} is held (holder not recorded)"
    if holder == me:
        return True, "already ours"
    state, why = probe(holder, client, alive)
    if state is Liveness.ALIVE:
        return False, why
    # one takeover per dead holder: its signature names the lock
    sig = hashlib.sha1(holder.to_text().encode()).hexdigest()[:16]
    if not exclusive_create(path.with_name(f"{path.name}.takeover-{sig}"), me.to_text()):
        return False, f"another party is taking over from {holder.describe()}"
    atomic_write_text(path, me.to_text())
    return True, f"taken over: {why}"
