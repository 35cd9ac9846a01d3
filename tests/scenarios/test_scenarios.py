"""The user's acceptance scenarios and the chain's guarantees, end to end on a real Slurm cluster.

Each scenario of ``scripts/test_auto_restart.py`` runs here through the script's own functions
(the script is imported by path), so ``bash .ci/run`` and the command line check the same
things. Plus the guarantees of the design: two watchdogs for one failed attempt submit one
restart; a bad config submits nothing; a plain ``sbatch train.sbatch`` arms its own watchdog;
``stop`` stops; a broken chain is reported and ``resume`` re-arms it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "test_auto_restart.py"


def _load_script():
    name = "autoexp_test_auto_restart_script"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


T = _load_script()

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(600)]


@pytest.fixture
def harness(tmp_path):
    # the Slurm commands here; test_scenario_pyslurm runs the same scenarios through pyslurm
    h = T.Harness(reporter=T.Reporter(stream=sys.stdout), run_root=tmp_path / "runs",
                  sets=(*T.LOCAL_SETS, "slurm.client=cli"), iterations=1,
                  start_timeout_s=120, restart_timeout_s=120)
    yield h
    h.close()


def _transcript(h) -> str:
    return "\n".join(h.reporter.lines)


def passed(h, scenario: str) -> bool:
    """Run a scenario of the script: passed, failed, or skipped where the cluster cannot produce
    the fault (e.g. host_oom without memory enforcement; the script's output says why)."""
    outcome = T.run_scenario(h, scenario)
    if outcome is T.Outcome.SKIPPED:
        pytest.skip(next((ln for ln in reversed(h.reporter.lines) if "SKIPPED" in ln), scenario))
    return outcome is T.Outcome.PASSED


def cli(h, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return T.run_cmd([*h.cli, *args], timeout_s=timeout_s)


def inspect(h, run) -> dict:
    res = cli(h, "inspect", str(run.dir), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def wait_ended(job: str, timeout_s: float = 60) -> str:
    st = T.wait_for(lambda: (lambda s: s if s in T.ENDED else None)(T.job_state(job)), timeout_s)
    assert st, f"job {job} did not end within {timeout_s}s (state {T.job_state(job)})"
    return st


def train_jobs(run) -> list[tuple[str, str]]:
    return T.jobs_named(run.name)


def assert_pending_afternotok(watchdog: str, train: str) -> None:
    state = T.job_state(watchdog)
    dep = T.job_field(watchdog, "Dependency") or ""
    assert state == "PENDING", f"watchdog {watchdog} is {state}, expected PENDING"
    assert f"afternotok:{train}" in dep, f"watchdog {watchdog} dependency {dep!r}"


# ============================================================================ the user's scenarios


@pytest.mark.parametrize("scenario", list(T.WORKLOADS["sim"]["scenarios"]))
def test_scenario(harness, scenario):
    assert passed(harness, scenario), f"scenario {scenario} failed:\n{_transcript(harness)}"


@pytest.mark.pyslurm_real
@pytest.mark.parametrize("scenario", list(T.WORKLOADS["sim"]["scenarios"]))
def test_scenario_pyslurm(real_pyslurm, tmp_path, scenario):
    """The user's scenarios with the chain (submit, watchdog, record) driving Slurm via pyslurm."""
    h = T.Harness(reporter=T.Reporter(stream=sys.stdout), run_root=tmp_path / "runs",
                  sets=(*T.WORKLOADS["sim"]["sets"], "slurm.client=pyslurm"), iterations=1,
                  start_timeout_s=120, restart_timeout_s=120)
    try:
        assert passed(h, scenario), f"scenario {scenario} with pyslurm failed:\n{_transcript(h)}"
        # slurm.client=pyslurm has no fallback: had pyslurm failed in submit, the watchdog or
        # the job's exit path, the chain would have broken and the scenario failed
        for r in h.runs:
            assert yaml.safe_load((r.dir / "run.yaml").read_text())["slurm"]["client"] == "pyslurm"
    finally:
        h.close()


@pytest.mark.parametrize("scenario", list(T.WORKLOADS["sim"]["scenarios"]))
def test_scenario_in_allocation(harness, scenario):
    """The same scenarios with restart=megatron_inplace: transient faults restart inside the job."""
    harness.sets = (*harness.sets, "restart=megatron_inplace")
    assert passed(harness, scenario), f"scenario {scenario} (megatron_inplace) failed:\n{_transcript(harness)}"


@pytest.fixture
def torch_harness(tmp_path):
    pytest.importorskip("torch", reason="the [workload] extra (torch) is not installed")
    wl = T.WORKLOADS["torch"]
    h = T.Harness(reporter=T.Reporter(stream=sys.stdout), run_root=tmp_path / "runs",
                  config=wl["config"], sets=wl["sets"], oom_error_type=wl["oom_error_type"],
                  workload="torch", iterations=1, start_timeout_s=120, restart_timeout_s=120)
    yield h
    h.close()


@pytest.mark.parametrize("scenario", list(T.WORKLOADS["torch"]["scenarios"]))
def test_torch_scenario(torch_harness, scenario):
    """Real PyTorch DDP on 2 nodes (srun + torchrun), real faults: the same script's checks."""
    assert passed(torch_harness, scenario), f"scenario {scenario} (torch) failed:\n{_transcript(torch_harness)}"


# ============================================================================ at most one restart


def _failed_attempt_without_watchdog(h):
    """A run whose attempt 1 failed (scancel) with its Slurm watchdog cancelled beforehand."""
    run = h.submit("twowd")
    h.wait_state(run.job, "RUNNING")
    wd = T.wait_for(lambda: run.watchdog_job(1), 30)
    assert wd, "attempt 1 has no watchdog job"
    T.cancel_job(wd)
    wait_ended(wd)
    T.cancel_job(run.job)
    wait_ended(run.job)
    return run


def _count_attempt_submissions(run, attempt: int) -> int:
    events = [json.loads(line) for line in (run.dir / "events.jsonl").read_text().splitlines()
              if line.strip()]
    return sum(1 for e in events if e.get("event") == "submitted" and e.get("attempt") == attempt)


def test_two_watchdogs_one_restart(harness):
    run = _failed_attempt_without_watchdog(harness)
    argv = [*harness.cli, "watchdog", "--run", str(run.dir), "--attempt", "1",
            "--train-job", run.job]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        outs.append((p.returncode, out, err))
    assert all(rc == 0 for rc, _, _ in outs), outs
    restarted = [out for _, out, _ in outs if out.startswith("restart")]
    assert len(restarted) == 1, f"expected exactly one watchdog to restart: {outs}"
    new = T.wait_for(lambda: run.train_job(2), 10)
    assert new, "attempt 2 was not submitted"
    time.sleep(2)  # a second submission, if any, would show by now
    jobs = [j for j, _ in train_jobs(run)]
    assert jobs == sorted([run.job, new], key=int), f"training jobs of the run: {jobs}"
    assert _count_attempt_submissions(run, 2) == 1
    assert not (run.dir / "attempts" / "3").exists()


def test_slurm_watchdog_and_hand_watchdog_one_restart(harness):
    """The Slurm watchdog and one started by hand race for the same failed attempt."""
    run = harness.submit("racewd")
    harness.wait_state(run.job, "RUNNING")
    assert T.wait_for(lambda: run.watchdog_job(1), 30)
    T.cancel_job(run.job)
    hand = subprocess.run([*harness.cli, "watchdog", "--run", str(run.dir), "--attempt", "1",
                           "--train-job", run.job], capture_output=True, text=True, timeout=120)
    assert hand.returncode == 0, hand.stderr
    new = T.wait_for(lambda: run.train_job(2), 60)
    assert new, "attempt 2 was not submitted"
    wd1 = run.watchdog_job(1)
    wait_ended(wd1, 60)  # the Slurm watchdog has run (or was cancelled as invalid) by now
    time.sleep(1)
    jobs = [j for j, _ in train_jobs(run)]
    assert jobs == sorted([run.job, new], key=int), f"training jobs of the run: {jobs}"
    assert _count_attempt_submissions(run, 2) == 1


# ============================================================================ bad configs


def _base_config() -> dict:
    return yaml.safe_load(T.DEFAULT_CONFIG.read_text()) or {}


BAD_CONFIGS = {
    "unknown_key": ({"restart.max_retriez": 5}, "max_retriez"),
    "bad_preset": ({"monitoring": "megatron_prodution"}, "megatron_prodution"),
    "bad_regex_new_signal": (
        {"monitoring_overrides": {"signals": {"my_loader_crash": {
            "pattern": "DataLoader worker (pid", "error_type": "dataloader", "class": "transient"}}}},
        "my_loader_crash"),
    "bad_regex_shipped_signal": (
        {"monitoring_overrides": {"signals": {"nccl_error": {"pattern": "NCCL [ERROR"}}}},
        "nccl_error"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_submits_nothing(harness, tmp_path, case):
    change, must_name = BAD_CONFIGS[case]
    data = _base_config()
    data.update(change)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    root = tmp_path / "bad-runs"
    name = f"bad-{case.replace('_', '-')}-{int(time.time())}"
    res = cli(harness, "submit", str(cfg), f"run.root={root}", f"run.name={name}", *T.LOCAL_SETS,
              "--json")
    assert res.returncode != 0, f"a bad config was accepted:\n{res.stdout}"
    assert "ERROR" in res.stderr and must_name in res.stderr, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert not (root / name).exists(), "a run directory was created for a bad config"
    assert T.jobs_named(name) == [] and T.jobs_named(f"{name}-watchdog") == []


def test_bad_override_submits_nothing(harness, tmp_path):
    root = tmp_path / "bad-runs"
    name = f"bad-override-{int(time.time())}"
    res = cli(harness, "submit", str(T.DEFAULT_CONFIG), f"run.root={root}", f"run.name={name}",
              "restart.max_retries=three")
    assert res.returncode != 0
    assert "ERROR" in res.stderr and "max_retries" in res.stderr, res.stderr
    assert not (root / name).exists()
    assert T.jobs_named(name) == []


# ============================================================================ plain sbatch


def test_plain_sbatch_arms_itself(harness):
    root = harness.run_root
    name = f"plain-{int(time.time())}"
    res = cli(harness, "submit", str(T.DEFAULT_CONFIG), f"run.root={root}", f"run.name={name}",
              *T.LOCAL_SETS, "--render-only")
    assert res.returncode == 0, res.stderr
    run_dir = Path(root) / name
    assert (run_dir / "train.sbatch").is_file()
    assert T.jobs_named(name) == [], "--render-only submitted a job"
    sub = T.run_cmd(["sbatch", "--parsable", str(run_dir / "train.sbatch")])
    assert sub.returncode == 0, sub.stderr
    train = sub.stdout.strip().split(";")[0]
    run = T.Run(name, run_dir, 1, train)
    harness.runs.append(run)
    wd = T.wait_for(lambda: run.watchdog_job(1), 120)
    assert wd, "the training job armed no watchdog (attempts/1/watchdog_job missing)"
    assert run.train_job(1) == train
    assert_pending_afternotok(wd, train)
    assert T.job_state(train) in ("RUNNING", "PENDING", "CONFIGURING")


# ============================================================================ stop and resume


def test_stop_and_resume(harness):
    # stop: the job is cancelled on purpose and no restart follows
    run = harness.submit("stop")
    harness.wait_state(run.job, "RUNNING")
    res = cli(harness, "stop", str(run.dir))
    assert res.returncode == 0, res.stderr
    assert wait_ended(run.job) == "CANCELLED"
    d = T.wait_for(lambda: run.decision(1), 60)  # CANCELLED starts the watchdog; it sees STOP
    assert d is not None, "the watchdog recorded no decision after the stop"
    assert d["action"] == "stop" and d["reason"].startswith("Stop requested"), d
    assert T.wait_for(lambda: run.train_job(2), 8) is None, "a stopped run was restarted"
    assert [s for _, s in train_jobs(run) if s in T.ACTIVE] == []
    assert inspect(harness, run)["state"] == "stopped"

    # broken chain: the watchdog of a running job cancelled by hand
    run2 = harness.submit("broken")
    harness.wait_state(run2.job, "RUNNING")
    wd = T.wait_for(lambda: run2.watchdog_job(1), 30)
    assert wd
    T.cancel_job(wd)
    wait_ended(wd)
    st = inspect(harness, run2)
    assert st["state"] == "broken", st
    res = cli(harness, "resume", str(run2.dir))
    assert res.returncode == 0, res.stderr
    new_wd = T.wait_for(lambda: (lambda w: w if w and w != wd else None)(run2.watchdog_job(1)), 30)
    assert new_wd, f"resume armed no new watchdog: {res.stdout}"
    assert_pending_afternotok(new_wd, run2.job)
    st = inspect(harness, run2)
    assert st["state"] == "running", st
