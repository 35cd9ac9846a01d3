"""The loss curve in a Megatron-style training log, and how two curves compare.

Resume correctness: a run that restarted from its checkpoints must log, at every iteration,
the loss an uninterrupted run logs there. A run that silently restarted from scratch, from the
wrong checkpoint, or skipped data differs. Pure functions of the log text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

# " iteration       12/     200 | ... | lm loss: 6.995502E+00 | ..."
_LINE = re.compile(rb"\biteration\s+(\d+)\s*/\s*\d+\s*\|.*?\blm loss:\s*([-+0-9.eEnaNA]+|inf|INF)")


def loss_curve(logs: Iterable[bytes]) -> dict[int, float]:
    """iteration -> lm loss over the logs of a run's attempts, in order: an iteration logged
    again by a later attempt (the steps after the last checkpoint are redone) takes the new
    value, which is the one the run's model went on from."""
    curve: dict[int, float] = {}
    for log in logs:
        for m in _LINE.finditer(log):
            curve[int(m.group(1))] = float(m.group(2))
    return curve


@dataclass(frozen=True)
class CurveDiff:
    """How a resumed run's curve compares with a reference over their common iterations."""

    common: int              # iterations logged by both
    missing: tuple[int, ...]  # reference iterations the resumed run never logged
    max_abs_diff: float      # largest |loss - reference loss| (nan counts as a difference of inf)
    worst_iteration: int | None

    def summary(self) -> str:
        where = f" at iteration {self.worst_iteration}" if self.worst_iteration is not None else ""
        missing = f", {len(self.missing)} missing" if self.missing else ""
        return (f"largest loss difference {self.max_abs_diff:.3g}{where} over {self.common} "
                f"common iterations{missing}")


def compare(resumed: Mapping[int, float], reference: Mapping[int, float]) -> CurveDiff:
    worst, worst_it = 0.0, None
    common = sorted(set(resumed) & set(reference))
    for it in common:
        a, b = resumed[it], reference[it]
        d = 0.0 if (math.isnan(a) and math.isnan(b)) else abs(a - b)
        if math.isnan(d):
            d = math.inf
        if d > worst or worst_it is None:
            worst, worst_it = d, it
    missing = tuple(sorted(set(reference) - set(resumed)))
    return CurveDiff(len(common), missing, worst, worst_it)
