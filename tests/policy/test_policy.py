"""The restart policy's decision table (design.md), as pure function calls."""

from dataclasses import dataclass

import pytest

from sidecar.policy import (Action, AttemptFacts, Cause, PastAttempt, decide,
                            decision_for_verdict, history_from_events)
from sidecar.slurm.types import JobState


@dataclass(frozen=True)
class Settings:
    max_retries: int = 3
    exclude_error_types: tuple = ("oom", "host_oom", "code_error", "config_error", "nan_loss")
    timeouts_use_budget: bool = False
    max_timeout_restarts: int = 100
    exclude_failed_nodes: bool = True
    max_excluded_nodes: int = 8
    stop_on_repeat_without_progress: bool = True
    restart_on_unknown: bool = True
    restart_on_cancel: bool = True
    backoff_s: float = 0.0
    backoff_max_s: float = 0.0


S = Settings()


def facts(state=JobState.CANCELLED, **kw):
    return AttemptFacts(attempt=kw.pop("attempt", 1), job_id="10", state=state, **kw)


def marker(et, fc="transient", node=None):
    return Cause(et, fc, node, "line", "marker")


def test_transient_marker_restarts_with_users_reason():
    d = decide(facts(marker=marker("nccl")), [], S, 0)
    assert d.action is Action.RESTART
    assert d.reason == "Transient failure detected (error_type=nccl)"
    assert d.next_attempt == 2 and d.counts_against_budget and d.budget_used == 1


def test_hang_marker_restarts():
    d = decide(facts(marker=marker("hang")), [], S, 0)
    assert d.reason == "Transient failure detected (error_type=hang)"


def test_oom_stops_with_users_reason():
    d = decide(facts(JobState.FAILED, exit_code=1, marker=marker("oom", "permanent")), [], S, 0)
    assert d.action is Action.STOP
    assert d.reason == "Permanent failure detected (excluded error_type: oom)"


def test_excluded_type_stops_even_if_marked_transient():
    d = decide(facts(marker=marker("oom", "transient")), [], S, 0)
    assert d.action is Action.STOP


def test_scancel_without_marker_restarts_and_counts():
    d = decide(facts(JobState.CANCELLED, signal=15), [], S, 0)
    assert d.action is Action.RESTART and d.error_type == "scancel" and d.counts_against_budget


def test_budget_exhausted_on_fourth_failure():
    hist = [PastAttempt(i, "scancel", True, False, None) for i in (1, 2, 3)]
    d = decide(facts(attempt=4), hist, S, 0)
    assert d.action is Action.STOP
    assert d.reason == "retry budget exhausted (attempt 4/3)"


def test_third_failure_still_restarts():
    hist = [PastAttempt(i, "scancel", True, False, None) for i in (1, 2)]
    assert decide(facts(attempt=3), hist, S, 0).action is Action.RESTART


def test_stop_requested_wins_over_everything():
    d = decide(facts(marker=marker("nccl"), stop_requested=True), [], S, 0)
    assert d.action is Action.STOP and "Stop requested" in d.reason


def test_completed_is_finished():
    assert decide(facts(JobState.COMPLETED, exit_code=0), [], S, 0).action is Action.FINISHED


def test_still_running_is_nothing():
    assert decide(facts(JobState.RUNNING), [], S, 0).action is Action.NOTHING


def test_timeout_continues_without_budget():
    hist = [PastAttempt(i, "scancel", True, False, None) for i in (1, 2, 3)]
    d = decide(facts(JobState.TIMEOUT, attempt=4, last_iteration=50), hist, S, 0)
    assert d.action is Action.RESTART and not d.counts_against_budget
    assert d.budget_used == 3


def test_timeout_twice_without_progress_stops():
    hist = [PastAttempt(1, "timeout", False, True, 50)]
    d = decide(facts(JobState.TIMEOUT, attempt=2, last_iteration=50), hist, S, 0)
    assert d.action is Action.STOP and "without progress" in d.reason


def test_node_fail_excludes_nodes():
    d = decide(facts(JobState.NODE_FAIL, nodes=("n3",)), [], S, 0)
    assert d.action is Action.RESTART and d.exclude_nodes == ("n3",)
    assert d.error_type == "node_fail"


def test_marker_node_is_excluded_and_remembered():
    d = decide(facts(marker=marker("gpu_hw", node="n2")), [], S, 0)
    assert d.exclude_nodes == ("n2",)
    hist = [PastAttempt(1, "gpu_hw", True, False, 10, ("n2",))]
    d2 = decide(facts(attempt=2, marker=marker("nccl"), last_iteration=30), hist, S, 0)
    assert d2.exclude_nodes == ("n2",)


