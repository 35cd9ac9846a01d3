"""The test workload: runs, saves, resumes from its checkpoint, OOMs at micro batch 16."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sidecar.workload.megatron_sim import GiB, loss_at, memory_needed_bytes, parse_args

FAST = ["--iter-time-s", "0", "--startup-s", "0", "--oom-after-s", "0.2"]
ITER = re.compile(r"iteration\s+(\d+)/\s*(\d+) \| consumed samples:\s+(\d+) .*\| lm loss: (\S+) \|")


def sim(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sidecar.workload.megatron_sim", *FAST, *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def iterations(out: str) -> list[int]:
    return [int(m.group(1)) for m in ITER.finditer(out)]


def test_runs_to_the_end_and_saves(tmp_path):
    ck = str(tmp_path / "ck")
    res = sim("--train-iters", "25", "--save", ck, "--load", ck, "--save-interval", "10",
              "--global-batch-size", "64", "--num-layers", "2", "--qk-layernorm", "--normalization", "RMSNorm")
    assert res.returncode == 0, res.stderr
    assert iterations(res.stdout) == list(range(1, 26))
    assert "will not load any checkpoints and will start from random" in res.stdout
    assert "could not find the metadata file" in res.stdout
    for it in (10, 20, 25):
        assert f"saving checkpoint at iteration {it:7d} to {ck}" in res.stdout
        assert f"successfully saved checkpoint from iteration {it:7d} to {ck}" in res.stdout
        assert (tmp_path / "ck" / f"iter_{it:07d}").is_dir()
    assert (tmp_path / "ck" / "latest_checkpointed_iteration.txt").read_text().strip() == "25"
    m = next(ITER.finditer(res.stdout))
    assert (m.group(2), m.group(3)) == ("25", "64")
    assert not list((tmp_path / "ck").glob(".*tmp*"))  # no temp files left behind


def test_resumes_after_the_last_saved_iteration(tmp_path):
    ck = str(tmp_path / "ck")
    first = sim("--train-iters", "15", "--save", ck, "--load", ck, "--save-interval", "10")
    assert first.returncode == 0
    # as if the job had died at 15 without the final save: the tracker says 10
    (tmp_path / "ck" / "latest_checkpointed_iteration.txt").write_text("10\n")
    again = sim("--train-iters", "30", "--save", ck, "--load", ck, "--save-interval", "10")
    assert again.returncode == 0, again.stderr
    assert f"loading checkpoint from {ck} at iteration 10" in again.stdout
    assert f"successfully loaded checkpoint from {ck} [ t 0/ 1, p 0/ 1 ] at iteration 10" in again.stdout
    its = iterations(again.stdout)
    assert its[0] == 11 and its[-1] == 30
    # consumed samples continue from the checkpoint
    assert "consumed samples:          704 |" in again.stdout


def test_loss_is_deterministic_and_decreasing(tmp_path):
    a = sim("--train-iters", "20")
    b = sim("--train-iters", "20")
    losses = lambda out: [m.group(4) for m in ITER.finditer(out)]  # noqa: E731
    assert losses(a.stdout) == losses(b.stdout)
    assert loss_at(100) < loss_at(10) < loss_at(1)


def test_micro_batch_16_dies_with_a_cuda_oom(tmp_path):
    ck = str(tmp_path / "ck")
    t0 = time.monotonic()
    res = sim("--micro-batch-size", "16", "--save", ck, "--load", ck)
    assert res.returncode == 1
    assert time.monotonic() - t0 >= 0.2  # after a moment of startup, as a real job
    assert "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate" in res.stderr
    assert "Traceback (most recent call last):" in res.stderr
    assert iterations(res.stdout) == []


def test_memory_model():
    assert memory_needed_bytes(parse_args(["--micro-batch-size", "8"])) < 80 * GiB
    assert memory_needed_bytes(parse_args(["--micro-batch-size", "16"])) > 80 * GiB
    tiny = ["--num-layers", "2", "--hidden-size", "128", "--seq-length", "256"]
    assert memory_needed_bytes(parse_args(["--micro-batch-size", "16", *tiny])) < 80 * GiB


def test_prints_attempt_and_restart_reason():
    res = sim("--train-iters", "1", env={"AUTOEXP_ATTEMPT": "2",
                                         "AUTOEXP_RESTART_REASON": "Transient failure detected (error_type=nccl)"})
    assert "AUTOEXP_ATTEMPT=2 AUTOEXP_RESTART_REASON=Transient failure detected (error_type=nccl)" in res.stdout


def test_sigterm_ends_it_by_the_signal(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "sidecar.workload.megatron_sim", "--train-iters", "1000",
                             "--iter-time-s", "0.05", "--startup-s", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "iteration" in line and "consumed samples" in line:
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM


def test_runnable_as_a_module_help():
    res = subprocess.run([sys.executable, "-m", "sidecar.workload.megatron_sim", "--help"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "--micro-batch-size" in res.stdout
