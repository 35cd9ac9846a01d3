"""Training progress from the log, and hang detection that learns the job's pace.

What a line says about progress comes from one table of formats (``BUILTIN_FORMATS``, or a
preset's ``progress`` list, which a user's config overrides by name): the step lines of
Megatron-LM (and NeMo 2), torchtitan, DeepSpeed, HF Trainer, Lightning (and NeMo), fairseq and
Composer, their checkpoint saves and loads, and the validation bars between steps. Each format
is a RE2 pattern whose named group ``iteration`` is the step's number (``epoch`` and ``total``:
a per-epoch counter). A progress bar redraws itself with carriage returns inside one physical
line; each ``\\r`` part is read in order, so the last step in the line counts, and a bar still
being drawn (no newline yet) is read as it grows (``observe_partial``).

A fixed inactivity timeout is both slow (300 s for a job that logs every 0.2 s) and wrong (a
checkpoint save may print nothing for minutes). So: once step lines appear, the job is
hung when no new one arrives for ``pace_factor`` times the recent interval between them
(median of the last few, clamped to [floor_s, ceiling_s]); while a checkpoint save is running,
the save is hung after ``save_factor`` times the longest save seen so far (at least
``save_floor_s``; the first save, with nothing learned yet, gets ``checkpoint_timeout_s``, which
also caps the window): a rank that stops during a save is found in minutes, not after torch's
own 30-minute process-group timeout. Before the first step (imports, data loading,
checkpoint loading) only a total silence of ``startup_timeout_s`` counts. Time is passed in so
that the rule is a pure function of what was observed and when.
"""

from __future__ import annotations

import re
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import re2

from sidecar.classify.model import HangConfig, ProgressFormat, ProgressKind

STEP, ACTIVITY, SAVING, SAVED, LOADED = (ProgressKind.STEP, ProgressKind.ACTIVITY, ProgressKind.SAVING,
                                         ProgressKind.SAVED, ProgressKind.LOADED)
# What a launcher puts in front of a line: srun --label's "0: ", torchrun's "[default0]:"
_PREFIX = r"(?:\d+: ?)?(?:\[\w+\]: ?){0,2}"
# The named groups a format may have.
GROUPS = ("iteration", "epoch", "total")

