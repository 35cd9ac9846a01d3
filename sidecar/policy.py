"""The restart policy: a pure function of the facts about one ended attempt, the run's history,
the restart config and the time. No I/O here (facts are gathered by ``sidecar.facts``).

Reason strings are part of the interface: the user's acceptance scenarios check them
(``Transient failure detected (error_type=nccl)``, ``Permanent failure detected (excluded
error_type: oom)``, ``retry budget exhausted (attempt 4/3)``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from sidecar.slurm.types import JobState


class Action(enum.Enum):
    RESTART = "restart"  # submit the next attempt
    STOP = "stop"  # the run ends here, with a reason
    FINISHED = "finished"  # training completed
    NOTHING = "nothing"  # not ours to act on (e.g. the job is still active)
    DEFER = "defer"  # cannot be decided right now (Slurm unreadable): decide later, never guess


class RestartSettings(Protocol):
    """What the policy reads of the restart config (sidecar.config.restart.RestartPolicy)."""

    @property
    def max_retries(self) -> int: ...
    @property
    def exclude_error_types(self) -> Sequence[str]: ...
    @property
    def timeouts_use_budget(self) -> bool: ...
    @property
    def max_timeout_restarts(self) -> int: ...
    @property
    def exclude_failed_nodes(self) -> bool: ...
    @property
    def max_excluded_nodes(self) -> int: ...
    @property
    def stop_on_repeat_without_progress(self) -> bool: ...
    @property
    def restart_on_unknown(self) -> bool: ...
    @property
    def restart_on_cancel(self) -> bool: ...
    @property
    def backoff_s(self) -> float: ...
    @property
    def backoff_max_s(self) -> float: ...


@dataclass(frozen=True)
class Cause:
    """What went wrong, from the sidecar's marker or the classified log tail."""

    error_type: str
    failure_class: str  # "transient" | "permanent" | "terminal"
    node: str | None = None
    line: str | None = None
    source: str = "marker"  # "marker" | "log" | "slurm"
    role: str = "cause"  # the classifier's role of the line: cause | death | symptom
    # the node the line came from (srun --label), which is not always the node to blame (``node``)
    line_node: str | None = None


    @classmethod
    def from_marker(cls, marker: Mapping[str, Any]) -> "Cause | None":
        et = marker.get("error_type")
        fc = marker.get("class")
        if not isinstance(et, str) or fc not in ("transient", "permanent", "terminal"):
            return None
        node = marker.get("node")
        role = marker.get("role")
        line_node = marker.get("line_node")
        return cls(et, fc, node if isinstance(node, str) else None,
                   str(marker.get("line", ""))[:500], "marker",
                   role if role in ("cause", "death", "symptom") else "cause",
                   line_node if isinstance(line_node, str) else None)


@dataclass(frozen=True)
class AttemptFacts:
    attempt: int
    job_id: str | None
    state: JobState
    exit_code: int | None = None
    signal: int | None = None
    nodes: tuple[str, ...] = ()  # the allocation
    failed_nodes: tuple[str, ...] = ()  # of those, the ones Slurm reports down/drained/not responding
    marker: Cause | None = None  # the sidecar's marker, if it wrote one
    log_cause: Cause | None = None  # the log tail classified (used when there is no marker)
    stop_requested: bool = False
    slurm_unreadable: bool = False  # Slurm's record could not be read (controller/dbd down)
    first_iteration: int | None = None
    last_iteration: int | None = None
    last_checkpoint: int | None = None
    # the batch shell got the time limit's warning signal (sbatch --signal=B:USR1@N) and the
    # training ended by itself after it (saved and exited, Megatron's --exit-signal-handler)
    warned_before_timeout: bool = False
    # steps accounting recorded as OUT_OF_MEMORY (the kernel's memory cgroup killed a task): the
    # job itself ends FAILED when its batch script goes on after srun (Slurm 22.05, measured)
    oom_steps: tuple[str, ...] = ()

    @property
    def out_of_memory(self) -> bool:
        return self.state == JobState.OUT_OF_MEMORY or bool(self.oom_steps)


