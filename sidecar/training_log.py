"""Training progress points (wall time, iteration, loss) from Megatron-style log lines. Pure.

Megatron's iteration line::

     [2026-12-01 03:50:12] iteration       40/     100 | consumed samples: ... | lm loss: 3.214E+00 | ...

The bracketed time is the training process's local time (as are Slurm's start/end times).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

_ITER_LINE = re.compile(
    rb"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)?\]\s+iteration\s+(\d+)\s*/\s*\d+\s*\|")
_LOSS = re.compile(rb"\|\s*lm loss:\s*([0-9.]+(?:[Ee][+-]?\d+)?)\s*\|")
_LOADED = re.compile(rb"\bsuccessfully loaded checkpoint from .* at iteration\s+(\d+)")


@dataclass(frozen=True)
class Point:
    time: float  # epoch seconds
    iteration: int
    loss: float | None


@dataclass(frozen=True)
class AttemptLog:
    points: list[Point]
    resumed_from: int | None  # the checkpoint iteration this attempt loaded


def parse(lines: Iterable[bytes]) -> AttemptLog:
    points: list[Point] = []
    resumed = None
    for line in lines:
        m = _ITER_LINE.search(line)
        if m:
            try:
                t = datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S").timestamp()
            except ValueError:
                continue
            lm = _LOSS.search(line)
            points.append(Point(t, int(m.group(2)), float(lm.group(1)) if lm else None))
            continue
        lo = _LOADED.search(line)
        if lo and resumed is None:
            resumed = int(lo.group(1))
    return AttemptLog(points, resumed)
