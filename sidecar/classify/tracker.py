"""Root cause over cascade: which line of a failure episode names what went wrong.

One failure prints many lines (every rank reports it, torch elastic summarises it, srun reports
each task's exit), and not always cause first: when a rank is SIGKILLed, the survivors print
"Connection closed by peer" before the launcher reports the dead rank; when the agent hosting
the rendezvous store exits, the others print store errors. So each hit has a role
(``model.Role``) and the root is chosen by these rules, in log order:

1. The first CAUSE wins; nothing replaces it (later causes are its consequences).
2. A SYMPTOM is the root only until a CAUSE or a DEATH arrives, which replaces it. An NCCL
   error is a symptom when NCCL's detail on the next lines of the same rank (``Last error:``
   then ``socketProgress: Connection closed by remote peer``, ``... failed : Connection reset
   by peer``) says the peer's connection went away: the survivor's view of a dead peer.
3. A DEATH (a rank SIGKILLed) is replaced only by a later verdict that says why the process
   died: a memory verdict (Slurm's or the kernel's oom_kill line, a host OOM); for a process
   asked to stop (SIGTERM), also Slurm's time limit, which signals every process before its
   banner may reach the log.
   b. A GPU or host hardware fault (``HARDWARE``) explains the collective, network and store
      errors and hangs before it (``LOST_PEERS``): a failing GPU silences its rank and the
      others time out, while the driver's own line (dmesg, an epilog, a health check) is
      printed or pasted later.
   c. Slurm ending the step explains what the ranks print while it does: the survivors'
      collective, network and store errors and the signalled processes' reports (the
      ``STEP_END_EXPLAINS`` error types, transient), printed first because slurmstepd's banner
      is written by another process. A node failure reported by srun or slurmstepd replaces such
      a root wherever it appears (the ranks lose their peers on the dead node minutes before
      Slurm notices: SlurmdTimeout, 300 s by default). Slurm's time limit, preemption or requeue
      banner replaces it only while no srun line reported a task's end: once a task ended by
      itself (``srun: error: n1: task 0: Exited with exit code 1``), a banner is Slurm ending
      the rest of the step. A cancel banner (``*** JOB|STEP ... CANCELLED AT ... ***``, as
      scancel) under the same condition replaces only a signalled process (``terminated``), and
      not once the sidecar ends the job itself (its own cancel).
4. A CASCADE line is never the root, with two exceptions that need the lines around it (a, b);
   some lines are cascade by what they say (c).
   Python's ``Exception ignored in: ...`` makes the next hit of the same rank within
   ``IGNORED_TRACEBACK_LINES`` (the final line of the traceback it prints) cascade too: Python
   ignored that exception (a destructor at an epoch's end or at exit), the process goes on.

   a. A report of a process ended by a signal (torch elastic's ``failed (exitcode: -6)``, srun's
      ``task 0: Killed``, an agent's ``Received 15 death signal``) is cascade line by line: it
      usually follows the failure that made the launcher or Slurm end the rest. Printed before
      any srun/slurmstepd line about the step (Slurm ending it) and it is a DEATH: something
      outside the job sent that signal (a kill, a native crash, a signalled torchrun agent),
      and it replaces a survivor's symptom printed first as rule 2 says. Not once the sidecar
      ends the job itself (``job_ending``: after its marker or a hang): its own signal then.
   b. When nothing named a cause, Slurm's banner of a cancelled step or job (``*** STEP 5.0 ON
      n1 CANCELLED AT ... ***``, no ``DUE TO``) is the root: the step was cancelled (scancel or
      an admin), error_type ``scancel``. Only in the verdict: it never ends a running job.
   c. A line that says its failure follows another's (``FOLLOW_ON``: Horovod's "Horovod has been
      shut down. This was caused by an exception on one of the ranks", Ray Train's "Please inspect
      the previous error messages for a cause", JAX's "another task died; see the other task
      logs", PyTorch's "DataLoader worker (pid(s) N) exited unexpectedly") is cascade, whatever
      exception carries it: the cause is on another rank's (or the worker's own) lines.
5. A WRAPPER is not the cause it carries, which it prints after itself (``WRAPPERS``: PyTorch's
   "Caught ReadTimeoutError in DataLoader worker process 3." then the worker's "Original
   Traceback"; ``torch.distributed.checkpoint`` gathers every rank's exception of a save or load
   into one ``CheckpointException ranks:dict_keys([0, 1])`` and prints each rank's traceback after
   it, ``Traceback (most recent call last): (RANK 0)``). While the wrapper is the root, the
   exception it carries replaces it: for a wrapper that names the type, the last line of that
   type on the same rank within ``WRAPPED_LINES`` (Python prints the exception that was raised
   last, after the ones it chained); otherwise the first hit of the same rank there (a read-only
   or full file system, a truncated shard). That line is a cause whatever its role alone (a
   client's ReadTimeoutError is a survivor's symptom elsewhere; here it is what ended the rank).

6. A launcher that restarts its workers (torch elastic's "Worker group FAILED. 1/1 attempts left;
   will restart worker group", ``--max-restarts``) recovered what failed before: the episode
   starts again there, and the root is chosen among the lines after it.

Replaced roots are kept (``Verdict.superseded``) so that ``classify --explain`` can show them.
Later lines are kept as evidence, a bounded number, because a dying job of 1000 ranks can
print thousands of them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Iterable

from sidecar.classify.classifier import LineClassifier
from sidecar.classify.families import IGNORED_RULE, line_body
from sidecar.classify.families.cascade import GROUP_RESTART_RULE
from sidecar.classify.model import FailureClass, Role, SignalHit, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from sidecar.classify.progress import ProgressTracker
    from sidecar.classify.model import MonitoringConfig

MAX_EVIDENCE = 20
MAX_SUPERSEDED = 5
# Error types that say why a process died (rule 3): of memory; at the time limit (a SIGTERM).
MEMORY_VERDICTS = frozenset({"host_oom"})
TERMINATED = "terminated"
# Rule 4a: (what a report of a process ended by a signal says, the error type it gets). The
# numbers are Linux signals: 9 KILL; 4 ILL, 6 ABRT, 7 BUS, 8 FPE, 11 SEGV (a crash or abort);
# 1 HUP, 2 INT, 15 TERM (asked to stop). A rank SIGKILLed is a curated death already. Torch
# elastic's first report of a failed worker only, not its summary block: with several workers
# per node, the summary lists the ones the agent itself stopped after the first failure.
_SIGNAL_DEATHS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"failed \(exitcode: -(?:4|6|7|8|11)\) local_rank"), "crashed"),
    (re.compile(r"failed \(exitcode: -(?:1|2|15)\) local_rank"), TERMINATED),
    (re.compile(r"^(?:\d+: ?)?srun: error: \S+: tasks? [\d,-]+: Killed$"), "killed"),
    (re.compile(r"^(?:\d+: ?)?srun: error: \S+: tasks? [\d,-]+: Terminated$"), TERMINATED),
    # Lightning (2.3+) raises SIGTERMException in every rank that got SIGTERM
    (re.compile(r"Received (?:Signals\.)?(?:SIG\w+|\d+) death signal|SignalException: Process \d+ got signal|\bSIGTERMException\b"), TERMINATED),
)
# srun's and slurmstepd's own lines (``srun: error: ...``, ``0: slurmstepd-n1: error: ...``)
_SLURM_LINE = re.compile(r"^(?:\d+: ?)?(?:srun|slurmstepd)[\w.-]*: ")
# A progress bar (tqdm, Lightning, NeMo: "Epoch 0:  29%|##5   | 700/2400 [11:40<28:20, 1.00it/s, loss=3.4]")
# is rewritten in place with carriage returns and never ends its line: whatever another process
# writes next (srun, slurmstepd, a logger) starts on the bar's line. So Slurm's lines are looked
# for after the last bar on a line (``own_text``).
_PROGRESS_BAR = re.compile(r"\d+/(?:\d+|\?) \[[^\]\r\n]*\]")
_CANCELLED = re.compile(r"\*\*\* (?:STEP|JOB) \S+ ON \S+ CANCELLED AT \S+ \*\*\*")
# Rule 2: an NCCL error whose detail, this many lines later on the same rank, is a lost peer
NCCL_DETAIL_LINES = 4
_NCCL_ERROR_TYPES = frozenset({"nccl"})
# a peer that went away (not one never reached: refused, no route, timed out are network faults)
_LOST_PEER = re.compile(r"(?i)closed by (?:remote )?peer|reset by peer|\[Errno 104\]|Broken pipe")
# Rule 4: the traceback of an exception Python ignored ends within this many lines
IGNORED_TRACEBACK_LINES = 60
# Rule 4c: a process ending because another failed first, in its own words
# (PyTorch's "DataLoader worker (pid(s) N) exited unexpectedly" follows the worker's own report:
# "is killed by signal: Killed", "Unexpected bus error encountered in worker")
FOLLOW_ON = re.compile(r"caused by an exception on one of the ranks|[Ii]nspect the previous error messages for a cause"
                       r"|another task died; see the other task logs|[Cc]heck the task logs for an earlier error"
                       r"|DataLoader worker \(pid\(s\) [\d, ]+\) exited unexpectedly")
# Rule 5: wrappers of an exception printed after them (group 1: the wrapped type, when named),
# and how far below it their tracebacks end (a nested traceback of dcp's save is ~17 lines per
# rank; two ranks' and a deep stack fit)
WRAPPERS = re.compile(r"\bCaught (\w+) in (?:DataLoader worker process \d+|pin memory thread)|\bCheckpointException ranks:")
WRAPPED_LINES = 80
_STEPD_BANNER = re.compile(r"\*\*\* (?:STEP|JOB) \S+ ON \S+ CANCELLED AT ")
# srun reporting that a task ended (rule 3c): from then on Slurm's banners end the rest of the step.
# Not a task ended by SIGTERM ("Terminated"): that is the signal Slurm itself sends when it ends a
# step (time limit, preemption, scancel), and srun may report it before slurmstepd's banner.
_TASK_ENDED = re.compile(r"^(?:\d+: ?)?srun: error: \S+: tasks? [\d,-]+: (?!Terminated$)")
SCANCEL = "scancel"
# What a rank prints when it loses its peers: collective, network and store errors (rules 3b, 3c).
LOST_PEERS = frozenset({"nccl", "nccl_timeout", "network", "peer_lost", "store", "store_timeout"})
# Rule 3b: faults of the hardware that explain them (and a hang).
HARDWARE = frozenset({"gpu_hw", "host_hw"})
# Rule 3c: what the ranks print while Slurm ends the step (they lose peers or get its signal) ...
STEP_END_EXPLAINS = LOST_PEERS | {TERMINATED}
# ... and Slurm's verdicts that end it: a node failure anywhere; the others before any task's end.
NODE_FAILURE = "node_failure"
STEP_ENDS = frozenset({"timeout", "preempted", "requeue", SCANCEL})
_SIGNAL_TIP = ("a process ended by a signal that nothing in the log explains: a kill from outside, "
               "a native crash (SIGSEGV/SIGABRT; if it repeats at the same step, a code or library bug) "
               "or a signalled launcher; the node's kernel log and sacct say more")


def own_text(line: str) -> str:
    """``line`` after the last progress bar written on it (the line itself when it has none)."""
    end = 0
    if "|" in line:
        for m in _PROGRESS_BAR.finditer(line):
            end = m.end()
    return line[end:]


def signal_death(hit: SignalHit) -> SignalHit | None:
    """Rule 4a: the DEATH a cascade report of a process ended by a signal stands for, or None."""
    if hit.role is not Role.CASCADE:
        return None
    for pattern, error_type in _SIGNAL_DEATHS:
        if pattern.search(own_text(hit.line)):
            # node None: a signal says nothing bad about the node of the process (tasks.py)
            return dataclasses.replace(hit, role=Role.DEATH, cascade=False, error_type=error_type, node=None,
                                       failure_class=FailureClass.TRANSIENT, tip=hit.tip or _SIGNAL_TIP)
    return None


def as_scancel(hit: SignalHit) -> SignalHit:
    """Rule 4b: Slurm's banner of a cancelled step or job, read as the cancel itself."""
    # node None: the banner names the batch node, and a cancel says nothing bad about it
    return dataclasses.replace(hit, role=Role.CAUSE, cascade=False, error_type=SCANCEL, node=None,
                               failure_class=FailureClass.TRANSIENT,
                               tip="the step was cancelled (scancel or an admin) and no line names a failure before it")