@dataclass(frozen=True)
class PastAttempt:
    """What the history says about an earlier attempt's decision."""

    attempt: int
    error_type: str | None
    counted: bool  # it used the failure budget
    timeout: bool
    last_iteration: int | None
    excluded_nodes: tuple[str, ...] = ()  # the run's exclusion list after it, oldest first
    node: str | None = None  # the node its cause named
    nodes: tuple[str, ...] = ()  # the nodes it ran on
    in_allocation: bool = False  # its restart ran inside the same allocation


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    error_type: str | None = None
    failure_class: str | None = None
    counts_against_budget: bool = False
    budget_used: int = 0  # failures counted so far, this one included
    budget_max: int = 0
    next_attempt: int | None = None
    exclude_nodes: tuple[str, ...] = ()  # oldest exclusion first, so a cap keeps the newest
    delay_s: float = 0.0
    node: str | None = None  # the node the cause named (read back as history)
    nodes: tuple[str, ...] = ()  # the nodes the attempt ran on
    line: str | None = None  # what the cause was read from: a log line, or Slurm's record
    source: str | None = None  # where: "marker" | "log" | "slurm"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value, "reason": self.reason, "error_type": self.error_type,
            "class": self.failure_class, "counts_against_budget": self.counts_against_budget,
            "budget_used": self.budget_used, "budget_max": self.budget_max,
            "next_attempt": self.next_attempt, "exclude_nodes": list(self.exclude_nodes),
            "delay_s": self.delay_s, "node": self.node, "nodes": list(self.nodes),
            "line": self.line, "source": self.source,
        }


# Slurm end states that say what happened without any log.
_SLURM_CAUSES: dict[JobState, Cause] = {
    JobState.NODE_FAIL: Cause("node_fail", "transient", source="slurm"),
    JobState.BOOT_FAIL: Cause("boot_fail", "transient", source="slurm"),
    JobState.OUT_OF_MEMORY: Cause("host_oom", "permanent", source="slurm"),
    JobState.TIMEOUT: Cause("timeout", "terminal", source="slurm"),
    JobState.PREEMPTED: Cause("preempted", "terminal", source="slurm"),
    JobState.DEADLINE: Cause("deadline", "permanent", source="slurm"),
}


# Error types of a process ended by a signal from outside (classify.tracker, rule 4a).
SIGNALLED = frozenset({"killed", "terminated"})


def _cause(f: AttemptFacts) -> Cause:
    # Slurm's own verdict on the node or the clock outranks what the log said last:
    # a NODE_FAIL job often prints NCCL errors from the surviving ranks.
    if f.state in (JobState.NODE_FAIL, JobState.BOOT_FAIL, JobState.TIMEOUT,
                   JobState.PREEMPTED, JobState.DEADLINE):
        base = _SLURM_CAUSES[f.state]
        node = f.marker.node if f.marker and f.marker.node else None
        return Cause(base.error_type, base.failure_class, node, None, "slurm")
    # A memory kill, on record, outranks what it looks like in the log: "a rank was SIGKILLed"
    # (or a survivor's connection error) printed first. The record is the oom-kill line read
    # after it (slurmstepd prints it when the step ends) or Slurm's OUT_OF_MEMORY (the job's, or
    # a step's: the job itself ends FAILED when its batch script goes on after srun).
    if f.marker is None or f.marker.role in ("death", "symptom"):
        if f.log_cause is not None and f.log_cause.error_type == "host_oom":
            return f.log_cause
        if f.out_of_memory:
            said = f.marker or f.log_cause
            record = (f"Slurm: step {', '.join(f.oom_steps)} ended OUT_OF_MEMORY" if f.oom_steps
                      else f"Slurm: job {f.job_id} ended OUT_OF_MEMORY")
            return Cause("host_oom", "permanent", said.node if said else None, record, "slurm")
    if (f.state == JobState.CANCELLED and not f.warned_before_timeout and f.marker is not None
            and f.marker.role == "death" and f.marker.error_type in SIGNALLED):
        # a process ended by a signal (a torchrun agent's "got signal: 15", srun's "task 0:
        # Killed") in a job Slurm records as cancelled: the cancel sent the signal
        return Cause("scancel", "transient", source="slurm")
    if f.warned_before_timeout and f.state in (JobState.FAILED, JobState.COMPLETED, JobState.CANCELLED):
        # ended on the time limit's warning: what the launcher printed on the way out (torchrun's
        # SignalException) is not a failure; continue from the checkpoint it saved
        return _SLURM_CAUSES[JobState.TIMEOUT]
    if f.marker is not None:
        return f.marker
    if f.state in _SLURM_CAUSES:
        return _SLURM_CAUSES[f.state]
    if f.log_cause is not None:
        return f.log_cause
    if f.state == JobState.CANCELLED:
        return Cause("scancel", "transient", source="slurm")
    return Cause("unknown", "transient", source="slurm")


# GPU faults after which a CUDA OOM at startup on the same node points at the GPU, not the config
_GPU_FAULTS = frozenset({"gpu_hw", "cuda_error", "xid"})
OOM_AFTER_GPU_FAULT = "oom_after_gpu_fault"


