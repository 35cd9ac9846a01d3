"""PyslurmClient and get_client with pyslurm mocked in sys.modules (pytest-mock), plus an
optional real tier (``pyslurm_real``) that runs only where pyslurm imports and matches Slurm."""

from __future__ import annotations

import sys
import time
import types
import uuid
from datetime import datetime

import pytest

from sidecar.errors import SlurmError
from sidecar.slurm import get_client, pyslurm_status
from sidecar.slurm.cli_client import CliSlurmClient
from sidecar.slurm.pyslurm_client import (
    PyslurmClient,
    UnsupportedByPyslurm,
    minutes,
    parse_sbatch_directives,
    same_major_minor,
    submit_kwargs,
)
from sidecar.slurm.runner import Completed, SlurmCommandError
from sidecar.slurm.types import JobInfo, JobState, SubmitRequest


class FakeRPCError(Exception):
    pass


def fake_job(**kw):
    base = dict(id=42, name="r1", comment="c1", state="FAILED", state_reason="NonZeroExitCode",
                exit_code=3, exit_code_signal=0, allocated_nodes="n[1-2]", requeue_count=1,
                submit_time=1795930000, start_time=1795930010, end_time=1795930070,
                working_directory="/runs/r1", standard_output="/runs/r1/42.out")
    base.update(kw)
    return types.SimpleNamespace(**base)


@pytest.fixture
def pyslurm(mocker):
    """A mock pyslurm module installed in sys.modules, as the real one would be."""
    mod = mocker.MagicMock(name="pyslurm")
    mod.__version__ = "22.5.3"
    mod.RPCError = FakeRPCError
    mocker.patch.dict(sys.modules, {"pyslurm": mod})
    return mod


def version_runner(version: str = "slurm-wlm 22.05.8"):
    def runner(argv, **kw):
        return Completed(tuple(argv), 0, version + "\n", "")
    return runner


@pytest.fixture
def script(tmp_path):
    s = tmp_path / "train.sbatch"
    s.write_text("#!/bin/bash\n#SBATCH --partition=debug\n#SBATCH -t 00:10:00\n#SBATCH --no-requeue\n"
                 "#SBATCH --output=/runs/%j.out  # a comment\n\necho hi\n#SBATCH --time=99\n")
    return s


# ------------------------------------------------------------------ selection


def test_auto_uses_pyslurm_when_versions_match(pyslurm):
    c = get_client("auto", runner=version_runner())
    assert c.kind == "pyslurm" and isinstance(c.fallback, CliSlurmClient)


def test_auto_falls_back_to_cli_on_version_mismatch(pyslurm):
    assert get_client("auto", runner=version_runner("slurm 24.11.5")).kind == "cli"
    mod, why = pyslurm_status(version_runner("slurm 24.11.5"))
    assert mod is None and "22.5.3" in why and "24.11.5" in why


def test_auto_without_pyslurm_is_cli(mocker):
    mocker.patch.dict(sys.modules, {"pyslurm": None})  # None in sys.modules: import fails
    assert get_client("auto", runner=version_runner()).kind == "cli"


def test_kind_pyslurm_unusable_raises_with_reason(mocker):
    mocker.patch.dict(sys.modules, {"pyslurm": None})
    with pytest.raises(SlurmError) as ei:
        get_client("pyslurm", runner=version_runner())
    assert "pyslurm is not usable" in ei.value.message and "slurm.client: cli" in ei.value.tip


def test_kind_pyslurm_mismatch_raises(pyslurm):
    with pytest.raises(SlurmError) as ei:
        get_client("pyslurm", runner=version_runner("slurm 24.11.5"))
    assert "does not match" in ei.value.message


def test_kind_pyslurm_when_cluster_version_unknown(pyslurm):
    def broken(argv, **kw):
        raise SlurmCommandError("no", argv=argv, returncode=None)
    with pytest.raises(SlurmError, match="version is unknown"):
        get_client("pyslurm", runner=broken)


def test_kind_cli_and_bad_kind(pyslurm):
    assert get_client("cli").kind == "cli"
    with pytest.raises(SlurmError):
        get_client("slurmrestd")


