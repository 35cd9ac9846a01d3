"""Pure parser tests on real output captured from the local cluster (tests/fixtures/slurm/)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from sidecar.slurm.parse import (
    expand_nodelist,
    parse_exit_code,
    parse_sacct,
    parse_sbatch_parsable,
    parse_scontrol_show_job,
    parse_squeue,
    parse_version,
    split_scontrol_fields,
)
from sidecar.slurm.types import JobState

FIXTURES = Path(__file__).parent / "fixtures" / "slurm"
PARSERS = {"scontrol": parse_scontrol_show_job, "sacct": parse_sacct, "squeue": parse_squeue}


def fixture(name: str) -> str:
    """A fixture without its leading ``#`` comment lines (derived fixtures explain themselves)."""
    return "".join(l for l in (FIXTURES / name).read_text().splitlines(True) if not l.startswith("#"))


def one(source: str, case: str):
    jobs = PARSERS[source](fixture(f"{source}_{case}.txt"))
    assert len(jobs) == 1, jobs
    return jobs[0]


# ------------------------------------------------------------------ every state, every source

# (case, state in scontrol, sacct, squeue) as captured; sacct shows requeue_hold/special_exit
# as PENDING (seen on 22.05).
CAPTURED = [
    ("pending_held", "PENDING", "PENDING", "PENDING"),
    ("pending_dependency", "PENDING", "PENDING", "PENDING"),
    ("running_2nodes", "RUNNING", "RUNNING", "RUNNING"),
    ("completed", "COMPLETED", "COMPLETED", "COMPLETED"),
    ("failed", "FAILED", "FAILED", "FAILED"),
    ("cancelled_running", "CANCELLED", "CANCELLED", "CANCELLED"),
    ("cancelled_pending", "CANCELLED", "CANCELLED", "CANCELLED"),
    ("cancelled_pending_long_reason", "CANCELLED", "CANCELLED", "CANCELLED"),
    ("timeout", "TIMEOUT", "TIMEOUT", "TIMEOUT"),
    ("node_fail", "NODE_FAIL", "NODE_FAIL", "NODE_FAIL"),
    ("suspended", "SUSPENDED", "SUSPENDED", "SUSPENDED"),
    ("requeued_pending", "PENDING", "PENDING", "PENDING"),
    ("requeue_hold", "PENDING", "PENDING", "PENDING"),
    ("special_exit", "SPECIAL_EXIT", "PENDING", "SPECIAL_EXIT"),
]


@pytest.mark.parametrize("case,sc,sa,sq", CAPTURED)
def test_captured_states(case, sc, sa, sq):
    assert one("scontrol", case).state is JobState[sc]
    assert one("sacct", case).state is JobState[sa]
    assert one("squeue", case).state is JobState[sq]


@pytest.mark.parametrize("source", sorted(PARSERS))
def test_every_jobstate_parses_from_each_source(source):
    """Captured + derived lines together cover every JobState, from each of the three sources."""
    seen = set()
    for path in FIXTURES.glob(f"{source}_*.txt"):
        for job in PARSERS[source](fixture(path.name)):
            seen.add(job.state)
            assert job.source == source
            assert job.job_id.isdigit()
    missing = set(JobState) - seen
    assert not missing, f"{source}: no fixture line parses to {sorted(s.name for s in missing)}"


@pytest.mark.parametrize("source", sorted(PARSERS))
def test_derived_states_in_order(source):
    jobs = PARSERS[source](fixture(f"{source}_derived_states.txt"))
    names = [j.state.name for j in jobs]
    assert names[-1] == "UNKNOWN"  # SOMETHING_NEW
    assert "OUT_OF_MEMORY" in names and "PREEMPTED" in names and "BOOT_FAIL" in names
    assert all(j.name and j.name.startswith("fxcap-") for j in jobs)


@pytest.mark.parametrize("state", [s.value for s in JobState] + ["CANCELLED by 12345", "COMPLETING+",
                                                                   "weird", "", "  ", "CD", "oom"])
def test_state_text_never_raises(state):
    line = fixture("scontrol_failed.txt").replace("JobState=FAILED", f"JobState={state}")
    assert isinstance(parse_scontrol_show_job(line)[0].state, JobState)
    sacct = fixture("sacct_failed.txt").replace("|FAILED|", f"|{state}|")
    assert isinstance(parse_sacct(sacct)[0].state, JobState)


# ------------------------------------------------------------------ scontrol details


def test_scontrol_failed_exit_code_and_fields():
    j = one("scontrol", "failed")
    assert (j.job_id, j.name, j.comment) == ("19", "fxcap-fail", "fx-fail")
    assert (j.exit_code, j.signal) == (3, 0)
    assert j.reason == "NonZeroExitCode"
    assert j.nodes == ("n1",) and j.node_list == "n1"
    assert j.work_dir == "/tmp/fx" and j.std_out == "/tmp/fx/19.out"
    assert j.submit_time == datetime(2026, 11, 29, 5, 30, 31)
    assert j.end_time == datetime(2026, 11, 29, 5, 30, 35)