def weigh_history(cause: Cause, facts: AttemptFacts, history: Sequence[PastAttempt]) -> tuple[Cause, tuple[str, ...]]:
    """The cause seen with the attempts before it, and nodes the history points at.

    - A CUDA OOM before the first iteration, right after a GPU fault on the same node, points
      at the GPU (memory lost to a faulty device, a stuck context): restart once without the
      node instead of stopping for a config error. Once: the next OOM is the config's.
    - A failure that names no node, on a node an earlier failure named: that node again.
    """
    prev = history[-1] if history else None
    if (cause.error_type == "oom" and facts.last_iteration is None and prev is not None
            and prev.error_type in _GPU_FAULTS and prev.node
            and (cause.node == prev.node or (cause.node is None and prev.node in facts.nodes))):
        return Cause(OOM_AFTER_GPU_FAULT, "transient", prev.node, cause.line, cause.source), ()
    if cause.node is None and facts.nodes and cause.error_type not in ("scancel", "unknown"):
        named_before = {p.node for p in history if p.node}
        return cause, tuple(n for n in facts.nodes if n in named_before)
    return cause, ()


def _recent_nodes(nodes: Sequence[str], cap: int) -> tuple[str, ...]:
    """The last ``cap`` distinct nodes of ``nodes`` (oldest first), in the same order: a node
    excluded again moves to the newest end, and the cap drops the oldest."""
    if cap <= 0:
        return ()
    seen: dict[str, None] = {}
    for n in reversed(nodes):
        if n not in seen:
            seen[n] = None
        if len(seen) >= cap:
            break
    return tuple(reversed(seen))


def _failed_nodes(facts: AttemptFacts, cause: Cause) -> tuple[str, ...]:
    """The node(s) to blame: the one the log named, else the ones Slurm reports down, drained
    or not responding; a one-node allocation that got NODE_FAIL is its own culprit. Never the
    whole allocation (its healthy nodes would shrink the partition for nothing)."""
    if cause.node:
        return (cause.node,)
    if facts.state in (JobState.NODE_FAIL, JobState.BOOT_FAIL):
        if facts.failed_nodes:
            return facts.failed_nodes
        if len(facts.nodes) == 1:
            return facts.nodes
    return ()


def _backoff(settings: RestartSettings, failures: int) -> float:
    if settings.backoff_s <= 0:
        return 0.0
    return float(min(settings.backoff_max_s or settings.backoff_s,
                     settings.backoff_s * (2 ** max(0, failures - 1))))