@pytest.mark.parametrize("a,b,ok", [("22.5.3", "22.05.8", True), ("24.11.0", "24.11.5", True),
                                    ("25.11.1", "24.11.5", False), ("22.5.3", None, False), (None, "22.05", False)])
def test_same_major_minor(a, b, ok):
    assert same_major_minor(a, b) is ok


# ------------------------------------------------------------------ submit


def test_submit_builds_description(pyslurm, script):
    pyslurm.JobSubmitDescription.return_value.submit.return_value = 77
    c = PyslurmClient(pyslurm)
    req = SubmitRequest(script=str(script), name="r1", comment="c1", dependency="afternotok:5",
                        options={"time": "01:00:00", "kill-on-invalid-dep": "yes", "exclude": "n3"},
                        env={"A": "x,y"}, workdir="/runs/r1")
    assert c.submit(req) == "77"
    kw = pyslurm.JobSubmitDescription.call_args.kwargs
    assert kw["name"] == "r1" and kw["comment"] == "c1" and kw["script"] == str(script)
    assert kw["dependencies"] == "afternotok:5" and kw["kill_on_invalid_dependency"] is True
    assert kw["time_limit"] == 60  # int minutes: pyslurm 22.5.3 raises TypeError on "60"
    assert kw["excluded_nodes"] == "n3" and kw["working_directory"] == "/runs/r1"
    assert kw["partitions"] == "debug" and kw["is_requeueable"] is False  # from #SBATCH lines
    assert kw["standard_output"] == "/runs/%j.out"
    assert kw["environment"]["A"] == "x,y"


def test_submit_transient_error_looks_up_before_retrying(pyslurm, script):
    desc = pyslurm.JobSubmitDescription.return_value
    desc.submit.side_effect = [FakeRPCError("Socket timed out on send/recv operation")]
    pyslurm.Jobs.load.return_value = {42: fake_job(id=42, name="r1", comment="c1", state="PENDING")}
    c = PyslurmClient(pyslurm, sleep=lambda s: None)
    assert c.submit(SubmitRequest(script=str(script), name="r1", comment="c1")) == "42"
    assert desc.submit.call_count == 1


def test_submit_transient_not_found_retries(pyslurm, script):
    desc = pyslurm.JobSubmitDescription.return_value
    desc.submit.side_effect = [FakeRPCError("Unable to contact slurm controller (connect failure)"), 43]
    pyslurm.Jobs.load.return_value = {}
    c = PyslurmClient(pyslurm, sleep=lambda s: None)
    assert c.submit(SubmitRequest(script=str(script), name="r1", comment="c1")) == "43"
    assert desc.submit.call_count == 2


def test_submit_permanent_error(pyslurm, script):
    pyslurm.JobSubmitDescription.return_value.submit.side_effect = FakeRPCError("Invalid partition name specified")
    with pytest.raises(SlurmError) as ei:
        PyslurmClient(pyslurm, sleep=lambda s: None).submit(SubmitRequest(script=str(script), name="r1", comment="c"))
    assert "sinfo" in ei.value.tip
    assert pyslurm.Jobs.load.call_count == 0


def test_submit_unsupported_option_uses_fallback(pyslurm, script, mocker):
    fallback = mocker.Mock()
    fallback.submit.return_value = "88"
    req = SubmitRequest(script=str(script), name="r1", comment="c", options={"oversubscribe": True})
    assert PyslurmClient(pyslurm, fallback=fallback).submit(req) == "88"
    with pytest.raises(UnsupportedByPyslurm):
        PyslurmClient(pyslurm).submit(req)


def test_submit_missing_script(pyslurm, tmp_path):
    with pytest.raises(SlurmError, match="cannot read batch script"):
        PyslurmClient(pyslurm).submit(SubmitRequest(script=str(tmp_path / "nope"), name="r"))


# ------------------------------------------------------------------ queries


