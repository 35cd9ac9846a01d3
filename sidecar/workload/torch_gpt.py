"""A real distributed training workload: a tiny GPT trained with PyTorch DDP (gloo, CPU).

    torchrun --nnodes=N --nproc-per-node=1 --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT \\
        -m sidecar.workload.torch_gpt --micro-batch-size 4 --train-iters 200 \\
        --save CKPT --load CKPT --save-interval 10

What a restart system meets on a real cluster, at a size that runs anywhere: a few transformer
layers (~1M parameters) on deterministic synthetic tokens, logged in Megatron-LM's formats
(iteration lines, checkpoint save and load lines; ``--log-format torchtitan``: torchtitan's
step and checkpoint lines instead), checkpointed with
``torch.distributed.checkpoint`` like Megatron's ``torch_dist`` format (each rank writes its
shard into a temporary directory; rank 0 publishes it with one rename and then the
``latest_checkpointed_iteration.txt`` tracker), resumed from the latest checkpoint, and on
SIGUSR1 (``--exit-signal-handler``) saved and ended like Megatron.

Knobs exist only to cause real faults; the error text is whatever torch and the kernel print:
``--lr 1e6`` makes the loss NaN, ``--activation-mb-per-sample`` holds memory that grows with the
micro batch (``--micro-batch-size 16`` does not fit the local preset's memory limit), and
``--bad-token-at-iteration`` feeds rank ``--bad-token-rank`` a token outside the vocabulary (a
real IndexError in one rank). Unknown ``--flag value`` Megatron arguments are ignored.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Sequence

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.nn.parallel import DistributedDataParallel as DDP

from sidecar.checkpoints import TRACKER, read_tracker

MiB = 1 << 20
LOG_FORMATS = ("megatron", "torchtitan")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sidecar.workload.torch_gpt",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--micro-batch-size", type=int, default=4)
    p.add_argument("--global-batch-size", type=int, default=None,
                   help="default: micro batch x world size (no gradient accumulation)")
    p.add_argument("--train-iters", type=int, default=200)
    p.add_argument("--save", default=None)
    p.add_argument("--load", default=None)
    p.add_argument("--save-interval", type=int, default=None)
    p.add_argument("--log-interval", type=int, default=1)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--num-attention-heads", type=int, default=4)
    p.add_argument("--seq-length", type=int, default=64)
    p.add_argument("--vocab-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1.0e-3)
    p.add_argument("--lr-warmup-iters", type=int, default=10)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--iter-time-s", type=float, default=0.0,
                   help="pad each iteration to at least this long (a steady pace for tests)")
    p.add_argument("--activation-mb-per-sample", type=float, default=0.0,
                   help="extra activation memory held during each step, per sample of the micro batch")
    p.add_argument("--activation-rank", type=int, default=None,
                   help="only this rank holds the activation memory (uneven data: one rank's "
                        "batches are the large ones); default every rank")
    p.add_argument("--bad-token-at-iteration", type=int, default=None,
                   help="feed a token id outside the vocabulary at this iteration (a real IndexError)")
    p.add_argument("--bad-token-rank", type=int, default=0)
    p.add_argument("--check-for-nan-in-loss-and-grad", action="store_true",
                   help="stop with an error on a NaN loss (Megatron's flag); without it NaN is only printed")
    p.add_argument("--log-format", choices=LOG_FORMATS, default="megatron",
                   help="print step, checkpoint save and load lines as Megatron-LM does (default) "
                        "or as torchtitan does (what the sidecar reads of other training stacks)")
    p.add_argument("--exit-signal-handler", action="store_true", default=True,
                   help="on SIGUSR1: save a checkpoint and exit (always on)")
    args, unknown = p.parse_known_args(argv)
    args.ignored = unknown
    return args


# ----------------------------------------------------------------------------- the model
class Block(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__()
        self.tok = nn.Embedding(a.vocab_size, a.hidden_size)
        self.pos = nn.Embedding(a.seq_length, a.hidden_size)
        self.blocks = nn.ModuleList(Block(a.hidden_size, a.num_attention_heads) for _ in range(a.num_layers))
        self.ln = nn.LayerNorm(a.hidden_size)
        self.head = nn.Linear(a.hidden_size, a.vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        mask = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
        x = self.tok(tokens) + self.pos(torch.arange(n))
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln(x))


def batch_for(a: argparse.Namespace, iteration: int, rank: int, micro: int) -> torch.Tensor:
    """The tokens of one micro batch: a pure function of (seed, iteration, rank, micro batch), so
    a resumed run sees exactly the data an uninterrupted one would (no sample skipped or repeated).
    Sequences follow a simple learnable rule (next = a * prev + b mod vocab) so the loss falls."""
    g = torch.Generator().manual_seed(hash((a.seed, iteration, rank, micro)) & 0x7FFFFFFF)
    start = torch.randint(0, a.vocab_size, (a.micro_batch_size, 1), generator=g)
    step = torch.randint(1, 8, (a.micro_batch_size, 1), generator=g)
    pos = torch.arange(a.seq_length + 1).unsqueeze(0)
    return (start + step * pos) % a.vocab_size


def hold_activation_memory(a: argparse.Namespace) -> torch.Tensor:
    """Memory that grows with the micro batch, taken in the first step and kept (as a caching
    allocator keeps activation memory). One write per page makes it resident, so a memory
    cgroup sees it as well as an address-space limit does, at no cost per step."""
    held = torch.empty(int(a.micro_batch_size * a.activation_mb_per_sample * MiB) // 4)
    held[::1024] = 1.0  # 1024 float32 = one 4 KiB page
    return held


def lr_at(iteration: int, a: argparse.Namespace) -> float:
    if iteration <= a.lr_warmup_iters:
        return a.lr * iteration / max(1, a.lr_warmup_iters)
    frac = (iteration - a.lr_warmup_iters) / max(1, a.train_iters - a.lr_warmup_iters)
    return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


# ----------------------------------------------------------------------------- checkpoints

def iter_dir(root: str, iteration: int) -> Path:
    return Path(root) / f"iter_{iteration:07d}"


def save_checkpoint(a: argparse.Namespace, model: nn.Module, opt: torch.optim.Optimizer,
                    iteration: int, rank: int) -> None:
    """Megatron's torch_dist layout: every rank writes its shard of iter_N into a temporary
    directory (a collective); rank 0 then renames it into place and replaces the tracker, so a
    job killed mid-save leaves the previous checkpoint as the latest."""
    root = Path(a.save)
    tmp = root / f".iter_{iteration:07d}.tmp"
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    dist.barrier()
    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp))
    dist.barrier()
    if rank == 0:
        final = iter_dir(a.save, iteration)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        tracker_tmp = root / f".{TRACKER}.tmp"
        with open(tracker_tmp, "w", encoding="utf-8") as fh:
            fh.write(f"{iteration}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tracker_tmp, root / TRACKER)
    dist.barrier()


def load_checkpoint(a: argparse.Namespace, model: nn.Module, opt: torch.optim.Optimizer,
                    iteration: int) -> None:
    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(iter_dir(a.load, iteration)))
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])


# ----------------------------------------------------------------------------- output
def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def iteration_line(it: int, a: argparse.Namespace, elapsed_ms: float, lr: float, loss: float,
                   grad_norm: float, gbs: int, nan_iters: int) -> str:
    # Megatron: training_log() in megatron/training/training.py
    return (f" [{datetime.now():%Y-%m-%d %H:%M:%S}] iteration {it:8d}/{a.train_iters:8d} |"
            f" consumed samples: {it * gbs:12d} |"
            f" elapsed time per iteration (ms): {elapsed_ms:.1f} |"
            f" learning rate: {lr:.6E} |"
            f" global batch size: {gbs:5d} |"
            f" lm loss: {loss:.6E} |"
            f" loss scale: 1.0 |"
            f" grad norm: {grad_norm:.3f} |"
            f" number of skipped iterations: {0:3d} |"
            f" number of nan iterations: {nan_iters:3d} |")


def titan(text: str) -> str:
    """torchtitan's logger: "[titan] <time> - root - INFO - <text>"."""
    return f"[titan] {datetime.now():%Y-%m-%d %H:%M:%S,%f}"[:-3] + f" - root - INFO - {text}"