def step_end_explains(root: SignalHit, hit: SignalHit, tasks_ended: bool) -> str | None:
    """Rule 3c: why Slurm's report ``hit`` of the step's end explains ``root``, or None."""
    explained = STEP_END_EXPLAINS if hit.error_type != SCANCEL else {TERMINATED}
    if (root.error_type in explained and root.failure_class is FailureClass.TRANSIENT and _SLURM_LINE.search(own_text(hit.line))
            and (hit.error_type == NODE_FAILURE or (hit.error_type in STEP_ENDS and not tasks_ended))):
        return (f"Slurm ends the step ({hit.error_type}): the {root.error_type} at line {root.line_no} is what "
                f"the ranks print while it does (they lose peers or get its signal before its line is written)")
    return None


def _prefix(line: str) -> str:
    """What a launcher put in front of the program's own text (``[rank3]: ``, ``12: ``)."""
    data = line.encode("utf-8", "surrogateescape")
    return data[: len(data) - len(line_body(data))].decode("utf-8", "replace").strip()


def lost_peer_detail(root: SignalHit, hit: SignalHit) -> str | None:
    """Rule 2: why ``hit`` (NCCL's detail of the error ``root``) makes that error a symptom, or None."""
    if (root.role is Role.CAUSE and root.error_type in _NCCL_ERROR_TYPES and hit.role is Role.SYMPTOM
            and _LOST_PEER.search(hit.line) and 0 < hit.line_no - root.line_no <= NCCL_DETAIL_LINES
            and _prefix(hit.line) == _prefix(root.line)):
        return (f"NCCL's detail at line {hit.line_no} says a peer's connection went away: "
                f"the {root.error_type} error is a survivor's view of a dead peer (a symptom)")
    return None