def test_job_info_from_controller(pyslurm):
    pyslurm.Job.load.return_value = fake_job()
    info = PyslurmClient(pyslurm).job_info("42")
    pyslurm.Job.load.assert_called_once_with(42)
    assert info.state is JobState.FAILED and (info.exit_code, info.signal) == (3, 0)
    assert info.nodes == ("n1", "n2") and info.restart_count == 1 and info.source == "pyslurm"
    assert info.start_time == datetime.fromtimestamp(1795930010)


def test_job_info_missing_job_falls_back_to_db(pyslurm):
    pyslurm.Job.load.side_effect = FakeRPCError("Invalid job id specified")
    dbjob = fake_job(state="TIMEOUT", exit_code=0, exit_code_signal=15, nodelist="n3")
    pyslurm.db.Jobs.load.return_value = {42: dbjob}
    info = PyslurmClient(pyslurm).job_info("42")
    assert info.state is JobState.TIMEOUT and info.nodes == ("n3",) and info.source == "pyslurm.db"
    assert pyslurm.db.JobFilter.call_args.kwargs == {"ids": [42]}


def test_auto_asks_sacct_not_pyslurm_db_for_forgotten_jobs(pyslurm, mocker):
    """pyslurm 22.5.3's db.Jobs.load kills the process when slurmdbd is down; with the commands
    at hand (slurm.client auto) the accounting goes through them."""
    pyslurm.Job.load.side_effect = FakeRPCError("Invalid job id specified")
    fallback = mocker.Mock()
    fallback.job_info.return_value = JobInfo(job_id="42", state=JobState.NODE_FAIL, source="sacct")
    fallback.jobs_info.return_value = {"42": JobInfo(job_id="42", state=JobState.NODE_FAIL, source="sacct")}
    pyslurm.Jobs.load.return_value = {}
    client = PyslurmClient(pyslurm, fallback=fallback)
    assert client.job_info("42").state is JobState.NODE_FAIL
    assert client.jobs_info(["42"])["42"].source == "sacct"
    fallback.jobs_info.assert_called_once_with(["42"])
    pyslurm.db.Jobs.load.assert_not_called()


def test_job_info_unknown_everywhere(pyslurm):
    pyslurm.Job.load.side_effect = FakeRPCError("Invalid job id specified")
    pyslurm.db.Jobs.load.return_value = {}
    assert PyslurmClient(pyslurm).job_info("42").state is JobState.UNKNOWN
    pyslurm.db.Jobs.load.side_effect = FakeRPCError("db down")
    assert PyslurmClient(pyslurm).job_info("42").state is JobState.UNKNOWN


@pytest.mark.parametrize("state", ["NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
                                   "REQUEUED", "SUSPENDED", "SPECIAL_EXIT", "REVOKED", "BRAND_NEW", ""])
def test_job_info_any_state(pyslurm, state):
    pyslurm.Job.load.return_value = fake_job(state=state, exit_code=0, exit_code_signal=1)
    info = PyslurmClient(pyslurm).job_info("42")
    assert isinstance(info.state, JobState)
    if state == "NODE_FAIL":
        assert info.exit_code is None and info.signal is None


def test_cancel_update_find(pyslurm):
    c = PyslurmClient(pyslurm)
    c.cancel("42")
    pyslurm.Job.assert_called_with(42)
    pyslurm.Job.return_value.cancel.assert_called_once()
    c.cancel("42", signal="USR1")
    pyslurm.Job.return_value.send_signal.assert_called_once_with("USR1")
    pyslurm.Job.return_value.cancel.side_effect = FakeRPCError("Job/step already completing or completed")
    c.cancel("42")
    c.update("42", ExcNodeList="n3", TimeLimit="00:30:00")
    assert pyslurm.JobSubmitDescription.call_args.kwargs == {"excluded_nodes": "n3", "time_limit": 30}
    pyslurm.Job.return_value.modify.assert_called_once()
    with pytest.raises(SlurmError):
        c.update("42", Weird="x")
    pyslurm.Jobs.load.return_value = {1: fake_job(id=1, state="RUNNING"), 2: fake_job(id=2, comment="other"),
                                      3: fake_job(id=3, name="x")}
    assert [j.job_id for j in c.find_jobs(name="r1")] == ["1", "2"]
    assert [j.job_id for j in c.find_jobs(name="r1", comment="c1")] == ["1"]
    assert [j.job_id for j in c.find_jobs(active_only=True)] == ["1"]
    assert c.version() == "22.5.3"


