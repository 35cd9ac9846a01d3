"""Where a restart runs: inside the same allocation or as a new job (pure).

An in-allocation restart (``restart.in_allocation``) is for a transient fault not tied to a node:
the nodes are healthy, so the batch script starts the training again in seconds instead of
queueing a new job. A fault a node is blamed for, or one that repeats without progress after an
in-allocation restart, leaves the allocation through the chain (a new job, the node excluded).
"""

from __future__ import annotations

import enum
from typing import Protocol, Sequence

from sidecar.policy import Action, AttemptFacts, Decision, PastAttempt


class Placement(enum.Enum):
    NEW_JOB = "new_job"
    IN_ALLOCATION = "in_allocation"


class PlacementSettings(Protocol):
    """What placement reads of the restart config (sidecar.config.restart.RestartPolicy)."""

    @property
    def in_allocation(self) -> bool: ...
    @property
    def in_allocation_error_types(self) -> Sequence[str]: ...


def place(decision: Decision, facts: AttemptFacts, history: Sequence[PastAttempt],
          settings: PlacementSettings) -> tuple[Placement, str]:
    """Where the restart ``decision`` runs, and why."""
    if decision.action is not Action.RESTART:
        return Placement.NEW_JOB, "not a restart"
    if not settings.in_allocation:
        return Placement.NEW_JOB, "in-allocation restarts are off (restart.in_allocation)"
    et = decision.error_type or "unknown"
    if decision.failure_class != "transient" or et not in settings.in_allocation_error_types:
        return Placement.NEW_JOB, f"error_type={et} is not restarted in the allocation"
    cause = facts.marker or facts.log_cause
    if cause is not None and cause.node:
        return Placement.NEW_JOB, f"error_type={et} is tied to node {cause.node}"
    last = history[-1] if history else None
    if (last is not None and last.in_allocation and last.error_type == et
            and (facts.last_iteration is None or facts.last_iteration == last.last_iteration)):
        return Placement.NEW_JOB, (f"error_type={et} repeated without progress in this "
                                   "allocation; leaving it")
    return Placement.IN_ALLOCATION, f"error_type={et} is not tied to a node"
