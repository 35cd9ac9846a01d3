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


# A rank OOM-killed by the job's memory cgroup under a batch script that goes on after srun:
# the job ends FAILED, only its step is OUT_OF_MEMORY (Slurm 22.05, measured). What the log
# shows first is a death (the rank SIGKILLed) or a survivor's follow-on error.
KILLED = Cause("killed", "transient", "n2", "[default1]:torch.distributed.elastic...exitcode: -9", "marker", "death")
STORE = Cause("store", "transient", None, "[default0]:RuntimeError: [../third_party/gloo/...] Connection closed by peer",
              "marker", "symptom")


@pytest.mark.parametrize("seen", [KILLED, STORE, None], ids=["death", "symptom", "no-marker"])
def test_oom_killed_step_stops_with_slurms_record_not_a_follow_on_line(seen):
    d = decide(facts(JobState.FAILED, marker=seen, oom_steps=("266.0",)), [], S, 0)
    assert d.action is Action.STOP
    assert d.reason == "Permanent failure detected (excluded error_type: host_oom)"
    assert (d.line, d.source) == ("Slurm: step 266.0 ended OUT_OF_MEMORY", "slurm")


def test_oom_killed_step_keeps_the_logs_memory_line():
    oom_line = ("slurmstepd-n2: error: Detected 1 oom-kill event(s) in StepId=266.0. Some of your "
                "processes may have been killed by the cgroup out-of-memory handler.")
    log = Cause("host_oom", "permanent", "n2", oom_line, "log")
    d = decide(facts(JobState.FAILED, log_cause=log, oom_steps=("266.0",)), [], S, 0)
    assert d.action is Action.STOP and d.line == oom_line and d.source == "log"
    # a marker that names a real cause (not a death or symptom) is kept
    d = decide(facts(JobState.FAILED, marker=marker("code_error", "permanent"), oom_steps=("266.0",)), [], S, 0)
    assert d.error_type == "code_error"


@pytest.mark.parametrize("seen", [KILLED, STORE], ids=["death", "symptom"])
def test_oom_kill_line_after_the_marker_outranks_it(seen):
    """The step ended FAILED (the survivor's exit code decided it), the sidecar wrote what it saw
    first; the log read at decision time has slurmstepd's oom-kill line."""
    oom_line = "1: slurmstepd-n2: error: Detected 1 oom-kill event(s) in StepId=271.0."
    log = Cause("host_oom", "permanent", "n2", oom_line, "log")
    d = decide(facts(JobState.FAILED, marker=seen, log_cause=log), [], S, 0)
    assert d.action is Action.STOP and d.error_type == "host_oom" and d.line == oom_line


def test_oom_step_outranks_the_cancel_rule_for_a_killed_rank():
    """restart.fast_path: false: the sidecar cancels the job after a killed rank; Slurm's
    OUT_OF_MEMORY step still says why the rank died (not the scancel)."""
    d = decide(facts(JobState.CANCELLED, marker=KILLED, oom_steps=("266.0",)), [], S, 0)
    assert d.action is Action.STOP and d.error_type == "host_oom"
    assert decide(facts(JobState.CANCELLED, marker=KILLED), [], S, 0).error_type == "scancel"


def test_failed_job_without_oom_step_is_the_markers():
    d = decide(facts(JobState.FAILED, marker=KILLED), [], S, 0)
    assert d.action is Action.RESTART and d.error_type == "killed"


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


# -- review defects (issue 8): each of these failed before its fix

def test_excluded_node_cap_keeps_the_most_recent_not_the_alphabetically_last():
    from dataclasses import replace as dc_replace
    s = dc_replace(S, max_excluded_nodes=2)
    # n9 was excluded first, n1 after it: the cap must drop n9, the oldest
    hist = [PastAttempt(2, "gpu_hw", True, False, 20, ("n9", "n1"))]
    d = decide(facts(attempt=3, marker=marker("gpu_hw", node="n5"), last_iteration=30), hist, s, 0)
    assert set(d.exclude_nodes) == {"n1", "n5"}
    assert d.exclude_nodes[-1] == "n5"  # newest last, so the next cap keeps it


def test_multi_node_node_fail_excludes_only_the_failed_node():
    d = decide(facts(JobState.NODE_FAIL, nodes=("n1", "n2", "n3"), failed_nodes=("n2",)), [], S, 0)
    assert d.action is Action.RESTART and d.exclude_nodes == ("n2",)


def test_node_fail_prefers_the_node_the_marker_named():
    d = decide(facts(JobState.NODE_FAIL, nodes=("n1", "n2", "n3"),
                     marker=marker("nccl", node="n3")), [], S, 0)
    assert d.exclude_nodes == ("n3",)


def test_node_fail_with_unknown_culprit_excludes_no_healthy_node():
    d = decide(facts(JobState.NODE_FAIL, nodes=("n1", "n2")), [], S, 0)
    assert d.action is Action.RESTART and d.exclude_nodes == ()


def test_node_fail_with_the_cap_keeps_the_named_node():
    from dataclasses import replace as dc_replace
    s = dc_replace(S, max_excluded_nodes=1)
    d = decide(facts(JobState.NODE_FAIL, nodes=("n1", "n2", "n3"), failed_nodes=("n1",)), [], s, 0)
    assert d.exclude_nodes == ("n1",)


def test_repeated_timeout_without_progress_restarts_when_the_rule_is_off():
    hist = [PastAttempt(1, "timeout", False, True, 50)]
    s = Settings(stop_on_repeat_without_progress=False)
    d = decide(facts(JobState.TIMEOUT, attempt=2, last_iteration=50), hist, s, 0)
    assert d.action is Action.RESTART


