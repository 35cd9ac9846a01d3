"""Ending the training step (not the job) from inside the allocation.

train.sbatch starts the training in its own process group (setsid) and writes the group's id
to ``attempts/<n>/step.pgid``. With the fast path on, the sidecar ends a failed or hung step
by signalling that group; the batch script lives on to decide and submit what follows (or, in
the in-allocation mode, to start the next step). SIGCONT goes with SIGTERM because a stopped
process (SIGSTOP, a debugger) acts on nothing else; whatever is left after the grace gets SIGKILL.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable

from loguru import logger


def read_pgid(path: Path) -> int | None:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 1 else None


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_group(pgid: int, grace_s: float, *, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> str:
    """TERM (+CONT) the process group, KILL what is left after ``grace_s``. Returns how it ended."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return "already gone"
    deadline = clock() + grace_s
    while clock() < deadline:
        if not group_alive(pgid):
            return "ended on SIGTERM"
        sleep(0.02)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return "ended on SIGTERM"
    logger.warning("training process group {} did not end within {:g} s of SIGTERM; killed", pgid, grace_s)
    return "killed"


def end_step(pgid_file: Path, grace_s: float = 5.0) -> str:
    """End the step whose process group ``pgid_file`` names. Raises OSError when there is none
    (the caller falls back to cancelling the job)."""
    pgid = read_pgid(pgid_file)
    if pgid is None:
        raise OSError(f"no training process group recorded in {pgid_file}")
    return end_group(pgid, grace_s)
