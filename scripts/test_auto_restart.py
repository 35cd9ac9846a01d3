#!/usr/bin/env python3
"""End-to-end acceptance test of automatic restart on a real Slurm cluster.

The scenarios of the user's "Testing Auto-Restart System" document:

    scancel      cancel a running job by hand: a new job follows (repeated --iterations times)
    hang         inject a CUDA device-side assert into the log: error_type hang, restart
    nccl         inject an NCCL error into the log: restart, reason contains error_type=nccl
    oom          micro_batch_size=16 dies with CUDA OOM: NO restart, a permanent stop
    max_retries  cancel 4 times: attempts 1-3 restart, the 4th stops (budget exhausted)
    all          all of the above (and, with --workload torch, the real-fault ones below)

With ``--workload torch`` the job is real distributed training (examples/local_torch.yaml: a tiny
GPT, PyTorch DDP over gloo, one torchrun per node on 2 nodes) and the faults are real too:

    oom          micro_batch_size=16 really does not fit (host_oom), stop: the kernel's memory
                 cgroup kills it where Slurm enforces --mem, else an address-space limit does
    rank_killed  kill -9 of a rank on a node that is not the batch host: restart (error_type=killed)
    rank_stopped SIGSTOP of such a rank: called hung by the job's pace, ended, restarted
    rank_stopped_saving  SIGSTOP of a rank inside a checkpoint save: called hung when the save
                 outlasts its window (learned from earlier saves, floor 20 s here), restarted from
                 the last checkpoint on disk
    rank_stopped_torchtitan  rank_stopped with the workload logging like torchtitan (its step and
                 checkpoint lines, no Megatron line): the pace comes from torchtitan's step lines
    code_error   an exception in one rank (a token outside the vocabulary): permanent stop
    nan          a huge learning rate makes the loss NaN: permanent stop
    timeout      a 3-minute time limit: USR1 before it, the ranks save and exit, the run continues
                 without using the budget
    host_oom     one rank's memory grows past a small --mem: the memory cgroup kills it, stop
                 (host_oom from the oom-kill line or Slurm's record, not the survivor's errors);
                 skipped where Slurm does not enforce --mem
    node_fail    the slurmd of a node other than the batch host killed: NODE_FAIL, restarted with
                 exactly that node excluded (then scripts/local-slurm up restarts the slurmd)

    resume_correctness  a run broken twice ends with the loss curve of an uninterrupted one

The rank and node faults act on processes of this machine: they need the local cluster.

Every restart is also checked to have resumed from the checkpoint: before the failure the test
waits for a successful checkpoint save; the restarted job's log must show loading that
checkpoint, and its first ``iteration`` line must be the last saved iteration + 1; with the
torch workload the iterations it redoes must log exactly the losses the failed job logged.

By default it runs against the local cluster (``scripts/local-slurm up``) with
``examples/local.yaml`` and run directories in a temporary directory; ``--config`` and ``--set``
point it at any cluster. Exit code 0 when every scenario passed, 1 otherwise.

    python scripts/test_auto_restart.py --scenario scancel --iterations 2
    python scripts/test_auto_restart.py --scenario all
    python scripts/test_auto_restart.py --workload torch --scenario all
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

REPO = Path(__file__).resolve().parent.parent
try:
    import sidecar  # noqa: F401
except ImportError:  # run from a checkout with a Python that has not installed the package
    sys.path.insert(0, str(REPO))
from sidecar.errors import SlurmError  # noqa: E402
from sidecar.rundir import RunPaths  # noqa: E402
from sidecar.slurm.cli_client import CliSlurmClient  # noqa: E402
from sidecar.slurm.memory import MemoryEnforcement, read_memory_enforcement  # noqa: E402
from sidecar.slurm.parse import parse_squeue, split_scontrol_fields  # noqa: E402
from sidecar.slurm.runner import make_runner  # noqa: E402
from sidecar.slurm.types import ACTIVE_STATES, TERMINAL_STATES  # noqa: E402
from sidecar.workload.loss_curve import compare, loss_curve  # noqa: E402
DEFAULT_CONFIG = REPO / "examples" / "local.yaml"

# Overrides that make the CPU workload of examples/local.yaml quick: an iteration every 0.2 s,
# a checkpoint every 10 iterations (2 s), enough iterations that no attempt finishes by itself.
LOCAL_SETS: tuple[str, ...] = (
    "backend.args.train_iters=5000",
    "backend.args.iter_time_s=0.2",
    "backend.args.save_interval=10",
)
OOM_SET = "backend.args.micro_batch_size=16"

# The torch workload (examples/local_torch.yaml) with the same pace: 0.25 s per iteration, a
# checkpoint every 10. Each step holds 150 MB per sample: micro batch 4 fits in the local
# preset's --mem (2G per node), 16 does not.
TORCH_SETS: tuple[str, ...] = (
    "backend.args.train_iters=5000",
    "backend.args.iter_time_s=0.25",
    "backend.args.save_interval=10",
    "backend.args.activation_mb_per_sample=150",
)
# Where Slurm does not enforce --mem (no task/cgroup) an address-space limit stands in for it:
# srun passes the batch shell's limits to every task; micro batch 4 fits in it and 16 does not
# (torch's allocator fails: DefaultCPUAllocator, not a kernel OOM kill).
ADDRESS_SPACE_SET = 'slurm.env_setup=["ulimit -v 2200000"]'
# host_oom: one rank's memory (4 samples x 400 MB + torch) grows past a small --mem (1500M per
# node); the other rank survives it and reports the broken collective (a follow-on). Only where
# the kernel's memory cgroup enforces --mem.
HOST_OOM_SETS: tuple[str, ...] = ("slurm.mem=1500M", "backend.args.activation_mb_per_sample=400",
                                  "backend.args.activation_rank=1")
OOM_KILL_RE = re.compile(rb"^.*Detected \d+ oom[-_]kill event.*$", re.M)
TORCH_CONFIG = REPO / "examples" / "local_torch.yaml"

HANG_LINE = "CUDA device-side assert detected in kernel execution"
NCCL_LINE = "[default0]:NCCL ERROR timeout"

REASON_SCANCEL = "Cancelled without a recorded failure (error_type=scancel)"
REASON_HANG = "Transient failure detected (error_type=hang)"
REASON_OOM = "Permanent failure detected (excluded error_type: oom)"
REASON_BUDGET = "retry budget exhausted (attempt 4/3)"

ITERATION_RE = re.compile(rb"\biteration\s+(\d+)\s*/\s*\d+\s*\|")
SAVED_RE = re.compile(rb"successfully saved checkpoint from iteration\s+(\d+)")
SAVING_RE = re.compile(rb"saving checkpoint at iteration\s+(\d+)")
# Megatron: "loading checkpoint from DIR at iteration N", "loading distributed checkpoint from
# DIR at iteration N", "successfully loaded checkpoint from DIR [ t 0/ 1, p 0/ 1 ] at iteration N"
# the workload's "> rank 1 of 2 (local rank 0) on node n2, pid 4242" line, behind srun --label
PLACEMENT_RE = re.compile(rb"^(\d+): \[default\d+\]:> rank (\d+) of (\d+) \(local rank \d+\) on node (\S+), pid (\d+)", re.M)
LOADING_RE = re.compile(rb"\b(?:loading|loaded)\b[^\n]*?\bcheckpoint\b[^\n]*?\bat iteration\s+(\d+)")

SLURM_CMD_TIMEOUT_S = 30
POLL_S = 0.25


# ============================================================================ output


class Reporter:
    """The user's output style: ``[HH:MM:SS] <symbol> message``."""

    INFO, OK, WARN, FAIL = "ℹ", "✓", "⚠", "✗"

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], datetime] = datetime.now):
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock
        self.lines: list[str] = []

    def _emit(self, symbol: str, message: str) -> None:
        line = f"[{self.clock():%H:%M:%S}] {symbol} {message}"
        self.lines.append(line)
        print(line, file=self.stream, flush=True)

    def info(self, message: str) -> None:
        self._emit(self.INFO, message)

    def ok(self, message: str) -> None:
        self._emit(self.OK, message)

    def warn(self, message: str) -> None:
        self._emit(self.WARN, message)

    def fail(self, message: str) -> None:
        self._emit(self.FAIL, message)


