"""Claims and their takeover, the hand-off of a decided attempt, and the fast path's bookkeeping,
against the fake Slurm client. The same races on the real cluster: tests/chain/test_fastpath_real.py."""

from __future__ import annotations

import pytest

import json
import socket

from sidecar.claims import Holder, Liveness, holder_gone, read_holder, take_claim
from sidecar.fastpath import conclude, continue_before_timeout
from sidecar.launch import job_comment
from sidecar.policy import Action
from sidecar.slurm.types import JobInfo, JobState
from sidecar.watchdog import handle_attempt

from chain.test_watchdog_unit import FakeClient, marker, run  # noqa: F401 - fixture

HERE = socket.gethostname()


def holder(job="7", host=HERE, pid=4242):
    return Holder(job, host, pid, 1000.0)


# -- pure -----------------------------------------------------------------------------------
def test_holder_gone_needs_proof():
    h = holder()
    assert holder_gone(h, here=HERE, pid_alive=False, job_state=None)[0] is Liveness.GONE
    assert holder_gone(h, here=HERE, pid_alive=True, job_state=JobState.RUNNING)[0] is Liveness.ALIVE
    assert holder_gone(h, here="other", pid_alive=None, job_state=JobState.CANCELLED)[0] is Liveness.GONE
    # another host: its pid says nothing; an unknown or running job is no proof
    assert holder_gone(h, here="other", pid_alive=False, job_state=None)[0] is Liveness.ALIVE
    assert holder_gone(h, here="other", pid_alive=None, job_state=JobState.UNKNOWN)[0] is Liveness.ALIVE
    assert holder_gone(h, here="other", pid_alive=None, job_state=JobState.COMPLETING)[0] is Liveness.ALIVE


def test_holder_round_trip_and_old_claims():
    h = holder()
    assert Holder.parse(h.to_text()) == h
    assert Holder.parse("pid 12 on n1\n") is None  # an old claim: never taken over
    assert Holder.parse("") is None


# -- take_claim -------------------------------------------------------------------------------
def test_live_holder_keeps_its_claim(tmp_path):
    path = tmp_path / "decide.claim"
    client = FakeClient()
    client.set("7", JobState.RUNNING)
    assert take_claim(path, client, holder())[0]
    ok, why = take_claim(path, client, holder(job="8", pid=99), alive=lambda pid: pid == 4242)
    assert not ok and "may still be working" in why
    assert read_holder(path) == holder()


def test_dead_holder_is_taken_over_once(tmp_path):
    path = tmp_path / "decide.claim"
    client = FakeClient()
    assert take_claim(path, client, holder())[0]
    client.set("7", JobState.CANCELLED)
    a, b = holder(job="20", pid=1), holder(job="21", pid=2)
    ok_a, how = take_claim(path, client, a, alive=lambda pid: pid != 4242)
    ok_b, why = take_claim(path, client, b, alive=lambda pid: pid != 4242)
    assert ok_a and how.startswith("taken over")
    assert not ok_b  # b sees a, alive, as the holder now
    assert read_holder(path) == a


def test_two_takers_of_the_same_dead_holder(tmp_path):
    """Both judge the holder dead before either took over: the takeover lock lets one through."""
    path = tmp_path / "decide.claim"
    client = FakeClient()
    take_claim(path, client, holder())
    client.set("7", JobState.FAILED)
    dead = read_holder(path)
    results = []
    for me in (holder(job="20", pid=1), holder(job="21", pid=2)):
        path.write_text(dead.to_text())  # as both read it
        results.append(take_claim(path, client, me, alive=lambda pid: False)[0])
    assert results == [True, False]


# -- hand-off of a decided attempt -----------------------------------------------------------------
def _submitted_events(paths, n):
    return [e for e in paths.iter_events() if e["event"] == "submitted" and e["attempt"] == n]


def test_watchdog_submits_once_for_a_holder_that_died_between_claim_and_sbatch(run, tmp_path):
    paths, cfg, client, sub = run
    marker(paths, 1, "nccl")
    # the fast path in job 101 decided and claimed attempt 2, then died before its sbatch
    dead = Holder(sub.train_job, HERE, 999999, 1.0)
    paths.decide_claim(1).write_text(dead.to_text())
    paths.append_event("decided", attempt=1, train_job=sub.train_job, last_iteration=10,
                       decision={"action": "restart", "reason": "Transient failure detected (error_type=nccl)",
                                 "error_type": "nccl", "class": "transient", "counts_against_budget": True,
                                 "budget_used": 1, "budget_max": 3, "next_attempt": 2, "exclude_nodes": []})
    paths.claim_attempt(2)
    client.set(sub.train_job, JobState.CANCELLED)
    n_before = len(client.submitted)
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.RESTART
    assert len(client.submitted) == n_before + 2  # training job + its watchdog
    assert len(_submitted_events(paths, 2)) == 1
    assert len([e for e in paths.iter_events() if e["event"] == "decided"]) == 1  # not decided twice
    assert json.loads(paths.decision(1).read_text())["action"] == "restart"  # completed
    # a second watchdog later: nothing more
    assert handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0) is None
    assert len(client.submitted) == n_before + 2