def replaces(root: SignalHit | None, hit: SignalHit, tasks_ended: bool = False) -> str | None:
    """Why ``hit`` becomes the root over ``root`` (the rules above), or None if it does not.
    ``tasks_ended``: srun reported a task's end before ``hit`` (rule 3c)."""
    if hit.role in (Role.CASCADE, Role.CONTEXT):
        return None
    if root is None:
        return f"first {hit.role.value} line"
    why = step_end_explains(root, hit, tasks_ended)
    if why is not None:
        return why
    if (hit.error_type in HARDWARE and hit.role is Role.CAUSE and root.failure_class is FailureClass.TRANSIENT
            and root.error_type in LOST_PEERS | {"hang"}):
        return (f"a hardware fault ({hit.error_type}) explains the {root.error_type} at line {root.line_no}: "
                f"a failing GPU or host silences its rank and the others time out")
    if root.role is Role.SYMPTOM and hit.role in (Role.CAUSE, Role.DEATH):
        return (f"a {hit.role.value} after the {root.error_type} symptom of line {root.line_no} "
                f"(survivors report a peer's failure before it)")
    if root.role is Role.DEATH and (hit.error_type in MEMORY_VERDICTS
                                    or (hit.error_type == "timeout" and root.error_type == TERMINATED)):
        return f"{hit.error_type} says why the process killed at line {root.line_no} died"
    return None


