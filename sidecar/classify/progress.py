"""Training progress from Megatron's log, and hang detection that learns the job's pace.

A fixed inactivity timeout is both slow (300 s for a job that logs every 0.2 s) and wrong (a
checkpoint save may print nothing for minutes). So: once iteration lines appear, the job is
hung when no new one arrives for ``pace_factor`` times the recent interval between them
(median of the last few, clamped to [floor_s, ceiling_s]); while a checkpoint save is running,
the save is hung after ``save_factor`` times the longest save seen so far (at least
``save_floor_s``; the first save, with nothing learned yet, gets ``checkpoint_timeout_s``, which
also caps the window): a rank that stops during a save is found in minutes, not after torch's
own 30-minute process-group timeout. Before the first iteration (imports, data loading,
checkpoint loading) only a total silence of ``startup_timeout_s`` counts. Time is passed in so
that the rule is a pure function of what was observed and when.
"""

from __future__ import annotations

import re
import statistics
from collections import deque

from sidecar.classify.model import HangConfig

# "iteration      120/   1000 | consumed samples: ..." (Megatron's training log line)
_ITERATION = re.compile(rb"\biteration\s+(\d+)\s*/\s*\d+\s*\|")
# "saving checkpoint at iteration     100 to /ckpt ..."
_SAVING = re.compile(rb"\bsaving checkpoint at iteration\s+(\d+)")
# "successfully saved checkpoint from iteration     100 to ..." (older: "at iteration")
_SAVED = re.compile(rb"\bsuccessfully saved checkpoint (?:from|at) iteration\s+(\d+)")
# "loading checkpoint from /ckpt at iteration 100" / "successfully loaded checkpoint from ... at iteration 100"
_LOADED = re.compile(rb"\bload(?:ing|ed) checkpoint from .* at iteration\s+(\d+)")
_PACE_WINDOW = 5  # iteration intervals in the median: recent pace, robust to one slow step
# Block-buffered stdout (python under srun without -u) delivers iteration lines in bursts:
# twenty lines at once, then nothing for a minute. Gaps shorter than this are the same burst;
# counting them would make the pace ~0 and call every pause between bursts a hang.
_BURST_S = 0.05


class ProgressTracker:
    """Observe every log line with the time it was seen; ask ``hang_reason(now)``."""

    def __init__(self, hang: HangConfig) -> None:
        self.hang = hang
        self.last_iteration: int | None = None
        self.first_iteration: int | None = None
        self.last_checkpoint: int | None = None
        self.saving_checkpoint = False
        self._started_t: float | None = None  # first observation (the sidecar's start)
        self._last_output_t: float | None = None
        self._last_iter_t: float | None = None
        self._save_started_t: float | None = None
        self._save_iteration: int | None = None
        self._saved_since_iter = False  # a save between two iterations: that gap is not pace
        self._intervals: deque[float] = deque(maxlen=_PACE_WINDOW)
        self.longest_save_s: float | None = None  # the longest save seen (saving -> saved)

    def start(self, now: float) -> None:
        """Mark the start of watching (counts as output for the startup timeout)."""
        if self._started_t is None:
            self._started_t = now
            self._last_output_t = now

    def observe(self, line: str | bytes, now: float) -> None:
        data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        self.start(now)
        self._last_output_t = now
        if b"iteration" not in data:  # cheap: nearly all progress lines contain the word
            return
        data = data[:4096]  # progress lines are short; bound the work on a giant line
        m = _ITERATION.search(data)
        if m:
            self._on_iteration(int(m.group(1)), now)
            return
        m = _SAVING.search(data)
        if m:
            self.saving_checkpoint = True
            self._save_started_t = now
            self._save_iteration = int(m.group(1))
            return
        m = _SAVED.search(data)
        if m:
            if self.saving_checkpoint and self._save_started_t is not None:
                took = now - self._save_started_t
                self.longest_save_s = max(took, self.longest_save_s or 0.0)
            self.last_checkpoint = int(m.group(1))
            self.saving_checkpoint = False
            self._saved_since_iter = True
            # the pace clock restarts when the save ends, not when the last iteration was seen
            self._last_iter_t = now if self._last_iter_t is not None else None
            return
        m = _LOADED.search(data)
        if m:
            self.last_checkpoint = int(m.group(1))

    def _on_iteration(self, iteration: int, now: float) -> None:
        if self.last_iteration is not None and iteration <= self.last_iteration:
            return  # a repeated or older line (e.g. a rank echoing) is not progress
        if self._last_iter_t is not None and not self._saved_since_iter:
            gap = now - self._last_iter_t
            if gap >= _BURST_S:  # lines of one burst (buffered stdout, a poll) are one arrival
                self._intervals.append(gap)
        if self.first_iteration is None:
            self.first_iteration = iteration
        self.last_iteration = iteration
        self._last_iter_t = now
        self._saved_since_iter = False
        self.saving_checkpoint = False  # a save that never reported success is over anyway

    def iteration_timeout_s(self) -> float:
        """How long without a new iteration counts as hung, from the recent pace."""
        h = self.hang
        if not self._intervals:
            return h.ceiling_s  # one iteration line only: no pace yet
        pace = statistics.median(self._intervals)
        return max(h.floor_s, min(h.ceiling_s, h.pace_factor * pace))

    def save_timeout_s(self) -> float:
        """How long a checkpoint save may run silently, from the run's earlier saves."""
        h = self.hang
        if self.longest_save_s is None:
            return h.checkpoint_timeout_s
        return min(h.checkpoint_timeout_s, max(h.save_floor_s, h.save_factor * self.longest_save_s))

    def hang_reason(self, now: float) -> str | None:
        """Why the job counts as hung at ``now``, or None. Pure: changes nothing."""
        h = self.hang
        if not h.enabled or self._started_t is None:
            return None
        if self.saving_checkpoint and self._save_started_t is not None:
            running = now - self._save_started_t
            limit = self.save_timeout_s()
            if running > limit:
                how = (f"checkpoint_timeout_s {h.checkpoint_timeout_s:g}" if self.longest_save_s is None
                       else f"limit {limit:.0f} s: {h.save_factor:g} x longest earlier save "
                            f"{self.longest_save_s:.1f} s, floor {h.save_floor_s:g} s")
                return (f"checkpoint save at iteration {self._save_iteration} running for "
                        f"{running:.0f} s ({how})")
            return None
        if self._last_iter_t is None:
            silent = now - (self._last_output_t or self._started_t)
            if silent > h.startup_timeout_s:
                return (f"no output for {silent:.0f} s before the first iteration "
                        f"(startup_timeout_s {h.startup_timeout_s:g})")
            return None
        waited = now - self._last_iter_t
        limit = self.iteration_timeout_s()
        if waited > limit:
            pace = f"{statistics.median(self._intervals):.3g} s" if self._intervals else "unknown"
            return (f"no new iteration for {waited:.1f} s after iteration {self.last_iteration} "
                    f"(limit {limit:.1f} s: {h.pace_factor:g} x recent interval {pace}, "
                    f"floor {h.floor_s:g} s, ceiling {h.ceiling_s:g} s)")
        return None
