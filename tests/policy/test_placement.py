"""Where a restart runs (sidecar.placement): pure."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.placement import Placement, place
from sidecar.policy import Action, AttemptFacts, Cause, Decision, PastAttempt, decide
from sidecar.slurm.types import JobState

from policy.test_policy import Settings as PolicySettings


@dataclass(frozen=True)
class Settings(PolicySettings):
    in_allocation: bool = True
    in_allocation_error_types: tuple[str, ...] = ("nccl", "hang", "unknown")


def facts(et="nccl", node=None, last_iteration=40):
    return AttemptFacts(attempt=2, job_id="9", state=JobState.FAILED, exit_code=143,
                        marker=Cause(et, "transient", node), last_iteration=last_iteration)


def restart(et="nccl"):
    return Decision(Action.RESTART, "r", et, "transient", True, 1, 3, 3)


def test_transient_fault_not_tied_to_a_node_stays():
    p, why = place(restart(), facts(), [], Settings())
    assert p is Placement.IN_ALLOCATION, why


def test_off_by_default_setting_and_other_types_leave():
    assert place(restart(), facts(), [], Settings(in_allocation=False))[0] is Placement.NEW_JOB
    p, why = place(restart("gpu_hw"), facts("gpu_hw"), [], Settings())
    assert p is Placement.NEW_JOB and "gpu_hw" in why


def test_node_attributed_fault_leaves_the_allocation():
    p, why = place(restart(), facts(node="n2"), [], Settings())
    assert p is Placement.NEW_JOB and "n2" in why


def test_repeat_without_progress_after_an_in_allocation_restart_leaves_then_stops():
    s = Settings()
    past = [PastAttempt(1, "nccl", True, False, 40, in_allocation=True)]
    d = decide(facts(), past, s, 0.0)
    assert d.action is Action.RESTART  # not stopped: it leaves the allocation first
    p, why = place(d, facts(), past, s)
    assert p is Placement.NEW_JOB and "without progress" in why
    # the same again from the new job: the usual stop
    past2 = [*past, PastAttempt(2, "nccl", True, False, 40, in_allocation=False)]
    assert decide(facts(), past2, s, 0.0).action is Action.STOP


def test_progress_between_in_allocation_restarts_stays():
    past = [PastAttempt(1, "nccl", True, False, 20, in_allocation=True)]
    assert place(restart(), facts(last_iteration=40), past, Settings())[0] is Placement.IN_ALLOCATION
