"""Tier 3: the sidecar inside a real Slurm allocation ends its own job with scancel.

A batch script started like train.sbatch starts the sidecar (the sidecar in the background, its
output to attempts/1/sidecar.log), prints iteration lines, then an NCCL error, then keeps
running as a process that printed a fatal NCCL error often does. Expected: a marker, then after
the grace the job is CANCELLED by the sidecar, and the sidecar exits with the job.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time

import pytest

from sidecar.rundir import RunPaths, read_json

pytestmark = pytest.mark.slurm

NCCL_ERROR = ("[rank3]: RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, "
              "unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.19.3")


def job_state(job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                         timeout=30).stdout
    for word in out.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id], capture_output=True,
                         text=True, timeout=30).stdout.strip()
    return out.split()[0] if out else "UNKNOWN"


def test_sidecar_cancels_its_own_job_after_an_nccl_error(tmp_path):
    from sidecar import slurm
    if not hasattr(slurm, "get_client"):
        pytest.skip("sidecar.slurm.get_client not in the tree yet")
    paths = RunPaths.of(tmp_path / "run")
    paths.create("slurm-scan")
    paths.claim_attempt(1)
    run = shlex.quote(str(paths.root))
    py = shlex.quote(sys.executable)
    script = tmp_path / "job.sbatch"
    script.write_text(f"""#!/bin/bash
#SBATCH --job-name=scan-test
#SBATCH --output={run}/logs/train-%j.out
#SBATCH --time=3
#SBATCH --no-requeue
{py} -m sidecar scan --run {run} --attempt 1 --job "$SLURM_JOB_ID" --monitoring megatron_production \\
  --log {run}/logs/train-$SLURM_JOB_ID.out >>{run}/attempts/1/sidecar.log 2>&1 &
for i in $(seq 1 10); do echo " iteration $i/ 100 | consumed samples: $((i*8)) | lm loss: 7.1 |"; sleep 0.2; done
echo {shlex.quote(NCCL_ERROR)}
sleep 120
""")
    job_id = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                            check=True, timeout=60).stdout.strip().split(";")[0]
    try:
        end = time.monotonic() + 90
        state = ""
        while time.monotonic() < end:
            state = job_state(job_id)
            if state in ("CANCELLED", "FAILED", "COMPLETED", "TIMEOUT", "NODE_FAIL"):
                break
            time.sleep(0.5)
        log = paths.sidecar_log(1).read_text() if paths.sidecar_log(1).exists() else ""
        assert state == "CANCELLED", f"state {state}\n{log}"
        m = read_json(paths.marker(1))
        assert m is not None and m["error_type"] == "nccl" and m["job_id"] == job_id, log
        assert f"cancelling job {job_id}" in log
        # the sidecar exits with its job (SIGTERM from scancel, or its parent gone)
        assert wait_exit(paths), paths.sidecar_log(1).read_text()
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)


def wait_exit(paths: RunPaths, timeout_s: float = 30) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if "exiting:" in paths.sidecar_log(1).read_text():
            return True
        time.sleep(0.2)
    return False