def test_a_finished_holder_that_is_gone_is_not_taken_over(run):
    """A fast holder decides, submits and exits before a slower party looks at its claim
    (seen on the real cluster with pyslurm): its claim is done, not orphaned."""
    paths, cfg, client, sub = run
    marker(paths, 1, "nccl")
    client.set(sub.train_job, JobState.FAILED)
    assert handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0).action is Action.RESTART
    n_before = len(client.submitted)
    paths.decide_claim(1).write_text(Holder(sub.train_job, HERE, 999999, 1.0).to_text())  # it exited
    assert handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0) is None
    assert len(client.submitted) == n_before


def died_after_claiming_attempt_2(paths, job):
    """A holder in ``job`` decided a restart and claimed attempt 2, then died (pid 999999)."""
    paths.decide_claim(1).write_text(Holder(job, HERE, 999999, 1.0).to_text())
    paths.append_event("decided", attempt=1, train_job=job,
                       decision={"action": "restart", "reason": "r", "next_attempt": 2})
    paths.claim_attempt(2)


def test_a_job_submitted_but_never_recorded_is_adopted(run):
    paths, cfg, client, sub = run
    died_after_claiming_attempt_2(paths, sub.train_job)
    # its sbatch went through just before it died
    client.jobs["555"] = JobInfo("555", JobState.PENDING, name="r1",
                                 comment=job_comment(paths.run_id, 2, "train"))
    client.set(sub.train_job, JobState.CANCELLED)
    n_before = len(client.submitted)
    handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert paths.read_job_id(paths.train_job_file(2)) == "555"
    assert len(client.submitted) == n_before + 1  # only its watchdog
    assert client.submitted[-1].dependency == "afternotok:555"


# -- the fast path -----------------------------------------------------------------------------
def test_fast_path_decides_without_slurm_and_cancels_its_watchdog(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.RUNNING)  # the job is still alive: it is deciding itself
    marker(paths, 1, "nccl")
    d = conclude(paths, cfg, client, 1, sub.train_job, 143)
    assert d.action is Action.RESTART and d.reason == "Transient failure detected (error_type=nccl)"
    assert paths.read_job_id(paths.train_job_file(2))
    assert sub.watchdog_job in client.cancelled
    # the watchdog, had it started anyway, does nothing: the holder (this job) is alive
    assert handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0) is None


@pytest.mark.parametrize("state", [JobState.CANCELLED, JobState.TIMEOUT, JobState.NODE_FAIL])
def test_fast_path_leaves_a_job_slurm_is_ending_to_the_watchdog(run, state):
    """A scancel may end the training (143) before the batch shell's TERM trap runs: the step
    looks failed, but Slurm already says CANCELLED; the watchdog decides with that record."""
    paths, cfg, client, sub = run
    client.set(sub.train_job, state)
    assert conclude(paths, cfg, client, 1, sub.train_job, 143) is None
    assert not paths.attempt_dir(2).exists() and sub.watchdog_job not in client.cancelled
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d is not None and d.error_type != "unknown"


def test_fast_path_stop_also_cancels_the_watchdog(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.RUNNING)
    marker(paths, 1, "oom", "permanent")
    d = conclude(paths, cfg, client, 1, sub.train_job, 1)
    assert d.action is Action.STOP and "oom" in d.reason
    assert not paths.attempt_dir(2).exists()
    assert sub.watchdog_job in client.cancelled


def test_continuation_before_the_time_limit_waits_for_this_job(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.RUNNING)
    d = continue_before_timeout(paths, cfg, client, 1, sub.train_job)
    assert d.action is Action.RESTART and not d.counts_against_budget
    assert "does not use the retry budget" in d.reason
    train2 = [r for r in client.submitted if r.env.get("AUTOEXP_ATTEMPT") == "2" and r.dependency
              and r.dependency.startswith("afterany")]
    assert train2 and train2[0].dependency == f"afterany:{sub.train_job}"
    # the job then ends TIMEOUT; its watchdog (had it not been cancelled) finds nothing to do
    client.set(sub.train_job, JobState.TIMEOUT)
    assert handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0) is None


def test_a_job_of_another_run_with_the_same_name_is_not_adopted(run):
    paths, cfg, client, sub = run
    died_after_claiming_attempt_2(paths, sub.train_job)
    client.jobs["556"] = JobInfo("556", JobState.PENDING, name="r1", work_dir="/elsewhere/r1",
                                 comment=job_comment(paths.run_id, 2, "train"))
    client.set(sub.train_job, JobState.CANCELLED)
    handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert paths.read_job_id(paths.train_job_file(2)) not in (None, "556")
