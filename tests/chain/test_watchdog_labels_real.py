"""The watchdog's log-tail classification maps ``srun --label`` task ids to nodes, as the sidecar
does in the job (one mapping: ``classify.tasks``): a real 2-node torchrun job, launched like the
``local`` backend preset, whose rank on the second node is SIGKILLed; no marker exists, so the
watchdog reads the tail and records the node the root line came from."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidecar import watchdog
from sidecar.config.load import load_config
from sidecar.rundir import RunPaths, read_json
from sidecar.slurm.cli_client import CliSlurmClient
from slurm_helpers import wait_until

pytestmark = pytest.mark.slurm
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def _capture_module():
    """The episode capture tool (tests/classify/fixtures/srun_capture.py): its batch script is the
    preset's launch line, and it finds a job's rank on a node."""
    path = ROOT / "tests" / "classify" / "fixtures" / "srun_capture.py"
    spec = importlib.util.spec_from_file_location("srun_capture", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["srun_capture"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_watchdog_records_the_node_of_the_killed_ranks_label(tmp_path):
    cap = _capture_module()
    cfg = load_config(ROOT / "examples" / "local_torch.yaml", [f"run.root={tmp_path}", "run.name=labels"])
    paths = RunPaths.of(tmp_path / "labels")
    paths.create("labels")
    script = tmp_path / "job.sbatch"
    script.write_text(cap.batch_script(cap.Episode("watchdog_labels", 2, cap.GPT), paths.checkpoints))
    job_id = subprocess.run(["sbatch", "--parsable", f"--output={paths.logs}/train-%j.out", str(script)],
                            check=True, capture_output=True, text=True).stdout.strip().split(";")[0]
    client = CliSlurmClient()
    try:
        job = cap.Job(job_id, paths.train_log(job_id), paths.checkpoints)
        job.wait_line(r"iteration\s+3/", timeout=180)
        nodes = client.job_info(job_id).nodes
        assert len(nodes) == 2, nodes
        job.signal(nodes[1], signal.SIGKILL)  # srun task 1 runs on the second node (block layout)
        wait_until(lambda: client.job_info(job_id).state.is_terminal, timeout_s=120, what="the job's end")
    finally:
        subprocess.run(["scancel", job_id], check=False)

    facts = watchdog.gather_facts(paths, cfg, client, 1, job_id, wait_s=30)
    assert facts.marker is None
    cause = facts.log_cause
    assert cause is not None and cause.error_type == "killed", cause
    assert cause.line and cause.line.startswith("1: "), cause.line  # printed by srun task 1
    assert cause.line_node == nodes[1]
    assert cause.node is None  # a kill -9 says nothing bad about its node: nothing excluded
    decision, _ = watchdog._decide(paths, cfg, facts, time.time())
    watchdog._record(paths, facts, decision)
    recorded = read_json(paths.decision(1))
    assert recorded["line_node"] == nodes[1]
    assert recorded["error_type"] == "killed" and recorded["action"] == "restart", recorded
