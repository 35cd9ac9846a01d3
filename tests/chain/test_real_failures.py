"""The chain on the real cluster for the failures Slurm itself reports: a wall-time TIMEOUT
(continues from the checkpoint without using the retry budget) and a NODE_FAIL (restarts on
another node, excluding the failed one). Both are slow on a real Slurm (the time limit is
enforced on a ~30 s tick; a dead slurmd is noticed after SlurmdTimeout), so there are just two.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from run_helpers import CLI, decision, stop, submit
from sidecar.slurm.cli_client import CliSlurmClient
from sidecar.slurm.parse import split_scontrol_fields
from slurm_helpers import read_pid, slurmd_pid_file, wait_until

pytestmark = pytest.mark.slurm


def scontrol_field(job: str, key: str) -> str | None:
    out = CliSlurmClient().query_scontrol_show_job(job).strip()
    return split_scontrol_fields(out.splitlines()[0]).get(key) if out else None


def first_iteration(log: Path) -> int | None:
    try:
        m = re.search(rb"iteration\s+(\d+)/", log.read_bytes())
    except FileNotFoundError:
        return None
    return int(m.group(1)) if m else None


def test_wall_time_limit_continues_from_checkpoint_without_budget(tmp_path):
    run, job = submit(tmp_path, "timeout", "slurm.time=00:01:00")
    try:
        # Slurm enforces limits on a ~30 s tick: a 1-minute job ends at +60..+90 s.
        wait_until(lambda: decision(run, 1), timeout_s=200, what="the watchdog's decision")
        d = decision(run, 1)
        assert d["state"] == "TIMEOUT"
        assert d["action"] == "restart" and not d["counts_against_budget"], d
        assert d["error_type"] == "timeout"
        wait_until(lambda: (run / "attempts" / "2" / "train_job").exists(), timeout_s=30)
        job2 = (run / "attempts" / "2" / "train_job").read_text().strip()
        ckpt = int((run / "checkpoints" / "latest_checkpointed_iteration.txt").read_text())
        wait_until(lambda: first_iteration(run / "logs" / f"train-{job2}.out"), timeout_s=60)
        assert first_iteration(run / "logs" / f"train-{job2}.out") == ckpt + 1
        st = json.loads(subprocess.run(CLI + ["inspect", str(run), "--json"], text=True,
                                       capture_output=True).stdout)
        assert st["budget_used"] == 0
    finally:
        stop(run)


def test_node_failure_restarts_elsewhere_excluding_the_node(tmp_path):
    run, job = submit(tmp_path, "nodefail")
    node = None
    try:
        wait_until(lambda: scontrol_field(job, "JobState") == "RUNNING", timeout_s=60)
        node = scontrol_field(job, "NodeList")
        assert node in ("n1", "n2", "n3")
        pid = read_pid(slurmd_pid_file(node))
        assert pid, f"no slurmd pid for {node}"
        os.kill(pid, signal.SIGKILL)
        # SlurmdTimeout=10 in the local cluster; NODE_FAIL follows within ~25 s.
        wait_until(lambda: decision(run, 1), timeout_s=120, what="the watchdog's decision")
        d = decision(run, 1)
        assert d["state"] == "NODE_FAIL", d
        assert d["action"] == "restart" and d["error_type"] == "node_fail"
        assert node in d["exclude_nodes"]
        wait_until(lambda: (run / "attempts" / "2" / "train_job").exists(), timeout_s=30)
        job2 = (run / "attempts" / "2" / "train_job").read_text().strip()
        wait_until(lambda: scontrol_field(job2, "JobState") == "RUNNING", timeout_s=60)
        assert scontrol_field(job2, "NodeList") != node
        assert node in (scontrol_field(job2, "ExcNodeList") or "")
    finally:
        stop(run)
        if node:
            subprocess.run(["slurmd", "-N", node], capture_output=True)
            wait_until(lambda: read_pid(slurmd_pid_file(node)), timeout_s=30)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"],
                               capture_output=True)
                st = subprocess.run(["sinfo", "-h", "-n", node, "-o", "%T"], text=True,
                                    capture_output=True).stdout.strip()
                if st in ("idle", "mixed", "allocated"):
                    break
                time.sleep(1)


def test_silent_hang_is_detected_by_pace_and_restarted(tmp_path):
    """A training process that stops mid-run (SIGSTOP: no crash, no output, like a hung
    collective) with 0.2 s iterations: the sidecar calls it hung within seconds, not after a
    fixed 300 s timeout, and the run restarts from its checkpoint."""
    run, job = submit(tmp_path, "silent-hang")
    try:
        log = run / "logs" / f"train-{job}.out"
        wait_until(lambda: b"successfully saved checkpoint" in (log.read_bytes() if log.exists()
                                                                else b""), timeout_s=90)
        pids = subprocess.run(["pgrep", "-f", f"megatron_sim.*{run}"], text=True,
                              capture_output=True).stdout.split()
        assert pids, "the workload process was not found"
        stalled_at = time.monotonic()
        for pid in pids:
            os.kill(int(pid), signal.SIGSTOP)
        marker = run / "attempts" / "1" / "marker.json"
        wait_until(marker.exists, timeout_s=60, what="the hang marker")
        detected_s = time.monotonic() - stalled_at
        m = json.loads(marker.read_text())
        assert m["error_type"] == "hang" and m["source"] == "hang", m
        assert detected_s < 10, f"hang detected after {detected_s:.1f} s"
        wait_until(lambda: decision(run, 1), timeout_s=60, what="the watchdog's decision")
        assert decision(run, 1)["reason"] == "Transient failure detected (error_type=hang)"
        wait_until(lambda: (run / "attempts" / "2" / "train_job").exists(), timeout_s=30)
    finally:
        for pid in subprocess.run(["pgrep", "-f", f"megatron_sim.*{run}"], text=True,
                                  capture_output=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGCONT)
            except ProcessLookupError:
                pass
        stop(run)