def decide(facts: AttemptFacts, history: Sequence[PastAttempt], settings: RestartSettings,
           now: float) -> Decision:
    """Decide what follows attempt ``facts.attempt``. ``now`` is accepted so that time-based
    rules stay pure; the current rules do not depend on it."""
    del now
    nxt = facts.attempt + 1
    used_before = sum(1 for p in history if p.counted)
    timeouts_before = sum(1 for p in history if p.timeout)
    # A completed training is finished even when a stop was requested meanwhile.
    if facts.state == JobState.COMPLETED and (facts.exit_code in (0, None)):
        return Decision(Action.FINISHED, "Training job completed", budget_used=used_before,
                        budget_max=settings.max_retries)
    if facts.stop_requested:
        return Decision(Action.STOP, "Stop requested (autoexp-sidecar stop); not restarting",
                        budget_used=used_before, budget_max=settings.max_retries)
    if facts.slurm_unreadable and facts.marker is None:
        # Without Slurm's end state or a marker, a guess could restart a job that still runs.
        return Decision(Action.DEFER, f"Slurm's record of training job {facts.job_id} could not "
                        "be read; deciding when it can be", budget_used=used_before,
                        budget_max=settings.max_retries)
    if facts.state.is_active:
        return Decision(Action.NOTHING,
                        f"training job {facts.job_id} is still {facts.state.value}; nothing to do",
                        budget_used=used_before, budget_max=settings.max_retries)

    cause, named_before = weigh_history(_cause(facts), facts, history)
    et, fc = cause.error_type, cause.failure_class

    def made(action: Action, reason: str, **rest: Any) -> Decision:
        return Decision(action, reason, error_type=et, failure_class=fc,
                        budget_max=settings.max_retries, node=cause.node,
                        nodes=tuple(facts.nodes), line=cause.line, source=cause.source, **rest)

    if fc == "permanent" or et in settings.exclude_error_types:
        return made(Action.STOP, f"Permanent failure detected (excluded error_type: {et})",
                        budget_used=used_before)

    cap = settings.max_excluded_nodes
    # each decision carries the run's whole exclusion list, so the last one is the current list
    prior_excluded = _recent_nodes(history[-1].excluded_nodes if history else (), cap)
    last = history[-1] if history else None

    if fc == "terminal" and not settings.timeouts_use_budget:
        # Wall time or preemption: the run was healthy; continue from the checkpoint.
        if timeouts_before + 1 > settings.max_timeout_restarts:
            return made(Action.STOP, f"time-limit restarts exhausted "
                            f"({timeouts_before + 1}/{settings.max_timeout_restarts})",
                            budget_used=used_before)
        if (settings.stop_on_repeat_without_progress and last is not None and last.timeout
                and facts.last_iteration is not None
                and last.last_iteration == facts.last_iteration):
            return made(Action.STOP, f"Repeated failure without progress "
                            f"(error_type={et}, iteration {facts.last_iteration})",
                            budget_used=used_before)
        return made(Action.RESTART, f"Continuing from checkpoint after {et} "
                        f"(error_type={et}); does not use the retry budget",
                        counts_against_budget=False, budget_used=used_before,
                        next_attempt=nxt, exclude_nodes=prior_excluded)

    if et == "scancel" and not settings.restart_on_cancel:
        return made(Action.STOP, "Cancelled without a recorded failure (error_type=scancel); "
                        "restart_on_cancel is off", budget_used=used_before)
    if et == "unknown" and not settings.restart_on_unknown:
        return made(Action.STOP, f"Failure with no known cause (exit code "
                        f"{facts.exit_code}); restart_on_unknown is off",
                        budget_used=used_before)

    # A detected failure that repeats with no training progress in between is deterministic.
    if settings.stop_on_repeat_without_progress and et not in ("scancel", "unknown") and last:
        # a wall-time end (budgeted here) repeats only with the same known iteration
        progress_unknown = facts.last_iteration is None and fc != "terminal"
        # (after an in-allocation restart the repeat leaves the allocation first: sidecar.placement)
        if (last.error_type == et and (fc == "terminal" or not last.timeout)
                and not last.in_allocation
                and (progress_unknown or facts.last_iteration == last.last_iteration)):
            it = facts.last_iteration if facts.last_iteration is not None else "none"
            return made(Action.STOP, f"Repeated failure without progress "
                            f"(error_type={et}, iteration {it})",
                            budget_used=used_before)

    used = used_before + 1
    if used > settings.max_retries:
        return made(Action.STOP, f"retry budget exhausted (attempt {used}/{settings.max_retries})",
                        counts_against_budget=True, budget_used=used)

    new_nodes: list[str] = []
    if settings.exclude_failed_nodes:
        new_nodes.extend(_failed_nodes(facts, cause))
        new_nodes.extend(named_before)  # named by an earlier failure, failed again
    exclude = _recent_nodes([*prior_excluded, *new_nodes], cap)
    if et == "scancel":
        reason = "Cancelled without a recorded failure (error_type=scancel)"
    elif et == "unknown":
        reason = f"Failure with no known cause (error_type=unknown, exit code {facts.exit_code})"
    elif et == OOM_AFTER_GPU_FAULT:
        reason = (f"Transient failure detected (error_type={et}): CUDA out of memory before the first "
                  f"iteration right after a GPU fault on {cause.node}; restarting once without the node")
    elif fc == "terminal":
        reason = f"Continuing from checkpoint after {et} (error_type={et}); uses the retry budget"
    else:
        reason = f"Transient failure detected (error_type={et})"
    return made(Action.RESTART, reason, counts_against_budget=True, budget_used=used,
                    next_attempt=nxt, exclude_nodes=exclude,
                    delay_s=_backoff(settings, used))


def decision_for_verdict(verdict: Any, settings: RestartSettings) -> Decision:
    """The decision for a finished log on its own (``autoexp-sidecar classify``): a failed
    first attempt whose only fact is the verdict's root cause."""
    root = getattr(verdict, "root", None)
    cause = None
    if root is not None:
        fc = getattr(root.failure_class, "value", root.failure_class)
        cause = Cause(root.error_type, str(fc), getattr(verdict, "node", None), root.line, "log")
    facts = AttemptFacts(attempt=1, job_id=None, state=JobState.FAILED, marker=cause,
                         last_iteration=getattr(verdict, "last_iteration", None))
    return decide(facts, (), settings, 0.0)


def history_from_events(events: Sequence[Mapping[str, Any]]) -> list[PastAttempt]:
    """Past decisions in attempt order. Kept for callers of the old name: the history's one
    reader is ``sidecar.history.History`` (``History.of_records(events).past_attempts()``)."""
    from sidecar.history import History

    return History.of_records(events).past_attempts()
