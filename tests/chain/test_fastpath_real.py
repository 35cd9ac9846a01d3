"""The fast paths on the real cluster: the job decides and submits its successor itself; a
claim's holder dying between its claim and its sbatch; the fast path and the watchdog racing
for one attempt; the continuation queued before the time limit. Each asserts what Slurm holds:
exactly one training job per attempt (looked up by the job's comment)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidecar.launch import job_comment
from sidecar.slurm.cli_client import CliSlurmClient
from slurm_helpers import wait_until

from chain.test_real_failures import first_iteration, scontrol_field
from run_helpers import CLI, REPO, decision, stop

pytestmark = pytest.mark.slurm
NCCL_LINE = "[default0]:NCCL ERROR timeout\n"


def submit(tmp_path: Path, name: str, *overrides: str, env: dict | None = None) -> tuple[Path, str]:
    out = subprocess.run(
        CLI + ["submit", str(REPO / "examples" / "local.yaml"), f"run.root={tmp_path}",
               f"run.name={name}", "backend.args.train_iters=100000", "backend.args.iter_time_s=0.2",
               "backend.args.save_interval=5", *overrides, "--json"],
        text=True, capture_output=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    return Path(info["run_dir"]), info["train_job"]


def events(run: Path, kind: str, attempt: int | None = None) -> list[dict]:
    out = []
    for line in (run / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev["event"] == kind and (attempt is None or ev.get("attempt") == attempt):
            out.append(ev)
    return out


def train_jobs_of(run: Path, attempt: int) -> list[str]:
    """Every training job Slurm has for ``attempt`` of the run (by the job's comment; a run of
    the same name from an earlier test has the same comment but another work dir)."""
    jobs = CliSlurmClient().find_jobs(name=run.name, comment=job_comment(
        (run / ".autoexp-run").read_text().strip(), attempt, "train"))
    return [j.job_id for j in jobs if j.work_dir == str(run)]


def saved(log: Path) -> bool:
    return log.exists() and b"successfully saved checkpoint" in log.read_bytes()


def cancel_all(run: Path) -> None:
    stop(run)
    ids = []
    for d in (run / "attempts").iterdir():
        for f in ("train_job", "watchdog_job"):
            if (d / f).exists():
                ids.append((d / f).read_text().strip())
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def test_fast_path_submits_from_inside_the_job_and_cancels_its_watchdog(tmp_path):
    run, job = submit(tmp_path, "fast")
    try:
        log = run / "logs" / f"train-{job}.out"
        wait_until(lambda: saved(log), timeout_s=90, what="a checkpoint")
        with open(log, "a") as fh:
            fh.write(NCCL_LINE)
        wait_until(lambda: (run / "attempts" / "2" / "train_job").exists(), timeout_s=60)
        d = decision(run, 1)
        assert d["reason"] == "Transient failure detected (error_type=nccl)"
        holder = json.loads((run / "attempts" / "1" / "decide.claim").read_text())
        assert holder["job_id"] == job  # decided inside the job, not by the watchdog
        wd = (run / "attempts" / "1" / "watchdog_job").read_text().strip()
        assert events(run, "watchdog_cancelled", 1)[0]["watchdog_job"] == wd
        job2 = (run / "attempts" / "2" / "train_job").read_text().strip()
        wait_until(lambda: first_iteration(run / "logs" / f"train-{job2}.out"), timeout_s=60)
        ckpt = int((run / "checkpoints" / "latest_checkpointed_iteration.txt").read_text())
        assert first_iteration(run / "logs" / f"train-{job2}.out") <= ckpt + 1
        assert train_jobs_of(run, 2) == [job2]
        assert scontrol_field(wd, "JobState") == "CANCELLED"  # it never ran
    finally:
        cancel_all(run)


def test_holder_dies_between_claim_and_sbatch_the_watchdog_submits_once(tmp_path):
    """The fast path claims and decides, then its sbatch is slow (a wrapper sleeps in front of
    the real sbatch); the job is scancelled meanwhile, killing the holder. A watchdog run while
    the holder still lives does nothing; Slurm's watchdog, after the job ended, takes the claim
    over and submits attempt 2 exactly once."""
    real_sbatch = shutil.which("sbatch")
    assert real_sbatch
    bindir = tmp_path / "bin"
    bindir.mkdir()
    flag = tmp_path / "slow-sbatch"
    entered = tmp_path / "slow-sbatch.entered"
    wrapper = bindir / "sbatch"
    wrapper.write_text(f"#!/bin/bash\nif [ -e {flag} ]; then touch {entered}; sleep 120; fi\n"
                       f"exec {real_sbatch} \"$@\"\n")
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    # the slow sbatch is a wrapper on PATH: the commands, not pyslurm, must submit
    run, job = submit(tmp_path, "die-between", "slurm.client=cli", env=env)
    try:
        log = run / "logs" / f"train-{job}.out"
        wait_until(lambda: saved(log), timeout_s=90, what="a checkpoint")
        flag.touch()
        with open(log, "a") as fh:
            fh.write(NCCL_LINE)
        wait_until(entered.exists, timeout_s=60, what="the fast path's sbatch")
        assert events(run, "decided", 1) and (run / "attempts" / "2").is_dir()
        assert not (run / "attempts" / "2" / "train_job").exists()
        # the holder is alive (slow, not dead): nobody else may take its claim
        other = subprocess.run(CLI + ["watchdog", "--run", str(run), "--attempt", "1",
                                      "--train-job", job, "--wait-s", "0"],
                               text=True, capture_output=True, timeout=60)
        assert other.returncode == 0, other.stderr
        assert "handled by another party" in other.stderr, other.stderr
        flag.unlink()
        subprocess.run(["scancel", job], check=True)
        wait_until(lambda: (run / "attempts" / "2" / "train_job").exists(), timeout_s=90,
                   what="the watchdog's takeover")
        job2 = (run / "attempts" / "2" / "train_job").read_text().strip()
        holder = json.loads((run / "attempts" / "1" / "decide.claim").read_text())
        assert holder["job_id"] != job  # the watchdog holds it now
        time.sleep(3)  # a double would show up by now
        assert train_jobs_of(run, 2) == [job2]
        assert len(events(run, "submitted", 2)) == 1
        assert len(events(run, "decided", 1)) == 1
    finally:
        cancel_all(run)


def test_fast_path_and_watchdog_race_for_one_attempt(tmp_path):
    """Four parties (two fast paths, two watchdogs) decide the same ended attempt at once:
    one new training job."""
    out = subprocess.run(CLI + ["submit", str(REPO / "examples" / "local.yaml"),
                                f"run.root={tmp_path}", "run.name=race", "--render-only"],
                         text=True, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    run = tmp_path / "race"
    ended = subprocess.run(["sbatch", "--parsable", "--wrap", "exit 3", "-o", "/dev/null",
                            "--job-name", "race-ended"], text=True, capture_output=True, check=True)
    job = ended.stdout.strip().split(";")[0]
    (run / "attempts" / "1").mkdir(parents=True, exist_ok=True)
    (run / "attempts" / "1" / "train_job").write_text(job + "\n")
    (run / "attempts" / "1" / "marker.json").write_text(json.dumps(
        {"error_type": "nccl", "class": "transient", "line": "x", "line_no": 1}))
    try:
        wait_until(lambda: scontrol_field(job, "JobState") == "FAILED", timeout_s=60)
        base = ["--run", str(run), "--attempt", "1"]
        procs = [subprocess.Popen(CLI + argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for argv in (["conclude", *base, "--job", job, "--exit-code", "3"],
                              ["watchdog", *base, "--train-job", job, "--wait-s", "5"],
                              ["conclude", *base, "--job", job, "--exit-code", "3"],
                              ["watchdog", *base, "--train-job", job, "--wait-s", "5"])]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        acted = [o for o, _ in outs if o.startswith("restart:")]
        assert len(acted) == 1, outs
        job2 = (run / "attempts" / "2" / "train_job").read_text().strip()
        assert train_jobs_of(run, 2) == [job2]
        assert len(events(run, "submitted", 2)) == 1
    finally:
        cancel_all(run)


def test_continuation_is_queued_before_the_time_limit(tmp_path):
    """--signal=B:USR1@50 on a 1-minute job: the workload checkpoints and ends on the signal,
    the next attempt was queued (afterany) while this one still ran, without budget."""
    run, job = submit(tmp_path, "pretimeout", "slurm.time=00:01:00",
                      "slurm.signal_before_timeout_s=50")
    try:
        # Slurm sends the signal on its ~30 s tick: 10..40 s into the job
        wait_until(lambda: (run / "attempts" / "2" / "train_job").exists(), timeout_s=120,
                   what="the continuation")
        job2 = (run / "attempts" / "2" / "train_job").read_text().strip()
        sub = events(run, "submitted", 2)[0]
        assert sub["dependency"] == f"afterany:{job}"
        d = decision(run, 1)
        assert d["action"] == "restart" and not d["counts_against_budget"], d
        ended = wait_until(lambda: events(run, "ended", 1), timeout_s=60)[0]
        assert sub["time"] < ended["time"]  # queued while the job still ran
        assert ended["signal"] == "USR1"
        wait_until(lambda: first_iteration(run / "logs" / f"train-{job2}.out"), timeout_s=90)
        ckpt_log = (run / "logs" / f"train-{job}.out").read_bytes()
        assert b"exiting program after receiving SIGUSR1" in ckpt_log
        assert train_jobs_of(run, 2) == [job2]
    finally:
        cancel_all(run)


def test_in_allocation_restart_then_a_node_fault_leaves_the_allocation(tmp_path):
    """restart=megatron_inplace: an NCCL error restarts the training inside the same job (the
    attempts share the job id and the watchdog); an NCCL error naming the node then leaves the
    allocation through a new job that excludes the node."""
    run, job = submit(tmp_path, "inplace", "restart=megatron_inplace")
    try:
        log = run / "logs" / f"train-{job}.out"
        wait_until(lambda: saved(log), timeout_s=90, what="a checkpoint")
        t_fault = time.time()
        with open(log, "a") as fh:
            fh.write(NCCL_LINE)
        banner = b"autoexp-sidecar: attempt 2 of run"
        wait_until(lambda: banner in log.read_bytes() and first_iteration_after(log, banner),
                   timeout_s=60, what="the relaunched step's first iteration")
        assert (run / "attempts" / "2" / "train_job").read_text().strip() == job
        wd = (run / "attempts" / "1" / "watchdog_job").read_text().strip()
        assert (run / "attempts" / "2" / "watchdog_job").read_text().strip() == wd
        assert scontrol_field(wd, "JobState") == "PENDING"  # still guarding the job
        assert events(run, "decided", 1)[0]["placement"] == "in_allocation"
        resumed_s = events(run, "submitted", 2)[0]["time"] - t_fault
        assert resumed_s < 10, resumed_s
        node = scontrol_field(job, "NodeList")
        wait_until(lambda: saved_after(log, banner), timeout_s=60, what="a checkpoint of attempt 2")
        with open(log, "a") as fh:
            # NCCL's "<host>:<pid>:<tid> [<dev>]" prefix names the node
            fh.write(f"[default0]:{node}:2345:2390 [0] NCCL ERROR timeout\n")
        wait_until(lambda: (run / "attempts" / "3" / "train_job").exists(), timeout_s=60)
        job3 = (run / "attempts" / "3" / "train_job").read_text().strip()
        assert job3 != job
        dec = events(run, "decided", 2)[0]
        assert dec["placement"] == "new_job" and node in dec["placement_reason"], dec
        assert node in dec["decision"]["exclude_nodes"]
        wait_until(lambda: scontrol_field(job3, "JobState") == "RUNNING", timeout_s=60)
        assert scontrol_field(job3, "NodeList") != node
        st = json.loads(subprocess.run(CLI + ["inspect", str(run), "--json"], text=True,
                                       capture_output=True, timeout=60).stdout)
        assert [a["train_job"] for a in st["attempts"]] == [job, job, job3]
    finally:
        cancel_all(run)


def first_iteration_after(log: Path, banner: bytes) -> int | None:
    data = log.read_bytes()
    if banner not in data:
        return None
    return first_iteration_of(data.split(banner, 1)[1])


def first_iteration_of(data: bytes) -> int | None:
    import re

    m = re.search(rb"iteration\s+(\d+)/", data)
    return int(m.group(1)) if m else None


def saved_after(log: Path, banner: bytes) -> bool:
    data = log.read_bytes()
    return banner in data and b"successfully saved checkpoint" in data.split(banner, 1)[1]
