#!/usr/bin/env python3
"""The demo: a training run on the local Slurm cluster fails and comes back.

Run by ``./scripts/demo`` (which installs everything and starts the cluster first).

Default (``--workload torch``): real distributed training, a tiny GPT with PyTorch DDP on 3
nodes (srun + one torchrun per node), and a real fault: ``kill -9`` of the rank on n2. It shows
the sidecar's marker (the killed rank, not the survivors' connection errors), the watchdog's
decision, the replacement job loading the checkpoint, and the loss curve across the restart.

``--workload sim``: the user's own manual test: the CPU stand-in workload, an NCCL error line
appended to its log, the restart.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from sidecar.rundir import RunPaths  # noqa: E402  (the run directory's one layout)
CLI = [sys.executable, "-m", "sidecar"]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, text=True, capture_output=True, **kw)


def wait_for(what: str, check, timeout_s: float, poll_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll_s)
    say(f"✗ timed out after {timeout_s:.0f}s waiting for {what}")
    sys.exit(1)


def job_state(job: str) -> str:
    from sidecar.slurm import get_client

    return get_client("cli").job_info(job).state.value


def read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-root", default=None, help="where the demo run goes (default: a temp dir)")
    ap.add_argument("--workload", choices=("torch", "sim"), default="torch",
                    help="torch: real DDP on 3 nodes, a rank killed (default); sim: an injected NCCL line")
    ap.add_argument("--train-iters", type=int, default=None, help="default: 120 (torch), 150 (sim)")
    args = ap.parse_args()
    root = Path(args.run_root or tempfile.mkdtemp(prefix="autoexp-demo-", dir="/var/tmp"))

    say("1. autoexp-sidecar doctor (is this cluster fit for the restart chain?)")
    doc = sh(CLI + ["doctor", "--run-root", str(root)])
    print(doc.stdout + doc.stderr, flush=True)
    if args.workload == "torch":
        return demo_torch(root, args.train_iters or 120)
    return demo_sim(root, args.train_iters or 150)


def submit(config: str, root: Path, *sets: str) -> tuple[Path, str, dict] | None:
    sub = sh(CLI + ["submit", str(REPO / "examples" / config), f"run.root={root}", "run.name=demo",
                    *sets, "--json"])
    if sub.returncode != 0:
        print(sub.stdout + sub.stderr)
        return None
    info = json.loads(sub.stdout.strip().splitlines()[-1])
    say(f"   run directory {info['run_dir']}; training job {info['train_job']}, watchdog job "
        f"{info['watchdog_job']} (--dependency=afternotok:{info['train_job']})")
    return Path(info["run_dir"]), info["train_job"], info


PLACEMENT = re.compile(r"^(\d+): \[default\d+\]:> rank (\d+) of (\d+) .*? on node (\S+), pid (\d+)", re.M)


def demo_torch(root: Path, train_iters: int) -> int:
    from sidecar.workload.loss_curve import compare, loss_curve

    say("2. autoexp-sidecar submit examples/local_torch.yaml slurm.nodes=3 (PyTorch DDP, 3 nodes)")
    got = submit("local_torch.yaml", root, "slurm.nodes=3", f"backend.args.train_iters={train_iters}",
                 "backend.args.save_interval=20")
    if got is None:
        return 1
    run, job, _ = got
    log = run / "logs" / f"train-{job}.out"
    say(f"3. waiting for job {job} to run and save a checkpoint...")
    wait_for("RUNNING", lambda: job_state(job) == "RUNNING", 60)
    ranks = wait_for("all 3 ranks", lambda: (lambda r: r if len(r) == 3 else None)(PLACEMENT.findall(read(log))), 120)
    for task, rank, _w, node, pid in sorted(ranks):
        print(f"   srun task {task} on {node}: rank {rank} (pid {pid})", flush=True)
    wait_for("a checkpoint save", lambda: "successfully saved checkpoint" in read(log), 120)
    print("   " + "\n   ".join(ln for ln in read(log).strip().splitlines()[-3:]), flush=True)

    task, rank, _w, node, pid = next((r for r in ranks if r[3] == "n2"), ranks[-1])
    say(f"4. kill -9 of rank {rank} on {node} (pid {pid}): a real fault")
    t0 = time.monotonic()
    os.kill(int(pid), 9)
    marker = run / "attempts" / "1" / "marker.json"
    decision_file = run / "attempts" / "1" / "decision.json"
    wait_for("the watchdog's decision", decision_file.exists, 120)
    m = json.loads(marker.read_text()) if marker.exists() else {}
    decision = json.loads(decision_file.read_text())
    say(f"   sidecar marker: error_type={m.get('error_type')} ({m.get('signal')}): {m.get('line', '')[:150]}")
    for ev in m.get("superseded", []):
        print(f"   (first seen, a symptom: {ev.get('line', '')[:150]})", flush=True)
    say(f"   watchdog decision: {decision['action']} - {decision['reason']}")
    new = wait_for("the restarted training job",
                   lambda: (run / "attempts" / "2" / "train_job").exists()
                   and (run / "attempts" / "2" / "train_job").read_text().strip(), 60)
    new_log = run / "logs" / f"train-{new}.out"
    wait_for("the first iteration of the new attempt", lambda: re.search(r"iteration\s+\d+/", read(new_log)), 180)
    say(f"   ✓ restarted as job {new}; first new iteration {time.monotonic() - t0:.1f}s after the kill")
    for ln in read(new_log).splitlines():
        if "loaded checkpoint" in ln:
            print("   " + ln.strip(), flush=True)

    say(f"5. waiting for the run to finish ({train_iters} iterations)...")
    wait_for("the run to finish", lambda: job_state(new) == "COMPLETED", 600, 1.0)
    old_curve = loss_curve([read(log).encode()])
    curve = loss_curve([read(log).encode(), read(new_log).encode()])
    loaded = re.search(r"loaded checkpoint .* at iteration (\d+)", read(new_log))
    redone = {i: v for i, v in old_curve.items() if loaded and i > int(loaded.group(1))}
    new_curve = loss_curve([read(new_log).encode()])
    say("6. the loss curve across the restart (attempt 1 | attempt 2):")
    first_new = min(new_curve) if new_curve else None
    for i in sorted(curve):
        if i % 10 == 0 or i == first_new or i == max(old_curve):
            who = "2" if first_new is not None and i >= first_new else "1"
            print(f"   iteration {i:4d}  lm loss {curve[i]:.4f}  (attempt {who})", flush=True)
    diff = compare(new_curve, {i: v for i, v in redone.items() if i in new_curve})
    if diff.common:
        say(f"   iterations redone after the checkpoint: {diff.summary()}")
    print(sh(CLI + ["inspect", str(run)]).stdout, flush=True)
    say("✓ demo done: a rank was killed, the job came back from its checkpoint and finished.")
    return 0


def demo_sim(root: Path, train_iters: int) -> int:
    args = argparse.Namespace(train_iters=train_iters)

    say("2. autoexp-sidecar submit examples/local.yaml (the CPU Megatron-style test workload)")
    sub = sh(CLI + ["submit", str(REPO / "examples" / "local.yaml"), f"run.root={root}",
                    "run.name=demo", f"backend.args.train_iters={args.train_iters}",
                    "backend.args.save_interval=20", "--json"])
    if sub.returncode != 0:
        print(sub.stdout + sub.stderr)
        return 1
    info = json.loads(sub.stdout.strip().splitlines()[-1])
    run = Path(info["run_dir"])
    job = info["train_job"]
    say(f"   run directory {run}; training job {job}, watchdog job {info['watchdog_job']} "
        f"(--dependency=afternotok:{job})")
    paths = RunPaths(run)
    log = paths.train_log(job)

    say(f"3. waiting for job {job} to run and save a checkpoint...")
    wait_for("RUNNING", lambda: job_state(job) == "RUNNING", 60)
    wait_for("a checkpoint save", lambda: "successfully saved checkpoint" in read(log), 120)
    print("   " + "\n   ".join(read(log).strip().splitlines()[-4:]), flush=True)

    line = "[default0]:NCCL ERROR timeout"
    say(f"4. injecting an NCCL error into the training log: {line!r}")
    with open(log, "a") as fh:
        fh.write(line + "\n")
    t0 = time.monotonic()
    marker = paths.marker(1)
    wait_for("the sidecar's marker", marker.exists, 30, 0.05)
    m = json.loads(marker.read_text())
    say(f"   sidecar marker after {time.monotonic() - t0:.2f}s: error_type={m['error_type']} "
        f"class={m['class']} line {m['line_no']}")

    say("5. the sidecar ends the job; Slurm starts the watchdog; the watchdog decides...")
    new_job_file = paths.train_job_file(2)
    wait_for("the restarted training job", new_job_file.exists, 120)
    new = new_job_file.read_text().strip()
    decision = json.loads(paths.decision(1).read_text())
    say(f"   job {job} ended {job_state(job)}; watchdog decision: {decision['action']} - "
        f"{decision['reason']}")
    wait_for(f"job {new} RUNNING", lambda: job_state(new) in ("RUNNING", "COMPLETED"), 60)
    say(f"   ✓ restarted as job {new}, {time.monotonic() - t0:.1f}s after the error line")
    new_log = paths.train_log(new)
    wait_for("the first iteration of the new attempt",
             lambda: re.search(r"iteration\s+\d+/", read(new_log)), 60)
    for ln in read(new_log).splitlines():
        if "loaded checkpoint" in ln or "AUTOEXP" in ln or re.search(r"iteration\s+\d+/", ln):
            print("   " + ln.strip(), flush=True)
            if "iteration" in ln and "checkpoint" not in ln:
                break

    say("6. autoexp-sidecar inspect")
    print(sh(CLI + ["inspect", str(run)]).stdout, flush=True)
    say(f"7. waiting for the run to finish ({args.train_iters} iterations)...")
    wait_for("the run to finish", lambda: job_state(new) == "COMPLETED", 300, 1.0)
    print(sh(CLI + ["inspect", str(run)]).stdout, flush=True)
    say("✓ demo done: the NCCL error was detected, the job came back from its checkpoint, "
        "and finished.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
