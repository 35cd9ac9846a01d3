"""The real workload (sidecar.workload.torch_gpt) under plain torchrun on this machine: DDP over
gloo with two ranks, torch_dist-style checkpoints, resume, SIGUSR1, and its real faults."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidecar.workload.loss_curve import compare, loss_curve

if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
    pytest.importorskip("torch", reason="the [workload] extra (torch) is not installed")

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "--tee", "3"]
WORKLOAD = ["-m", "sidecar.workload.torch_gpt", "--num-layers", "2", "--seq-length", "32"]
SAVED = re.compile(r"successfully saved checkpoint from iteration\s+(\d+)")


def torchrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, *WORKLOAD, *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def ckpt_args(ck: Path, iters: int) -> list[str]:
    return ["--train-iters", str(iters), "--save", str(ck), "--load", str(ck), "--save-interval", "5"]


def test_resume_after_a_crash_continues_the_same_loss_curve(tmp_path):
    """An uninterrupted run and a run that crashes in one rank (a real IndexError at iteration 8)
    and resumes from its checkpoint at 5 log the same loss at every iteration."""
    ref = torchrun(*ckpt_args(tmp_path / "ref", 12))
    assert ref.returncode == 0, ref.stdout[-3000:] + ref.stderr[-3000:]
    assert [int(x) for x in SAVED.findall(ref.stdout)] == [5, 10, 12]
    assert (tmp_path / "ref" / "latest_checkpointed_iteration.txt").read_text() == "12\n"
    assert sorted(p.name for p in (tmp_path / "ref" / "iter_0000005").iterdir()) == [
        ".metadata", "__0_0.distcp", "__1_0.distcp"]  # one shard per rank, Megatron's torch_dist

    ck = tmp_path / "ck"
    crash = torchrun(*ckpt_args(ck, 12), "--bad-token-at-iteration", "8", "--bad-token-rank", "1")
    assert crash.returncode != 0
    assert "[default1]:[rank1]: IndexError: index out of range in self" in crash.stdout + crash.stderr
    assert (ck / "latest_checkpointed_iteration.txt").read_text() == "5\n"
    assert not list(ck.glob(".iter_*")), "no half-written checkpoint may stay visible"
    resumed = torchrun(*ckpt_args(ck, 12))
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"loading distributed checkpoint from {ck} at iteration 5" in resumed.stdout
    assert re.search(r"\biteration\s+6/\s*12 \|", resumed.stdout)
    assert not re.search(r"\biteration\s+5/\s*12 \|", resumed.stdout)

    curve = loss_curve([crash.stdout.encode(), resumed.stdout.encode()])
    diff = compare(curve, loss_curve([ref.stdout.encode()]))
    assert diff.common == 12 and not diff.missing
    assert diff.max_abs_diff < 1e-6, diff.summary()


def test_sigusr1_saves_and_exits(tmp_path):
    """Megatron's --exit-signal-handler: USR1 to torchrun (which forwards it when told to) makes
    every rank finish its step, save together, and exit 0."""
    ck = tmp_path / "ck"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*TORCHRUN, "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", *WORKLOAD, *ckpt_args(ck, 10000), "--iter-time-s", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out = ""
        assert proc.stdout is not None
        for line in proc.stdout:
            out += line
            if re.search(r"\biteration\s+7/", line):
                proc.send_signal(signal.SIGUSR1)
                break
        rest, _ = proc.communicate(timeout=60)
        out += rest
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # torchrun ends its workers (their own sessions) on TERM
            proc.wait(timeout=60)
    # torchrun itself exits non-zero after a handled signal (SignalException); the ranks saved
    assert "exiting program after receiving SIGUSR1." in out, out[-3000:]
    saved = [int(x) for x in SAVED.findall(out)]
    assert saved and saved[-1] >= 7
    assert (ck / "latest_checkpointed_iteration.txt").read_text() == f"{saved[-1]}\n"


def test_huge_lr_prints_nan_or_stops_with_the_check(tmp_path):
    plain = torchrun("--train-iters", "6", "--lr", "1e6")
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert "lm loss: NAN |" in plain.stdout
    checked = torchrun("--train-iters", "6", "--lr", "1e6", "--check-for-nan-in-loss-and-grad")
    assert checked.returncode != 0
    assert "found NaN in local loss" in checked.stdout + checked.stderr


def test_memory_grows_with_the_micro_batch_until_the_allocator_refuses(tmp_path):
    """Under an address-space limit torch's own CPU allocator says it cannot allocate: the text
    the user sees when micro_batch_size=16 does not fit."""
    limit = "ulimit -v 2200000; "  # ~2.1 GiB of address space per process
    base = " ".join([*TORCHRUN, *WORKLOAD, "--train-iters", "3", "--activation-mb-per-sample", "150"])
    ok = subprocess.run(["bash", "-c", limit + base + " --micro-batch-size 4"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    oom = subprocess.run(["bash", "-c", limit + base + " --micro-batch-size 16"], capture_output=True, text=True, timeout=120)
    assert oom.returncode != 0
    assert "DefaultCPUAllocator: can't allocate memory" in oom.stdout + oom.stderr


@pytest.mark.parametrize("fmt", ["megatron", "torchtitan"])
def test_step_lines_of_each_log_format_are_read_by_the_sidecar(fmt):
    """--log-format: the step, save and load lines the sidecar's format table reads."""
    from sidecar.classify.model import ProgressKind as K
    from sidecar.classify.progress import ProgressReader
    from sidecar.workload.torch_gpt import StepLog, parse_args

    log = StepLog(parse_args(["--log-format", fmt, "--save", "/ckpt", "--load", "/ckpt"]), gbs=8)
    lines = [log.loading(20), log.loaded(20, 0.1), log.step(21, 0.25, 2.1, 0.5, 0), log.saving(30), log.saved(30, 0.2)]
    got = [[(e.kind, e.iteration) for e in ProgressReader().read(line.encode())] for line in lines]
    titan = fmt == "torchtitan"
    # torchtitan names a checkpoint by its directory (step-N); the workload's are iter_000000N
    assert got == [[] if titan else [(K.LOADED, 20)], [] if titan else [(K.LOADED, 20)], [(K.STEP, 21)],
                   [(K.SAVING, None if titan else 30)], [(K.SAVED, None if titan else 30)]]