@dataclasses.dataclass
class _Wrapper:
    """Rule 5: a wrapper line seen, and the exception line of it that is the root so far."""

    prefix: str
    line_no: int
    type_line: re.Pattern[str] | None  # a line of the wrapped type, when the wrapper names it
    carried: int | None = None  # the line of the carried exception that replaced the wrapper

    def carries(self, root: SignalHit | None, hit: SignalHit) -> str | None:
        """Why ``hit`` is the exception this wrapper carries and replaces ``root``, or None."""
        if (root is None or root.line_no not in (self.line_no, self.carried) or hit.line_no == self.line_no
                or hit.role in (Role.CASCADE, Role.CONTEXT) or _prefix(hit.line) != self.prefix
                or hit.line_no - self.line_no > WRAPPED_LINES):
            return None
        if self.type_line is None:
            carried = self.carried is None  # the rank's first error after it (rule 1 among them)
        else:
            carried = self.type_line.search(hit.line) is not None  # the last line of the named type
        return (f"the exception the wrapper at line {self.line_no} carries (printed after it): what ended that rank"
                if carried else None)


def wrapper_of(hit: SignalHit) -> _Wrapper | None:
    """Rule 5: the wrapper ``hit`` is, or None."""
    m = WRAPPERS.search(hit.line)
    if m is None:
        return None
    type_line = re.compile(rf"(?:^|[\s.:]){m.group(1)}:") if m.group(1) else None
    return _Wrapper(_prefix(hit.line), hit.line_no, type_line)


