"""Tier 3: the project's own local Slurm cluster (scripts/local-slurm) and the epilog hook."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

import slurm_helpers as sh

pytestmark = pytest.mark.slurm

NODES = ("n1", "n2", "n3")
USABLE = {"idle", "mixed", "allocated", "completing"}


def run(*argv: str, timeout_s: float = 30) -> str:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s)
    assert res.returncode == 0, f"{argv} exit {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    return res.stdout


def daemon_pids(lab: Path) -> dict[str, int | None]:
    files = {
        "munged": Path("/run/munge/munged.pid"),
        "mariadbd": Path("/run/mysqld/mysqld.pid"),
        "slurmdbd": lab / "run" / "slurmdbd.pid",
        "slurmctld": lab / "run" / "slurmctld.pid",
        **{f"slurmd-{n}": lab / "run" / f"slurmd-{n}.pid" for n in NODES},
    }
    return {name: sh.read_pid(pf) for name, pf in files.items()}


def sbatch(*args: str) -> str:
    out = run("sbatch", "--parsable", "-p", "debug", "-t", "2", *args)
    return out.strip().split(";")[0]


def job_state(job_id: str) -> str | None:
    res = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    for field in res.stdout.split():
        if field.startswith("JobState="):
            return field.split("=", 1)[1]
    return None


def wait_job_done(job_id: str, timeout_s: float = 60) -> str:
    final = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
    return sh.wait_until(
        lambda: (s if (s := job_state(job_id)) in final else None),
        timeout_s=timeout_s, what=f"job {job_id} to end",
    )


def test_status_exits_0_when_up():
    res = sh.local_slurm("status", timeout_s=60)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd-n1", "slurmd-n2", "slurmd-n3"):
        assert name in res.stdout
    assert "DOWN" not in res.stdout
    assert "debug" in res.stdout  # sinfo


def test_up_is_idempotent_and_quick(slurm_lab):
    before = daemon_pids(slurm_lab)
    assert all(before.values()), f"a daemon is not running: {before}"
    res = sh.local_slurm("up", timeout_s=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "already up" in res.stdout
    after = daemon_pids(slurm_lab)
    assert after == before, "scripts/local-slurm up started a second copy of a daemon"


def test_three_nodes_in_debug_partition():
    out = run("sinfo", "-h", "-N", "-p", "debug", "-o", "%N %T %c")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert sorted(rows) == list(NODES), out
    for node, (state, cpus) in rows.items():
        assert state.rstrip("*") in USABLE and not state.endswith("*"), f"{node} is {state}"
        assert cpus == "4"


def test_epilog_is_the_repo_hook():
    out = run("scontrol", "show", "config")
    lines = [ln for ln in out.splitlines() if ln.split("=")[0].strip().startswith("Epilog") and "Slurmctld" not in ln]
    assert any(str(sh.REPO / "hooks" / "epilog") in ln for ln in lines), lines


def test_job_runs_and_shows_in_sacct(tmp_path):
    job = sbatch("-J", "lsl-acct", f"--chdir={tmp_path}", "-o", str(tmp_path / "out.txt"), "--wrap", "echo hello-$SLURM_JOB_ID")
    assert wait_job_done(job) == "COMPLETED"
    assert (tmp_path / "out.txt").read_text().strip() == f"hello-{job}"

    def sacct_state():
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job, "--format=JobID,JobName,State,ExitCode"],
            capture_output=True, text=True, timeout=30,
        ).stdout
        rows = [ln.split("|") for ln in out.splitlines() if ln.startswith(job + "|")]
        # sacct may lag scontrol a moment (seen: name "allocation" before the full record lands)
        return rows[0] if rows and rows[0] == [job, "lsl-acct", "COMPLETED", "0:0"] else None

    sh.wait_until(sacct_state, timeout_s=30, what=f"sacct to show job {job} as lsl-acct COMPLETED 0:0")


def test_epilog_records_endings_only_in_run_dirs(tmp_path):
    run_dir = tmp_path / "run"
    other = tmp_path / "other"
    run_dir.mkdir()
    other.mkdir()
    (run_dir / ".autoexp-run").write_text("test-run\n")

    failed = sbatch("-J", "lsl-epi", f"--chdir={run_dir}", "-o", "/dev/null", "--wrap", "exit 3")
    plain = sbatch("-J", "lsl-epi-other", f"--chdir={other}", "-o", "/dev/null", "--wrap", "exit 0")
    assert wait_job_done(failed) == "FAILED"
    assert wait_job_done(plain) == "COMPLETED"

    ending = run_dir / "endings" / f"{failed}.json"
    sh.wait_until(ending.exists, timeout_s=15, what=f"{ending}")
    rec = json.loads(ending.read_text())
    assert rec["job_id"] == failed
    assert rec["node"] in NODES
    assert rec["nodelist"] == rec["node"]
    assert rec["exit_code2"] == "3:0"
    assert rec["exit_code"] == 3 * 256  # raw wait status
    assert rec["restart_count"] == 0
    assert isinstance(rec["time"], int) and rec["time"] > 1_600_000_000
    assert rec["source"] == "epilog"
    # atomic: no temp files left behind
    assert sorted(p.name for p in (run_dir / "endings").iterdir()) == [f"{failed}.json"]
    # a job outside any run dir leaves nothing
    assert sorted(p.name for p in other.iterdir()) == []


def test_controller_down_helper_stops_and_restarts_slurmctld(slurm_lab):
    old = sh.read_pid(sh.slurmctld_pid_file())
    with sh.controller_down():
        assert sh.read_pid(sh.slurmctld_pid_file()) is None
        assert not sh.controller_up(timeout_s=15)
    assert sh.controller_up()
    new = sh.read_pid(sh.slurmctld_pid_file())
    assert new is not None and new != old
    # the cluster still runs jobs afterwards
    job = sbatch("-J", "lsl-after", "-o", "/dev/null", "--wrap", "true")
    assert wait_job_done(job) == "COMPLETED"


# 300 MiB made resident, page by page: over a 100M limit, far under the machine's memory
GROW = ("import sys; b = bytearray(300 << 20)\n"
        "for i in range(0, len(b), 4096): b[i] = 1\n"
        "print('survived', flush=True)")


def test_status_says_whether_memory_is_enforced():
    res = sh.local_slurm("status", timeout_s=60)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("memory enforcement: ")), None)
    assert line is not None, res.stdout
    from sidecar.slurm.memory import memory_enforcement

    enforced = memory_enforcement(run("scontrol", "show", "config")).enforced
    assert line.startswith("memory enforcement: on (task/cgroup") == enforced, (line, enforced)


def test_job_over_its_mem_ends_out_of_memory_beside_one_within(tmp_path):
    """Under task/cgroup the kernel kills the job over its --mem (OUT_OF_MEMORY, slurmstepd's
    oom-kill line); a job within its --mem on another virtual node of the same machine runs to
    the end (each slurmd has its own cgroup tree: /slurm_<node>/...)."""
    from sidecar.slurm.memory import memory_enforcement

    m = memory_enforcement(run("scontrol", "show", "config"))
    if not m.enforced:
        pytest.skip(f"memory not enforced on this cluster: {m.reason}")
    over = sbatch("-J", "lsl-oom", "-w", "n2", "--mem=100M", f"--chdir={tmp_path}", "-o", str(tmp_path / "over.txt"),
                  "--wrap", f"srun python3 -c {shlex.quote(GROW)}")
    within = sbatch("-J", "lsl-mem-ok", "-w", "n3", "--mem=400M", f"--chdir={tmp_path}",
                    "-o", str(tmp_path / "within.txt"), "--wrap", f"srun python3 -c {shlex.quote(GROW)}")
    # the batch script goes on after srun and exits 1: the job is FAILED, its step OUT_OF_MEMORY
    assert wait_job_done(over) == "FAILED"
    assert wait_job_done(within) == "COMPLETED"
    from sidecar.slurm.cli_client import CliSlurmClient

    sh.wait_until(lambda: CliSlurmClient().oom_steps(over) == (f"{over}.0",), timeout_s=30,
                  what=f"accounting to record step {over}.0 OUT_OF_MEMORY")
    out = (tmp_path / "over.txt").read_text()
    assert "oom-kill event" in out and "survived" not in out, out
    assert "survived" in (tmp_path / "within.txt").read_text()
