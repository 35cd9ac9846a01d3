#!/usr/bin/env python3
"""Restart time on a real Slurm cluster (by default the local one: scripts/local-slurm up), for
every restart path, on the idle cluster and on a busy one. Ends with `targets met` or
`targets missed: ...`.

Cases (each ``--reps`` times, in one run, so ratios and differences compare like with like):

  floor       Slurm's floor for the watchdog's shape: job A fails -> job B (afternotok:A) RUNNING.
  floor3      Slurm's floor for the fast path's target: A fails -> B (afternotok:A) RUNNING ->
              job C that B submits RUNNING. Both floors: from touching A's trigger file.
  watchdog    the chain with restart.fast_path=false: the sidecar cancels the job; the watchdog
              job starts, decides, submits the next attempt.
  fast        the default chain: the sidecar ends the training step; the dying job decides and
              submits the next attempt itself and cancels its watchdog.
  inplace     restart=megatron_inplace: the training restarts inside the same allocation.
  pretimeout  a 1-minute job with --signal=B:USR1@<margin>: the continuation is queued (afterany)
              when the signal arrives; the workload checkpoints and ends.

Chain cases inject an error line (NCCL / CUDA device-side assert, alternating, so the "same failure
without progress" rule never stops the run) with the kill grace 0 (``--grace-key``), and measure
from the line: the next attempt in the queue (its ``submitted`` event), its job RUNNING, its first
iteration line, and the GPU-time lost: nodes x GPUs x (time to the first new iteration + the
iterations redone since the checkpoint). For pretimeout the loss is the wall time from the last
iteration of the job to the first iteration of its continuation.

Busy mode (``--busy-wait-s W``, default 20; 0 skips it): before each fault the bench fills every
idle CPU of the partition with filler jobs that run W seconds, plus a few queued fillers that take
any CPU a failed job frees, all at a priority above ours (``sbatch --priority``: needs Slurm admin
rights, e.g. root on the local cluster), so any new job of ours, the watchdog included, waits about
W. Fillers are named ``autoexp-bench-filler-<pid>`` and cancelled after every measurement.

    python bench/bench_restart.py                       # 3 reps, idle and busy
    python bench/bench_restart.py --reps 5 --cases floor3,fast,inplace --busy-wait-s 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from sidecar.history import read_history  # noqa: E402  (the run dir's one history reader)
from sidecar.rundir import RunPaths  # noqa: E402  (and its one layout)
DEFAULT_CONFIG = REPO / "examples" / "local.yaml"
ITER_TIME_S = 0.2
LOCAL_SETS = ("backend.args.train_iters=100000", f"backend.args.iter_time_s={ITER_TIME_S}",
              "backend.args.save_interval=10")
LINES = ("[default0]:NCCL ERROR timeout", "CUDA device-side assert detected in kernel execution")
CMD_TIMEOUT_S = 30
ITERATION_RE = re.compile(rb"\biteration\s+(\d+)\s*/\s*\d+\s*\|")
LOADED_RE = re.compile(rb"\bloading\b[^\n]*?\bcheckpoint\b[^\n]*?\bat iteration\s+(\d+)")
CHAIN_CASES = {
    "watchdog": ("watchdog path (restart.fast_path=false)", ["restart.fast_path=false"]),
    "fast": ("fast path (default)", []),
    "inplace": ("in-allocation (restart=megatron_inplace)", ["restart=megatron_inplace"]),
}
ALL_CASES = ("floor", "floor3", *CHAIN_CASES, "pretimeout")
# targets (the issue's): fast path vs Slurm's floor on the idle cluster; on the busy one the
# in-allocation restart's resume, the fast path's time to the queue; the pretimeout loss vs margin
TARGET_FAST_VS_FLOOR3_S = 0.5
TARGET_INPLACE_RESUME_S = 5.0
TARGET_FAST_QUEUED_S = 1.0

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


def floor_rep(work: Path, rep: int, partition: str | None, timeout_s: float, poll_s: float,
              hops: int = 2) -> float:
    """A bare chain: A exits 1 when its trigger appears; B (afternotok:A) starts; with hops=3
    B submits C. Seconds from the trigger to the last job RUNNING. No sidecar, no watchdog."""
    trigger = work / f"floor{hops}-{rep}.go"
    c_file = work / f"floor{hops}-{rep}.c"
    part = ["-p", partition] if partition else []
    common = [*part, "--no-requeue", "-o", "/dev/null", "-e", "/dev/null", "--mem=50M", "-c", "1"]
    sub_c = " ".join(["sbatch", "--parsable", "-J", "bench-floor-C", *common, "--wrap", "'sleep 120'"])
    a = run_cmd(["sbatch", "--parsable", "-J", "bench-floor-A", *common,
                 "--wrap", f"while [ ! -e {trigger} ]; do sleep 0.02; done; exit 1"])
    if a.returncode != 0:
        raise RuntimeError(f"sbatch A: {a.stderr.strip()}")
    job_a = a.stdout.strip().split(";")[0]
    b_script = f"{sub_c} > {c_file}.tmp && mv {c_file}.tmp {c_file}" if hops == 3 else "sleep 120"
    b = run_cmd(["sbatch", "--parsable", "-J", "bench-floor-B", *common,
                 f"--dependency=afternotok:{job_a}", "--kill-on-invalid-dep=yes", "--wrap", b_script])
    if b.returncode != 0:
        run_cmd(["scancel", job_a])
        raise RuntimeError(f"sbatch B: {b.stderr.strip()}")
    job_b = b.stdout.strip().split(";")[0]
    job_c = None
    try:
        if not wait_for(lambda: squeue_state(job_a) == "RUNNING", timeout_s, 0.1):
            raise RuntimeError(f"job A {job_a} did not start within {timeout_s}s")
        time.sleep(0.5)  # let A's batch script reach its loop
        t0 = time.monotonic()
        trigger.touch()
        last = job_b
        if hops == 3:
            job_c = wait_for(lambda: read_job_file(c_file), timeout_s, poll_s)
            if not job_c:
                raise RuntimeError(f"job B {job_b} submitted no job C within {timeout_s}s")
            last = job_c
        if not wait_for(lambda: squeue_state(last) == "RUNNING", timeout_s, poll_s):
            raise RuntimeError(f"job {last} did not start within {timeout_s}s of A failing")
        return time.monotonic() - t0
    finally:
        run_cmd(["scancel", job_b, job_a, *([job_c] if job_c else [])])


# ============================================================================ the busy cluster


class Busy:
    """Fills the partition with higher-priority filler jobs that run ``wait_s`` seconds."""

    def __init__(self, wait_s: float, partition: str | None, log: Callable[[str], None]):
        self.wait_s, self.partition, self.log = wait_s, partition, log
        self.name = f"autoexp-bench-filler-{os.getpid()}"

    def idle_cpus(self) -> int:
        argv = ["sinfo", "-h", "-o", "%C", *(["-p", self.partition] if self.partition else [])]
        out = run_cmd(argv).stdout.split()
        return sum(int(x.split("/")[1]) for x in out if x.count("/") == 3)

    def _submit(self, n: int) -> None:
        # priority/basic counts down from 2^32 by submission order: this is above any job of ours
        part = ["-p", self.partition] if self.partition else []
        for _ in range(n):
            res = run_cmd(["sbatch", "--parsable", "-J", self.name, *part, "-c", "1", "--mem=10M",
                           "--priority=4294967000", "-o", "/dev/null", "-e", "/dev/null",
                           "--wrap", f"sleep {self.wait_s:g}"])
            if res.returncode != 0:
                raise RuntimeError(f"cannot submit a filler job: {res.stderr.strip()} "
                                   "(--priority needs Slurm admin rights; use --busy-wait-s 0)")

    def fill(self, timeout_s: float = 60) -> None:
        """Every idle CPU taken, plus queued fillers ahead of any job of ours."""
        self._submit(self.idle_cpus())
        self._submit(3)
        if not wait_for(lambda: self.idle_cpus() == 0, timeout_s, 0.2):
            raise RuntimeError(f"the partition still has idle CPUs {timeout_s:g}s after filling it")

    def clear(self) -> None:
        run_cmd(["scancel", "-n", self.name])
        wait_for(lambda: not run_cmd(["squeue", "-h", "-n", self.name, "-o", "%i"]).stdout.strip(), 30, 0.2)


# ============================================================================ the chain


@dataclass
class Rep:
    queued_s: float | None  # the next attempt's submitted event
    running_s: float | None  # its job RUNNING
    first_iter_s: float  # its first iteration line
    gpu_lost_s: float  # nodes x GPUs x (first_iter_s + iterations redone)


@dataclass
class Case:
    name: str
    mode: str = "idle"
    key: str = ""
    reps: list[Rep] = field(default_factory=list)
    floor_s: list[float] = field(default_factory=list)  # floors: trigger -> job RUNNING
    errors: list[str] = field(default_factory=list)

    def med(self, attr: str) -> float | None:
        xs = [getattr(r, attr) for r in self.reps if getattr(r, attr) is not None]
        return statistics.median(xs) if xs else None


class ChainRun:
    """One run of the chain, restarted by injected error lines."""

    def __init__(self, cli: Sequence[str], config: Path, root: Path, name: str, sets: Sequence[str],
                 reps: int, gpus: int):
        self.cli, self.config, self.root, self.name = list(cli), config, root, name
        self.sets = [*sets, f"restart.max_retries={reps + 5}", "restart.backoff_s=0"]
        self.dir: Path | None = None
        self.attempt = 1
        self.job: str | None = None
        self.gpus = gpus

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

    def event_time(self, kind: str, attempt: int) -> float | None:
        assert self.dir is not None
        for ev in read_history(RunPaths(self.dir)).events:
            if ev.kind.value == kind and ev.attempt == attempt:
                return ev.time
        return None

    def attempt_output(self, job: str, attempt: int) -> bytes:
        """What attempt ``attempt`` printed (a log may hold several attempts of one job)."""
        try:
            data = self.log(job).read_bytes()
        except OSError:
            return b""
        banner = f"autoexp-sidecar: attempt {attempt} of run".encode()
        return data.split(banner, 1)[1] if banner in data else b""

    def ready(self, timeout_s: float) -> None:
        job = self.job
        assert job is not None
        if not wait_for(lambda: squeue_state(job) == "RUNNING", timeout_s, 0.1):
            raise RuntimeError(f"training job {job} did not start within {timeout_s}s")
        if not wait_for(lambda: ITERATION_RE.search(self.attempt_output(job, self.attempt)), timeout_s, 0.1):
            raise RuntimeError(f"attempt {self.attempt} printed no iteration within {timeout_s}s")

    def rep(self, i: int, timeout_s: float, poll_s: float) -> Rep:
        """Inject into the running attempt and follow the restart to its first iteration."""
        job = self.job
        assert job is not None
        log = self.log(job)
        size = log.stat().st_size
        wait_for(lambda: log.stat().st_size != size, 5, 0.01)  # just after a line of the workload
        its = [int(m.group(1)) for m in ITERATION_RE.finditer(self.attempt_output(job, self.attempt))]
        at_fault = its[-1] if its else 0
        nxt = self.attempt + 1
        next_file = self.attempt_file(nxt, "train_job")
        t0, t0_wall = time.monotonic(), time.time()
        with open(log, "a") as fh:
            fh.write(LINES[i % len(LINES)] + "\n")
        new: str | None = None
        running: float | None = None
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            if new is None:
                new = read_job_file(next_file)
            if new is not None:
                if running is None and squeue_state(new) == "RUNNING":
                    running = time.monotonic() - t0
                out = self.attempt_output(new, nxt)
                if ITERATION_RE.search(out):
                    first = time.monotonic() - t0
                    loaded = LOADED_RE.search(out)
                    redo = max(0, at_fault - int(loaded.group(1))) if loaded else at_fault
                    queued = self.event_time("submitted", nxt)
                    self.attempt, self.job = nxt, new
                    return Rep(None if queued is None else queued - t0_wall,
                               running if running is not None else first, first,
                               self.gpus * (first + redo * ITER_TIME_S))
            time.sleep(poll_s)
        decision = self.attempt_file(self.attempt, "decision.json")
        why = decision.read_text() if decision.exists() else "no decision"
        raise RuntimeError(f"no first iteration of attempt {nxt} within {timeout_s}s of the error "
                           f"line (job {job}; {why.strip()[:300]})")

    def stop(self) -> None:
        if self.dir is None:
            return
        (self.dir / "STOP").write_text('{"reason": "bench done"}\n')
        for name in (f"{self.name}-watchdog", self.name):
            ids = run_cmd(["squeue", "-h", "-n", name, "-o", "%i"]).stdout.split()
            if ids:
                run_cmd(["scancel", *ids])


@contextlib.contextmanager
def measuring(case: Case, run: ChainRun, log: Callable[[str], None]) -> Iterator[None]:
    """Submit the run; an error ends the case (recorded); the run is stopped in any case."""
    try:
        run.submit()
        yield
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        case.errors.append(str(exc))
        log(f"{case.name} [{case.mode}]: {exc}")
    finally:
        run.stop()


def chain_case(case: Case, run: ChainRun, reps: int, busy: Busy | None, timeout_s: float,
               poll_s: float, log: Callable[[str], None]) -> None:
    with measuring(case, run, log):
        for i in range(reps):
            run.ready(timeout_s)
            try:
                if busy is not None:
                    busy.fill()
                r = run.rep(i, timeout_s + (busy.wait_s if busy else 0), poll_s)
            finally:
                if busy is not None:
                    busy.clear()
            case.reps.append(r)
            log(f"{case.name} [{case.mode}] rep {i + 1}/{reps}: queued {fmt(r.queued_s)} s, RUNNING "
                f"{fmt(r.running_s)} s, first iteration {r.first_iter_s:.2f} s, GPU-s lost {r.gpu_lost_s:.1f}")


def pretimeout_case(case: Case, run: ChainRun, margin_s: int, timeout_s: float, poll_s: float,
                    log: Callable[[str], None]) -> None:
    """One continuation: the loss from the job's last iteration line to the continuation's first
    (both seen by this process polling the logs), and how long before the job ended it queued."""
    with measuring(case, run, log):
        run.ready(timeout_s)
        job = run.job
        assert job is not None
        n_seen, t_last = 0, time.time()
        deadline = time.monotonic() + 150 + timeout_s  # the limit is enforced on a ~30 s tick
        while time.monotonic() < deadline:
            n = len(ITERATION_RE.findall(run.attempt_output(job, 1)))
            if n != n_seen:
                n_seen, t_last = n, time.time()
            nxt = read_job_file(run.attempt_file(2, "train_job"))
            if nxt and ITERATION_RE.search(run.attempt_output(nxt, 2)):
                t_first = time.time()
                break
            time.sleep(poll_s)
        else:
            raise RuntimeError("the continuation printed no iteration")
        sub, ended = run.event_time("submitted", 2), run.event_time("ended", 1)
        if sub is None or ended is None:
            raise RuntimeError("the history lacks the continuation's events")
        loss = t_first - t_last
        case.reps.append(Rep(ended - sub, None, loss, run.gpus * loss))
        log(f"{case.name} [{case.mode}]: queued {ended - sub:.2f} s before the job ended; "
            f"lost {loss:.2f} s (margin {margin_s} s)")


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"

# ============================================================================ report


def table(cases: Sequence[Case]) -> str:
    floor3 = next((c for c in cases if c.name.startswith("floor3")), None)
    f3 = statistics.median(floor3.floor_s) if floor3 and floor3.floor_s else None
    rows = [("case", "cluster", "n", "queued s", "RUNNING s", "first iteration s", "GPU-s lost",
             "RUNNING vs floor3")]
    for c in cases:
        if c.floor_s:
            med = statistics.median(c.floor_s)
            rows.append((c.name, c.mode, str(len(c.floor_s)), "-", f"{med:.2f}", "-", "-",
                         "-" if f3 is None or c is floor3 else f"{med - f3:+.2f} s"))
            continue
        run = c.med("running_s")
        rows.append((c.name, c.mode, str(len(c.reps)), fmt(c.med("queued_s")), fmt(run),
                     fmt(c.med("first_iter_s")), fmt(c.med("gpu_lost_s")),
                     "-" if f3 is None or run is None or c.mode != "idle" else f"{run - f3:+.2f} s"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def check_targets(cases: Sequence[Case], margin_s: float) -> list[str]:
    """The issue's targets that this run measured; each missed one as a sentence."""
    by = {(c.key, c.mode): c for c in cases}
    missed: list[str] = []
    floor3, fast = by.get(("floor3", "idle")), by.get(("fast", "idle"))
    if floor3 and fast and floor3.floor_s and fast.med("running_s") is not None:
        gap = fast.med("running_s") - statistics.median(floor3.floor_s)
        if gap > TARGET_FAST_VS_FLOOR3_S:
            missed.append(f"idle: fast path to RUNNING is {gap:+.2f} s from floor3 "
                          f"(target within {TARGET_FAST_VS_FLOOR3_S:g} s)")
    inplace = by.get(("inplace", "busy"))
    if inplace and inplace.med("first_iter_s") is not None and inplace.med("first_iter_s") >= TARGET_INPLACE_RESUME_S:
        missed.append(f"busy: in-allocation restart resumed in {inplace.med('first_iter_s'):.2f} s "
                      f"(target < {TARGET_INPLACE_RESUME_S:g} s)")
    fast_busy = by.get(("fast", "busy"))
    if fast_busy and fast_busy.med("queued_s") is not None and fast_busy.med("queued_s") > TARGET_FAST_QUEUED_S:
        missed.append(f"busy: fast path's replacement queued {fast_busy.med('queued_s'):.2f} s after "
                      f"the fault (target within {TARGET_FAST_QUEUED_S:g} s)")
    pre = by.get(("pretimeout", "idle"))
    if pre and pre.med("first_iter_s") is not None and pre.med("first_iter_s") > margin_s:
        missed.append(f"pretimeout lost {pre.med('first_iter_s'):.2f} s per continuation "
                      f"(target <= margin {margin_s:g} s)")
    for c in cases:
        if c.errors or not (c.reps or c.floor_s):
            missed.append(f"{c.name} [{c.mode}] not measured: {'; '.join(c.errors) or 'no data'}")
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--cases", default=",".join(ALL_CASES),
                   help=f"comma list of {', '.join(ALL_CASES)} (default: all)")
    p.add_argument("--busy-wait-s", type=float, default=20.0,
                   help="busy mode: how long the fillers hold the partition (default 20; 0: idle only)")
    p.add_argument("--margin-s", type=int, default=30, help="pretimeout: the signal's margin (default 30)")
    p.add_argument("--gpus", type=int, default=1,
                   help="nodes x GPUs of one training job, for the GPU-time lost (default 1)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override (repeatable)")
    p.add_argument("--grace-key", default="monitoring.kill_grace_s",
                   help="the config key of the monitoring kill grace, set to 0 (default monitoring.kill_grace_s)")
    p.add_argument("--partition", default="debug", help="partition of the floor and filler jobs (default debug)")
    p.add_argument("--timeout-s", type=float, default=120.0, help="per step (default 120)")
    p.add_argument("--poll-s", type=float, default=0.05, help="polling interval (default 0.05)")
    p.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    args = p.parse_args(argv)
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = set(wanted) - set(ALL_CASES)
    if bad:
        p.error(f"unknown case(s): {', '.join(sorted(bad))}")

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    here = Path(sys.executable).parent / "autoexp-sidecar"  # a virtualenv's own first
    exe = str(here) if here.is_file() else shutil.which("autoexp-sidecar")
    cli = [exe] if exe else [sys.executable, "-m", "sidecar"]
    sets = (list(LOCAL_SETS) if args.config == DEFAULT_CONFIG else []) + list(args.sets)
    config = args.config.resolve()
    work = Path(tempfile.mkdtemp(prefix="autoexp-bench-"))
    modes = ["idle"] + (["busy"] if args.busy_wait_s > 0 else [])
    cases: list[Case] = []
    t_start = time.monotonic()
    busy = Busy(args.busy_wait_s, args.partition, log)
    try:
        for key, label, hops in (("floor", "floor (A fails -> B RUNNING)", 2),
                                 ("floor3", "floor3 (A fails -> B -> C RUNNING)", 3)):
            if key not in wanted:
                continue
            c = Case(label, key=key)
            cases.append(c)
            for i in range(args.reps):
                try:
                    c.floor_s.append(floor_rep(work, i, args.partition, args.timeout_s, args.poll_s, hops))
                    log(f"{key} rep {i + 1}/{args.reps}: {c.floor_s[-1]:.2f} s")
                except RuntimeError as exc:
                    c.errors.append(str(exc))
                    log(f"{key} rep {i + 1}: {exc}")
        for mode in modes:
            for key, (label, extra) in CHAIN_CASES.items():
                if key not in wanted:
                    continue
                c = Case(label, mode, key=key)
                cases.append(c)
                run = ChainRun(cli, config, work, f"bench-{key}-{mode}-{os.getpid()}",
                               [*sets, f"{args.grace_key}=0", *extra], args.reps, args.gpus)
                chain_case(c, run, args.reps, busy if mode == "busy" else None, args.timeout_s,
                           args.poll_s, log)
        if "pretimeout" in wanted:
            c = Case(f"pretimeout (USR1@{args.margin_s}, 1-min job)", key="pretimeout")
            cases.append(c)
            run = ChainRun(cli, config, work, f"bench-pretimeout-{os.getpid()}",
                           [*sets, "slurm.time=00:01:00", f"slurm.signal_before_timeout_s={args.margin_s}"],
                           1, args.gpus)
            pretimeout_case(c, run, args.margin_s, args.timeout_s, args.poll_s, log)
    finally:
        busy.clear()
        shutil.rmtree(work, ignore_errors=True)
    print(f"restart time from the fault (an error line; floors: job A fails); {args.reps} reps; "
          f"busy: fillers hold the partition {args.busy_wait_s:g} s; polled every {args.poll_s:g} s; "
          f"total {time.monotonic() - t_start:.0f} s")
    print("queued: the next attempt's submission (pretimeout: how long before the job ended); "
          "first iteration: pretimeout: the loss, last iteration to the continuation's first")
    print(table(cases))
    if args.json:
        print(json.dumps({f"{c.name} [{c.mode}]": {"floor_s": c.floor_s, "reps": [r.__dict__ for r in c.reps],
                                                   "errors": c.errors} for c in cases}, indent=2))
    missed = check_targets(cases, args.margin_s)
    print("targets met" if not missed else "targets missed: " + "; ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
