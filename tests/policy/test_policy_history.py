"""Causes weighed with Slurm's verdict and with the attempts before them (pure)."""

from sidecar.policy import (Action, AttemptFacts, Cause, PastAttempt, decide, history_from_events,
                            weigh_history)
from sidecar.slurm.types import JobState

from test_policy import S, Settings


def marker(et, fc="transient", node=None, role="cause"):
    return Cause(et, fc, node, "line", "marker", role)


def test_slurm_out_of_memory_explains_a_killed_rank():
    # the log shows only "failed (exitcode: -9)": Slurm's OUT_OF_MEMORY says why
    f = AttemptFacts(1, "10", JobState.OUT_OF_MEMORY, marker=marker("killed", node="n2", role="death"))
    d = decide(f, [], S, 0)
    assert d.action is Action.STOP
    assert d.reason == "Permanent failure detected (excluded error_type: host_oom)"
    # a cause the log named (a NCCL error) is not replaced by the memory state
    f = AttemptFacts(1, "10", JobState.OUT_OF_MEMORY, marker=marker("nccl"))
    assert decide(f, [], S, 0).error_type == "nccl"


def test_cuda_oom_at_startup_right_after_a_gpu_fault_on_the_same_node_restarts_once_without_it():
    gpu = PastAttempt(1, "gpu_hw", True, False, 120, node="n3", nodes=("n3", "n4"))
    f = AttemptFacts(2, "11", JobState.FAILED, exit_code=1, nodes=("n3", "n4"),
                     marker=marker("oom", "permanent"))
    d = decide(f, [gpu], Settings(exclude_failed_nodes=True), 0)
    assert d.action is Action.RESTART and d.error_type == "oom_after_gpu_fault"
    assert "n3" in d.exclude_nodes and "GPU fault on n3" in d.reason
    # once: the next OOM at startup is the config's
    again = PastAttempt(2, "oom_after_gpu_fault", True, False, None, node="n3", nodes=("n3", "n4"))
    f3 = AttemptFacts(3, "12", JobState.FAILED, exit_code=1, nodes=("n4", "n5"), marker=marker("oom", "permanent"))
    d3 = decide(f3, [gpu, again], S, 0)
    assert d3.action is Action.STOP and d3.error_type == "oom"


def test_cuda_oom_after_training_started_or_elsewhere_is_the_config():
    gpu = PastAttempt(1, "gpu_hw", True, False, 120, node="n3", nodes=("n3",))
    started = AttemptFacts(2, "11", JobState.FAILED, nodes=("n3",), last_iteration=130, marker=marker("oom", "permanent"))
    assert decide(started, [gpu], S, 0).action is Action.STOP
    other = AttemptFacts(2, "11", JobState.FAILED, nodes=("n7",), marker=marker("oom", "permanent"))
    assert decide(other, [gpu], S, 0).action is Action.STOP


def test_a_node_named_by_an_earlier_failure_is_excluded_when_the_next_failure_names_none():
    # the first failure named n2 but the cap kept it out of the exclusion list
    past = PastAttempt(1, "nccl", True, False, 50, excluded_nodes=(), node="n2", nodes=("n1", "n2"))
    f = AttemptFacts(2, "11", JobState.FAILED, nodes=("n1", "n2"), last_iteration=80, marker=marker("hang"))
    cause, named = weigh_history(f.marker, f, [past])
    assert cause.error_type == "hang" and named == ("n2",)
    d = decide(f, [past], S, 0)
    assert d.action is Action.RESTART and d.exclude_nodes == ("n2",)


def test_decisions_carry_the_node_and_allocation_into_history():
    f = AttemptFacts(1, "10", JobState.FAILED, nodes=("n1", "n2"), last_iteration=5, marker=marker("gpu_hw", node="n2"))
    d = decide(f, [], S, 0)
    (past,) = history_from_events([{"event": "decided", "attempt": 1, "decision": d.to_dict(), "last_iteration": 5}])
    assert (past.node, past.nodes, past.error_type) == ("n2", ("n1", "n2"), "gpu_hw")