def test_scontrol_timeout_and_cancel_carry_sigterm():
    assert (one("scontrol", "timeout").exit_code, one("scontrol", "timeout").signal) == (0, 15)
    assert one("scontrol", "timeout").reason == "TimeLimit"
    assert one("scontrol", "cancelled_running").signal == 15


def test_scontrol_running_two_nodes_spaces_and_pipes():
    j = one("scontrol", "running_2nodes")
    assert j.name == "fxcap run 2 nodes"
    assert j.comment == "fx run, with | pipe"
    assert j.nodes == ("n2", "n3") and j.node_list == "n[2-3]"
    assert j.start_time == datetime(2026, 11, 29, 5, 30, 51)
    assert j.end_time is None  # EndTime of a running job is its time limit, not an end


def test_scontrol_pending_has_no_times_or_nodes():
    j = one("scontrol", "pending_dependency")
    assert j.reason == "Dependency"
    assert j.nodes == () and j.node_list is None
    assert j.start_time is None and j.end_time is None


def test_scontrol_cancelled_while_pending_never_started():
    # Slurm sets StartTime=EndTime=<cancel time> for a job that never ran
    j = one("scontrol", "cancelled_pending")
    assert j.start_time is None
    assert j.end_time == datetime(2026, 11, 29, 5, 30, 38)


def test_scontrol_requeue_restarts():
    assert one("scontrol", "requeued_pending").restart_count == 1
    assert one("scontrol", "requeue_hold").reason == "job_requeued_in_held_state"
    assert one("scontrol", "failed").restart_count == 0


def test_scontrol_node_fail_exit_code_is_not_reported():
    # 22.05: 0:0; 24.11: 0:1 (derived line) -- neither is a real exit status
    assert (one("scontrol", "node_fail").exit_code, one("scontrol", "node_fail").signal) == (None, None)
    derived = [j for j in parse_scontrol_show_job(fixture("scontrol_derived_states.txt"))
               if j.state is JobState.NODE_FAIL]
    assert derived and derived[0].signal is None and derived[0].exit_code is None
    assert one("scontrol", "node_fail").nodes == ("n3",)


def test_scontrol_multiple_lines():
    text = fixture("scontrol_failed.txt") + fixture("scontrol_timeout.txt") + "\n\n"
    jobs = parse_scontrol_show_job(text)
    assert [j.job_id for j in jobs] == ["19", "8"]
    assert [j.state for j in jobs] == [JobState.FAILED, JobState.TIMEOUT]


def test_scontrol_free_text_keeps_unknown_key_like_words():
    line = fixture("scontrol_failed.txt").replace("Comment=fx-fail", "Comment=a b lr=3e-4 x")
    assert parse_scontrol_show_job(line)[0].comment == "a b lr=3e-4 x"


def test_scontrol_kill_on_invalid_dep_field_24_11_style():
    f = split_scontrol_fields(fixture("scontrol_pending_dependency.txt"))
    assert f["Dependency"].startswith("afternotok:") and f["KillOInInvalidDependent"] == "Yes"


def test_scontrol_garbage_does_not_raise():
    assert parse_scontrol_show_job("") == []
    assert parse_scontrol_show_job("slurm_load_jobs error: Invalid job id specified") == []
    j = parse_scontrol_show_job("JobId=7 JobState= ExitCode=x:y NodeList=n[ SubmitTime=yesterday")[0]
    assert j.state is JobState.UNKNOWN and j.exit_code is None and j.submit_time is None


# ------------------------------------------------------------------ sacct details


def test_sacct_cancelled_by_uid():
    j = one("sacct", "cancelled_running")
    assert j.state is JobState.CANCELLED
    assert (j.exit_code, j.signal) == (0, 0)  # sacct says 0:0 where scontrol says 0:15


def test_sacct_pending_none_assigned_and_unknown_times():
    j = one("sacct", "pending_held")
    assert j.nodes == () and j.node_list is None
    assert j.start_time is None and j.end_time is None
    assert j.comment is None  # sacct keeps no comment without AccountingStoreFlags=job_comment


def test_sacct_node_fail_quirks():
    assert one("sacct", "node_fail").exit_code is None
    derived = [j for j in parse_sacct(fixture("sacct_derived_states.txt")) if j.state is JobState.NODE_FAIL]
    assert derived[0].exit_code is None  # 24.11 writes 1:0