# One table, first match wins within a line (or a part of a bar line). Each wording is what
# the program prints; tests/classify/test_progress_formats.py has a real line of each.
BUILTIN_FORMATS: tuple[ProgressFormat, ...] = (
    # Megatron-LM's training_log(); NeMo 2's progress line says "iteration 119/999 |" too
    ProgressFormat("megatron", r"\biteration\s+(?P<iteration>\d+)\s*/\s*\d+\s*\|", STEP,
                   "Megatron-LM: ' [2024-05-01 12:00:00] iteration      120/    1000 | consumed samples: ...'"),
    ProgressFormat("megatron_saving", r"\bsaving checkpoint at iteration\s+(?P<iteration>\d+)", SAVING,
                   "Megatron-LM: 'saving checkpoint at iteration     100 to /ckpt in torch_dist format'"),
    ProgressFormat("megatron_saved", r"\b[Ss]uccessfully saved checkpoint (?:from|at) iteration\s+(?P<iteration>\d+)",
                   SAVED, "Megatron-LM: '  successfully saved checkpoint from iteration     100 to /ckpt ...'; "
                   "NeMo's 'Successfully saved checkpoint from iteration     100 to ...'"),
    ProgressFormat("megatron_loaded",
                   r"\bload(?:ing|ed) (?:distributed )?checkpoint from .* at iteration\s+(?P<iteration>\d+)",
                   LOADED, "Megatron-LM: ' successfully loaded checkpoint from /ckpt [ t 1/1, p 1/1 ] at iteration 100'"),
    # an integer global step in a progress line: NeMo 2's "| global_step: 119 |", DeepSpeed's
    # throughput timer. Not a Lightning bar's postfix ("global_step=119.0", "1.19e+3" past
    # 999: tqdm's 3 digits): the bar's own count is read by the lightning format.
    ProgressFormat("nemo", r"\bglobal_step(?:=|: )(?P<iteration>\d+)(?:,| \|)", STEP,
                   "NeMo 2: 'Training epoch 0, iteration 119/999 | lr: 0.0001 | global_step: 119 | ...'; DeepSpeed: "
                   "'epoch=0/micro_step=10/global_step=10, RunningAvgSamplesPerSec=62.1, ...'"),
    ProgressFormat("nemo_saved", r"\bGlobal Checkpoint Save : Rank: \d+ : Iteration: (?P<iteration>\d+)", SAVED,
                   "NeMo: 'Global Checkpoint Save : Rank: 0 : Iteration: 100 : Start time: ... : Save duration: 3.2s'"),
    # torchtitan colours its fields by default ("- \x1b[31mstep:  1  \x1b[32mloss: 12.2"); its
    # validation line is "validate step: 10  loss: ..."
    ProgressFormat("torchtitan", r"(?:- |\x1b\[[\d;]*m)step:\s*(?P<iteration>\d+)\s+(?:\x1b\[[\d;]*m)?loss:", STEP,
                   "torchtitan: '[titan] 2025-01-10 10:00:00,123 - root - INFO - step: 10  loss:  7.41830  "
                   "grad_norm:  1.2345  memory: ...'"),
    ProgressFormat("torchtitan_validation", r"validate step:\s*\d+\s+(?:\x1b\[[\d;]*m)?loss:", ACTIVITY,
                   "torchtitan: '... - INFO - validate step: 10  loss:  7.4183  memory: ...'"),
    ProgressFormat("torchtitan_saved", r"\bFinished (?:saving|staging) the checkpoint\b|\bLast step checkpoint completed in\b",
                   SAVED, "torchtitan: 'Finished saving the checkpoint in 3.21 seconds.' (older: 'Finished saving the "
                   "checkpoint (or staging if async is enabled)in 3.21 seconds.')"),
    ProgressFormat("torchtitan_saving",
                   r"\b(?:Saving|Staging) the checkpoint(?: \(or staging if async is enabled\))?\."
                   r"|\bSaving a (?:full|model only) checkpoint .*at last step, step (?P<iteration>\d+)",
                   SAVING, "torchtitan: 'Saving the checkpoint.', 'Saving a full checkpoint at last step, step 1000.'"),
    ProgressFormat("torchtitan_loaded", r"\bLoading the checkpoint (?:at step |from \S*?step-)(?P<iteration>\d+)",
                   LOADED, "torchtitan: 'Loading the checkpoint from ./outputs/checkpoint/step-100.'"),
    ProgressFormat("deepspeed", r"\[Rank \d+\] step=(?P<iteration>\d+), skipped=\d+", STEP,
                   "DeepSpeed: '[INFO] [logging.py:107:log_dist] [Rank 0] step=10, skipped=0, lr=[0.0001], ...'"),
    ProgressFormat("deepspeed_pipe", r"\bsteps: (?P<iteration>\d+) loss: [-+\w.]+ (?:.* )?iter time \(s\):", STEP,
                   "DeepSpeed's pipeline engine: 'steps: 10 loss: 2.1034 iter time (s): 0.512 samples/sec: 62.500'"),
    ProgressFormat("deepspeed_saving",
                   r"(?:\bSaving model checkpoint: \S*?|\[Torch\] Checkpoint )global_step(?P<iteration>\d+)(?:/| is about to be saved)",
                   SAVING, "DeepSpeed: '[Rank 0] Saving model checkpoint: /ckpt/global_step100/mp_rank_00_model_states.pt', "
                   "'[Torch] Checkpoint global_step100 is about to be saved!'"),
    ProgressFormat("deepspeed_saved", r"\[Torch\] Checkpoint global_step(?P<iteration>\d+) is ready now", SAVED,
                   "DeepSpeed before 0.15: '[Torch] Checkpoint global_step100 is ready now!'"),
    # Lightning's TQDMProgressBar ("{l_bar}{bar}| {n_fmt}/{total_fmt} [...]"); NeMo's bars too
    ProgressFormat("lightning",
                   r"\bEpoch (?P<epoch>\d+):\s*(?::\s*)?(?:(?:\d{1,3}%)?\|[^|\r]*\|\s*)?(?P<iteration>\d+)"
                   r"(?:/(?P<total>\d+)|/\?|it) \[",
                   STEP, "Lightning: 'Epoch 0:  12%|█▏        | 120/1000 [00:10<01:15, 11.62it/s, v_num=0]'"),
    ProgressFormat("lightning_validation",
                   r"\b(?:Validation|Sanity Checking|Testing)(?: DataLoader \d+)?: .*\d+(?:/(?:\d+|\?)|it) \[",
                   ACTIVITY, "Lightning: 'Validation DataLoader 0:  40%|████      | 20/50 [00:01<00:01, 18.20it/s]'"),
    ProgressFormat("lightning_saving", r"\bglobal step (?P<iteration>\d+): .*\bsaving model to ", SAVING,
                   "Lightning's ModelCheckpoint(verbose=True): \"Epoch 0, global step 100: 'val_loss' reached "
                   "2.10000 (best 2.10000), saving model to '/ckpt/epoch=0-step=100.ckpt' as top 1\""),
    ProgressFormat("hf_trainer", r"\{'loss': '?[-+\w.]+'?, .*'epoch': '?[\d.]+'?\}", STEP,
                   "HF Trainer's log dict (no step number): \"{'loss': '2.104', 'grad_norm': '0.873', "
                   "'learning_rate': '4.9e-05', 'epoch': '0.5'}\" (before 5.0: numbers unquoted)"),
    ProgressFormat("hf_trainer_eval", r"\{'eval_loss': ", ACTIVITY,
                   "HF Trainer's evaluation result: \"{'eval_loss': '2.031', 'eval_runtime': '3.1', ...}\""),
    ProgressFormat("hf_trainer_saving", r"\bSaving model checkpoint to \S*?checkpoint-(?P<iteration>\d+)", SAVING,
                   "HF Trainer (log level info): 'Saving model checkpoint to /out/checkpoint-500'"),
    # a tqdm bar without a description (HF Trainer's); described bars (datasets' "Map:",
    # "Loading checkpoint shards:") are not training steps. A bar that reaches its total ends
    # its run of steps (a user's own data preparation bar before training): see ``done``.
    ProgressFormat("tqdm", r"(?:^|\r)" + _PREFIX + r" *\d{1,3}%\|[^|\r]*\| *(?P<iteration>\d+)/(?P<total>\d+) \[", STEP,
                   "tqdm (HF Trainer): '  1%|          | 12/1000 [00:05<07:30,  2.19it/s]'"),
    # "num_updates=100" (train_inner), "| num_updates 1563 |" (end of epoch), json
    # '"num_updates": "100"' or '"train_num_updates": "1563"'
    ProgressFormat("fairseq", r"(?:\b|_)num_updates(?:=| |\": \"?)(?P<iteration>\d+)", STEP,
                   "fairseq: '... | INFO | train_inner | epoch 001:    100 / 1563 loss=9.312, ..., num_updates=100, ...'"),
    ProgressFormat("fairseq_saving", r"\bPreparing to save checkpoint for epoch \d+ @ (?P<iteration>\d+) updates",
                   SAVING, "fairseq: 'Preparing to save checkpoint for epoch 1 @ 1563 updates'"),
    ProgressFormat("fairseq_saved", r"(?i)\bsaved checkpoint \S+ \(epoch \d+ @ (?P<iteration>\d+) updates", SAVED,
                   "fairseq: 'Saved checkpoint checkpoints/checkpoint1.pt (epoch 1 @ 1563 updates, score 9.1) "
                   "(writing took 1.9 seconds)'"),
    ProgressFormat("fairseq_loaded", r"\bLoaded checkpoint \S+ \(epoch \d+ @ (?P<iteration>\d+) updates", LOADED,
                   "fairseq: 'Loaded checkpoint checkpoints/checkpoint_last.pt (epoch 2 @ 1563 updates)'"),
    # Composer's console logger: "[epoch=1][batch=10/100]:" (epochs 1-based) or, for a duration
    # in batches, tokens or samples, "[batch=10/100]:", "[token=20480/1000000]:"
    ProgressFormat("composer",
                   r"(?:\[epoch=(?P<epoch>\d+)\])?\[(?:batch|token|sample)=(?P<iteration>\d+)(?:/(?P<total>\d+))?\]",
                   STEP, "Composer: '[epoch=1][batch=10/100]:', '[batch=10/100]:'"),
    ProgressFormat("composer_eval", r"\[Eval batch=\d+/\d+\] Eval on ", ACTIVITY,
                   "Composer: '[Eval batch=5/100] Eval on eval data:'"),
)

