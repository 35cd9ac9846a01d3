"""The watchdog, facts, status and resume against a fake Slurm client (no cluster needed).

The real chain runs in tests/scenarios on the real cluster; these pin down the decisions and
the bookkeeping around them, including the failure paths a real Slurm can't produce on demand.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from sidecar.config import load_config
from sidecar.errors import SlurmError
from sidecar.launch import submit_attempt
from sidecar.policy import Action
from sidecar.resume import resume
from sidecar.rundir import RunPaths, atomic_write_json
from sidecar.run_report import build_status, render_text
from sidecar.slurm.types import JobInfo, JobState, SubmitRequest
from sidecar.status import RunState
from sidecar.watchdog import handle_attempt


class FakeClient:
    kind = "fake"

    def __init__(self):
        self.jobs: dict[str, JobInfo] = {}
        self.submitted: list[SubmitRequest] = []
        self.cancelled: list[str] = []
        self.fail_submit = False
        self.lock = threading.Lock()
        self.next_id = 100
        self.down: set[str] = set()
        self.oom: dict[str, tuple[str, ...]] = {}

    def submit(self, req):
        if self.fail_submit:
            raise SlurmError("sbatch: error: Batch job submission failed: Invalid account",
                             "set slurm.account")
        with self.lock:
            self.next_id += 1
            jid = str(self.next_id)
            self.submitted.append(req)
            self.jobs[jid] = JobInfo(jid, JobState.PENDING, name=req.name, comment=req.comment)
        return jid

    def job_info(self, job_id):
        return self.jobs.get(str(job_id), JobInfo(str(job_id), JobState.UNKNOWN))

    def set(self, job_id, state, **kw):
        self.jobs[job_id] = replace(self.jobs.get(job_id, JobInfo(job_id, state)), state=state, **kw)

    def cancel(self, job_id, signal=None):
        self.cancelled.append(job_id)
        self.set(job_id, JobState.CANCELLED)

    def update(self, job_id, **fields):
        pass

    def find_jobs(self, name=None, comment=None, active_only=False):
        return [j for j in self.jobs.values() if (not comment or j.comment == comment)]

    def version(self):
        return "22.05.8"

    def failed_nodes(self, nodes):
        return tuple(n for n in nodes if n in self.down)

    def oom_steps(self, job_id):
        return self.oom.get(str(job_id), ())


@pytest.fixture
def run(tmp_path):
    cfg = load_config(None, ["slurm=local", f"run.root={tmp_path}", "run.name=r1"],
                      now=datetime(2026, 11, 29, 12, 0, 0))
    paths = RunPaths.of(tmp_path / "r1")
    paths.create("r1")
    paths.train_script.write_text("#!/bin/bash\n")
    paths.watchdog_script.write_text("#!/bin/bash\n")
    client = FakeClient()
    paths.claim_attempt(1)
    sub = submit_attempt(client, paths, "r1", 1, "")
    return paths, cfg, client, sub


def marker(paths, n, error_type, cls="transient", node=None):
    atomic_write_json(paths.marker(n), {"error_type": error_type, "class": cls, "node": node,
                                        "line": "x", "line_no": 3})


def test_submit_attempt_requests(run):
    paths, cfg, client, sub = run
    train, wd = client.submitted
    assert train.options["no-requeue"] is True and train.workdir == str(paths.root)
    assert train.env["AUTOEXP_ATTEMPT"] == "1"
    assert train.comment == "autoexp-sidecar:r1:1:train"
    assert wd.dependency == f"afternotok:{sub.train_job}"
    assert wd.options["kill-on-invalid-dep"] == "yes"
    assert paths.read_job_id(paths.train_job_file(1)) == sub.train_job
    assert paths.read_job_id(paths.watchdog_job_file(1)) == sub.watchdog_job


def test_transient_marker_resubmits_next_attempt(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    marker(paths, 1, "nccl")
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.RESTART and d.reason == "Transient failure detected (error_type=nccl)"
    assert len(client.submitted) == 4
    train2 = client.submitted[2]
    assert train2.env["AUTOEXP_ATTEMPT"] == "2"
    assert train2.env["AUTOEXP_RESTART_REASON"] == d.reason
    assert json.loads(paths.decision(1).read_text())["action"] == "restart"


def test_node_from_marker_is_excluded_on_resubmission(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    marker(paths, 1, "gpu_hw", node="n2")
    handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert client.submitted[2].options["exclude"] == "n2"


def test_oom_stops_and_submits_nothing(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED, exit_code=1)
    marker(paths, 1, "oom", "permanent")
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.reason == "Permanent failure detected (excluded error_type: oom)"
    assert len(client.submitted) == 2
    st = build_status(paths, client, 3)
    assert st.state is RunState.STOPPED and "oom" in st.detail


def test_failed_without_marker_classifies_log_tail(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED, exit_code=1)
    paths.train_log(sub.train_job).write_bytes(
        b" iteration 5/ 100 | lm loss: 3.0 |\n\xff\xfe garbage\n"
        b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.STOP and d.error_type == "oom"


def test_log_tail_labels_are_placed_on_slurm_s_nodes(run):
    """srun --label task 1 of a job on n[2-3] ran on n3 (one task per node, the local preset):
    a node-local failure names it (excluded next time), and the record says where the line
    came from. The real DefaultCPUAllocator line of episodes/srun_cpu_alloc_labelled.log."""
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED, exit_code=1, nodes=("n2", "n3"), node_list="n[2-3]")
    paths.train_log(sub.train_job).write_bytes(
        b"1: [default0]:[rank1]: RuntimeError: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
        b"can't allocate memory: you tried to allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)\n"
        b"srun: error: n3: task 1: Exited with exit code 1\n")
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.error_type == "host_oom" and d.node == "n3"
    recorded = json.loads(paths.decision(1).read_text())
    assert recorded["line_node"] == "n3"


def test_missing_log_and_no_marker_is_unknown_restart(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED, exit_code=2)
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.RESTART and d.error_type == "unknown"


def test_garbled_marker_and_events_do_not_lose_history(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    paths.marker(1).write_text("{not json")
    with open(paths.events, "a") as fh:
        fh.write("{torn line\n")
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.RESTART and d.error_type == "scancel"
    kinds = [e["event"] for e in paths.iter_events()]
    assert kinds[:4] == ["submitting", "submitted", "watchdog_armed", "decided"]


def test_two_watchdogs_same_attempt_submit_once(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    marker(paths, 1, "nccl")
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for r in results if r is not None) == 1
    trains = [r for r in client.submitted if r.comment.endswith(":train")]
    assert len(trains) == 2  # attempt 1 and exactly one attempt 2


def test_budget_runs_out_on_the_fourth_failure(run):
    paths, cfg, client, sub = run
    job = sub.train_job
    for n in range(1, 5):
        client.set(job, JobState.CANCELLED)
        d = handle_attempt(paths, cfg, client, n, job, wait_s=0)
        if n < 4:
            assert d.action is Action.RESTART, d.reason
            job = paths.read_job_id(paths.train_job_file(n + 1))
    assert d.reason == "retry budget exhausted (attempt 4/3)"
    st = build_status(paths, client, cfg.restart.max_retries)
    assert st.state is RunState.STOPPED
    assert st.budget_used == 3  # restarts that used the budget
    assert "retry budget exhausted" in render_text(st)


def test_submit_failure_is_recorded_and_resume_repairs_it(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    client.fail_submit = True
    with pytest.raises(SlurmError):
        handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    st = build_status(paths, client, 3)
    assert st.state is RunState.BROKEN and "submitting attempt 2 failed" in st.detail
    client.fail_submit = False
    msg = resume(paths, cfg, client)
    assert "submitted attempt 2" in msg
    assert build_status(paths, client, 3).state is RunState.QUEUED


def test_cancelled_watchdog_is_a_broken_chain_and_resume_rearms(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.RUNNING)
    client.set(sub.watchdog_job, JobState.CANCELLED)
    st = build_status(paths, client, 3)
    assert st.state is RunState.BROKEN and "watchdog" in st.detail
    msg = resume(paths, cfg, client)
    assert "armed a new watchdog" in msg
    assert build_status(paths, client, 3).state is RunState.RUNNING


def test_ended_attempt_without_decision_is_decided_by_resume(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED, exit_code=1)
    client.set(sub.watchdog_job, JobState.CANCELLED)
    assert build_status(paths, client, 3).state is RunState.BROKEN
    assert "decided attempt 1: restart" in resume(paths, cfg, client)


def test_stopped_run_needs_force(run):
    paths, cfg, client, sub = run
    paths.stop_request.write_text("{}")
    client.set(sub.train_job, JobState.CANCELLED)
    handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert "nothing to re-arm" in resume(paths, cfg, client)
    assert "submitted attempt 2" in resume(paths, cfg, client, force=True)
    assert not paths.stop_request.exists()


def test_running_job_is_not_decided_and_claim_is_released(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.RUNNING)
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.NOTHING
    assert not paths.decide_claim(1).exists()


def test_inspect_text_lists_attempts(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    marker(paths, 1, "hang")
    handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    text = render_text(build_status(paths, client, 3))
    assert "Transient failure detected (error_type=hang)" in text
    assert "budget:   1/3" in text


def test_epilog_record_supplies_the_exit_code_when_nothing_else_does(run):
    from sidecar.facts import epilog_exit_code, gather

    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED)  # Slurm gave no exit code, the trap never ran
    atomic_write_json(paths.ending(sub.train_job), {"exit_code2": "3:0", "source": "epilog"})
    assert gather(paths, 1, sub.train_job, client, cfg.monitoring, wait_s=0).exit_code == 3
    assert epilog_exit_code({"exit_code2": "garbage"}) is None
    assert epilog_exit_code(None) is None


# -- review defects (issue 8): each of these failed before its fix

def _trains(client):
    return [r for r in client.submitted if r.comment.endswith(":train")]


def test_force_resume_refuses_while_the_training_job_runs(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.RUNNING)
    client.set(sub.watchdog_job, JobState.PENDING)
    paths.stop_request.write_text("{}")  # `stop --no-cancel`: the job runs on
    msg = resume(paths, cfg, client, force=True)
    assert msg.startswith("not resuming") and f"scancel {sub.train_job}" in msg
    assert len(_trains(client)) == 1


def test_force_resume_refuses_after_stop_while_the_job_still_ends(run):
    from sidecar.history import EventKind
    paths, cfg, client, sub = run
    paths.append_event(EventKind.STOPPED, attempt=1, reason="Stop requested")
    client.set(sub.train_job, JobState.COMPLETING)
    assert resume(paths, cfg, client, force=True).startswith("not resuming")
    assert len(_trains(client)) == 1


def test_force_resume_clears_the_stopped_status(run):
    paths, cfg, client, sub = run
    paths.stop_request.write_text("{}")
    client.set(sub.train_job, JobState.CANCELLED)
    handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert build_status(paths, client, 3).state is RunState.STOPPED
    assert "submitted attempt 2" in resume(paths, cfg, client, force=True)
    st = build_status(paths, client, 3)
    assert st.state is RunState.QUEUED, st.detail
    # and a finished run that is forced again likewise
    client.set(paths.read_job_id(paths.train_job_file(2)), JobState.COMPLETED, exit_code=0)
    client.set(paths.read_job_id(paths.watchdog_job_file(2)), JobState.CANCELLED)
    from sidecar.watchdog import record_completion
    record_completion(paths, cfg, 2, paths.read_job_id(paths.train_job_file(2)))
    assert build_status(paths, client, 3).state is RunState.FINISHED
    assert "submitted attempt 3" in resume(paths, cfg, client, force=True)
    assert build_status(paths, client, 3).state is RunState.QUEUED


def test_no_state_json_is_written(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    resume(paths, cfg, client)
    assert not (paths.root / "state.json").exists()


def test_inspect_shows_what_decided_and_the_marker_when_they_differ(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.NODE_FAIL, nodes=("n1", "n2"))
    client.down = {"n2"}
    marker(paths, 1, "nccl")
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.error_type == "node_fail" and d.exclude_nodes == ("n2",)
    st = build_status(paths, client, 3)
    assert st.attempts[0].error_type == "node_fail"
    assert st.attempts[0].marker_error_type == "nccl"
    assert "node_fail (marker: nccl)" in render_text(st)


def test_a_submission_in_progress_is_not_broken_and_resume_leaves_it(run):
    import time
    from sidecar.history import EventKind
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    client.set(sub.watchdog_job, JobState.RUNNING)
    paths.claim_attempt(2)  # the watchdog claimed attempt 2; its sbatch is retrying
    paths.append_event(EventKind.SUBMITTING, attempt=2, by="pid 1 on n1",
                       submitter_job=sub.watchdog_job, deadline=time.time() + 400)
    st = build_status(paths, client, 3)
    assert st.state is RunState.SUBMITTING, st.detail
    assert resume(paths, cfg, client).startswith("not resuming")
    assert len(_trains(client)) == 1
    # the watchdog died without submitting: now it is broken, and resume submits once
    client.set(sub.watchdog_job, JobState.CANCELLED)
    st = build_status(paths, client, 3)
    assert st.state is RunState.BROKEN and "claimed but never submitted" in st.detail
    assert "submitted attempt 2" in resume(paths, cfg, client)
    assert "nothing to do" in resume(paths, cfg, client)
    assert len(_trains(client)) == 2


def test_a_claim_without_a_submitting_event_gets_a_grace_period(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.CANCELLED)
    paths.claim_attempt(2)
    now = paths.attempt_dir(2).stat().st_mtime
    assert build_status(paths, client, 3, now=now + 1).state is RunState.SUBMITTING
    assert build_status(paths, client, 3, now=now + 600).state is RunState.BROKEN


def test_success_is_finished_by_the_policy(run):
    from sidecar.history import EventKind, read_history
    from sidecar.watchdog import record_completion
    paths, cfg, client, sub = run
    d = record_completion(paths, cfg, 1, sub.train_job)
    assert d is not None and d.action is Action.FINISHED
    h = read_history(paths)
    assert h.decisions()[1]["action"] == "finished"
    assert h.outcome() is not None and h.outcome().kind is EventKind.FINISHED
    assert record_completion(paths, cfg, 1, sub.train_job) is None  # decided once


def test_unreadable_slurm_defers_and_resume_decides_later(run):
    from sidecar.history import EventKind, read_history
    paths, cfg, client, sub = run
    real_job_info = client.job_info

    def down(job_id):
        raise SlurmError("scontrol: error: Unable to contact slurm controller", "wait")
    client.job_info = down
    sleeps = []
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0, defer_s=0.05,
                       sleep=sleeps.append)
    assert d.action is Action.DEFER and sleeps  # it asked again before giving up
    assert not paths.decide_claim(1).exists() and not paths.decision(1).exists()
    assert len(_trains(client)) == 1  # nothing guessed, nothing submitted
    assert read_history(paths).of_kind(EventKind.DEFERRED)
    client.job_info = real_job_info
    client.set(sub.train_job, JobState.CANCELLED)
    client.set(sub.watchdog_job, JobState.COMPLETED)
    assert build_status(paths, client, 3).state is RunState.BROKEN
    assert "decided attempt 1: restart" in resume(paths, cfg, client)
    assert len(_trains(client)) == 2


def test_last_checkpoint_is_the_one_on_disk_not_the_last_save_line_seen(run):
    """The sidecar recorded 40 (it stopped reading mid-save); the tracker file says 60."""
    from sidecar.facts import gather

    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED)
    atomic_write_json(paths.progress(1), {"last_iteration": 63, "last_checkpoint": 40})
    assert gather(paths, 1, sub.train_job, client, cfg.monitoring, wait_s=0,
                  checkpoint_dir=paths.checkpoints).last_checkpoint == 40  # no tracker yet
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    (paths.checkpoints / "latest_checkpointed_iteration.txt").write_text("60\n")
    assert gather(paths, 1, sub.train_job, client, cfg.monitoring, wait_s=0,
                  checkpoint_dir=paths.checkpoints).last_checkpoint == 60


EPISODES = Path(__file__).resolve().parents[1] / "classify" / "fixtures" / "episodes"


@pytest.mark.parametrize("seen", [
    # what the sidecar may have written before slurmstepd's oom-kill line came (real lines 28, 29)
    ("store", "symptom", "0: [default0]:[rank0]: RuntimeError: [/__w/pytorch/pytorch/third_party/gloo/gloo/"
                         "transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:32958."),
    ("killed", "death", "1: E1201 07:02:06.624000 11750 torch/distributed/elastic/multiprocessing/api.py:1002] "
                        "failed (exitcode: -9) local_rank: 0 (pid: 11843) of binary: .venv/bin/python"),
], ids=["symptom", "death"])
def test_memory_kill_in_the_log_outranks_a_follow_on_marker(run, seen):
    """The real host_oom episode: the step ended FAILED (no OUT_OF_MEMORY step: the survivor's
    exit code decided it) and the marker names only a follow-on line; the log read at decision
    time has the oom-kill line, which is the stop's cause."""
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED, exit_code=1)
    et, role, line = seen
    atomic_write_json(paths.marker(1), {"error_type": et, "class": "transient", "role": role, "line": line})
    paths.train_log(sub.train_job).write_bytes((EPISODES / "ddp_slurm_oom_kill.log").read_bytes())
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.STOP and d.reason == "Permanent failure detected (excluded error_type: host_oom)"
    assert d.line.startswith("1: slurmstepd-n2: error: Detected 1 oom-kill event(s) in StepId=271.0")
    assert len(client.submitted) == 2  # nothing new


def test_oom_step_in_accounting_outranks_a_killed_rank_marker(run):
    paths, cfg, client, sub = run
    client.set(sub.train_job, JobState.FAILED, exit_code=1)
    client.oom[sub.train_job] = (f"{sub.train_job}.0",)
    atomic_write_json(paths.marker(1), {"error_type": "killed", "class": "transient", "role": "death",
                                        "line": "exitcode  : -9 (pid: 11134)  (SIGKILL)"})
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.STOP and d.error_type == "host_oom"
    assert (d.line, d.source) == (f"Slurm: step {sub.train_job}.0 ended OUT_OF_MEMORY", "slurm")
    assert json.loads(paths.decision(1).read_text())["line"] == d.line