def test_timeouts_use_budget_counts_and_says_timeout_not_transient():
    d = decide(facts(JobState.TIMEOUT, last_iteration=50), [], Settings(timeouts_use_budget=True), 0)
    assert d.action is Action.RESTART and d.counts_against_budget and d.budget_used == 1
    assert d.reason == ("Continuing from checkpoint after timeout (error_type=timeout); "
                        "uses the retry budget")
    assert "Transient" not in d.reason


def test_timeouts_use_budget_exhausts_the_budget():
    hist = [PastAttempt(i, "timeout", True, True, 10 * i) for i in (1, 2, 3)]
    d = decide(facts(JobState.TIMEOUT, attempt=4, last_iteration=99), hist,
               Settings(timeouts_use_budget=True), 0)
    assert d.action is Action.STOP and d.reason == "retry budget exhausted (attempt 4/3)"


def test_timeouts_use_budget_repeat_without_progress_stops():
    hist = [PastAttempt(1, "timeout", True, True, 50)]
    d = decide(facts(JobState.TIMEOUT, attempt=2, last_iteration=50), hist,
               Settings(timeouts_use_budget=True), 0)
    assert d.action is Action.STOP
    assert d.reason == "Repeated failure without progress (error_type=timeout, iteration 50)"


def test_max_timeout_restarts_exhausted_stops():
    hist = [PastAttempt(i, "timeout", False, True, 10 * i) for i in (1, 2)]
    d = decide(facts(JobState.TIMEOUT, attempt=3, last_iteration=99), hist,
               Settings(max_timeout_restarts=2), 0)
    assert d.action is Action.STOP and d.reason == "time-limit restarts exhausted (3/2)"
    assert not d.counts_against_budget


def test_restart_on_cancel_off_stops_a_plain_scancel():
    d = decide(facts(JobState.CANCELLED, signal=15), [], Settings(restart_on_cancel=False), 0)
    assert d.action is Action.STOP
    assert d.reason == ("Cancelled without a recorded failure (error_type=scancel); "
                        "restart_on_cancel is off")


def test_restart_on_cancel_off_still_restarts_a_cancel_with_a_marker():
    d = decide(facts(JobState.CANCELLED, marker=marker("nccl")), [], Settings(restart_on_cancel=False), 0)
    assert d.action is Action.RESTART and d.error_type == "nccl"


def test_preempted_continues_without_budget():
    hist = [PastAttempt(i, "scancel", True, False, None) for i in (1, 2, 3)]
    d = decide(facts(JobState.PREEMPTED, attempt=4, last_iteration=70), hist, S, 0)
    assert d.action is Action.RESTART and not d.counts_against_budget
    assert d.error_type == "preempted"
    assert d.reason == ("Continuing from checkpoint after preempted (error_type=preempted); "
                        "does not use the retry budget")


def test_completed_with_a_stop_request_is_finished():
    d = decide(facts(JobState.COMPLETED, exit_code=0, stop_requested=True), [], S, 0)
    assert d.action is Action.FINISHED


def test_unreadable_slurm_without_a_marker_defers():
    d = decide(facts(JobState.UNKNOWN, slurm_unreadable=True), [], S, 0)
    assert d.action is Action.DEFER and "could not be read" in d.reason


def test_unreadable_slurm_with_a_marker_decides_by_the_marker():
    d = decide(facts(JobState.UNKNOWN, slurm_unreadable=True, marker=marker("nccl")), [], S, 0)
    assert d.action is Action.RESTART and d.error_type == "nccl"


def test_saved_and_exited_on_the_time_limit_warning_continues_without_budget():
    """The batch shell got sbatch's USR1 before the time limit, training saved and exited, and
    torchrun ended non-zero (its SignalException): a time limit, not a failure."""
    f = facts(JobState.FAILED, exit_code=1, warned_before_timeout=True, last_iteration=80,
              marker=marker("unknown_launcher_error"))
    d = decide(f, [], S, 0)
    assert d.action is Action.RESTART and not d.counts_against_budget
    assert d.reason == "Continuing from checkpoint after timeout (error_type=timeout); does not use the retry budget"


def test_node_failure_outranks_the_time_limit_warning():
    f = facts(JobState.NODE_FAIL, warned_before_timeout=True, nodes=("n2",))
    assert decide(f, [], S, 0).error_type == "node_fail"


@pytest.mark.parametrize("error_type", ["terminated", "killed"])
def test_a_signalled_process_in_a_cancelled_job_is_the_scancel(error_type):
    # a torchrun agent's "got signal: 15" can reach the log before Slurm's cancel banner: the
    # sidecar records it as a death; Slurm's CANCELLED says who sent the signal
    death = Cause(error_type, "transient", None, "1: ...SignalException: Process 7 got signal: 15", "marker", "death")
    d = decide(facts(JobState.CANCELLED, marker=death), [], S, 0)
    assert d.action is Action.RESTART
    assert d.reason == "Cancelled without a recorded failure (error_type=scancel)"
    # the same death in a job that failed (one agent signalled, the others lost their peer)
    d = decide(facts(JobState.FAILED, exit_code=1, marker=death), [], S, 0)
    assert d.reason == f"Transient failure detected (error_type={error_type})"
    # a cause (not a death) in a cancelled job stays what it is
    d = decide(facts(JobState.CANCELLED, marker=marker("nccl")), [], S, 0)
    assert d.reason == "Transient failure detected (error_type=nccl)"