class ScenarioFailed(Exception):
    """A check failed; the message has already been reported."""


class ScenarioSkipped(Exception):
    """The cluster cannot produce this fault (e.g. memory is not enforced); says why."""


# ============================================================================ slurm access


def run_cmd(argv: Sequence[str], timeout_s: float = SLURM_CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run a command (argv list, never a shell), output captured, never raises on exit code."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(list(argv), 124, exc.stdout or "", f"timed out after {timeout_s}s")


# The project's own Slurm access layer (scontrol, then sacct; one parser for each), with short
# retries: a poll loop must not sit in a 2-minute retry window while its own timeout runs out.
_CLIENT = None


def client():
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = CliSlurmClient(runner=make_runner(timeout_s=SLURM_CMD_TIMEOUT_S,
                                                    retry_window_s=10))
    return _CLIENT


def job_state(job_id: str) -> str:
    """Slurm's state of a job (RUNNING, PENDING, CANCELLED, ...), or UNKNOWN."""
    try:
        return client().job_info(str(job_id)).state.value
    except SlurmError:
        return "UNKNOWN"


def job_field(job_id: str, key: str) -> str | None:
    """One ``Key=Value`` field of ``scontrol show job -o`` (e.g. Dependency, ExcNodeList)."""
    try:
        out = client().query_scontrol_show_job(str(job_id))
    except SlurmError:
        return None
    return split_scontrol_fields(out.strip().splitlines()[0]).get(key) if out.strip() else None


def memory_enforcement() -> MemoryEnforcement:
    """Whether this cluster's Slurm kills a job over its --mem (sidecar.slurm.memory decides)."""
    return read_memory_enforcement(make_runner(timeout_s=SLURM_CMD_TIMEOUT_S, retries=0))


def step_states(job_id: str) -> dict[str, str]:
    """Accounting's state of each step of a job (``266.0`` -> ``OUT_OF_MEMORY``)."""
    res = run_cmd(["sacct", "--parsable2", "--noheader", "-j", str(job_id), "--format=JobIDRaw,State"])
    rows = (line.split("|") for line in res.stdout.splitlines())
    return {r[0]: r[1].split()[0] for r in rows if len(r) == 2 and "." in r[0] and r[1]}


def cancel_job(job_id: str) -> subprocess.CompletedProcess[str]:
    return run_cmd(["scancel", str(job_id)])


def jobs_named(name: str) -> list[tuple[str, str]]:
    """(job id, state) of every job with this exact name that Slurm knows (squeue -t all, then
    sacct: a job that ended moments ago may not be in sacct yet)."""
    try:
        return [(j.job_id, j.state.value) for j in client().find_jobs(name=name)]
    except SlurmError:
        return []


def active_jobs(ids: Sequence[str]) -> list[str]:
    """Those of ``ids`` that squeue still shows as active (pending, running, completing...)."""
    if not ids:
        return []
    try:
        out = client().query_squeue(job_ids=list(ids))
    except SlurmError:  # e.g. all ids purged: "Invalid job id specified"
        return []
    return [j.job_id for j in parse_squeue(out) if j.state.is_active]


ACTIVE = frozenset(st.value for st in ACTIVE_STATES)
ENDED = frozenset(st.value for st in TERMINAL_STATES)


# ============================================================================ waiting


def wait_for(predicate: Callable[[], Any], timeout_s: float, interval_s: float = POLL_S) -> Any:
    """Poll ``predicate()`` until it is truthy (return its value) or ``timeout_s`` passes (None)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return b""


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_job_file(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text if text and (text.isdigit() or "_" in text) else None


def saved_iterations(log: bytes) -> list[int]:
    return [int(m.group(1)) for m in SAVED_RE.finditer(log)]


def started_saves(log: bytes) -> list[int]:
    return [int(m.group(1)) for m in SAVING_RE.finditer(log)]


def first_iteration(log: bytes) -> int | None:
    m = ITERATION_RE.search(log)
    return int(m.group(1)) if m else None


def loaded_iteration(log: bytes) -> int | None:
    m = LOADING_RE.search(log)
    return int(m.group(1)) if m else None


# ============================================================================ the harness


def sidecar_cli() -> tuple[str, ...]:
    """The ``autoexp-sidecar`` of this Python (a virtualenv's own first), else the one on PATH."""
    here = Path(sys.executable).parent / "autoexp-sidecar"
    if here.is_file() and os.access(here, os.X_OK):
        return (str(here),)
    exe = shutil.which("autoexp-sidecar")
    return (exe,) if exe else (sys.executable, "-m", "sidecar")


@dataclass
class Run:
    """One submitted run and what the test knows about it."""

    name: str
    dir: Path
    attempt: int
    job: str

    @property
    def paths(self) -> RunPaths:
        """The run directory's layout (sidecar.rundir is its one source)."""
        return RunPaths(self.dir)

    def attempt_dir(self, n: int) -> Path:
        return self.paths.attempt_dir(n)

    def train_job(self, n: int) -> str | None:
        return read_job_file(self.paths.train_job_file(n))

    def watchdog_job(self, n: int) -> str | None:
        return read_job_file(self.paths.watchdog_job_file(n))

    def marker(self, n: int) -> dict | None:
        return read_json(self.paths.marker(n))

    def decision(self, n: int) -> dict | None:
        return read_json(self.paths.decision(n))

    def log(self, job_id: str) -> Path:
        return self.paths.train_log(job_id)

    def job_ids(self) -> tuple[list[str], list[str]]:
        """(watchdog job ids, training job ids) of every attempt, from the run directory."""
        nums = self.paths.attempt_numbers()
        wds = [j for n in nums if (j := self.watchdog_job(n))]
        trains = [j for n in nums if (j := self.train_job(n))]
        if self.job not in trains:
            trains.append(self.job)
        return wds, trains


@dataclass
class Harness:
    """Everything a scenario needs: where and how to submit, the timeouts, the output."""

    reporter: Reporter
    config: Path = DEFAULT_CONFIG
    sets: tuple[str, ...] = LOCAL_SETS
    oom_set: str = OOM_SET
    oom_error_type: str = "oom"
    workload: str = "sim"
    run_root: Path | None = None
    restart_timeout_s: float = 120.0
    start_timeout_s: float = 120.0
    checkpoint_timeout_s: float = 120.0
    no_restart_wait_s: float = 10.0
    iterations: int = 2
    keep: bool = False
    cli: tuple[str, ...] = ()
    runs: list[Run] = field(default_factory=list)
    _own_root: bool = False
    _memory: MemoryEnforcement | None = None

    def __post_init__(self) -> None:
        if self.run_root is None:
            self.run_root = Path(tempfile.mkdtemp(prefix="autoexp-restart-test-"))
            self._own_root = True
        if not self.cli:
            self.cli = sidecar_cli()

    def memory(self) -> MemoryEnforcement:
        """Whether the cluster kills a job over its --mem (asked once)."""
        if self._memory is None:
            self._memory = memory_enforcement()
        return self._memory

    # -------------------------------------------------------------- steps (each reports)

    def submit(self, scenario: str, extra: Sequence[str] = ()) -> Run:
        name = f"{scenario}-{datetime.now():%H%M%S}-{os.getpid()}"
        argv = [*self.cli, "submit", str(self.config), f"run.root={self.run_root}",
                f"run.name={name}", *self.sets, *extra, "--json"]
        self.reporter.info("Running: " + " ".join(shlex.quote(a) for a in argv))
        res = run_cmd(argv, timeout_s=120)
        if res.returncode != 0:
            self.reporter.fail(f"Submission failed (exit {res.returncode}): "
                               f"{(res.stderr or res.stdout).strip()[-2000:]}")
            raise ScenarioFailed("submit")
        try:
            out = json.loads(res.stdout.strip().splitlines()[-1])
            run = Run(name, Path(out["run_dir"]), int(out.get("attempt", 1)), str(out["train_job"]))
        except (ValueError, KeyError, IndexError) as exc:
            self.reporter.fail(f"Could not read the submit output ({exc}): {res.stdout.strip()[-500:]}")
            raise ScenarioFailed("submit") from exc
        self.runs.append(run)
        self.reporter.ok(f"Submitted job {run.job}")
        self.reporter.info(f"Run directory: {run.dir}")
        return run

    def wait_state(self, job: str, want: str = "RUNNING", timeout_s: float | None = None) -> None:
        timeout_s = self.start_timeout_s if timeout_s is None else timeout_s
        self.reporter.info(f"Waiting for job {job} to reach state {want}...")
        seen: list[str] = []

        def reached() -> bool:
            st = job_state(job)
            seen.append(st)
            if st == want:
                return True
            if st in ENDED:
                raise _Ended(st)
            return False

        try:
            ok = wait_for(reached, timeout_s)
        except _Ended as exc:
            self.reporter.fail(f"Job {job} ended ({exc.state}) before reaching state {want}")
            raise ScenarioFailed("wait_state") from None
        if not ok:
            self.reporter.warn(f"Job {job} did not reach state {want} within {timeout_s:g}s "
                               f"(last state {seen[-1] if seen else '?'})")
            self.reporter.fail(f"Job {job} is not {want}!")
            raise ScenarioFailed("wait_state")
        self.reporter.ok(f"Job {job} reached state {want}")

    def wait_checkpoint(self, run: Run, job: str) -> int:
        """Wait until the job's log shows a successful checkpoint save (after any restart load)."""
        log = run.log(job)
        self.reporter.info(f"Waiting for a checkpoint save in {log.name}...")
        it = wait_for(lambda: (saved_iterations(read_bytes(log)) or [None])[-1],
                      self.checkpoint_timeout_s)
        if it is None:
            if not log.exists():
                self.reporter.fail(f"Could not find log file {log}")
            else:
                self.reporter.fail(f"No checkpoint saved within {self.checkpoint_timeout_s:g}s")
            raise ScenarioFailed("wait_checkpoint")
        self.reporter.ok(f"Checkpoint saved at iteration {it}")
        return int(it)

    def cancel(self, job: str) -> None:
        self.reporter.info(f"Cancelling job {job}...")
        res = cancel_job(job)
        if res.returncode != 0:
            self.reporter.fail(f"scancel {job} failed: {res.stderr.strip()}")
            raise ScenarioFailed("cancel")
        self.reporter.ok(f"Cancelled job {job}")

    def inject(self, run: Run, job: str, line: str) -> tuple[Path, str]:
        log = run.log(job)
        if not log.exists():
            self.reporter.fail(f"Could not find log file {log}")
            raise ScenarioFailed("inject")
        self.reporter.info(f"Injecting into {log.name}: {line}")
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        self.reporter.ok("Injected error line")
        return log, line

    def wait_marker(self, run: Run, attempt: int, error_type: str,
                    injected: tuple[Path, str] | None = None) -> dict:
        self.reporter.info(f"Waiting for the monitor to detect the failure (attempt {attempt})...")
        lost: list[bool] = []

        def found() -> dict | None:
            marker = run.marker(attempt)
            # a first marker may name a symptom that the cause, printed later, supersedes:
            # take it as final once it names the expected type or the watchdog has decided
            if marker is not None and marker.get("error_type") != error_type and run.decision(attempt) is None:
                return None
            if marker is None and injected is not None:
                log, line = injected
                if line.encode() not in read_bytes(log):
                    time.sleep(1.0)  # the monitor may have read it just before it went
                    marker = run.marker(attempt)
                    if marker is None:
                        lost.append(True)  # overwritten by the job's own output
                        raise _Ended("lost")
            return marker

        try:
            marker = wait_for(found, self.restart_timeout_s)
        except _Ended:
            marker = None
        if lost:
            self.reporter.warn("The injected line is no longer in the log: the job's next write "
                               "overwrote it (its output file is not opened in append mode; "
                               "sbatch --open-mode=append)")
            self.reporter.fail("Monitor did not detect the failure!")
            raise ScenarioFailed("marker")
        if marker is None:
            self.reporter.warn(f"No marker written within {self.restart_timeout_s:g}s")
            self.reporter.fail("Monitor did not detect the failure!")
            raise ScenarioFailed("marker")
        got = marker.get("error_type")
        if got != error_type:
            self.reporter.fail(f"Classified as error_type: {got} (expected {error_type}); "
                               f"line: {marker.get('line')!r}")
            raise ScenarioFailed("marker")
        self.reporter.ok(f"Monitor detected the failure: error_type: {got} "
                         f"(signal {marker.get('signal', marker.get('name', '?'))})")
        return marker

    def wait_job_ended(self, job: str, timeout_s: float | None = None) -> str:
        timeout_s = self.restart_timeout_s if timeout_s is None else timeout_s
        self.reporter.info(f"Waiting for job {job} to end...")
        st = wait_for(lambda: (lambda s: s if s in ENDED else None)(job_state(job)), timeout_s)
        if st is None:
            self.reporter.fail(f"Job {job} still {job_state(job)} after {timeout_s:g}s")
            raise ScenarioFailed("ended")
        self.reporter.ok(f"Job {job} ended: {st}")
        return st

    def expect_restart(self, run: Run, attempt: int, job: str, reason: str | None = None,
                       reason_contains: str | None = None) -> str:
        """The watchdog restarted ``attempt``: attempt+1 has a new training job. Returns its id."""
        self.reporter.info(f"Checking for restart of job {job}...")
        stopped: list[dict] = []

        def restarted() -> str | None:
            new = run.train_job(attempt + 1)
            if new is None:
                d = run.decision(attempt)
                if d and d.get("action") in ("stop", "finished"):
                    stopped.append(d)  # decided: no restart will come, no need to wait on
                    raise _Ended(str(d.get("action")))
            return new

        try:
            new = wait_for(restarted, self.restart_timeout_s)
        except _Ended:
            new = None
        if new is None:
            if stopped:
                d = stopped[0]
                self.reporter.warn(f"No restart: the watchdog decided {d.get('action')} - {d.get('reason')}")
            else:
                self.reporter.warn(f"No restart detected within {self.restart_timeout_s:g}s")
            self.reporter.fail("No restart detected!")
            raise ScenarioFailed("restart")
        self.reporter.ok(f"Found restarted job: {new}")
        d = wait_for(lambda: run.decision(attempt), 10) or {}
        got = str(d.get("reason", ""))
        if reason is not None and got != reason:
            self.reporter.fail(f"Restart reason: {got!r} (expected {reason!r})")
            raise ScenarioFailed("reason")
        if reason_contains is not None and reason_contains not in got:
            self.reporter.fail(f"Restart reason: {got!r} (expected it to contain {reason_contains!r})")
            raise ScenarioFailed("reason")
        self.reporter.ok(f"Restart reason: {got}")
        return new

    def verify_resume(self, run: Run, old_job: str, new_job: str, attempt: int | None = None) -> None:
        """The new attempt loaded the last checkpoint the old one (``attempt``, default the run's
        first) saved and went on from there. An attempt restarted inside the allocation
        (restart.in_allocation) shares the job and its log: the two are told apart by the attempt
        banner the training script prints."""
        old_attempt = run.attempt if attempt is None else attempt
        banner = f"autoexp-sidecar: attempt {old_attempt + 1} of run".encode()

        def old_part() -> bytes:
            data = read_bytes(run.log(old_job))
            return data.split(banner, 1)[0] if old_job == new_job else data

        def new_part() -> bytes:
            data = read_bytes(run.log(new_job))
            if old_job != new_job:
                return data
            return data.split(banner, 1)[1] if banner in data else b""

        old_saved = saved_iterations(old_part())
        if not old_saved:
            self.reporter.fail(f"Job {old_job} saved no checkpoint; cannot check the resume")
            raise ScenarioFailed("resume")
        last = old_saved[-1]
        self.wait_state(new_job, "RUNNING")
        where = "in the same allocation" if old_job == new_job else ""
        self.reporter.info(f"Checking that job {new_job} resumed from the checkpoint of iteration {last}"
                           f"{' ' + where if where else ''}...")
        first = wait_for(lambda: first_iteration(new_part()), self.checkpoint_timeout_s)
        if first is None:
            self.reporter.fail(f"Job {new_job} printed no iteration within {self.checkpoint_timeout_s:g}s")
            raise ScenarioFailed("resume")
        loaded = loaded_iteration(new_part())
        # A save the old job started after its last logged success may have been published (the
        # tracker is written only after the whole save) while the success line was lost with the
        # job (NODE_FAIL loses a node's output; seen in CI: saving 110 logged, saved 110 not). The
        # new job loads before it saves anything, so such a load is the old job's checkpoint.
        if loaded is not None and loaded > last and loaded in started_saves(old_part()):
            self.reporter.info(f"Job {old_job} logged the start of the save at iteration {loaded}, "
                               "not its end; the checkpoint was published")
            last = loaded
        if loaded != last:
            self.reporter.fail(f"Job {new_job} loaded checkpoint at iteration {loaded} "
                               f"(the last one saved by job {old_job} was {last})")
            raise ScenarioFailed("resume")
        if first != last + 1:
            self.reporter.fail(f"Job {new_job} started at iteration {first}, expected {last + 1} "
                               f"(last checkpoint {last})")
            raise ScenarioFailed("resume")
        self.reporter.ok(f"Resumed from checkpoint: loaded iteration {loaded}, first iteration {first}")
        self.verify_same_losses(old_part, new_part, new_job, last)

    def verify_same_losses(self, old_part: Callable[[], bytes], new_part: Callable[[], bytes],
                           new_job: str, last_ckpt: int) -> None:
        """The iterations the new attempt redoes (after the checkpoint, up to where the old one
        got) log exactly the losses the old one logged: same model state, same data. A restart
        from scratch, from another checkpoint, or with skipped data logs different ones."""
        old = {i: v for i, v in loss_curve([old_part()]).items() if i > last_ckpt}
        if not old:
            return  # failed right after its checkpoint: nothing redone to compare
        until = max(old)
        new: dict[int, float] = {}

        def caught_up() -> bool:
            new.update(loss_curve([new_part()]))
            return bool(new) and max(new) >= until

        if not wait_for(caught_up, self.checkpoint_timeout_s):
            self.reporter.fail(f"Job {new_job} did not get to iteration {until} within "
                               f"{self.checkpoint_timeout_s:g}s to compare losses")
            raise ScenarioFailed("resume")
        diff = compare(new, old)
        if diff.missing or diff.max_abs_diff > 1e-6:
            self.reporter.fail(f"Redone iterations {last_ckpt + 1}-{until} log other losses: {diff.summary()}")
            raise ScenarioFailed("resume")
        self.reporter.ok(f"Redone iterations {last_ckpt + 1}-{until} log the same losses: {diff.summary()}")

    def rank_off_batch_host(self, run: Run, job: str) -> tuple[int, str, int]:
        """(rank, node, pid) of a rank that does not run on the job's batch host (the workload
        prints where each rank runs; rank numbers are the rendezvous' join order, not nodes)."""
        batch = job_field(job, "BatchHost") or ""
        log = run.log(job)

        def placed() -> list[tuple[int, str, int]] | None:
            found = [(int(m.group(2)), m.group(4).decode(), int(m.group(5)))
                     for m in PLACEMENT_RE.finditer(read_bytes(log))]
            world = {int(m.group(3)) for m in PLACEMENT_RE.finditer(read_bytes(log))}
            return found if world and len(found) >= max(world) else None

        ranks = wait_for(placed, self.checkpoint_timeout_s) or []
        off = [r for r in ranks if r[1] != batch]
        if not off:
            self.reporter.fail(f"No rank of job {job} off its batch host {batch!r} (placement: {ranks})")
            raise ScenarioFailed("placement")
        self.reporter.info(f"Rank placement: {', '.join(f'rank {r} on {n}' for r, n, _ in sorted(ranks))}; "
                           f"batch host {batch}")
        return off[0]

    def signal_rank(self, run: Run, job: str, sig: signal.Signals) -> tuple[int, str, int]:
        rank, node, pid = self.rank_off_batch_host(run, job)
        self.reporter.info(f"Sending {sig.name} to rank {rank} (pid {pid}) on node {node}")
        os.kill(pid, sig)  # the local cluster's nodes are this machine
        self.reporter.ok(f"{sig.name} sent to rank {rank} on {node}")
        return rank, node, pid

    def expect_no_restart(self, run: Run, attempt: int, reason: str) -> None:
        """``attempt`` was decided as a stop with ``reason``, and nothing followed it."""
        self.reporter.info(f"Checking that attempt {attempt} is NOT restarted...")
        d = wait_for(lambda: run.decision(attempt), self.restart_timeout_s)
        if d is None:
            self.reporter.warn(f"No decision recorded within {self.restart_timeout_s:g}s")
            self.reporter.fail("The watchdog did not decide!")
            raise ScenarioFailed("decision")
        # A restart would show within the time the watchdog takes to submit; wait a bounded time.
        new = wait_for(lambda: run.train_job(attempt + 1), self.no_restart_wait_s)
        if new is not None or d.get("action") == "restart":
            self.reporter.fail(f"Job was restarted (job {new}): {d.get('reason')}")
            raise ScenarioFailed("restarted")
        active = [j for j, st in jobs_named(run.name) if st in ACTIVE]
        if active:
            self.reporter.fail(f"Training job(s) of the run still queued or running: {', '.join(active)}")
            raise ScenarioFailed("restarted")
        self.reporter.ok(f"No restart after {self.no_restart_wait_s:g}s")
        got = str(d.get("reason", ""))
        if d.get("action") != "stop" or got != reason:
            self.reporter.fail(f"Stop reason: {got!r} (action {d.get('action')}; expected stop: {reason!r})")
            raise ScenarioFailed("reason")
        self.reporter.ok(f"Job stopped permanently: {got}")

    # -------------------------------------------------------------- cleanup

    def end_run(self, run: Run) -> None:
        """Stop a run's jobs: STOP request first (so no watchdog restarts), then the watchdogs,
        then the training jobs."""
        stop = run.dir / "STOP"
        try:
            if run.dir.exists() and not stop.exists():
                stop.write_text(json.dumps({"time": time.time(), "reason": "test cleanup"}) + "\n")
        except OSError:
            pass
        watchdogs, trains = run.job_ids()
        for ids in (watchdogs, trains):
            active = active_jobs(ids)
            if active:
                run_cmd(["scancel", *active])

    def close(self) -> None:
        for run in self.runs:
            self.end_run(run)
        if self._own_root and self.run_root is not None:
            if self.keep:
                self.reporter.info(f"Run directories kept in {self.run_root}")
            else:
                # Give cancelled jobs' epilogs a moment before their run dirs go away.
                ids = [j for r in self.runs for group in r.job_ids() for j in group]
                wait_for(lambda: not active_jobs(ids), 15, 0.5)
                shutil.rmtree(self.run_root, ignore_errors=True)


class _Ended(Exception):
    def __init__(self, state: str):
        super().__init__(state)
        self.state = state


# ============================================================================ scenarios


def _cancel_and_restart(h: Harness, run: Run, attempt: int, job: str) -> str:
    """One scancel cycle: running -> checkpoint -> scancel -> restart -> resumed. New job id."""
    h.wait_state(job, "RUNNING")
    h.wait_checkpoint(run, job)
    h.cancel(job)
    new = h.expect_restart(run, attempt, job, reason=REASON_SCANCEL)
    h.verify_resume(run, job, new, attempt)
    return new


def scenario_scancel(h: Harness) -> bool:
    """Cancel a running job by hand, ``h.iterations`` times: each time a new job follows."""
    run = h.submit("scancel")
    job, attempt = run.job, run.attempt
    for i in range(1, h.iterations + 1):
        h.reporter.info(f"Iteration {i}/{h.iterations}")
        job = _cancel_and_restart(h, run, attempt, job)
        attempt += 1
    h.reporter.ok("Test passed: scancel restart works!")
    return True


def _inject_scenario(h: Harness, scenario: str, line: str, error_type: str,
                     reason: str | None, reason_contains: str | None) -> bool:
    run = h.submit(scenario)
    h.wait_state(run.job, "RUNNING")
    h.wait_checkpoint(run, run.job)
    injected = h.inject(run, run.job, line)
    h.wait_marker(run, run.attempt, error_type, injected)
    new = h.expect_restart(run, run.attempt, run.job, reason=reason, reason_contains=reason_contains)
    h.verify_resume(run, run.job, new, run.attempt)
    return True


def scenario_hang(h: Harness) -> bool:
    """A CUDA device-side assert in the log: classified as hang, restarted."""
    _inject_scenario(h, "hang", HANG_LINE, "hang", reason=REASON_HANG, reason_contains=None)
    h.reporter.ok("Test passed: hang restart works!")
    return True


def scenario_nccl(h: Harness) -> bool:
    """An NCCL error in the log: restarted, the reason names error_type=nccl."""
    _inject_scenario(h, "nccl", NCCL_LINE, "nccl", reason=None, reason_contains="error_type=nccl")
    h.reporter.ok("Test passed: nccl restart works!")
    return True


def oom_fault(workload: str, memory: MemoryEnforcement | None) -> tuple[tuple[str, ...], str]:
    """What makes micro batch 16 run out of memory for real, and how to say it: the kernel's
    memory cgroup where Slurm enforces --mem, an address-space limit where nothing does (the sim
    workload only prints a CUDA OOM)."""
    if workload != "torch" or memory is None:
        return (), ""
    if memory.enforced:
        return (), f"Out of memory for real: the job's memory cgroup (Slurm enforces --mem; {memory.reason})"
    return (ADDRESS_SPACE_SET,), (f"Out of memory for real: an address-space limit ({ADDRESS_SPACE_SET}); "
                                  f"memory is not enforced here ({memory.reason})")


def scenario_oom(h: Harness) -> bool:
    """micro_batch_size=16 does not fit: no restart, a permanent stop. The sim workload prints a
    CUDA OOM; the torch one really runs out: the kernel's memory cgroup kills it where Slurm
    enforces --mem, an address-space limit stands in where nothing does."""
    cgroup = h.workload == "torch" and h.memory().enforced
    extra, how = oom_fault(h.workload, h.memory() if h.workload == "torch" else None)
    if how:
        h.reporter.info(how)
    run = h.submit("oom", [h.oom_set, *extra])
    h.wait_job_ended(run.job, timeout_s=h.checkpoint_timeout_s)
    marker = run.marker(run.attempt)
    if marker is not None and marker.get("error_type") == h.oom_error_type:
        h.reporter.ok(f"Monitor detected the failure: error_type: {h.oom_error_type}: {marker.get('line', '')!r}")
    elif marker is not None and not cgroup:
        h.reporter.fail(f"Classified as error_type: {marker.get('error_type')} (expected {h.oom_error_type})")
        raise ScenarioFailed("marker")
    elif marker is not None:  # an OOM kill shows first as a killed rank; Slurm's record says why
        h.reporter.info(f"Monitor saw {marker.get('error_type')} first: {marker.get('line', '')[:120]!r}")
    else:
        h.reporter.info("No marker (the job ended before the monitor wrote one); the watchdog "
                        "classifies the log")
    h.expect_no_restart(run, run.attempt, f"Permanent failure detected (excluded error_type: {h.oom_error_type})")
    if cgroup:
        check_oom_kill_record(h, run)
    h.reporter.ok("Test passed: OOM is not restarted!")
    return True


FOLLOW_ON = re.compile(r"gloo|TCPStore|Connection (?:closed|reset)|Broken pipe|SignalException|ChildFailedError|exitcode\s*:\s*-9")


def check_oom_kill_record(h: Harness, run: Run) -> None:
    """An OOM kill by the memory cgroup, on record: slurmstepd's oom-kill line in the log (and
    the step OUT_OF_MEMORY in accounting when the killed task decided the step's end; a
    survivor's exit code 1 makes it FAILED), and the decision's cause one of these, never a
    survivor's follow-on error (gloo, TCPStore, a launcher's report of the dead rank)."""
    line = wait_for(lambda: (OOM_KILL_RE.search(read_bytes(run.log(run.job))) or [None])[0], 30)
    if line is None:
        h.reporter.fail(f"No oom-kill line from slurmstepd in {run.log(run.job).name}")
        raise ScenarioFailed("oom_kill")
    h.reporter.ok(f"The kernel killed it: {line.decode(errors='replace').strip()}")
    steps = step_states(run.job)
    h.reporter.info(f"Slurm's record: job {run.job} {job_state(run.job)}, steps "
                    + ", ".join(f"{k} {v}" for k, v in sorted(steps.items())))
    d = run.decision(run.attempt) or {}
    cause = str(d.get("line") or "")
    on_record = d.get("source") == "slurm" or "oom" in cause.lower()
    if not on_record or FOLLOW_ON.search(cause):
        h.reporter.fail(f"The stop names a follow-on line, not the OOM kill: {cause!r} (source {d.get('source')})")
        raise ScenarioFailed("reason")
    h.reporter.ok(f"The stop's cause ({d.get('source')}, decided by {d.get('decided_by', '?')}): {cause[:160]}")


def scenario_host_oom(h: Harness) -> bool:
    """A rank's memory grows past the job's --mem: the kernel's memory cgroup kills it (slurmstepd:
    'Detected N oom-kill event(s)', the step OUT_OF_MEMORY) -> stop, permanent host_oom; the
    cause is Slurm's record or the oom-kill line, never a follow-on line of the survivor."""
    m = h.memory()
    if not m.enforced:
        raise ScenarioSkipped(f"memory is not enforced on this cluster ({m.reason})")
    h.reporter.info(f"Memory is enforced: {m.reason}")
    run = h.submit("host_oom", HOST_OOM_SETS)
    h.wait_job_ended(run.job, timeout_s=h.checkpoint_timeout_s)
    marker = run.marker(run.attempt) or {}
    h.reporter.info(f"The monitor's marker: {marker.get('error_type')} ({marker.get('role', '?')}): "
                    f"{str(marker.get('line', ''))[:120]!r}")
    h.expect_no_restart(run, run.attempt, "Permanent failure detected (excluded error_type: host_oom)")
    check_oom_kill_record(h, run)
    h.reporter.ok("Test passed: a host OOM kill stops the run!")
    return True


def scenario_max_retries(h: Harness) -> bool:
    """Cancel 4 times: the first 3 restart, the 4th stops with the budget exhausted."""
    run = h.submit("max_retries")
    job, attempt = run.job, run.attempt
    for i in range(1, 4):
        h.reporter.info(f"Cancel {i}/4 (should restart)")
        job = _cancel_and_restart(h, run, attempt, job)
        attempt += 1
    h.reporter.info("Cancel 4/4 (should NOT restart)")
    h.wait_state(job, "RUNNING")
    h.cancel(job)
    h.expect_no_restart(run, attempt, REASON_BUDGET)
    h.reporter.ok("Test passed: retry budget is enforced!")
    return True


def scenario_rank_killed(h: Harness) -> bool:
    """kill -9 of a rank off the batch host: restarted; the cause is the killed rank (error_type
    killed), not the survivor's connection error printed before it."""
    run = h.submit("rank_killed")
    h.wait_state(run.job, "RUNNING")
    h.wait_checkpoint(run, run.job)
    _rank, node, _pid = h.signal_rank(run, run.job, signal.SIGKILL)
    marker = h.wait_marker(run, run.attempt, "killed")
    if marker.get("line_node") != node:  # srun --label's task number -> the node
        h.reporter.fail(f"The root-cause line is placed on {marker.get('line_node')!r}, not on {node}")
        raise ScenarioFailed("marker")
    h.reporter.ok(f"The root-cause line came from {node}: {marker.get('line', '')[:120]}")
    new = h.expect_restart(run, run.attempt, run.job, reason="Transient failure detected (error_type=killed)")
    h.verify_resume(run, run.job, new, run.attempt)
    h.reporter.ok("Test passed: a killed rank is restarted!")
    return True


def scenario_rank_stopped(h: Harness) -> bool:
    """SIGSTOP of a rank off the batch host: nothing is printed, torch would wait 30 min; the
    sidecar calls it a hang from the job's pace, the job (stopped rank included) is ended and
    restarted."""
    run = h.submit("rank_stopped")
    h.wait_state(run.job, "RUNNING")
    h.wait_checkpoint(run, run.job)
    _rank, _node, pid = h.signal_rank(run, run.job, signal.SIGSTOP)
    _line, new = _stopped_rank_restarted(h, run, pid)
    h.verify_resume(run, run.job, new, run.attempt)
    h.reporter.ok("Test passed: a stopped rank is called hung and restarted!")
    return True


def _stopped_rank_restarted(h: Harness, run: Run, pid: int,
                            check: Callable[[str], None] = lambda line: None) -> tuple[str, str]:
    """After a SIGSTOP of ``pid``: called hung (the marker's line passes ``check``), restarted,
    and the stopped rank ended with its job. (The hang's line, the new job.)"""
    t0 = time.monotonic()
    line = str(h.wait_marker(run, run.attempt, "hang").get("line", ""))
    h.reporter.info(f"Called hung {time.monotonic() - t0:.1f} s after the SIGSTOP: {line}")
    check(line)
    new = h.expect_restart(run, run.attempt, run.job, reason=REASON_HANG)
    h.wait_job_ended(run.job)
    if wait_for(lambda: not _pid_alive(pid), 30) is None:
        h.reporter.fail(f"The stopped rank (pid {pid}) outlived its job")
        raise ScenarioFailed("stopped")
    h.reporter.ok(f"The stopped rank (pid {pid}) was ended with its job")
    return line, new


# rank_stopped_saving: the save window's floor (monitoring.hang.save_floor_s, default 60 s),
# lowered so that the scenario takes about a minute
SAVE_FLOOR_S = 20
# the workload's save in progress: a temporary directory published by a rename when done
SAVE_TMP_GLOB = ".iter_*.tmp"


def stop_rank_inside_a_save(h: Harness, run: Run, pid: int, tries: int = 10) -> int:
    """SIGSTOP ``pid`` (a rank) while a checkpoint save is in progress; the save's iteration.
    A save here takes ~0.1 s: the rank is stopped when the save's temporary directory appears,
    and the stop counts only if that directory is still there once the rank is stopped (rank 0
    publishes it after the second of the save's barriers, so the stopped rank has not passed the
    third, and the save can never finish). Otherwise the rank is let go on and the next save is
    tried."""
    ckpt = run.paths.checkpoints
    for _ in range(tries):
        tmp = wait_for(lambda: next(ckpt.glob(SAVE_TMP_GLOB), None), h.checkpoint_timeout_s, 0.002)
        if tmp is None:
            h.reporter.fail(f"No checkpoint save started in {ckpt} within {h.checkpoint_timeout_s:g}s")
            raise ScenarioFailed("save")
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: _pid_state(pid) in ("T", "t"), 5, 0.002)
        if tmp.exists():
            it = int(tmp.name.split("_")[1].split(".")[0])
            h.reporter.ok(f"SIGSTOP sent to pid {pid} inside the checkpoint save of iteration {it} ({tmp.name})")
            return it
        os.kill(pid, signal.SIGCONT)  # the save was done by the time the rank stopped
    h.reporter.fail(f"Could not stop pid {pid} inside a checkpoint save in {tries} tries")
    raise ScenarioFailed("save")


def scenario_rank_stopped_saving(h: Harness) -> bool:
    """SIGSTOP of a rank inside a checkpoint save: the save never finishes and torch would wait
    for its process-group timeout (30 min). The sidecar gives a save a window learned from the
    run's earlier saves (at least monitoring.hang.save_floor_s) and calls it hung when it runs
    out; the restart loads the last checkpoint on disk, not the one the hung save was writing."""
    run = h.submit("rank_stopped_saving", [f"monitoring.hang.save_floor_s={SAVE_FLOOR_S}"])
    h.wait_state(run.job, "RUNNING")
    h.wait_checkpoint(run, run.job)  # an earlier save: the window is learned from it
    rank, node, pid = h.rank_off_batch_host(run, run.job)
    h.reporter.info(f"Stopping rank {rank} (pid {pid}) on {node} inside a checkpoint save...")
    it = stop_rank_inside_a_save(h, run, pid)

    def the_save_with_its_window(line: str) -> None:
        if f"checkpoint save at iteration {it} running" not in line or f"floor {SAVE_FLOOR_S} s" not in line:
            h.reporter.fail(f"The hang is not the save of iteration {it} with its learned window "
                            f"(floor {SAVE_FLOOR_S} s): {line!r}")
            raise ScenarioFailed("marker")

    _line, new = _stopped_rank_restarted(h, run, pid, the_save_with_its_window)
    last = (saved_iterations(read_bytes(run.log(run.job))) or [None])[-1]
    if last is None or last >= it:
        h.reporter.fail(f"The hung save of iteration {it} reported success (last saved {last})")
        raise ScenarioFailed("save")
    h.verify_resume(run, run.job, new, run.attempt)  # loads `last`, the checkpoint on disk
    h.reporter.ok(f"Test passed: a rank stopped inside the save of iteration {it} is called hung "
                  f"and the run resumes from iteration {last}!")
    return True


def _pid_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _pid_alive(pid: int) -> bool:
    return _pid_state(pid) not in ("Z", "X", "")


def _permanent_scenario(h: Harness, name: str, extra: Sequence[str], error_type: str, text: str) -> bool:
    run = h.submit(name, extra)
    h.wait_job_ended(run.job, timeout_s=h.checkpoint_timeout_s)
    marker = h.wait_marker(run, run.attempt, error_type)
    if text not in str(marker.get("line", "")):
        h.reporter.fail(f"Root-cause line {marker.get('line')!r} does not show {text!r}")
        raise ScenarioFailed("marker")
    h.reporter.ok(f"Root cause: {marker.get('line')}")
    h.expect_no_restart(run, run.attempt, f"Permanent failure detected (excluded error_type: {error_type})")
    return True


# rank_stopped_torchtitan: the workload prints torchtitan's step and checkpoint lines
TITAN_SET = "backend.args.log_format=torchtitan"
TITAN_STEP_RE = re.compile(rb"step:\s*(\d+)\s+\S*loss:")
# the hang's reason when the pace is known: "... (limit 5.0 s: 10 x recent interval 0.251 s, ..."
PACED_RE = re.compile(r"no new iteration for [\d.]+ s after iteration (\d+) \(limit [\d.]+ s: [\d.]+ x recent interval [\d.]+ s")
TITAN_STEPS_BEFORE_STOP = 8


def scenario_rank_stopped_torchtitan(h: Harness) -> bool:
    """SIGSTOP of a rank of a job that logs like torchtitan (``step: 10  loss: ...``, not one
    Megatron iteration line): called hung from the pace of torchtitan's step lines, restarted."""
    run = h.submit("rank_stopped_torchtitan", [TITAN_SET])
    h.wait_state(run.job, "RUNNING")
    log = run.log(run.job)
    if not wait_for(lambda: len(TITAN_STEP_RE.findall(read_bytes(log))) >= TITAN_STEPS_BEFORE_STOP,
                    h.checkpoint_timeout_s):
        h.reporter.fail(f"No {TITAN_STEPS_BEFORE_STOP} torchtitan step lines in {log.name} "
                        f"within {h.checkpoint_timeout_s:g}s")
        raise ScenarioFailed("steps")
    if ITERATION_RE.search(read_bytes(log)):
        h.reporter.fail(f"{log.name} has Megatron iteration lines: {TITAN_SET} was not applied")
        raise ScenarioFailed("steps")
    h.reporter.ok(f"The job logs torchtitan's step lines ({TITAN_SET})")
    _rank, _node, pid = h.signal_rank(run, run.job, signal.SIGSTOP)

    def paced(line: str) -> None:
        m = PACED_RE.search(line)
        last = (TITAN_STEP_RE.findall(read_bytes(log)) or [b"-1"])[-1]
        if m is None or int(m.group(1)) != int(last):
            h.reporter.fail(f"The hang is not called from the pace of the step lines (last step {int(last)}): {line!r}")
            raise ScenarioFailed("marker")

    _stopped_rank_restarted(h, run, pid, paced)
    h.reporter.ok("Test passed: a stopped rank is called hung from torchtitan's step lines and restarted!")
    return True


def scenario_code_error(h: Harness) -> bool:
    """A real exception in one rank (an out-of-vocabulary token: IndexError): a permanent stop."""
    _permanent_scenario(h, "code_error", ["backend.args.bad_token_at_iteration=15",
                                          "backend.args.bad_token_rank=1"],
                        "code_error", "IndexError: index out of range in self")
    h.reporter.ok("Test passed: a code error is not restarted!")
    return True


def scenario_nan(h: Harness) -> bool:
    """A huge learning rate: the loss becomes NaN, printed as NAN in the iteration line: stop."""
    _permanent_scenario(h, "nan", ["backend.args.lr=1e6"], "nan_loss", "lm loss: NAN")
    h.reporter.ok("Test passed: a NaN loss is not restarted!")
    return True


REASON_TIMEOUT = "Continuing from checkpoint after timeout (error_type=timeout); does not use the retry budget"
EXIT_ON_SIGNAL = b"exiting program after receiving SIGUSR1"


def scenario_timeout(h: Harness) -> bool:
    """A 3-minute time limit with sbatch's USR1 60 s before it: the ranks save and exit
    (Megatron's --exit-signal-handler), the run continues without using the budget. Slurm may
    send the signal up to 60 s early (its time-limit check runs once a minute): the margin
    keeps it after the first checkpoint."""
    run = h.submit("timeout", ["slurm.time=00:03:00", "slurm.signal_before_timeout_s=60"])
    h.wait_state(run.job, "RUNNING")
    h.wait_checkpoint(run, run.job)
    h.reporter.info("Waiting for the time limit's warning (USR1) and the save on it...")
    if not wait_for(lambda: EXIT_ON_SIGNAL in read_bytes(run.log(run.job)), 240):
        h.reporter.fail("The workload did not save and exit on the time limit's warning within 240s")
        raise ScenarioFailed("timeout")
    h.reporter.ok(f"Saved at iteration {saved_iterations(read_bytes(run.log(run.job)))[-1]} and exited on USR1")
    new = h.expect_restart(run, run.attempt, run.job, reason=REASON_TIMEOUT)
    d = run.decision(run.attempt) or {}
    if d.get("counts_against_budget") is not False:
        h.reporter.fail(f"The time limit used the retry budget: {d}")
        raise ScenarioFailed("budget")
    h.reporter.ok("The retry budget is untouched")
    h.verify_resume(run, run.job, new, run.attempt)
    h.reporter.ok("Test passed: a time limit continues from the checkpoint!")
    return True


def scenario_resume_correctness(h: Harness, iters: int = 60) -> bool:
    """Fixed seeds: a run broken twice (kill -9 of a rank, then scancel) ends with the loss curve
    of an uninterrupted run, at every iteration (a restart from scratch, from the wrong
    checkpoint, or with skipped data would not)."""
    extra = [f"backend.args.train_iters={iters}"]
    ref = h.submit("reference", extra)
    if h.wait_job_ended(ref.job, timeout_s=300) != "COMPLETED":
        h.reporter.fail(f"The uninterrupted run (job {ref.job}) did not complete")
        raise ScenarioFailed("reference")
    run = h.submit("interrupted", extra)
    job, attempt = run.job, run.attempt
    h.wait_state(job, "RUNNING")
    h.wait_checkpoint(run, job)
    h.signal_rank(run, job, signal.SIGKILL)
    job = h.expect_restart(run, attempt, job, reason="Transient failure detected (error_type=killed)")
    attempt += 1
    h.wait_state(job, "RUNNING")
    h.wait_checkpoint(run, job)
    h.cancel(job)
    job = h.expect_restart(run, attempt, job, reason=REASON_SCANCEL)
    if h.wait_job_ended(job, timeout_s=300) != "COMPLETED":
        h.reporter.fail(f"The interrupted run's last job {job} did not complete")
        raise ScenarioFailed("resume")
    logs = [read_bytes(run.log(j)) for j in run.job_ids()[1]]
    diff = compare(loss_curve(logs), loss_curve([read_bytes(ref.log(ref.job))]))
    if diff.common != iters or diff.missing or diff.max_abs_diff > 1e-6:
        h.reporter.fail(f"Loss curve of the interrupted run vs the uninterrupted one: {diff.summary()}")
        raise ScenarioFailed("resume")
    h.reporter.ok(f"Interrupted twice, same loss curve as the uninterrupted run: {diff.summary()}")
    h.reporter.ok("Test passed: resuming is exact!")
    return True


LOCAL_SLURM = REPO / "scripts" / "local-slurm"


def _slurmd_pid(node: str) -> int | None:
    """The pid of the local cluster's slurmd for ``node`` (scripts/local-slurm's pid file)."""
    lab = Path(os.environ.get("AUTOEXP_SLURM_LAB") or "/var/tmp/autoexp-slurm")
    try:
        pid = int((lab / "run" / f"slurmd-{node}.pid").read_text().strip())
        return pid if Path(f"/proc/{pid}/comm").read_text().strip() == "slurmd" else None
    except (OSError, ValueError):
        return None


def scenario_node_fail(h: Harness) -> bool:
    """The slurmd of a node that is not the batch host is killed: the job ends NODE_FAIL and
    restarts with exactly that node excluded (local cluster; the slurmd is restarted after)."""
    run = h.submit("node_fail")
    h.wait_state(run.job, "RUNNING")
    h.wait_checkpoint(run, run.job)
    batch = job_field(run.job, "BatchHost") or ""
    res = run_cmd(["scontrol", "show", "hostnames", job_field(run.job, "NodeList") or ""])
    node = next((n for n in res.stdout.split() if n != batch), None)
    pid = _slurmd_pid(node) if node else None
    if pid is None:
        h.reporter.fail(f"No slurmd of a node other than the batch host {batch!r} to kill ({res.stdout.split()})")
        raise ScenarioFailed("node_fail")
    h.reporter.info(f"Killing the slurmd of {node} (pid {pid}); the batch host is {batch}")
    os.kill(pid, signal.SIGKILL)
    try:
        new = h.expect_restart(run, run.attempt, run.job, reason_contains="error_type=node_fail")
        d = run.decision(run.attempt) or {}
        if d.get("state") != "NODE_FAIL" or d.get("exclude_nodes") != [node]:
            h.reporter.fail(f"Expected NODE_FAIL excluding exactly [{node}]: state {d.get('state')}, "
                            f"excluded {d.get('exclude_nodes')}")
            raise ScenarioFailed("node_fail")
        excluded = job_field(new, "ExcNodeList") or ""
        if node not in excluded:
            h.reporter.fail(f"Job {new} does not exclude {node} (ExcNodeList={excluded!r})")
            raise ScenarioFailed("node_fail")
        h.reporter.ok(f"Job ended NODE_FAIL; job {new} excludes exactly {node}")
        h.verify_resume(run, run.job, new, run.attempt)
    finally:
        up = run_cmd([str(LOCAL_SLURM), "up"], timeout_s=180)
        (h.reporter.ok if up.returncode == 0 else h.reporter.warn)(
            f"scripts/local-slurm up (restarts the slurmd of {node}): exit {up.returncode}")
    h.reporter.ok("Test passed: a node failure restarts elsewhere!")
    return True


SCENARIOS: dict[str, Callable[[Harness], bool]] = {
    "scancel": scenario_scancel,
    "hang": scenario_hang,
    "nccl": scenario_nccl,
    "oom": scenario_oom,
    "max_retries": scenario_max_retries,
    "rank_killed": scenario_rank_killed,
    "rank_stopped": scenario_rank_stopped,
    "rank_stopped_saving": scenario_rank_stopped_saving,
    "rank_stopped_torchtitan": scenario_rank_stopped_torchtitan,
    "code_error": scenario_code_error,
    "nan": scenario_nan,
    "timeout": scenario_timeout,
    "host_oom": scenario_host_oom,
    "node_fail": scenario_node_fail,
    "resume_correctness": scenario_resume_correctness,
}
SEED_SCENARIOS = ("scancel", "hang", "nccl", "oom", "max_retries")
# what each workload runs for --scenario all, and its settings for the local cluster
WORKLOADS: dict[str, dict[str, Any]] = {
    "sim": {"config": DEFAULT_CONFIG, "sets": LOCAL_SETS, "oom_error_type": "oom",
            "scenarios": SEED_SCENARIOS},
    "torch": {"config": TORCH_CONFIG, "sets": TORCH_SETS, "oom_error_type": "host_oom",
              "scenarios": (*SEED_SCENARIOS, "rank_killed", "rank_stopped", "rank_stopped_saving",
                            "rank_stopped_torchtitan", "code_error",
                            "nan", "timeout", "host_oom", "node_fail", "resume_correctness")},
}


class Outcome(enum.Enum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # the cluster cannot produce the fault (said why)


def run_scenario(h: Harness, name: str) -> Outcome:
    """Run one scenario; report and return how it went. Never raises for a failed check."""
    h.reporter.info(f"=== Scenario: {name} ===")
    n_runs = len(h.runs)
    try:
        outcome = Outcome.PASSED if SCENARIOS[name](h) else Outcome.FAILED
    except ScenarioSkipped as exc:
        h.reporter.warn(f"{name}: SKIPPED: {exc}")
        outcome = Outcome.SKIPPED
    except ScenarioFailed:
        outcome = Outcome.FAILED
    except Exception as exc:  # noqa: BLE001 - a crash of the test is a failed scenario
        h.reporter.fail(f"Unexpected error: {type(exc).__name__}: {exc}")
        outcome = Outcome.FAILED
    finally:
        for run in h.runs[n_runs:]:
            h.end_run(run)
    if outcome is Outcome.FAILED:
        h.reporter.fail(f"{name}: FAILED")
    return outcome


# ============================================================================ command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", required=True, choices=[*SCENARIOS, "all"])
    p.add_argument("--workload", choices=list(WORKLOADS), default="sim",
                   help="sim: megatron_sim, faults injected as log lines (default); torch: real "
                        "PyTorch DDP over srun + torchrun, real faults")
    p.add_argument("--iterations", type=int, default=2,
                   help="scancel: how many times to cancel and expect a restart (default 2)")
    p.add_argument("--config", type=Path, default=None,
                   help=f"run config to submit (default {DEFAULT_CONFIG.relative_to(REPO)} with "
                        "quick workload settings for the local cluster)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="config override passed to submit (repeatable)")
    p.add_argument("--oom-set", default=OOM_SET, metavar="KEY=VALUE",
                   help=f"the override that makes training run out of memory (default {OOM_SET})")
    p.add_argument("--run-root", type=Path, default=None,
                   help="where run directories go (default: a new temporary directory)")
    p.add_argument("--restart-timeout-s", type=float, default=120.0,
                   help="how long to wait for a restart or a decision (default 120)")
    p.add_argument("--start-timeout-s", type=float, default=300.0,
                   help="how long a job may pend before RUNNING (default 300)")
    p.add_argument("--checkpoint-timeout-s", type=float, default=300.0,
                   help="how long to wait for a checkpoint save or the first iteration (default 300)")
    p.add_argument("--no-restart-wait-s", type=float, default=10.0,
                   help="after a stop decision, how long to watch that no restart follows (default 10)")
    p.add_argument("--keep", action="store_true", help="keep the run directories")
    args = p.parse_args(argv)
    if args.iterations < 1:
        p.error("--iterations must be at least 1")
    return args


def harness_from_args(args: argparse.Namespace, reporter: Reporter) -> Harness:
    wl = WORKLOADS[args.workload]
    config = args.config or wl["config"]
    sets = tuple(args.sets) if args.config else (*wl["sets"], *args.sets)
    return Harness(reporter=reporter, config=config.resolve(), sets=sets, oom_set=args.oom_set,
                   oom_error_type=wl["oom_error_type"], workload=args.workload,
                   run_root=args.run_root, restart_timeout_s=args.restart_timeout_s,
                   start_timeout_s=args.start_timeout_s, no_restart_wait_s=args.no_restart_wait_s,
                   checkpoint_timeout_s=args.checkpoint_timeout_s,
                   iterations=args.iterations, keep=args.keep)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    reporter = Reporter()
    if not args.config and not DEFAULT_CONFIG.exists():
        reporter.fail(f"Config {DEFAULT_CONFIG} not found")
        return 1
    if shutil.which("sbatch") is None:
        reporter.fail("sbatch not found: no Slurm here (for the local cluster: scripts/local-slurm up)")
        return 1
    names = list(WORKLOADS[args.workload]["scenarios"]) if args.scenario == "all" else [args.scenario]
    h = harness_from_args(args, reporter)
    results: list[tuple[str, Outcome, float]] = []
    t_all = time.monotonic()
    try:
        for name in names:
            t0 = time.monotonic()
            results.append((name, run_scenario(h, name), time.monotonic() - t0))
    except KeyboardInterrupt:
        reporter.fail("Interrupted")
    finally:
        h.close()
    total = time.monotonic() - t_all
    reporter.info("Summary:")
    say = {Outcome.PASSED: reporter.ok, Outcome.FAILED: reporter.fail, Outcome.SKIPPED: reporter.warn}
    for name, outcome, dt in results:
        say[outcome](f"{name}: {outcome.value} ({dt:.0f}s)")
    n_ok = sum(1 for _, o, _ in results if o is Outcome.PASSED)
    n_skip = sum(1 for _, o, _ in results if o is Outcome.SKIPPED)
    all_ok = n_ok + n_skip == len(names) and len(results) == len(names)
    skipped = f" ({n_skip} skipped: this cluster cannot produce the fault)" if n_skip else ""
    (reporter.ok if all_ok else reporter.fail)(
        f"{n_ok}/{len(names)} scenarios passed in {total:.0f}s{skipped}")
    return 0 if all_ok else 1

if __name__ == "__main__":
    sys.exit(main())