_PACE_WINDOW = 5  # step intervals in the median: recent pace, robust to one slow step
# Block-buffered stdout (python under srun without -u) delivers step lines in bursts:
# twenty lines at once, then nothing for a minute. Gaps shorter than this are the same burst;
# counting them would make the pace ~0 and call every pause between bursts a hang.
_BURST_S = 0.05
# Progress lines are short: a line is read in its first this many bytes; a bar line (\r parts)
# in its last, where the latest redraws are.
LINE_BYTES = 4096
_NAMED = re.compile(r"\(\?P<\w+>")


@dataclass(frozen=True)
class ProgressEvent:
    """What one progress line says: its kind, the format, and its number (if it has one)."""

    kind: ProgressKind
    format: str
    iteration: int | None = None  # the step's number: epoch x total + iteration for per-epoch counters
    order: tuple[int, int] | None = None  # (epoch, iteration): what "later" means for steps
    # a counter that reached its total (no epoch): the run of steps it counted is over
    done: bool = False


def _number(m, name: str) -> int | None:
    try:
        value = m.group(name)
    except (IndexError, KeyError):
        return None
    return int(value) if value is not None else None


class ProgressReader:
    """A compiled format table: ``read(line)`` says what a line means for progress. Pure."""

    def __init__(self, formats: Iterable[ProgressFormat] | None = None) -> None:
        from sidecar.classify.config import re2_options

        self.formats = tuple(BUILTIN_FORMATS if formats is None else formats)
        opts = re2_options()
        self._compiled = [(f, re2.compile(f.pattern, opts)) for f in self.formats]
        # one search says whether a line is any kind of progress line (groups unnamed: the
        # same name in two formats is an error in one pattern)
        self._by_kinds: dict[tuple[frozenset[ProgressKind], bool], Any] = {}
        self.any = self._any_of(frozenset(ProgressKind))

    def read(self, line: bytes) -> list[ProgressEvent]:
        """The progress events of one physical line, in order (each ``\\r`` part of a bar)."""
        if self.any is None:
            return []
        if b"\r" not in line:
            part = line[:LINE_BYTES]
            event = self._event(part) if self.any.search(part) else None
            return [event] if event else []
        tail = line[-LINE_BYTES:]
        parts = tail.split(b"\r")
        if len(tail) < len(line):
            parts = parts[1:]  # the first part was cut by the window
        return [e for e in map(self._event, parts) if e is not None]

    def _event(self, part: bytes) -> ProgressEvent | None:
        if not part or self.any is None or not self.any.search(part):
            return None
        for fmt, rx in self._compiled:
            m = rx.search(part)
            if m is None:
                continue
            it, epoch, total = (_number(m, g) for g in GROUPS)
            order, done = None, False
            if it is not None:
                order = (epoch or 0, it)
                done = epoch is None and total is not None and it >= total > 0
                if epoch is not None and total is not None:
                    it = epoch * total + it
            return ProgressEvent(fmt.kind, fmt.name, it, order, done)
        return None

    def _any_of(self, kinds: frozenset[ProgressKind], numbered: bool = False):
        """One RE2 search for the formats of ``kinds`` (only those with an ``iteration`` group
        when ``numbered``); None when there are none."""
        key = (kinds, numbered)
        if key not in self._by_kinds:
            from sidecar.classify.config import re2_options

            pats = [_NAMED.sub("(?:", f.pattern) for f, rx in self._compiled
                    if f.kind in kinds and (not numbered or "iteration" in rx.groupindex)]
            self._by_kinds[key] = (re2.compile("(?m)" + "|".join(f"(?:{p})" for p in pats), re2_options())
                                   if pats else None)
        return self._by_kinds[key]

    def last(self, buf: bytes, end: int, *wanted: frozenset[ProgressKind]) -> list[ProgressEvent | None]:
        """For each set of kinds, the last event of one of them with a number in ``buf[:end]``.
        Found backwards in windows that double from 4 KiB (a chunk's last step is near its end),
        searching only for the kinds still missing: RE2 skips the rest in C."""
        found: list[ProgressEvent | None] = [None] * len(wanted)
        hi, window = end, 4096
        while hi > 0:
            missing = [i for i, f in enumerate(found) if f is None]
            if not missing:
                break
            rx = self._any_of(frozenset().union(*(wanted[i] for i in missing)), numbered=True)
            if rx is None:
                break
            lo = max(0, hi - window)
            if lo:
                lo = buf.rfind(b"\n", 0, lo) + 1  # whole lines only
            for start, stop in _line_spans(rx, buf, lo, hi):
                for e in self.read(bytes(buf[start:stop])):
                    for i in missing:
                        if e.kind in wanted[i] and e.iteration is not None:
                            found[i] = e  # later lines of the window replace earlier ones
            hi, window = (lo - 1 if lo else 0), min(window * 2, 1 << 20)
        return found


