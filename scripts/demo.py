#!/usr/bin/env python3
"""The demo: a training run on the local Slurm cluster fails with an NCCL error and comes back.

Run by ``./scripts/demo`` (which installs everything and starts the cluster first). It submits
the CPU test workload through ``autoexp-sidecar submit``, waits for a checkpoint, appends an NCCL
error line to the training log, and shows the sidecar's marker, the watchdog's decision, the
replacement job resuming from the checkpoint, and ``autoexp-sidecar inspect``.
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
    ap.add_argument("--train-iters", type=int, default=150)
    args = ap.parse_args()
    root = Path(args.run_root or tempfile.mkdtemp(prefix="autoexp-demo-", dir="/var/tmp"))

    say("1. autoexp-sidecar doctor (is this cluster fit for the restart chain?)")
    doc = sh(CLI + ["doctor", "--run-root", str(root)])
    print(doc.stdout + doc.stderr, flush=True)

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
