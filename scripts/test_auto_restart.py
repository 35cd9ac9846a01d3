#!/usr/bin/env python3
"""End-to-end acceptance test of automatic restart on a real Slurm cluster.

The scenarios of the user's "Testing Auto-Restart System" document:

    scancel      cancel a running job by hand: a new job follows (repeated --iterations times)
    hang         inject a CUDA device-side assert into the log: error_type hang, restart
    nccl         inject an NCCL error into the log: restart, reason contains error_type=nccl
    oom          micro_batch_size=16 dies with CUDA OOM: NO restart, a permanent stop
    max_retries  cancel 4 times: attempts 1-3 restart, the 4th stops (budget exhausted)
    all          all of the above, one after the other

Every restart is also checked to have resumed from the checkpoint: before the failure the test
waits for a successful checkpoint save; the restarted job's log must show loading that
checkpoint, and its first ``iteration`` line must be the last saved iteration + 1.

By default it runs against the local cluster (``scripts/local-slurm up``) with
``examples/local.yaml`` and run directories in a temporary directory; ``--config`` and ``--set``
point it at any cluster. Exit code 0 when every scenario passed, 1 otherwise.

    python scripts/test_auto_restart.py --scenario scancel --iterations 2
    python scripts/test_auto_restart.py --scenario all
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
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
from sidecar.slurm.parse import parse_squeue, split_scontrol_fields  # noqa: E402
from sidecar.slurm.runner import make_runner  # noqa: E402
from sidecar.slurm.types import ACTIVE_STATES, TERMINAL_STATES  # noqa: E402
DEFAULT_CONFIG = REPO / "examples" / "local.yaml"

# Overrides that make the CPU workload of examples/local.yaml quick: an iteration every 0.2 s,
# a checkpoint every 10 iterations (2 s), enough iterations that no attempt finishes by itself.
LOCAL_SETS: tuple[str, ...] = (
    "backend.args.train_iters=5000",
    "backend.args.iter_time_s=0.2",
    "backend.args.save_interval=10",
)
OOM_SET = "backend.args.micro_batch_size=16"

HANG_LINE = "CUDA device-side assert detected in kernel execution"
NCCL_LINE = "[default0]:NCCL ERROR timeout"

REASON_SCANCEL = "Cancelled without a recorded failure (error_type=scancel)"
REASON_HANG = "Transient failure detected (error_type=hang)"
REASON_OOM = "Permanent failure detected (excluded error_type: oom)"
REASON_BUDGET = "retry budget exhausted (attempt 4/3)"

ITERATION_RE = re.compile(rb"\biteration\s+(\d+)\s*/\s*\d+\s*\|")
SAVED_RE = re.compile(rb"successfully saved checkpoint from iteration\s+(\d+)")
# Megatron: "loading checkpoint from DIR at iteration N", "loading distributed checkpoint from
# DIR at iteration N", "successfully loaded checkpoint from DIR [ t 0/ 1, p 0/ 1 ] at iteration N"
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

    def __post_init__(self) -> None:
        if self.run_root is None:
            self.run_root = Path(tempfile.mkdtemp(prefix="autoexp-restart-test-"))
            self._own_root = True
        if not self.cli:
            self.cli = sidecar_cli()

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

    def verify_resume(self, run: Run, old_job: str, new_job: str, attempt: int) -> None:
        """The new attempt loaded the last checkpoint the old one saved and went on from there.
        An attempt restarted inside the allocation (restart.in_allocation) shares the job and its
        log: the two are told apart by the attempt banner the training script prints."""
        banner = f"autoexp-sidecar: attempt {attempt + 1} of run".encode()

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
        if loaded != last:
            self.reporter.fail(f"Job {new_job} loaded checkpoint at iteration {loaded} "
                               f"(the last one saved by job {old_job} was {last})")
            raise ScenarioFailed("resume")
        if first != last + 1:
            self.reporter.fail(f"Job {new_job} started at iteration {first}, expected {last + 1} "
                               f"(last checkpoint {last})")
            raise ScenarioFailed("resume")
        self.reporter.ok(f"Resumed from checkpoint: loaded iteration {loaded}, first iteration {first}")

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


def scenario_oom(h: Harness) -> bool:
    """micro_batch_size=16 dies with a CUDA OOM: no restart, a permanent stop."""
    run = h.submit("oom", [h.oom_set])
    h.wait_job_ended(run.job)
    marker = run.marker(run.attempt)
    if marker is not None:
        if marker.get("error_type") != "oom":
            h.reporter.fail(f"Classified as error_type: {marker.get('error_type')} (expected oom)")
            raise ScenarioFailed("marker")
        h.reporter.ok("Monitor detected the failure: error_type: oom")
    else:
        h.reporter.info("No marker (the job ended before the monitor wrote one); the watchdog "
                        "classifies the log")
    h.expect_no_restart(run, run.attempt, REASON_OOM)
    h.reporter.ok("Test passed: OOM is not restarted!")
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


SCENARIOS: dict[str, Callable[[Harness], bool]] = {
    "scancel": scenario_scancel,
    "hang": scenario_hang,
    "nccl": scenario_nccl,
    "oom": scenario_oom,
    "max_retries": scenario_max_retries,
}


def run_scenario(h: Harness, name: str) -> bool:
    """Run one scenario; report and return whether it passed. Never raises for a failed check."""
    h.reporter.info(f"=== Scenario: {name} ===")
    n_runs = len(h.runs)
    try:
        passed = bool(SCENARIOS[name](h))
    except ScenarioFailed:
        passed = False
    except Exception as exc:  # noqa: BLE001 - a crash of the test is a failed scenario
        h.reporter.fail(f"Unexpected error: {type(exc).__name__}: {exc}")
        passed = False
    finally:
        for run in h.runs[n_runs:]:
            h.end_run(run)
    if not passed:
        h.reporter.fail(f"{name}: FAILED")
    return passed


# ============================================================================ command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", required=True, choices=[*SCENARIOS, "all"])
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
    config = args.config or DEFAULT_CONFIG
    sets = tuple(args.sets) if args.config else (*LOCAL_SETS, *args.sets)
    return Harness(reporter=reporter, config=config.resolve(), sets=sets, oom_set=args.oom_set,
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
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    h = harness_from_args(args, reporter)
    results: list[tuple[str, bool, float]] = []
    t_all = time.monotonic()
    try:
        for name in names:
            t0 = time.monotonic()
            passed = run_scenario(h, name)
            results.append((name, passed, time.monotonic() - t0))
    except KeyboardInterrupt:
        reporter.fail("Interrupted")
    finally:
        h.close()
    total = time.monotonic() - t_all
    reporter.info("Summary:")
    for name, passed, dt in results:
        (reporter.ok if passed else reporter.fail)(f"{name}: {'PASSED' if passed else 'FAILED'} ({dt:.0f}s)")
    n_ok = sum(1 for _, p, _ in results if p)
    all_ok = n_ok == len(names) and len(results) == len(names)
    (reporter.ok if all_ok else reporter.fail)(
        f"{n_ok}/{len(names)} scenarios passed in {total:.0f}s")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