def test_sacct_oom_signal():
    j = [j for j in parse_sacct(fixture("sacct_derived_states.txt")) if j.state is JobState.OUT_OF_MEMORY][0]
    assert (j.exit_code, j.signal) == (0, 125)


def test_sacct_last_line_per_job_wins_and_steps_ignored():
    line = fixture("sacct_failed.txt").strip()
    older = line.replace("|FAILED|", "|REQUEUED|")
    step = line.replace("19|", "19.batch|", 1)
    jobs = parse_sacct("\n".join([older, step, line, "garbage", "1|2"]))
    assert [(j.job_id, j.state) for j in jobs] == [("19", JobState.FAILED)]


# ------------------------------------------------------------------ squeue details


def test_squeue_fields():
    j = one("squeue", "running_2nodes")
    assert j.comment == "fx run, with | pipe" and j.name == "fxcap run 2 nodes"
    assert j.nodes == ("n2", "n3")
    assert one("squeue", "requeue_hold").reason == "job requeued in held state"
    p = one("squeue", "pending_held")
    assert p.start_time is None and p.end_time is None


def test_squeue_garbage():
    assert parse_squeue("squeue: error: Invalid job id specified\n") == []
    assert parse_squeue("") == []


# ------------------------------------------------------------------ sbatch, version, nodelist


def test_sbatch_parsable():
    assert parse_sbatch_parsable(fixture("sbatch_parsable.txt")) == "31"
    assert parse_sbatch_parsable(fixture("sbatch_parsable_cluster.txt")) == "31"
    assert parse_sbatch_parsable("sbatch: warning: x\n42\n") == "42"
    assert parse_sbatch_parsable("") is None
    assert parse_sbatch_parsable("Submitted batch job") is None


def test_version():
    assert parse_version("slurm-wlm 22.05.8\n") == "22.05.8"
    assert parse_version("slurm 24.11.5") == "24.11.5"
    assert parse_version("nothing") is None


@pytest.mark.parametrize("text,expected", [
    ("n[1-3,5]", ("n1", "n2", "n3", "n5")),
    ("a-[01-02]", ("a-01", "a-02")),
    ("n1", ("n1",)),
    ("n1,n[3-4]", ("n1", "n3", "n4")),
    ("r[1-2]-n[1-2]", ("r1-n1", "r1-n2", "r2-n1", "r2-n2")),
    ("gpu[008-010],cpu1", ("gpu008", "gpu009", "gpu010", "cpu1")),
    ("", ()), (None, ()), ("(null)", ()), ("None assigned", ()),
    ("n[3-1]", ("n[3-1]",)), ("n[x]", ("n[x]",)), ("n[1-", ("n[1-",)),
])
def test_expand_nodelist(text, expected):
    assert expand_nodelist(text) == expected


def test_exit_code_forms():
    assert parse_exit_code("3:0") == (3, 0)
    assert parse_exit_code("0:15") == (0, 15)
    assert parse_exit_code("x") == (None, None)
    assert parse_exit_code("") == (None, None)
    assert parse_exit_code("0:1", JobState.NODE_FAIL) == (None, None)


def test_node_states_and_which_are_bad():
    text = ("NodeName=n1 Arch=x86_64 CoresPerSocket=1 State=MIXED ThreadsPerCore=1\n"
            "NodeName=n2 Arch=x86_64 State=DOWN*+DRAIN ThreadsPerCore=1 Reason=Not responding\n"
            "NodeName=n3 Arch=x86_64 State=IDLE+DRAIN ThreadsPerCore=1\n"
            "NodeName=n4 Arch=x86_64 State=IDLE* ThreadsPerCore=1\n")
    from sidecar.slurm.parse import node_state_is_bad, parse_node_states
    states = parse_node_states(text)
    assert states == {"n1": "MIXED", "n2": "DOWN*+DRAIN", "n3": "IDLE+DRAIN", "n4": "IDLE*"}
    assert [n for n, s in states.items() if node_state_is_bad(s)] == ["n2", "n3", "n4"]
    assert not node_state_is_bad("ALLOCATED") and not node_state_is_bad("IDLE+COMPLETING")


def test_oom_steps_from_sacct_with_steps():
    from sidecar.slurm.parse import parse_oom_steps

    # sacct --parsable2 --noheader -j 266 --format=JobIDRaw,State (22.05.8, local cluster, task/cgroup)
    text = "266|FAILED\n266.batch|FAILED\n266.0|OUT_OF_MEMORY\n"
    assert parse_oom_steps(text, "266") == ("266.0",)
    assert parse_oom_steps(text, "26") == ()
    assert parse_oom_steps("266|OUT_OF_MEMORY\n266.batch|OUT_OF_MEMORY\n", "266") == ("266.batch",)
    assert parse_oom_steps("266|FAILED\n266.batch|FAILED\n266.0|CANCELLED by 0\n", "266") == ()