def test_failed_without_marker_uses_log_tail():
    d = decide(facts(JobState.FAILED, exit_code=1, log_cause=Cause("oom", "permanent")), [], S, 0)
    assert d.reason == "Permanent failure detected (excluded error_type: oom)"


def test_failed_unknown_restarts_within_budget():
    d = decide(facts(JobState.FAILED, exit_code=7), [], S, 0)
    assert d.action is Action.RESTART and d.error_type == "unknown"


def test_unknown_off_stops():
    d = decide(facts(JobState.FAILED, exit_code=7), [], Settings(restart_on_unknown=False), 0)
    assert d.action is Action.STOP


def test_repeat_without_progress_stops():
    hist = [PastAttempt(1, "hang", True, False, 40)]
    d = decide(facts(attempt=2, marker=marker("hang"), last_iteration=40), hist, S, 0)
    assert d.action is Action.STOP
    assert d.reason == "Repeated failure without progress (error_type=hang, iteration 40)"


def test_repeat_with_progress_restarts():
    hist = [PastAttempt(1, "hang", True, False, 40)]
    d = decide(facts(attempt=2, marker=marker("hang"), last_iteration=90), hist, S, 0)
    assert d.action is Action.RESTART


def test_repeated_scancel_is_not_a_deterministic_failure():
    hist = [PastAttempt(1, "scancel", True, False, None)]
    assert decide(facts(attempt=2), hist, S, 0).action is Action.RESTART


def test_node_fail_state_outranks_nccl_marker():
    d = decide(facts(JobState.NODE_FAIL, nodes=("n1",), marker=marker("nccl")), [], S, 0)
    assert d.error_type == "node_fail"


def test_slurm_oom_state_is_permanent():
    d = decide(facts(JobState.OUT_OF_MEMORY), [], S, 0)
    assert d.reason == "Permanent failure detected (excluded error_type: host_oom)"


@pytest.mark.parametrize("state", list(JobState))
def test_every_state_decides_without_raising(state):
    d = decide(facts(state), [], S, 0)
    assert isinstance(d.action, Action) and d.reason


def test_backoff_grows_and_caps():
    s = Settings(backoff_s=10, backoff_max_s=25)
    hist = [PastAttempt(1, "scancel", True, False, None)]
    assert decide(facts(), [], s, 0).delay_s == 10
    assert decide(facts(attempt=2), hist, s, 0).delay_s == 20
    hist.append(PastAttempt(2, "scancel", True, False, None))
    assert decide(facts(attempt=3), hist, s, 0).delay_s == 25


def test_history_from_events_first_decision_per_attempt_wins():
    evs = [
        {"event": "decided", "attempt": 1, "last_iteration": 5,
         "decision": {"action": "restart", "error_type": "nccl", "counts_against_budget": True,
                      "class": "transient", "exclude_nodes": ["n1"]}},
        {"event": "decided", "attempt": 1, "decision": {"action": "stop"}},
        {"event": "submitted", "attempt": 2},
        {"event": "decided", "attempt": "garbage"},
    ]
    h = history_from_events(evs)
    assert len(h) == 1 and h[0].counted and h[0].excluded_nodes == ("n1",)


def test_decision_for_verdict():
    class FC:
        value = "permanent"

    class Root:
        error_type = "oom"
        failure_class = FC()
        line = "torch.OutOfMemoryError: CUDA out of memory."

    class V:
        root = Root()
        node = None
        last_iteration = None

    assert decision_for_verdict(V(), S).action is Action.STOP


def test_excluded_nodes_are_capped_keeping_the_newest():
    from dataclasses import replace as dc_replace
    s = dc_replace(S, max_excluded_nodes=2)
    hist = [PastAttempt(1, "gpu_hw", True, False, 10, ("n1", "n2"))]
    d = decide(facts(attempt=2, marker=marker("gpu_hw", node="n3"), last_iteration=20), hist, s, 0)
    assert len(d.exclude_nodes) == 2 and "n3" in d.exclude_nodes


def test_max_excluded_nodes_zero_excludes_nothing():
    from dataclasses import replace as dc_replace
    d = decide(facts(JobState.NODE_FAIL, nodes=("n3",)), [], dc_replace(S, max_excluded_nodes=0), 0)
    assert d.exclude_nodes == ()