# ------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize("text,mins", [(5, 5), ("5", 5), ("10:30", 11), ("01:00:00", 60),
                                       ("1-00", 1440), ("1-02:03", 1563), ("2-00:00:01", 2881)])
def test_minutes(text, mins):
    assert minutes(text) == mins


def test_parse_sbatch_directives(script):
    d = parse_sbatch_directives(script.read_text())
    assert d == {"partition": "debug", "time": "00:10:00", "no-requeue": True, "output": "/runs/%j.out"}


def test_request_options_override_directives():
    kw = submit_kwargs(SubmitRequest(script="s", name="n", options={"time": 7}), {"time": "00:10:00", "job-name": "x"})
    assert kw["time_limit"] == 7 and kw["name"] == "n"


# ------------------------------------------------------------------ real pyslurm (optional)


@pytest.mark.pyslurm_real
@pytest.mark.slurm
def test_real_pyslurm_roundtrip(tmp_path, real_pyslurm):
    mod = real_pyslurm
    c = PyslurmClient(mod)
    s = tmp_path / "job.sbatch"
    s.write_text("#!/bin/bash\n#SBATCH --partition=debug\n#SBATCH --time=5\nexit 3\n")
    name = f"t-pys-{uuid.uuid4().hex[:8]}"
    held = c.submit(SubmitRequest(script=str(s), name=name, comment=f"{name}-c",
                                  options={"hold": True, "output": "/dev/null"}, workdir=str(tmp_path)))
    try:
        info = c.job_info(held)
        assert info.state is JobState.PENDING and info.name == name and info.comment == f"{name}-c"
        c.update(held, ExcNodeList="n3")
        assert [j.job_id for j in c.find_jobs(name=name, comment=f"{name}-c")] == [held]
    finally:
        c.cancel(held)
    failing = c.submit(SubmitRequest(script=str(s), name=name + "-f", options={"output": "/dev/null"},
                                     workdir=str(tmp_path)))
    deadline = time.monotonic() + 60
    while c.job_info(failing).state is not JobState.FAILED and time.monotonic() < deadline:
        time.sleep(0.5)
    info = c.job_info(failing)
    assert (info.state, info.exit_code) == (JobState.FAILED, 3)
    assert c.job_info("999999999").state is JobState.UNKNOWN
    batch = c.jobs_info([held, failing, "999999999"])
    assert (batch[held].state, batch[failing].state) == (JobState.CANCELLED, JobState.FAILED)
    assert "999999999" not in batch


def test_submitted_environment_drops_the_watchdog_jobs_slurm_variables(monkeypatch):
    from sidecar.slurm.pyslurm_convert import inherited_environment

    env = {"PATH": "/bin", "SLURM_NTASKS": "1", "SLURM_JOB_ID": "7", "SLURM_CONF": "/etc/s.conf"}
    assert inherited_environment(env) == {"PATH": "/bin", "SLURM_CONF": "/etc/s.conf"}
    monkeypatch.setenv("SLURM_NTASKS", "1")
    kw = submit_kwargs(SubmitRequest(script="s", name="n", env={"AUTOEXP_ATTEMPT": "2"}), {})
    assert kw["environment"]["AUTOEXP_ATTEMPT"] == "2" and "SLURM_NTASKS" not in kw["environment"]


def test_a_signal_directive_goes_through_sbatch(pyslurm, script, mocker):
    """pyslurm 22.5.3 takes signal="B:USR1@100" and the job never gets it (measured): the
    pre-timeout signal is sbatch's."""
    fallback = mocker.Mock()
    fallback.submit.return_value = "77"
    req = SubmitRequest(script=str(script), name="t", options={"signal": "B:USR1@100"})
    assert PyslurmClient(pyslurm, fallback=fallback).submit(req) == "77"
    pyslurm.JobSubmitDescription.assert_not_called()
    with pytest.raises(UnsupportedByPyslurm):
        PyslurmClient(pyslurm).submit(req)
