#!/usr/bin/env python3
"""The sidecar's cost and the restart latency on real distributed training (the local cluster).

1. Overhead: a torch run (examples/local_torch.yaml, 2 nodes) trains for ``--train-s``; then the
   sidecar process (``autoexp-sidecar scan`` inside the allocation) is read from /proc: CPU
   seconds (user + system) and peak RSS (VmHWM), scaled to one hour of training, next to the
   training ranks' own CPU seconds in the same time (the baseline of the ratio).
2. Restart latency, from the fault to the first iteration line of the replacement job (so it
   includes torch's start, the rendezvous and the checkpoint load), ``--reps`` times each:
   megatron_sim with an injected NCCL line, torch with the same line, torch with ``kill -9`` of
   a rank off the batch host.

Uses the acceptance script's harness (scripts/test_auto_restart.py) to submit and wait.

    python bench/bench_torch.py                 # --train-s 120 --reps 3
    python bench/bench_torch.py --train-s 60 --reps 1
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _load_script():
    name = "autoexp_test_auto_restart_script"
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "test_auto_restart.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


T = _load_script()


def processes_of(run_dir: Path, marker: str) -> list[int]:
    """Pids whose command line mentions ``run_dir`` and ``marker`` (this machine runs the nodes)."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run_dir) in cmd and marker in cmd:
            pids.append(int(p.name))
    return pids


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def harness(workload: str, root: Path) -> "T.Harness":
    wl = T.WORKLOADS[workload]
    return T.Harness(reporter=T.Reporter(stream=open(os.devnull, "w")), run_root=root,
                     config=wl["config"], sets=wl["sets"], oom_error_type=wl["oom_error_type"],
                     workload=workload, start_timeout_s=120, restart_timeout_s=120)


def overhead(root: Path, train_s: float) -> None:
    h = harness("torch", root / "overhead")
    try:
        run = h.submit("overhead")
        h.wait_state(run.job, "RUNNING")
        T.wait_for(lambda: T.first_iteration(T.read_bytes(run.log(run.job))), 180)
        t0 = time.monotonic()
        sidecars = processes_of(run.dir, " scan ")
        ranks = processes_of(run.dir, "-u -m sidecar.workload.torch_gpt")
        if len(sidecars) != 1 or not ranks:
            print(f"could not find the processes (sidecar {sidecars}, ranks {ranks})")
            return
        side0, ranks0 = cpu_s(sidecars[0]), sum(cpu_s(p) for p in ranks)
        time.sleep(train_s)
        elapsed = time.monotonic() - t0
        side = cpu_s(sidecars[0]) - side0
        work = sum(cpu_s(p) for p in ranks) - ranks0
        rss = peak_rss_mib(sidecars[0])
        lines = T.read_bytes(run.log(run.job)).count(b"\n")
        per_h = 3600.0 / elapsed
        print(f"overhead over {elapsed:.0f} s of training (2 ranks, {lines} log lines so far):")
        print(f"  sidecar CPU      {side:7.2f} s  = {side * per_h:7.1f} s per hour of training")
        print(f"  training CPU     {work:7.2f} s  = {work * per_h:7.1f} s per hour (the ranks)")
        print(f"  ratio            {side / work:7.4f}   sidecar CPU / training CPU")
        print(f"  sidecar peak RSS {rss:7.1f} MiB")
    finally:
        h.close()


def latency_rep(h: "T.Harness", fault: str) -> float:
    run = h.submit(f"lat-{fault}")
    h.wait_state(run.job, "RUNNING")
    h.wait_checkpoint(run, run.job)
    t0 = time.monotonic()
    if fault == "kill":
        h.signal_rank(run, run.job, signal.SIGKILL)
    else:
        h.inject(run, run.job, T.NCCL_LINE)
    new = T.wait_for(lambda: run.train_job(run.attempt + 1), 180)
    if new is None:
        raise RuntimeError(f"no restart of job {run.job}")
    if T.wait_for(lambda: T.first_iteration(T.read_bytes(run.log(new))), 300, 0.05) is None:
        raise RuntimeError(f"job {new} printed no iteration")
    dt = time.monotonic() - t0
    h.end_run(run)
    return dt


def latency(root: Path, reps: int) -> None:
    print(f"restart latency, fault -> first iteration line of the new job ({reps} reps each):")
    base = None
    for workload, fault in (("sim", "nccl"), ("torch", "nccl"), ("torch", "kill")):
        h = harness(workload, root / f"lat-{workload}-{fault}")
        try:
            times = [latency_rep(h, fault) for _ in range(reps)]
        finally:
            h.close()
        med = statistics.median(times)
        base = base or med
        what = {"nccl": "injected NCCL line", "kill": "kill -9 of a rank"}[fault]
        print(f"  {workload:6s} {what:20s} median {med:6.1f} s  (min {min(times):.1f}, max "
              f"{max(times):.1f})  x{med / base:.2f} of megatron_sim")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-s", type=float, default=120.0, help="training time measured for the overhead")
    ap.add_argument("--reps", type=int, default=3, help="restarts measured per case")
    ap.add_argument("--run-root", type=Path, default=None)
    args = ap.parse_args(argv)
    import tempfile

    root = args.run_root or Path(tempfile.mkdtemp(prefix="autoexp-bench-torch-"))
    overhead(root, args.train_s)
    latency(root, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