class RootCauseTracker:
    """Feed hits in log order; ``verdict()`` names the root cause and keeps some evidence."""

    def __init__(self, max_evidence: int = MAX_EVIDENCE) -> None:
        self.root: SignalHit | None = None
        self.why = ""
        self._evidence: list[SignalHit] = []
        self._superseded: list[SignalHit] = []
        self._max = max_evidence
        self.evidence_total = 0
        self.ending = False  # Slurm or the sidecar is ending the step (rule 4a)
        self.tasks_ended = False  # srun reported a task's end (rule 3c)
        self.sidecar_ending = False  # the sidecar is ending the job: a cancel is its own (rule 3c)
        self._cancelled: SignalHit | None = None  # Slurm's cancel banner (rule 4b)
        self._ignored: tuple[str, int] | None = None  # (rank prefix, line) of Python's "Exception ignored" (rule 4)
        self._wrapper: _Wrapper | None = None  # the last wrapper of an exception (rule 5)
        self._restarted = ""  # why the episode started again (rule 6), said with the next root

    def feed(self, hit: SignalHit) -> bool:
        """Record ``hit``; True when it became the root cause (first, or replacing one): then
        ``root`` is the hit as the rules read it (rule 4a makes some cascade lines deaths)."""
        if hit.signal == GROUP_RESTART_RULE:  # rule 6
            self._restart(hit)
            return False
        hit = self._ignored_traceback(hit)
        if hit.role is Role.CONTEXT:
            return False
        if hit.role is not Role.CASCADE and FOLLOW_ON.search(hit.line):  # rule 4c
            hit = dataclasses.replace(hit, role=Role.CASCADE, tip="a process ending after another failed: see the lines before it")
        carried = self._wrapper.carries(self.root, hit) if self._wrapper is not None else None
        if carried is not None and self._wrapper is not None:
            self._wrapper.carried = hit.line_no
            return self._set_root(dataclasses.replace(hit, role=Role.CAUSE), carried)
        wrapper = wrapper_of(hit)
        if wrapper is not None:
            self._wrapper = wrapper
        if hit.node is not None and hit.error_type == NODE_FAILURE and _STEPD_BANNER.search(hit.line):
            # slurmstepd's "*** STEP 5.0 ON n1 CANCELLED ... DUE TO NODE FAILURE ***" names the
            # node of the slurmstepd that printed it, a survivor: the failed node prints nothing
            hit = dataclasses.replace(hit, node=None)
        death = None if self.ending else signal_death(hit)
        if _SLURM_LINE.search(own_text(hit.line)):
            self.ending = True
        if _CANCELLED.search(hit.line):
            cancel = as_scancel(hit)
            if self.root is None and self._cancelled is None:
                self._cancelled = cancel
            elif (self.root is not None and not self.sidecar_ending
                  and step_end_explains(self.root, cancel, self.tasks_ended) is not None):
                hit = cancel  # rule 3c: the cancel explains the signalled processes before it
        if death is not None and replaces(self.root, death) is not None:
            hit = death
        demoted = lost_peer_detail(self.root, hit) if self.root is not None else None
        if self.root is not None and demoted is not None:
            self.root, self.why = dataclasses.replace(self.root, role=Role.SYMPTOM), f"{self.why}; {demoted}"
        why = replaces(self.root, hit, self.tasks_ended)
        if _TASK_ENDED.search(own_text(hit.line)):
            self.tasks_ended = True
        if why is not None and hit is death:
            why += "; a report of a process ended by a signal before any srun/slurmstepd line about the step"
        if why is not None:
            return self._set_root(hit, why)
        self.evidence_total += 1
        if len(self._evidence) < self._max:
            self._evidence.append(hit)
        return False

    def _set_root(self, hit: SignalHit, why: str) -> bool:
        if self.root is not None and len(self._superseded) < MAX_SUPERSEDED:
            self._superseded.append(self.root)
        self.root, self.why = hit, why + self._restarted
        self._restarted = ""
        return True

    def _restart(self, hit: SignalHit) -> None:
        """Rule 6: the launcher restarted its workers; what failed before was recovered."""
        if self.root is not None:
            if len(self._superseded) < MAX_SUPERSEDED:
                self._superseded.append(self.root)
            self._restarted = f"; after the launcher restarted its workers at line {hit.line_no} (the line {self.root.line_no} failure was recovered)"
        self.root, self.why, self._wrapper, self._ignored = None, "", None, None
        self._evidence, self.evidence_total = [], 0

    def _ignored_traceback(self, hit: SignalHit) -> SignalHit:
        """Rule 4: the final line of a traceback Python said it ignored is cascade."""
        if hit.signal == IGNORED_RULE:
            self._ignored = (_prefix(hit.line), hit.line_no)
            return hit
        if self._ignored is None or hit.role in (Role.CASCADE, Role.CONTEXT):
            return hit
        prefix, line_no = self._ignored
        if _prefix(hit.line) != prefix or hit.line_no - line_no > IGNORED_TRACEBACK_LINES:
            return hit
        self._ignored = None
        return dataclasses.replace(hit, role=Role.CASCADE, tip=f"the exception Python ignored at line {line_no}")

    def job_ending(self) -> None:
        """The sidecar is ending the job (a hang, a marker's grace over): the signals that
        follow are its own, not a new death (rule 4a), and so is a cancel (rule 3c)."""
        self.ending = self.sidecar_ending = True

    def node(self) -> str | None:
        """The root's node; else the first node named by a non-cascade evidence line.

        Cascade lines (``srun: error: n1: task 0: Exited``) and deaths (Open MPI's ``[gpu-05:12343]
        Signal: Segmentation fault (11)``, ``mpirun noticed that process rank 3 ... on node gpu-05
        exited on signal 11``) name where a process died, which is not evidence that the node is
        bad (a signal says nothing about its node, rule 4a), so they never choose the node to exclude.
        """
        if self.root is not None and self.root.node and self.root.role is not Role.DEATH:
            return self.root.node
        for hit in self._evidence:
            if hit.node and hit.role not in (Role.CASCADE, Role.DEATH):
                return hit.node
        return None

    def verdict(self, progress: "ProgressTracker | None" = None) -> Verdict:
        root, why = self.root, self.why
        if root is None and self._cancelled is not None:  # rule 4b
            root, why = self._cancelled, "no line named a cause; Slurm cancelled the step"
        return Verdict(
            root=root,
            evidence=tuple(h for h in self._evidence if h.line_no != root.line_no) if root else tuple(self._evidence),
            node=self.node(),
            last_iteration=progress.last_iteration if progress else None,
            last_checkpoint=progress.last_checkpoint if progress else None,
            evidence_total=self.evidence_total,
            superseded=tuple(self._superseded),
            why=why,
        )


def classify_lines(lines: Iterable[str | bytes], cfg: "MonitoringConfig",
                   task_nodes: tuple[str, ...] = ()) -> Verdict:
    """The verdict for a whole text (a log tail for the watchdog, a file for ``classify``);
    ``task_nodes``: the node of each ``srun --label`` task id (``tasks.task_nodes``)."""
    from sidecar.classify.progress import ProgressTracker

    classifier = LineClassifier(cfg, task_nodes)
    tracker = RootCauseTracker()
    progress = ProgressTracker(cfg.hang, cfg.progress)
    for line_no, line in enumerate(lines, start=1):
        hit = classifier.classify(line, line_no)
        if hit is not None:
            tracker.feed(hit)
        progress.observe(line, 0.0)
    return tracker.verdict(progress)