def _line_spans(rx, buf: bytes, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of each line of ``buf[lo:hi]`` where ``rx`` matches, in order."""
    pos = lo
    while pos < hi:
        m = rx.search(buf, pos, hi)
        if m is None:
            return
        start = max(lo, buf.rfind(b"\n", lo, m.start()) + 1)
        stop = buf.find(b"\n", m.start(), hi)
        stop = hi if stop < 0 else stop
        yield start, stop
        pos = stop + 1


class ProgressTracker:
    """Observe every log line with the time it was seen; ask ``hang_reason(now)``."""

    def __init__(self, hang: HangConfig, formats: Iterable[ProgressFormat] | None = None) -> None:
        self.hang = hang
        self.reader = ProgressReader(formats)
        self.last_iteration: int | None = None
        self.first_iteration: int | None = None
        self.last_checkpoint: int | None = None
        self.saving_checkpoint = False
        self.steps_seen = 0  # step lines that were progress (with a number or without)
        self._last_order: tuple[int, int] | None = None
        self._started_t: float | None = None  # first observation (the sidecar's start)
        self._last_output_t: float | None = None
        self._last_iter_t: float | None = None
        self._save_started_t: float | None = None
        self._save_iteration: int | None = None
        self._paused = False  # a save or other work between two steps: that gap is not pace
        self._counter_done = False  # a counter reached its total: the next step starts a new count
        self._intervals: deque[float] = deque(maxlen=_PACE_WINDOW)
        self.longest_save_s: float | None = None  # the longest save seen (saving -> saved)
        self._partial = b""
        self._anchor = b""  # the last complete redraw read from the line being written

    @property
    def training_started(self) -> bool:
        """A step line was seen: from here the pace decides, not the startup timeout."""
        return self._last_iter_t is not None

    def start(self, now: float) -> None:
        """Mark the start of watching (counts as output for the startup timeout)."""
        if self._started_t is None:
            self._started_t = now
            self._last_output_t = now

    def observe(self, line: str | bytes, now: float) -> None:
        """A complete line of the log, seen at ``now``."""
        data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        self.start(now)
        self._last_output_t = now
        self._partial = self._anchor = b""
        self._apply_all(self.reader.read(data), now)

    def observe_partial(self, tail: bytes, now: float) -> None:
        """The end of a line still being written (a progress bar redrawn with ``\\r``, no
        newline until its epoch ends): output when it grew, and the steps drawn so far."""
        if not tail or tail == self._partial:
            return
        self._partial = tail
        self.start(now)
        self._last_output_t = now
        if b"\r" not in tail:
            return  # an ordinary line half written: read when its newline arrives
        # only the redraws after the last one read before (the tail is a window that slides)
        seen = tail.rfind(self._anchor) if self._anchor else -1
        new = tail[seen + len(self._anchor):] if seen >= 0 else tail
        end = tail.rfind(b"\r")
        self._anchor = tail[tail.rfind(b"\r", 0, end):end + 1] if end > 0 else b""
        self._apply_all(self.reader.read(new), now)

    def _apply_all(self, events: list[ProgressEvent], now: float) -> None:
        """The events of one read, in order. Of a bar's redraws only the last can be another
        counter (a lower number): the ones before it are history."""
        steps = [i for i, e in enumerate(events) if e.kind is STEP]
        for i, e in enumerate(events):
            if steps and i < steps[-1] and e.kind is STEP and self._is_older(e):
                continue
            self._apply(e, now)

    def _is_older(self, e: ProgressEvent) -> bool:
        return e.order is not None and self._last_order is not None and e.order < self._last_order

    def _apply(self, e: ProgressEvent, now: float) -> None:
        if e.kind is STEP:
            self._on_step(e, now)
        elif e.kind is ACTIVITY:
            if self._last_iter_t is not None:  # alive between steps: the clock restarts, no pace
                self._last_iter_t, self._paused = now, True
        elif e.kind is SAVING:
            self.saving_checkpoint = True
            self._save_started_t = now
            self._save_iteration = e.iteration if e.iteration is not None else self.last_iteration
        elif e.kind is SAVED:
            self._end_save(now)
            if e.iteration is not None:
                self.last_checkpoint = e.iteration
            # the pace clock restarts when the save ends, not when the last step was seen
            self._last_iter_t = now if self._last_iter_t is not None else None
        elif e.kind is LOADED and e.iteration is not None:
            self.last_checkpoint = e.iteration

    def _end_save(self, now: float) -> None:
        if self.saving_checkpoint and self._save_started_t is not None:
            took = now - self._save_started_t
            self.longest_save_s = max(took, self.longest_save_s or 0.0)
        self.saving_checkpoint = False
        self._paused = True

    def _on_step(self, e: ProgressEvent, now: float) -> None:
        if self._is_older(e):
            # another counter of the same format (HF's evaluation bar between two training
            # steps, a rank behind): the job is alive, but that is not a step
            self._apply(ProgressEvent(ACTIVITY, e.format), now)
            return
        if e.order is not None and e.order == self._last_order:
            return  # a repeated line (a rank echoing, a bar redrawn) is not progress
        if e.order is not None:
            self._last_order = e.order
        if self.saving_checkpoint:  # a save whose format prints no end line ends with the next step
            self._end_save(now)
        if self._last_iter_t is not None and not self._paused:
            gap = now - self._last_iter_t
            if gap >= _BURST_S:  # lines of one burst (buffered stdout, a poll) are one arrival
                self._intervals.append(gap)
        if e.iteration is not None:
            if self.first_iteration is None or self._counter_done:
                self.first_iteration = e.iteration
            self.last_iteration = e.iteration
        self.steps_seen += 1
        self._last_iter_t = now
        self._paused = self._counter_done = False
        if e.done:
            self._end_of_counter(now)

    def _end_of_counter(self, now: float) -> None:
        """A counter reached its total (a tqdm bar at 100%): the steps it counted are over,
        whatever they were. A bar of the user's own data preparation before training looks
        like steps; its pace must not call the minutes until training starts a hang. So from
        here it is as before the first step: the startup timeout, and a new count."""
        self._last_iter_t = None
        self._last_output_t = now
        self._last_order = None
        self._intervals.clear()
        self._counter_done = True

    def iteration_timeout_s(self) -> float:
        """How long without a new step counts as hung, from the recent pace."""
        h = self.hang
        if not self._intervals:
            return h.ceiling_s  # one step line only: no pace yet
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
                at = f" at iteration {self._save_iteration}" if self._save_iteration is not None else ""
                return f"checkpoint save{at} running for {running:.0f} s ({how})"
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
            after = (f"iteration {self.last_iteration}" if self.last_iteration is not None
                     else f"step line {self.steps_seen}")
            return (f"no new iteration for {waited:.1f} s after {after} "
                    f"(limit {limit:.1f} s: {h.pace_factor:g} x recent interval {pace}, "
                    f"floor {h.floor_s:g} s, ceiling {h.ceiling_s:g} s)")
        return None