def titan_step_line(it: int, loss: float, grad_norm: float, elapsed_s: float, tokens: int) -> str:
    # torchtitan's components/metrics.py, with its default colours; the memory, throughput and
    # MFU figures of a GPU run are 0 on this CPU model
    return titan(f"\x1b[31mstep: {it:2}  \x1b[32mloss: {loss:8.5f}  \x1b[38;2;180;60;0mgrad_norm: {grad_norm:7.4f}  "
                 f"\x1b[38;2;54;234;195mmemory:  0.00GiB(0.00%)  \x1b[34mtps: {round(tokens / max(elapsed_s, 1e-9)):,}  "
                 f"\x1b[36mtflops: 0.00  \x1b[35mmfu: 0.00%\x1b[39m")


class StepLog:
    """The lines of steps, saves and loads in the format of ``--log-format``."""

    def __init__(self, a: argparse.Namespace, gbs: int) -> None:
        self.a, self.gbs = a, gbs
        self.titan = a.log_format == "torchtitan"

    def step(self, it: int, elapsed_s: float, loss: float, grad_norm: float, nan_iters: int) -> str:
        if self.titan:
            return titan_step_line(it, loss, grad_norm, elapsed_s, self.gbs * self.a.seq_length)
        return iteration_line(it, self.a, elapsed_s * 1000.0, lr_at(it, self.a), loss, grad_norm, self.gbs,
                              nan_iters)

    def saving(self, it: int) -> str:
        if self.titan:
            return titan("Saving the checkpoint.")
        return f"saving checkpoint at iteration {it:7d} to {self.a.save} in torch_dist format"

    def saved(self, it: int, took_s: float) -> str:
        if self.titan:
            return titan(f"Finished saving the checkpoint in {took_s:.2f} seconds.")
        return f"  successfully saved checkpoint from iteration {it:7d} to {self.a.save} [ t 1/1, p 1/1 ]"

    def loading(self, it: int) -> str:
        if self.titan:
            return titan(f"Loading the checkpoint from {iter_dir(self.a.load, it)}.")
        return f" loading distributed checkpoint from {self.a.load} at iteration {it}"

    def loaded(self, it: int, took_s: float) -> str:
        if self.titan:
            return titan(f"Finished loading the checkpoint in {took_s:.2f} seconds.")
        return f" successfully loaded checkpoint from {self.a.load} [ t 1/1, p 1/1 ] at iteration {it}"


