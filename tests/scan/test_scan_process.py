"""``python -m sidecar scan`` for real: a process following a file we append to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidecar.rundir import RunPaths, read_json

NCCL_ERROR = (b"[rank3]: RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, "
              b"unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.19.3\n")
ITER = b" iteration %8d/   10000 | consumed samples: %12d | lm loss: 7.1E+00 |\n"


def wait_for(cond, timeout_s=15.0, step_s=0.02):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step_s)
    return False


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def write_frozen(paths: RunPaths, *overrides: str) -> None:
    """run.yaml as `autoexp-sidecar submit` writes it, for the local site profile."""
    import yaml

    from sidecar.config import load_config

    cfg = load_config(None, ["slurm=local", "backend=command", "backend.command=echo hi",
                             "monitoring=megatron_production", *overrides])
    paths.config.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


@pytest.fixture
def run_dir(tmp_path):
    paths = RunPaths.of(tmp_path / "run")
    paths.create("run-proc")
    paths.claim_attempt(1)
    return paths


def start_sidecar(paths: RunPaths, parent_pid: int, *extra: str, env=None) -> tuple[subprocess.Popen, Path]:
    errlog = paths.sidecar_log(1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidecar", "scan", "--run", str(paths.root), "--attempt", "1",
         "--job", "123", "--log", str(paths.train_log("123")), "--poll-s", "0.05",
         "--parent-pid", str(parent_pid), *extra],
        stdout=open(errlog, "ab"), stderr=subprocess.STDOUT, env=env,
    )
    return proc, errlog


def test_marker_written_and_exit_when_parent_dies(run_dir):
    parent = subprocess.Popen(["sleep", "120"])
    proc, errlog = start_sidecar(run_dir, parent.pid, "--no-cancel")
    try:
        log = run_dir.train_log("123")  # created late, after the sidecar started
        time.sleep(0.3)
        for i in range(1, 6):
            append(log, ITER % (i, i * 8))
        append(log, NCCL_ERROR)
        assert wait_for(lambda: run_dir.marker(1).exists()), errlog.read_text()
        m = read_json(run_dir.marker(1))
        assert m["error_type"] == "nccl" and m["line_no"] == 6 and m["job_id"] == "123"
        assert m["last_iteration"] == 5
        # The grace (kill_grace_s, 2 s in the preset) passes, then the (disabled) cancel.
        assert wait_for(lambda: "would cancel job 123" in errlog.read_text())
        assert proc.poll() is None  # still following while the job lives
        parent.kill()
        parent.wait()
        assert proc.wait(timeout=10) == 0
        text = errlog.read_text()
        assert "parent pid" in text and "is gone" in text
    finally:
        for p in (proc, parent):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_sigterm_drains_the_last_line(run_dir):
    parent = subprocess.Popen(["sleep", "120"])
    proc, errlog = start_sidecar(run_dir, parent.pid, "--no-cancel")
    try:
        log = run_dir.train_log("123")
        append(log, ITER % (1, 8))
        assert wait_for(lambda: "started" in errlog.read_text())
        # A fatal line with no newline (the process died mid-print), then SIGTERM at once.
        append(log, b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        m = read_json(run_dir.marker(1))
        assert m is not None and m["error_type"] == "oom" and m["class"] == "permanent"
        assert "would cancel" not in errlog.read_text()
    finally:
        for p in (proc, parent):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_fake_scancel_on_path_is_called(run_dir, tmp_path):
    pytest.importorskip("sidecar.slurm", reason="the Slurm client is not in the tree yet")
    from sidecar import slurm
    if not hasattr(slurm, "get_client"):
        pytest.skip("sidecar.slurm.get_client not in the tree yet")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "scancel.calls"
    fake = bindir / "scancel"
    fake.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexit 0\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    parent = subprocess.Popen(["sleep", "120"])
    # Pin the CLI client in the frozen config: "auto" could pick pyslurm where it is installed.
    write_frozen(run_dir, "slurm.client=cli")
    proc, errlog = start_sidecar(run_dir, parent.pid, env=env)
    try:
        append(run_dir.train_log("123"), NCCL_ERROR)
        assert wait_for(lambda: calls.exists() and "123" in calls.read_text()), errlog.read_text()
        marker = read_json(run_dir.marker(1))
        assert marker["error_type"] == "nccl"
        # the event is appended right after scancel returns: wait for it, don't race it
        assert wait_for(lambda: any(e["event"] == "sidecar_cancel"
                                    for e in run_dir.iter_events())), errlog.read_text()
    finally:
        for p in (proc, parent):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_settings_come_from_the_frozen_run_config(run_dir):
    write_frozen(run_dir, "monitoring_overrides.kill_grace_s=0")
    parent = subprocess.Popen(["sleep", "120"])
    proc, errlog = start_sidecar(run_dir, parent.pid, "--no-cancel")
    try:
        append(run_dir.train_log("123"), NCCL_ERROR)
        assert wait_for(lambda: "would cancel job 123" in errlog.read_text()), errlog.read_text()
        text = errlog.read_text()
        assert "cannot load" not in text and "grace 0 s" in text
        m = read_json(run_dir.marker(1))
        # grace 0: the cancel decision follows the marker on the same tick
        assert m["error_type"] == "nccl"
    finally:
        for p in (proc, parent):
            if p.poll() is None:
                p.kill()
                p.wait()
