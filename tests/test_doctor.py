"""doctor: each check with fake runners, the table, the CLI; then for real on the cluster and
with slurmctld stopped (a clear FAIL row, non-zero exit, quickly)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidecar.cli.main import main
from sidecar.doctor import (
    CheckResult,
    Status,
    check_accounting,
    check_afternotok,
    check_commands,
    check_controller,
    check_run_root_shared,
    check_run_root_writable,
    check_version,
    exit_code,
    fstype_of,
    render_table,
    run_checks,
)
from sidecar.slurm.runner import Completed, SlurmCommandError


def ok_runner(outputs: dict[str, str] | None = None, calls: list | None = None):
    outputs = {"ping": "Slurmctld(primary) at vm is UP\n", "--version": "slurm-wlm 22.05.8\n", **(outputs or {})}
    counter = iter(range(100, 1000))

    def runner(argv, **kw):
        argv = tuple(argv)
        if calls is not None:
            calls.append(argv)
        if argv[0] == "sbatch":
            return Completed(argv, 0, f"{next(counter)}\n", "")
        for key, out in outputs.items():
            if key in argv:
                if isinstance(out, BaseException):
                    raise out
                return Completed(argv, 0, out, "")
        return Completed(argv, 0, "", "")
    return runner


def down_runner(argv, **kw):
    if tuple(argv[:2]) == ("scontrol", "ping"):
        raise SlurmCommandError("ping failed", argv=argv, returncode=1,
                                stdout="Slurmctld(primary) at vm is DOWN\n")
    if "--version" in argv:
        return Completed(tuple(argv), 0, "slurm-wlm 22.05.8\n", "")
    raise AssertionError(f"doctor must not run {argv} with the controller down")


def test_commands_missing():
    r = check_commands(lambda c: None if c == "sacct" else f"/usr/bin/{c}")
    assert r.status is Status.FAIL and "sacct" in r.detail and r.required


def test_controller_up_and_down():
    assert check_controller(ok_runner()).status is Status.OK
    r = check_controller(down_runner)
    assert r.status is Status.FAIL and "DOWN" in r.detail


def test_version():
    assert check_version(ok_runner()).detail == "Slurm 22.05.8"
    assert check_version(ok_runner({"--version": "garbage"})).status is Status.FAIL


def test_accounting_fails_without_slurmdbd():
    bad = SlurmCommandError("sacct failed", argv=["sacct"], returncode=1,
                            stderr="sacct: error: Problem talking to the database: Connection refused")
    r = check_accounting(ok_runner({"sacct": bad}))
    assert r.status is Status.FAIL and "slurmdbd" in r.detail


def test_afternotok_submits_two_held_jobs_and_cancels_both():
    calls: list = []
    r = check_afternotok(ok_runner(calls=calls))
    assert r.status is Status.OK
    sb = [c for c in calls if c[0] == "sbatch"]
    assert len(sb) == 2 and all("--hold" in c for c in sb)
    assert "--dependency=afternotok:100" in sb[1] and "--kill-on-invalid-dep=yes" in sb[1]
    assert ("scancel", "100", "101") in calls


def test_afternotok_refused():
    calls: list = []

    def runner(argv, **kw):
        calls.append(tuple(argv))
        if argv[0] == "sbatch" and any(a.startswith("--dependency") for a in argv):
            raise SlurmCommandError("sbatch failed", argv=argv, returncode=1,
                                    stderr="sbatch: error: Batch job submission failed: Job dependency problem")
        return ok_runner()(argv, **kw)
    r = check_afternotok(runner)
    assert r.status is Status.FAIL and "afternotok" in r.detail
    assert any(c[0] == "scancel" for c in calls)  # the held dummy is still cleaned up


def test_run_root_writable(tmp_path):
    assert check_run_root_writable(tmp_path / "a" / "b").status is Status.OK
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = check_run_root_writable(ro / "runs")
        import os
        if os.geteuid() != 0:  # root writes anyway
            assert r.status is Status.FAIL
    finally:
        ro.chmod(0o700)
    f = tmp_path / "file"
    f.write_text("x")
    assert check_run_root_writable(f).status is Status.FAIL


MOUNTS = [("/", "ext4"), ("/tmp", "tmpfs"), ("/gpfs", "gpfs"), ("/p/scratch", "lustre"), ("/home", "nfs4")]


def test_fstype_of_longest_prefix():
    assert fstype_of(Path("/p/scratch/me/runs"), MOUNTS) == ("/p/scratch", "lustre")
    assert fstype_of(Path("/tmpx"), MOUNTS) == ("/", "ext4")
    assert fstype_of(Path("/tmp/x"), MOUNTS) == ("/tmp", "tmpfs")


@pytest.mark.parametrize("path,status", [("/p/scratch/me", Status.OK), ("/home/me", Status.OK),
                                         ("/gpfs", Status.OK), ("/tmp/runs", Status.WARN), ("/opt/runs", Status.WARN)])
def test_run_root_shared(path, status):
    r = check_run_root_shared(Path(path), MOUNTS)
    assert r.status is status and not r.required


def test_tmp_is_called_node_local():
    assert "node-local" in check_run_root_shared(Path("/tmp/runs"), MOUNTS).detail


def test_run_checks_controller_down_is_fast_and_fails(tmp_path):
    results = run_checks(tmp_path, runner=down_runner, which=lambda c: f"/usr/bin/{c}")
    by = {r.name: r for r in results}
    assert by["controller reachable"].status is Status.FAIL
    assert by["accounting (sacct)"].status is Status.SKIP
    assert exit_code(results) == 1


def test_run_checks_all_ok(tmp_path, mocker):
    mocker.patch("sidecar.slurm.pyslurm_status", return_value=(None, "pyslurm is not usable: x"))
    results = run_checks(tmp_path, runner=ok_runner(), which=lambda c: f"/usr/bin/{c}")
    assert exit_code(results) == 0, render_table(results)
    assert {r.name for r in results} >= {"slurm commands", "controller reachable", "slurm version",
                                         "accounting (sacct)", "afternotok + kill-on-invalid-dep",
                                         "pyslurm", "run root writable", "run root shared"}


def test_render_table():
    rs = [CheckResult("a", Status.OK, "fine"), CheckResult("long name", Status.FAIL, "broken"),
          CheckResult("opt", Status.WARN, "meh", required=False)]
    text = render_table(rs)
    lines = text.splitlines()
    assert lines[0].split() == ["STATUS", "CHECK", "REQUIRED", "DETAIL"]
    assert lines[2].startswith("FAIL    long name  yes       broken")
    assert "FAILED: required check(s) not passing: long name" in text
    assert "All required checks passed." in render_table(rs[:1])


def test_cli_json(tmp_path, mocker, capsys):
    mocker.patch("sidecar.doctor.run_checks", return_value=[CheckResult("x", Status.FAIL, "bad")])
    assert main(["doctor", "--json", "--run-root", str(tmp_path)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["checks"][0] == {"name": "x", "status": "FAIL", "detail": "bad", "required": True}


def test_cli_run_root_from_env(tmp_path, mocker, monkeypatch, capsys):
    seen = {}
    mocker.patch("sidecar.doctor.run_checks", side_effect=lambda p: seen.setdefault("p", p) and [])
    monkeypatch.setenv("AUTOEXP_RUN_ROOT", str(tmp_path / "r"))
    assert main(["doctor"]) == 0
    assert seen["p"] == tmp_path / "r"


# ------------------------------------------------------------------ real Slurm


def _doctor(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sidecar", "doctor", *args],
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.slurm
def test_real_doctor_passes(tmp_path):
    res = _doctor("--run-root", str(tmp_path / "runs"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "All required checks passed." in res.stdout
    for name in ("controller reachable", "accounting (sacct)", "afternotok + kill-on-invalid-dep"):
        row = [l for l in res.stdout.splitlines() if name in l][0]
        assert row.startswith("OK"), row


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_real_doctor_fails_clearly_with_controller_down(tmp_path):
    import slurm_helpers

    slurm_helpers.stop_slurmctld()
    try:
        t0 = time.monotonic()
        res = _doctor("--run-root", str(tmp_path), "--json")
        elapsed = time.monotonic() - t0
    finally:
        slurm_helpers.start_slurmctld()
    data = json.loads(res.stdout)
    by = {c["name"]: c for c in data["checks"]}
    if by["controller reachable"]["status"] == "OK":
        pytest.skip("another process restarted slurmctld at once (shared cluster)")
    assert res.returncode == 1
    assert by["controller reachable"]["status"] == "FAIL" and "down" in by["controller reachable"]["detail"].lower()
    assert elapsed < 20, f"doctor took {elapsed:.1f} s with the controller down"