# ----------------------------------------------------------------------------- main
class ExitSignal:
    """SIGUSR1 (Megatron's --exit-signal-handler): finish the step, save, exit 0."""

    def __init__(self) -> None:
        self.received = False
        signal.signal(signal.SIGUSR1, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.received = True


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    exit_signal = ExitSignal()
    torch.set_num_threads(1)  # deterministic, and two ranks share one small machine
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    print(f"> rank {rank} of {world} (local rank {os.environ.get('LOCAL_RANK', 0)}) on node {node}, "
          f"pid {os.getpid()}", flush=True)
    n_micro = 1
    gbs = a.global_batch_size or a.micro_batch_size * world
    if gbs % (a.micro_batch_size * world):
        raise ValueError(f"global batch size ({gbs}) is not divisible by micro batch size "
                         f"({a.micro_batch_size}) times data parallel size ({world})")
    n_micro = gbs // (a.micro_batch_size * world)
    if rank == 0:
        say(f"using world size: {world}, data-parallel size: {world}, context-parallel size: 1, "
            "tensor-model-parallel size: 1, pipeline-model-parallel size: 1")
        say(f"autoexp: AUTOEXP_ATTEMPT={os.environ.get('AUTOEXP_ATTEMPT', '')} "
            f"AUTOEXP_RESTART_REASON={os.environ.get('AUTOEXP_RESTART_REASON', '')}")

    torch.manual_seed(a.seed)
    model = TinyGPT(a)
    if rank == 0:
        n_params = sum(p.numel() for p in model.parameters())
        say(f" > number of parameters on (tensor, pipeline) model parallel rank (0, 0): {n_params}")
    ddp = DDP(model)
    opt = torch.optim.AdamW(ddp.parameters(), lr=a.lr, weight_decay=0.01)

    log = StepLog(a, gbs)
    start = 0
    loaded = read_tracker(a.load)
    if loaded is not None:
        t_load = time.monotonic()
        if rank == 0:
            say(log.loading(loaded))
        load_checkpoint(a, ddp, opt, loaded)
        if rank == 0:
            say(log.loaded(loaded, time.monotonic() - t_load))
        start = loaded
    elif rank == 0:
        where = Path(a.load) / TRACKER if a.load else TRACKER
        say(f"WARNING: could not find the metadata file {where} ")
        say("    will not load any checkpoints and will start from random")
    if rank == 0:
        say("training ...")

    last_save = start
    nan_iters = 0
    activations: torch.Tensor | None = None
    it = start
    for it in range(start + 1, a.train_iters + 1):
        t0 = time.monotonic()
        for group in opt.param_groups:
            group["lr"] = lr_at(it, a)
        opt.zero_grad(set_to_none=True)
        total = torch.zeros(())
        for micro in range(n_micro):
            tokens = batch_for(a, it, rank, micro)
            if a.bad_token_at_iteration == it and a.bad_token_rank == rank:
                tokens[0, 0] = a.vocab_size  # one id past the table: torch raises in the embedding
            if (activations is None and a.activation_mb_per_sample > 0
                    and a.activation_rank in (None, rank)):
                activations = hold_activation_memory(a)
            logits = ddp(tokens[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, a.vocab_size), tokens[:, 1:].reshape(-1))
            (loss / n_micro).backward()
            total += loss.detach() / n_micro
        grad_norm = float(torch.nn.utils.clip_grad_norm_(ddp.parameters(), 1.0))
        opt.step()
        dist.all_reduce(total)
        loss_avg = float(total) / world
        if not math.isfinite(loss_avg):
            nan_iters += 1
            if a.check_for_nan_in_loss_and_grad:
                raise RuntimeError(f"Rank {rank}, node {node}, iteration {it}: found NaN in local "
                                   "loss in forward pass before data-parallel communication collective")
        pad = a.iter_time_s - (time.monotonic() - t0)
        if pad > 0:
            time.sleep(pad)
        if rank == 0 and (it % max(1, a.log_interval) == 0 or it == a.train_iters):
            say(log.step(it, time.monotonic() - t0, loss_avg, grad_norm, nan_iters))
        stop = torch.tensor([1 if exit_signal.received else 0])
        dist.all_reduce(stop)  # every rank must agree to save together (a collective)
        if a.save and (stop.item() or (a.save_interval and it % a.save_interval == 0)):
            _save(a, ddp, opt, it, rank, log)
            last_save = it
        if stop.item():
            if rank == 0:
                say(f"[{datetime.now():%Y-%m-%d %H:%M:%S}] exiting program after receiving SIGUSR1.")
            return finish()
    if a.save and last_save != it and it > start:
        _save(a, ddp, opt, it, rank, log)  # Megatron saves at the end of training too
    if rank == 0:
        say(f"[after training is done] finished {a.train_iters} iterations")
    return finish()


def finish() -> int:
    """Leave together. A barrier instead of destroy_process_group(): with gloo a rank could
    hang for good in destroy after its peer had already exited (seen at the end of a NaN run)."""
    dist.barrier()
    return 0


def _save(a: argparse.Namespace, model: nn.Module, opt: torch.optim.Optimizer, it: int, rank: int,
          log: StepLog) -> None:
    t0 = time.monotonic()
    if rank == 0:
        say(log.saving(it))
    save_checkpoint(a, model, opt, it, rank)
    if rank == 0:
        say(log.saved(it, time.monotonic() - t0))


if __name__ == "__main__":
    code = main()
    # Leave without running C++ static destructors: with gloo's threads still alive they end now
    # and then in std::terminate ("terminate called without an active exception", SIGABRT) after
    # training finished (seen about once in 10 runs on a loaded 2-core machine).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
