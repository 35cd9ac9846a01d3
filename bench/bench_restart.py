#!/usr/bin/env python3
"""Restart latency on a real Slurm cluster (by default the local one: scripts/local-slurm up).

Measured: an error line appended to the training log -> the replacement training job RUNNING.
Three cases, each ``--reps`` times (default 10), in the same run:

  floor        Slurm's own floor, a bare chain: job A (waiting on a trigger file) exits 1 when
               the trigger appears; its ``--dependency=afternotok:A`` job B starts. Measured
               from touching the trigger to B RUNNING. No sidecar, no watchdog logic.
  grace=0      the whole chain with the monitoring kill grace set to 0: sidecar detects the
               line, writes the marker, cancels the job; the watchdog job starts, decides and
               submits the next attempt; that job starts.
  grace=default the same with the monitoring preset's default kill grace.

Times are taken by polling ``squeue`` every ``--poll-s`` (default 0.05 s) from this process, so
every case carries the same polling error. For the chain cases the time to the marker on disk
(detection latency) is reported too. One run per chain case: the injected line alternates
between an NCCL error and a CUDA device-side assert, so the "same failure again without
progress" rule never stops the run; its retry budget is raised to cover all reps.

    python bench/bench_restart.py            # 10 reps of each case
    python bench/bench_restart.py --reps 3 --cases floor,grace0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from sidecar.history import read_history  # noqa: E402  (the run dir's one history reader)
from sidecar.rundir import RunPaths  # noqa: E402  (and its one layout)
DEFAULT_CONFIG = REPO / "examples" / "local.yaml"
LOCAL_SETS = ("backend.args.train_iters=100000", "backend.args.iter_time_s=0.2",
              "backend.args.save_interval=10")
LINES = ("[default0]:NCCL ERROR timeout", "CUDA device-side assert detected in kernel execution")
CMD_TIMEOUT_S = 30


def run_cmd(argv: Sequence[str], timeout_s: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out after {timeout_s}s")


def squeue_state(job: str) -> str:
    """The state squeue shows for a job; '' once it has left the queue (or on an error)."""
    res = run_cmd(["squeue", "-h", "-j", str(job), "-o", "%T"])
    return res.stdout.strip() if res.returncode == 0 else ""


def wait_for(pred: Callable[[], object], timeout_s: float, interval_s: float):
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


def read_job_file(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text if text.isdigit() else None


@dataclass
class Case:
    name: str
    latencies: list[float] = field(default_factory=list)
    detect: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lost: int = 0  # injected lines overwritten by the job's own output before detection
    phases: dict[str, list[float]] = field(default_factory=dict)  # step -> seconds after the line


# ============================================================================ the floor


def floor_rep(work: Path, rep: int, partition: str | None, timeout_s: float, poll_s: float) -> float:
    """One bare chain: A exits 1 when its trigger appears; B (afternotok:A) starts. Seconds."""
    trigger = work / f"floor-{rep}.go"
    part = ["-p", partition] if partition else []
    common = [*part, "--no-requeue", "-o", "/dev/null", "-e", "/dev/null", "--mem=50M", "-c", "1"]
    a = run_cmd(["sbatch", "--parsable", "-J", "bench-floor-A", *common,
                 "--wrap", f"while [ ! -e {trigger} ]; do sleep 0.02; done; exit 1"])
    if a.returncode != 0:
        raise RuntimeError(f"sbatch A: {a.stderr.strip()}")
    job_a = a.stdout.strip().split(";")[0]
    b = run_cmd(["sbatch", "--parsable", "-J", "bench-floor-B", *common,
                 f"--dependency=afternotok:{job_a}", "--kill-on-invalid-dep=yes",
                 "--wrap", "sleep 120"])
    if b.returncode != 0:
        run_cmd(["scancel", job_a])
        raise RuntimeError(f"sbatch B: {b.stderr.strip()}")
    job_b = b.stdout.strip().split(";")[0]
    try:
        if not wait_for(lambda: squeue_state(job_a) == "RUNNING", timeout_s, 0.1):
            raise RuntimeError(f"job A {job_a} did not start within {timeout_s}s")
        time.sleep(0.5)  # let A's batch script reach its loop
        t0 = time.monotonic()
        trigger.touch()
        if not wait_for(lambda: squeue_state(job_b) == "RUNNING", timeout_s, poll_s):
            raise RuntimeError(f"job B {job_b} did not start within {timeout_s}s of A failing")
        return time.monotonic() - t0
    finally:
        run_cmd(["scancel", job_b, job_a])


# ============================================================================ the chain


class LostLine(RuntimeError):
    """The injected line vanished from the log (overwritten) before the sidecar saw it."""


class ChainRun:
    """One run of the whole chain, restarted ``reps`` times by injected error lines."""

    def __init__(self, cli: Sequence[str], config: Path, root: Path, name: str, sets: Sequence[str],
                 reps: int):
        self.cli, self.config, self.root, self.name = list(cli), config, root, name
        self.sets = [*sets, f"restart.max_retries={reps + 5}", "restart.backoff_s=0"]
        self.dir: Path | None = None
        self.attempt = 1
        self.job: str | None = None
        self.t0_wall = 0.0

    def submit(self) -> None:
        res = run_cmd([*self.cli, "submit", str(self.config), f"run.root={self.root}",
                       f"run.name={self.name}", *self.sets, "--json"], timeout_s=120)
        if res.returncode != 0:
            raise RuntimeError(f"submit failed (exit {res.returncode}): {res.stderr.strip()[-1500:]}")
        out = json.loads(res.stdout.strip().splitlines()[-1])
        self.dir, self.job = Path(out["run_dir"]), str(out["train_job"])

    def attempt_file(self, n: int, name: str) -> Path:
        assert self.dir is not None
        return RunPaths(self.dir).attempt_dir(n) / name

    def log(self, job: str) -> Path:
        assert self.dir is not None
        return RunPaths(self.dir).train_log(job)

    def phases(self, attempt: int, t0_wall: float) -> dict[str, float]:
        """Seconds after the error line at which the run's history shows each step."""
        assert self.dir is not None
        out: dict[str, float] = {}
        for ev in read_history(RunPaths(self.dir)).events:
            kind, n, t = ev.kind.value, ev.attempt, ev.time
            key = {("marker", attempt): "marker event", ("ended", attempt): "job ended (record)",
                   ("decided", attempt): "watchdog decided",
                   ("submitted", attempt + 1): "next job submitted"}.get((kind, n))
            if key and key not in out:
                out[key] = t - t0_wall
        return out

    def rep(self, i: int, timeout_s: float, poll_s: float) -> tuple[float, float | None]:
        """Inject into the running attempt; (seconds to the next job RUNNING, to the marker)."""
        job = self.job
        assert job is not None
        if not wait_for(lambda: squeue_state(job) == "RUNNING", timeout_s, 0.1):
            raise RuntimeError(f"training job {job} did not start within {timeout_s}s")
        log = self.log(job)
        # the sidecar and the workload are up once the log shows iterations
        if not wait_for(lambda: log.exists() and b"iteration" in log.read_bytes(), timeout_s, 0.1):
            raise RuntimeError(f"no iteration in {log} within {timeout_s}s")
        # Inject just after the workload wrote a line. (A job whose output file is not opened in
        # append mode writes at its own offset and may overwrite our line: counted as "lost".)
        size = log.stat().st_size
        wait_for(lambda: log.stat().st_size != size, 5, 0.01)
        marker = self.attempt_file(self.attempt, "marker.json")
        next_job_file = self.attempt_file(self.attempt + 1, "train_job")
        line = LINES[i % len(LINES)]
        t0 = time.monotonic()
        self.t0_wall = time.time()
        with open(log, "a") as fh:
            fh.write(line + "\n")
        t_marker: float | None = None
        new: str | None = None
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            now = time.monotonic()
            if t_marker is None and marker.exists():
                t_marker = now - t0
            if t_marker is None and now - t0 > 1.0 and line.encode() not in log.read_bytes():
                if not marker.exists():
                    raise LostLine(f"the injected line was overwritten in {log.name} before "
                                   "the sidecar read it")
            if new is None:
                new = read_job_file(next_job_file)
            if new is not None and squeue_state(new) == "RUNNING":
                t_run = time.monotonic() - t0
                if t_marker is None and marker.exists():
                    t_marker = t_run
                self.attempt += 1
                self.job = new
                return t_run, t_marker
            time.sleep(poll_s)
        decision = self.attempt_file(self.attempt, "decision.json")
        why = decision.read_text() if decision.exists() else "no decision"
        raise RuntimeError(f"no replacement job RUNNING within {timeout_s}s of the error line "
                           f"(attempt {self.attempt}, job {job}; {why.strip()[:300]})")

    def stop(self) -> None:
        if self.dir is None:
            return
        (self.dir / "STOP").write_text('{"reason": "bench done"}\n')
        for name in (f"{self.name}-watchdog", self.name):
            res = run_cmd(["squeue", "-h", "-n", name, "-o", "%i"])
            ids = res.stdout.split()
            if ids:
                run_cmd(["scancel", *ids])


