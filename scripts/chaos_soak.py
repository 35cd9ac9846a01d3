"""The chaos soak: N runs at once on the local cluster for M minutes with seeded random faults,
then a check, from Slurm's accounting and the run directories, that the guarantees held.

Faults: scancel of a training job, an NCCL error line appended to its log, kill -9 of the
training process, SIGSTOP of it (a silent hang), a node's slurmd killed and restarted,
slurmctld restarted, the sidecar killed, and `stop` followed by `resume --force` by hand.

Invariants checked at the end (each a line of the report; any violation exits 1):
  - every run is FINISHED or STOPPED, with a reason
  - no attempt was submitted twice (every training job in accounting belongs to one attempt)
  - no two training jobs of one run overlapped in time (accounting's start/end)
  - budgets were respected (restarts that used the budget <= restart.max_retries)
  - every restart resumed from the last checkpoint saved before it (the logs)

Run it with scripts/chaos-soak (as root: it restarts cluster daemons).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for extra in (REPO, REPO / "scripts", REPO / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import slurm_helpers  # noqa: E402  (tests/: the local cluster's daemons and pid files)
import test_auto_restart as acceptance  # noqa: E402  (log patterns of the workload)
from sidecar.history import read_history  # noqa: E402
from sidecar.rundir import RunPaths  # noqa: E402
from sidecar.slurm import parse  # noqa: E402
from sidecar.slurm.cli_client import CliSlurmClient  # noqa: E402
from sidecar.slurm.types import JobInfo, JobState  # noqa: E402

FAULTS = ("scancel", "nccl", "kill9", "sigstop", "slurmd", "slurmctld", "sidecar", "stop_resume")
CLUSTER_FAULTS = ("slurmd", "slurmctld")
ITER_TIME_S = 0.2
MAX_RETRIES = 8
CLI = (sys.executable, "-m", "sidecar")


def sh(argv: list[str] | tuple[str, ...], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out: {exc}")


def now_s() -> str:
    return datetime.now().strftime("%H:%M:%S")


# ----------------------------------------------------------------------------- one run
@dataclasses.dataclass
class Run:
    name: str
    dir: Path
    faults: Counter[str] = dataclasses.field(default_factory=Counter)
    resume_at: float | None = None  # a `stop` was injected: `resume --force` is due then
    left_going: str | None = None  # its state when the settle time ran out (the soak stopped it)

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.dir)

    def current_job(self) -> tuple[int, str] | None:
        n = self.paths.latest_attempt()
        job = self.paths.read_job_id(self.paths.train_job_file(n)) if n else None
        return (n, job) if n and job else None


def pids_with(*words: str) -> list[int]:
    """Processes whose argv contains every word (ours: the run dir is in each of them)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        text = " ".join(argv)
        if all(w in text for w in words):
            out.append(int(d.name))
    return out


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.client = CliSlurmClient()
        self.root = Path(args.root or f"/tmp/autoexp-chaos-{os.getpid()}").resolve()
        self.runs: list[Run] = []
        self.cluster_faults: Counter[str] = Counter()
        self.log_lines: list[str] = []

    def say(self, msg: str) -> None:
        line = f"[{now_s()}] {msg}"
        self.log_lines.append(line)
        if self.args.verbose:
            print(line, flush=True)

    # -- setup
    def submit_all(self) -> None:
        iters = max(100, int(self.args.minutes * 60 * self.args.work_fraction / ITER_TIME_S))
        for i in range(self.args.runs):
            name = f"chaos{i:02d}-{os.getpid()}"
            res = sh([*CLI, "submit", str(REPO / "examples" / "local.yaml"), f"run.root={self.root}",
                      f"run.name={name}", f"backend.args.train_iters={iters}",
                      f"backend.args.iter_time_s={ITER_TIME_S}", "backend.args.save_interval=10",
                      f"restart.max_retries={MAX_RETRIES}", "--json"])
            if res.returncode != 0:
                raise SystemExit(f"submit of {name} failed: {res.stderr.strip()[-2000:]}")
            info = json.loads(res.stdout.strip().splitlines()[-1])
            self.runs.append(Run(name, Path(info["run_dir"])))
            self.say(f"submitted {name}: job {info['train_job']} ({iters} iterations)")

    # -- faults
    def running_job(self, run: Run, min_age_s: float = 5.0) -> tuple[int, JobInfo] | None:
        cur = run.current_job()
        if cur is None:
            return None
        n, job = cur
        try:
            info = self.client.job_info(job)
        except Exception:  # the controller may be restarting: no fault this time
            return None
        if info.state is not JobState.RUNNING or info.start_time is None:
            return None
        if (datetime.now() - info.start_time).total_seconds() < min_age_s:
            return None
        return n, info

    def inject(self, kind: str) -> bool:
        if kind in CLUSTER_FAULTS:
            return self.cluster_fault(kind)
        candidates = [r for r in self.runs if r.resume_at is None and self.running_job(r)]
        if not candidates:
            return False
        run = self.rng.choice(candidates)
        cur = self.running_job(run)
        if cur is None:
            return False
        n, info = cur
        done = self.run_fault(kind, run, n, info)
        if done:
            run.faults[kind] += 1
            self.say(f"{kind:<11} {run.name} attempt {n} job {info.job_id}")
        return done

    def run_fault(self, kind: str, run: Run, n: int, info: JobInfo) -> bool:
        train = pids_with("sidecar.workload.megatron_sim", str(run.dir))
        if kind == "scancel":
            return sh(["scancel", info.job_id]).returncode == 0
        if kind == "nccl":
            with open(run.paths.train_log(info.job_id), "a", encoding="utf-8") as fh:
                fh.write(acceptance.NCCL_LINE + "\n")
            return True
        if kind in ("kill9", "sigstop") and train:
            for pid in train:
                os.kill(pid, signal.SIGKILL if kind == "kill9" else signal.SIGSTOP)
            return True
        if kind == "sidecar":
            pids = pids_with("sidecar", "scan", "--run", str(run.dir))
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            return bool(pids)
        if kind == "stop_resume":
            if sh([*CLI, "stop", str(run.dir)]).returncode != 0:
                return False
            run.resume_at = time.monotonic() + self.rng.uniform(3, 10)
            return True
        return False

    def cluster_fault(self, kind: str) -> bool:
        if kind == "slurmctld":
            slurm_helpers.stop_slurmctld()
            time.sleep(self.rng.uniform(2, 8))
            slurm_helpers.start_slurmctld()
        else:
            node = self.rng.choice(("n1", "n2", "n3"))
            pid = slurm_helpers.read_pid(slurm_helpers.slurmd_pid_file(node))
            if pid is None:
                return False
            os.kill(pid, signal.SIGKILL)
            # back well within SlurmdTimeout (10 s locally): the node's jobs run on
            time.sleep(self.rng.uniform(1, 4))
            sh(["slurmd", "-N", node])
            if slurm_helpers.read_pid(slurm_helpers.slurmd_pid_file(node)) is None:
                slurm_helpers.local_slurm("up", timeout_s=300)
        self.cluster_faults[kind] += 1
        self.say(f"{kind:<11} (cluster)")
        return True

    def due_resumes(self, force_all: bool = False) -> None:
        for run in self.runs:
            if run.resume_at is None or (not force_all and time.monotonic() < run.resume_at):
                continue
            res = sh([*CLI, "resume", "--force", str(run.dir)])
            if "submitted attempt" in res.stdout:
                self.say(f"resumed    {run.name}: {res.stdout.strip()}")
                run.resume_at = None
            else:  # the stopped job is still ending: try again shortly
                run.resume_at = time.monotonic() + 3
                self.say(f"resume of {run.name} refused for now: {res.stdout.strip()[:160]}")

    # -- phases
    def fault_phase(self) -> None:
        end = time.monotonic() + self.args.minutes * 60
        next_fault = time.monotonic() + self.rng.expovariate(1 / self.args.fault_interval_s)
        while time.monotonic() < end:
            self.due_resumes()
            if time.monotonic() >= next_fault:
                kind = self.rng.choice(FAULTS)
                try:
                    self.inject(kind)
                except OSError as exc:  # the process ended on its own meanwhile
                    self.say(f"{kind} not injected: {exc}")
                next_fault = time.monotonic() + self.rng.expovariate(1 / self.args.fault_interval_s)
            time.sleep(0.5)

    def settle(self) -> float:
        """Wait until every run has ended (FINISHED or STOPPED); seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + self.args.settle_minutes * 60
        while time.monotonic() < deadline:
            self.due_resumes(force_all=True)
            if all(self.status(r)["state"] in ("finished", "stopped") for r in self.runs):
                break
            time.sleep(3)
        return time.monotonic() - t0

    def status(self, run: Run) -> dict:
        res = sh([*CLI, "inspect", str(run.dir), "--json"])
        try:
            return json.loads(res.stdout)
        except json.JSONDecodeError:
            return {"state": "unknown", "detail": res.stderr.strip()[-300:]}

    # -- the end: clean up what is left, then check
    def cleanup(self) -> None:
        for run in self.runs:
            for pid in pids_with("sidecar.workload.megatron_sim", str(run.dir)):
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
            st = self.status(run)
            if st["state"] not in ("finished", "stopped"):
                run.left_going = f"{st['state']} - {st.get('detail')}"
                sh([*CLI, "stop", str(run.dir)])

    def accounting(self, run: Run) -> list[JobInfo]:
        """The run's training jobs in Slurm's accounting, once none is shown as running."""
        jobs: list[JobInfo] = []
        for _ in range(40):
            jobs = [j for j in parse.parse_sacct(self.client.query_sacct(name=run.name))
                    if j.name == run.name]
            if all(j.state.is_terminal for j in jobs):
                break
            time.sleep(3)
        return jobs


# ----------------------------------------------------------------------------- the checks
@dataclasses.dataclass
class Check:
    name: str
    violations: list[str] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        mark = "held" if not self.violations else f"VIOLATED ({len(self.violations)})"
        return f"  {self.name:<58} {mark}"


def check_run(soak: Soak, run: Run, st: dict, checks: dict[str, Check]) -> dict[str, object]:
    paths = run.paths
    history = read_history(paths)
    ours = {n: paths.read_job_id(paths.train_job_file(n)) for n in paths.attempt_numbers()}
    ours = {n: j for n, j in ours.items() if j}
    if run.left_going is not None:
        checks["ended"].violations.append(f"{run.name}: still {run.left_going} when the settle "
                                          "time ran out (the soak stopped it)")
    elif st.get("state") not in ("finished", "stopped") or not st.get("detail"):
        checks["ended"].violations.append(f"{run.name}: {st.get('state')} - {st.get('detail')}")

    acct = soak.accounting(run)
    by_id = {j.job_id: j for j in acct}
    extra = sorted(set(by_id) - set(ours.values()))
    if extra:
        checks["once"].violations.append(f"{run.name}: training jobs no attempt owns: {extra}")
    for n in ours:
        subs = [e for e in history.events if e.attempt == n and e.kind.value == "submitted"]
        fails = [e for e in history.events if e.attempt == n and e.kind.value == "submit_failed"]
        if len(subs) > 1 + len(fails):
            checks["once"].violations.append(f"{run.name}: attempt {n} submitted {len(subs)} times")

    spans = sorted((j.start_time, j.end_time or datetime.max, j.job_id) for j in acct
                   if j.start_time is not None)
    for (s1, e1, a), (s2, _e2, b) in zip(spans, spans[1:]):
        if s2 < e1:
            checks["overlap"].violations.append(f"{run.name}: job {b} started {s2:%H:%M:%S} "
                                                f"before job {a} ended {e1:%H:%M:%S}")

    used, limit = int(st.get("budget_used") or 0), int(st.get("budget_max") or MAX_RETRIES)
    if used > limit:
        checks["budget"].violations.append(f"{run.name}: {used} restarts used the budget of {limit}")

    restarts = 0
    last_saved: int | None = None
    for n in sorted(ours):
        log = paths.train_log(ours[n])
        data = log.read_bytes() if log.exists() else b""
        first = acceptance.first_iteration(data)
        if n > 1 and first is not None:  # an attempt that never ran has nothing to check
            restarts += 1
            loaded = acceptance.loaded_iteration(data)
            want_first = (last_saved or 0) + 1
            if loaded != last_saved or first != want_first:
                checks["resumed"].violations.append(
                    f"{run.name}: attempt {n} (job {ours[n]}) loaded {loaded}, first iteration "
                    f"{first}; the last checkpoint before it was {last_saved}")
        saves = acceptance.saved_iterations(data)
        if saves:
            last_saved = max(saves) if last_saved is None else max(last_saved, max(saves))
    return {"attempts": len(ours), "restarts": restarts, "jobs_in_accounting": len(acct)}


def report(soak: Soak, settle_s: float) -> int:
    checks = {k: Check(v) for k, v in (
        ("ended", "every run FINISHED or STOPPED with a reason"),
        ("once", "no attempt submitted twice"),
        ("overlap", "no two training jobs of one run overlapped in time"),
        ("budget", "budgets respected"),
        ("resumed", "every restart resumed from the last checkpoint"),
    )}
    rows = []
    total_restarts = 0
    for run in soak.runs:
        st = soak.status(run)
        facts = check_run(soak, run, st, checks)
        total_restarts += int(facts["restarts"])  # type: ignore[call-overload]
        rows.append((run.name, str(st.get("state", "?")).upper(), str(facts["attempts"]),
                     str(facts["restarts"]), f"{st.get('budget_used')}/{st.get('budget_max')}",
                     str(sum(run.faults.values())), str(st.get("detail", ""))[:70]))
    faults = Counter(soak.cluster_faults)
    for run in soak.runs:
        faults.update(run.faults)
    a = soak.args
    print(f"\nchaos soak: {a.runs} runs, {a.minutes:g} min of faults (seed {a.seed}, a fault every "
          f"~{a.fault_interval_s:g} s), all ended {settle_s:.0f} s after the faults stopped")
    print("faults injected: " + ", ".join(f"{k} {faults[k]}" for k in FAULTS)
          + f"  (total {sum(faults.values())})")
    head = ("run", "state", "attempts", "restarts", "budget", "faults", "reason")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    for r in [head, *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print(f"restarts checked: {total_restarts}")
    print("invariants:")
    bad = 0
    for c in checks.values():
        print(c.line())
        for v in c.violations:
            print(f"      {v}")
        bad += len(c.violations)
    print("ALL INVARIANTS HELD" if not bad else f"{bad} VIOLATION(S)")
    return 0 if not bad else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=8, help="runs at once (default 8)")
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of faults (default 10)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the faults (default 1)")
    p.add_argument("--fault-interval-s", type=float, default=15.0,
                   help="mean seconds between two faults (default 15)")
    p.add_argument("--settle-minutes", type=float, default=10.0,
                   help="after the faults, how long runs may take to end (default 10)")
    p.add_argument("--work-fraction", type=float, default=0.6,
                   help="each run's training takes this fraction of --minutes when undisturbed")
    p.add_argument("--root", default=None, help="where the run directories go (default: a new /tmp dir)")
    p.add_argument("--verbose", action="store_true", help="print each fault as it is injected")
    args = p.parse_args(argv)
    soak = Soak(args)
    soak.submit_all()
    print(f"[{now_s()}] {args.runs} runs submitted under {soak.root}; faults for {args.minutes:g} min",
          flush=True)
    try:
        soak.fault_phase()
        print(f"[{now_s()}] faults stopped; waiting for every run to end", flush=True)
        settle_s = soak.settle()
    finally:
        # a SIGSTOPped training or a run left going must not outlive the soak
        soak.cleanup()
    return report(soak, settle_s)


if __name__ == "__main__":
    sys.exit(main())
