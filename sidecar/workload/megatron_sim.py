"""A CPU stand-in for Megatron-LM's pretrain_gpt.py: the test workload of the restart chain.

    python -m sidecar.workload.megatron_sim --micro-batch-size 8 --train-iters 100 \\
        --save CKPT --load CKPT --save-interval 10 [--iter-time-s 0.2]

It logs like Megatron (startup banner, checkpoint load/save lines, iteration lines), saves and
resumes from Megatron's checkpoint layout (``latest_checkpointed_iteration.txt`` +
``iter_0000100/``, written atomically), follows a deterministic loss curve, and models GPU
memory: with the default (~8B) model, ``--micro-batch-size 16`` does not fit the simulated
80 GiB device, so it dies a few seconds into startup with PyTorch's CUDA OOM traceback and
exit code 1 (the user's OOM scenario). Unknown ``--flag value`` model arguments are accepted
and ignored. On SIGTERM it dies by that signal, as a torch process does. On SIGUSR1 (the
pre-timeout signal train.sbatch forwards) it saves a checkpoint after the current iteration and
exits 0, as Megatron's exit signal handler does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Sequence

from sidecar.checkpoints import TRACKER, read_tracker

GiB = 1 << 30


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sidecar.workload.megatron_sim",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--micro-batch-size", type=int, default=8)
    p.add_argument("--global-batch-size", type=int, default=None)
    p.add_argument("--train-iters", type=int, default=100)
    p.add_argument("--save", default=None)
    p.add_argument("--load", default=None)
    p.add_argument("--save-interval", type=int, default=None)
    p.add_argument("--log-interval", type=int, default=1)
    p.add_argument("--num-layers", type=int, default=32)
    p.add_argument("--hidden-size", type=int, default=4096)
    p.add_argument("--num-attention-heads", type=int, default=32)
    p.add_argument("--seq-length", type=int, default=2048)
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--lr", type=float, default=3.0e-4)
    p.add_argument("--iter-time-s", type=float, default=0.2, help="seconds per iteration")
    p.add_argument("--startup-s", type=float, default=0.5, help="seconds of simulated model setup")
    p.add_argument("--oom-after-s", type=float, default=3.0,
                   help="seconds into startup at which a model that does not fit dies")
    p.add_argument("--gpu-memory-gib", type=float, default=80.0, help="the simulated device's memory")
    args, unknown = p.parse_known_args(argv)
    args.ignored = unknown  # other Megatron flags (--qk-layernorm, --swiglu, ...)
    if args.global_batch_size is None:
        args.global_batch_size = args.micro_batch_size * 8
    return args


# ----------------------------------------------------------------------------- the model
def memory_needed_bytes(a: argparse.Namespace) -> float:
    """A rough per-GPU memory model: model state (bf16 weights + grads, the optimizer sharded)
    plus activations growing with micro batch x sequence x hidden x layers. Calibrated so that
    the default ~8B model fits at micro batch 8 (~66 GiB) and not at 16 (~94 GiB) on 80 GiB."""
    params = 12 * a.num_layers * a.hidden_size ** 2 + 2 * a.vocab_size * a.hidden_size
    state = 6.0 * params
    activations = 14.0 * a.seq_length * a.micro_batch_size * a.hidden_size * a.num_layers
    return float(state + activations)


def loss_at(iteration: int) -> float:
    """A deterministic, decreasing loss curve with a little wiggle."""
    return 2.0 + 8.5 * math.exp(-iteration / 40.0) + 0.05 * math.sin(iteration * 0.7)


def lr_at(iteration: int, a: argparse.Namespace) -> float:
    warmup = 10
    if iteration <= warmup:
        return float(a.lr * iteration / warmup)
    frac = (iteration - warmup) / max(1, a.train_iters - warmup)
    return float(a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))))


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(save: str, iteration: int, consumed: int) -> None:
    """Megatron's layout; the iteration dir and then the tracker are each replaced atomically,
    so a job killed mid-save leaves the previous checkpoint as the latest."""
    root = Path(save)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"iter_{iteration:07d}"
    tmp = root / f".iter_{iteration:07d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "mp_rank_00").mkdir(parents=True)
    state = {"iteration": iteration, "consumed_samples": consumed, "loss": loss_at(iteration)}
    with open(tmp / "mp_rank_00" / "model_optim_rng.pt", "w", encoding="utf-8") as fh:
        json.dump(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    tracker_tmp = root / f".{TRACKER}.tmp-{os.getpid()}"
    with open(tracker_tmp, "w", encoding="utf-8") as fh:
        fh.write(f"{iteration}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tracker_tmp, root / TRACKER)


# ----------------------------------------------------------------------------- output
def say(text: str = "", err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def banner(a: argparse.Namespace) -> None:
    say("using world size: 1, data-parallel size: 1, context-parallel size: 1, "
        "tensor-model-parallel size: 1, pipeline-model-parallel size: 1")
    say(f"autoexp: AUTOEXP_ATTEMPT={os.environ.get('AUTOEXP_ATTEMPT', '')} "
        f"AUTOEXP_RESTART_REASON={os.environ.get('AUTOEXP_RESTART_REASON', '')}")
    say("------------------------ arguments ------------------------")
    for key in ("micro_batch_size", "global_batch_size", "train_iters", "save", "load",
                "save_interval", "num_layers", "hidden_size", "num_attention_heads", "seq_length"):
        say(f"  {key} {'.' * (40 - len(key))} {getattr(a, key)}")
    say("-------------------- end of arguments ---------------------")
    say("> building GPT model (megatron_sim: a CPU simulation) ...")


OOM_TRACEBACK = """\
[rank0]: Traceback (most recent call last):
[rank0]:   File "/opt/Megatron-LM/pretrain_gpt.py", line 288, in <module>
[rank0]:     pretrain(
[rank0]:   File "/opt/Megatron-LM/megatron/training/training.py", line 386, in pretrain
[rank0]:     iteration, num_floating_point_operations_so_far = train(
[rank0]:                                                       ^^^^^^
[rank0]:   File "/opt/Megatron-LM/megatron/training/training.py", line 1394, in train
[rank0]:     train_step(forward_step_func,
[rank0]:   File "/opt/Megatron-LM/megatron/training/training.py", line 741, in train_step
[rank0]:     losses_reduced = forward_backward_func(
[rank0]:                      ^^^^^^^^^^^^^^^^^^^^^^
[rank0]:   File "/opt/Megatron-LM/megatron/core/transformer/mlp.py", line 115, in forward
[rank0]:     intermediate_parallel = self.activation_func(intermediate_parallel)
[rank0]:                             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
[rank0]:   File "/usr/local/lib/python3.11/site-packages/torch/nn/functional.py", line 2380, in silu
[rank0]:     return torch._C._nn.silu(input)
[rank0]:            ^^^^^^^^^^^^^^^^^^^^^^^^
[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {alloc:.2f} GiB. GPU 0 has a \
total capacity of {total:.2f} GiB of which {free:.2f} GiB is free. Including non-PyTorch memory, this \
process has {used:.2f} GiB memory in use. Of the allocated memory {alloc_pt:.2f} GiB is allocated by \
PyTorch, and {reserved:.2f} GiB is reserved by PyTorch but unallocated. If reserved but unallocated \
memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  \
See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"""


def die_oom(a: argparse.Namespace, needed: float) -> int:
    total = a.gpu_memory_gib - 0.9
    free = 1.23
    used = total - free
    say(OOM_TRACEBACK.format(alloc=max(0.5, needed / GiB - used) , total=total, free=free, used=used,
                             alloc_pt=used - 2.3, reserved=1.87), err=True)
    return 1


def iteration_line(it: int, a: argparse.Namespace, elapsed_ms: float) -> str:
    return (f" [{datetime.now():%Y-%m-%d %H:%M:%S}] iteration {it:8d}/{a.train_iters:8d} |"
            f" consumed samples: {it * a.global_batch_size:12d} |"
            f" elapsed time per iteration (ms): {elapsed_ms:.1f} |"
            f" learning rate: {lr_at(it, a):.3E} |"
            f" global batch size: {a.global_batch_size:5d} |"
            f" lm loss: {loss_at(it):.3E} |"
            f" loss scale: 1.0 |"
            f" grad norm: {0.8 + 2.0 * math.exp(-it / 30.0):.3f} |"
            f" number of skipped iterations: {0:3d} |"
            f" number of nan iterations: {0:3d} |")


# ----------------------------------------------------------------------------- main
def _die_by_signal(signum: int, _frame: object) -> None:
    """Flush, then die by the signal itself (exit status 128+signum), like a torch rank."""
    say(f"[rank0]: received signal {signal.Signals(signum).name}, exiting", err=True)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_EXIT_REQUESTED: list[int] = []


def _request_exit(signum: int, _frame: object) -> None:
    _EXIT_REQUESTED.append(signum)


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _die_by_signal)
    signal.signal(signal.SIGUSR1, _request_exit)
    a = parse_args(argv)
    banner(a)

    start = 0
    loaded = read_tracker(a.load)
    if loaded is not None:
        say(f" loading checkpoint from {a.load} at iteration {loaded}")
        say(f" successfully loaded checkpoint from {a.load} [ t 0/ 1, p 0/ 1 ] at iteration {loaded}")
        start = loaded
    else:
        where = Path(a.load) / TRACKER if a.load else TRACKER
        say(f"WARNING: could not find the metadata file {where} ")
        say("    will not load any checkpoints and will start from random")

    needed = memory_needed_bytes(a)
    if needed > a.gpu_memory_gib * GiB:
        time.sleep(a.oom_after_s)
        return die_oom(a, needed)
    time.sleep(a.startup_s)
    say(f"[after model, optimizer, and learning rate scheduler are built] (simulated memory "
        f"{needed / GiB:.1f} GiB of {a.gpu_memory_gib:.1f} GiB)")
    say("training ...")

    last_save = start
    for it in range(start + 1, a.train_iters + 1):
        t0 = time.monotonic()
        time.sleep(a.iter_time_s)
        if it % max(1, a.log_interval) == 0 or it == a.train_iters:
            say(iteration_line(it, a, (time.monotonic() - t0) * 1000.0))
        if a.save and a.save_interval and it % a.save_interval == 0:
            _save(a, it)
            last_save = it
        if _EXIT_REQUESTED:
            if a.save and last_save != it:
                _save(a, it)
            say(f"exiting program after receiving SIGUSR1 at iteration {it}")
            return 0
    if a.save and last_save != a.train_iters and a.train_iters > start:
        _save(a, a.train_iters)  # Megatron saves at the end of training too
    say(f"[after training is done] finished {a.train_iters} iterations")
    return 0


def _save(a: argparse.Namespace, it: int) -> None:
    say(f"saving checkpoint at iteration {it:7d} to {a.save}")
    save_checkpoint(a.save, it, it * a.global_batch_size)
    say(f"  successfully saved checkpoint from iteration {it:7d} to {a.save}")


if __name__ == "__main__":
    sys.exit(main())