def chain_case(case: Case, key: str, cli: Sequence[str], config: Path, root: Path, sets: Sequence[str],
               reps: int, timeout_s: float, poll_s: float, log: Callable[[str], None]) -> None:
    run = ChainRun(cli, config, root, f"bench-{key}-{os.getpid()}", sets, reps)
    try:
        run.submit()
        for i in range(reps):
            for _ in range(3):
                try:
                    t, tm = run.rep(i, timeout_s, poll_s)
                    break
                except LostLine as exc:
                    case.lost += 1
                    log(f"{case.name} rep {i + 1}: {exc}; injecting again")
            else:
                raise RuntimeError("the injected line was lost 3 times in a row")
            case.latencies.append(t)
            for k, v in run.phases(run.attempt - 1, run.t0_wall).items():
                case.phases.setdefault(k, []).append(v)
            case.phases.setdefault("next job RUNNING", []).append(t)
            if tm is not None:
                case.detect.append(tm)
            log(f"{case.name} rep {i + 1}/{reps}: {t:.2f} s (marker {tm if tm is None else f'{tm:.2f}'} s)")
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        case.errors.append(str(exc))
        log(f"{case.name}: {exc}")
    finally:
        run.stop()


# ============================================================================ report


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def table(cases: Sequence[Case], floor: Case | None) -> str:
    floor_med = statistics.median(floor.latencies) if floor and floor.latencies else None
    rows = [("case", "n", "median s", "p90 s", "min s", "max s", "vs floor (median)", "marker median s")]
    for c in cases:
        if not c.latencies:
            rows.append((c.name, "0", "-", "-", "-", "-", "-", "-"))
            continue
        med = statistics.median(c.latencies)
        diff = "-" if floor_med is None or c is floor else f"{med - floor_med:+.2f} s"
        det = f"{statistics.median(c.detect):.3f}" if c.detect else "-"
        rows.append((c.name, str(len(c.latencies)), f"{med:.2f}", f"{pct(c.latencies, 0.9):.2f}",
                     f"{min(c.latencies):.2f}", f"{max(c.latencies):.2f}", diff, det))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--cases", default="floor,grace0,grace_default",
                   help="comma list of floor, grace0, grace_default (default: all)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override (repeatable)")
    p.add_argument("--grace-key", default="monitoring.kill_grace_s",
                   help="the config key of the monitoring kill grace (default monitoring.kill_grace_s)")
    p.add_argument("--partition", default="debug", help="partition of the floor jobs (default debug)")
    p.add_argument("--timeout-s", type=float, default=120.0, help="per step (default 120)")
    p.add_argument("--poll-s", type=float, default=0.05, help="squeue polling interval (default 0.05)")
    p.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    args = p.parse_args(argv)
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = set(wanted) - {"floor", "grace0", "grace_default"}
    if bad:
        p.error(f"unknown case(s): {', '.join(sorted(bad))}")

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    here = Path(sys.executable).parent / "autoexp-sidecar"  # a virtualenv's own first
    exe = str(here) if here.is_file() else shutil.which("autoexp-sidecar")
    cli = [exe] if exe else [sys.executable, "-m", "sidecar"]
    sets = (list(LOCAL_SETS) if args.config == DEFAULT_CONFIG else []) + list(args.sets)
    work = Path(tempfile.mkdtemp(prefix="autoexp-bench-"))
    cases: list[Case] = []
    t_start = time.monotonic()
    try:
        floor = None
        if "floor" in wanted:
            floor = Case("floor (bare afternotok chain)")
            cases.append(floor)
            for i in range(args.reps):
                try:
                    t = floor_rep(work, i, args.partition, args.timeout_s, args.poll_s)
                except RuntimeError as exc:
                    floor.errors.append(str(exc))
                    log(f"floor rep {i + 1}: {exc}")
                    continue
                floor.latencies.append(t)
                log(f"floor rep {i + 1}/{args.reps}: {t:.2f} s")
        for key, label, extra in (("grace0", "chain, kill grace 0", [f"{args.grace_key}=0"]),
                                  ("grace_default", "chain, default kill grace", [])):
            if key in wanted:
                c = Case(label)
                cases.append(c)
                chain_case(c, key.replace("_", "-"), cli, args.config.resolve(), work, [*sets, *extra], args.reps,
                           args.timeout_s, args.poll_s, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"restart latency: error line appended (floor: job A fails) -> replacement job RUNNING; "
          f"{args.reps} reps; squeue polled every {args.poll_s:g} s; total {time.monotonic() - t_start:.0f} s")
    print(table(cases, floor))
    chain = [c for c in cases if c.phases]
    if chain:
        steps = ["marker event", "job ended (record)", "watchdog decided", "next job submitted",
                 "next job RUNNING"]
        print("\nwhere the time goes (median seconds after the error line; from events.jsonl)")
        rows = [("step", *[c.name for c in chain])]
        for st in steps:
            rows.append((st, *[f"{statistics.median(c.phases[st]):.2f}" if c.phases.get(st) else "-"
                               for c in chain]))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    for c in cases:
        for e in c.errors:
            print(f"error in {c.name}: {e}")
        if c.lost:
            print(f"{c.name}: {c.lost} injected line(s) were overwritten by the job's output before "
                  "the sidecar read them (output file not in append mode) and were injected again")
    if args.json:
        print(json.dumps({c.name: {"latencies_s": c.latencies, "marker_s": c.detect,
                                   "errors": c.errors, "lost_injections": c.lost} for c in cases}, indent=2))
    return 0 if all(c.latencies and not c.errors for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
