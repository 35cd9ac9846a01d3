"""The pure parts of scripts/test_auto_restart.py: the output style and the log parsing."""

from __future__ import annotations

import importlib.util
import io
import sys
from datetime import datetime
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test_auto_restart.py"


def _load():
    name = "autoexp_test_auto_restart_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


T = _load()


def test_reporter_prints_the_users_style():
    out = io.StringIO()
    r = T.Reporter(stream=out, clock=lambda: datetime(2026, 1, 1, 10, 30, 45))
    r.info("Cancelling job 12345...")
    r.ok("Found restarted job: 12346")
    r.warn("No restart detected within 120s")
    r.fail("scancel: FAILED")
    assert out.getvalue().splitlines() == [
        "[10:30:45] ℹ Cancelling job 12345...",
        "[10:30:45] ✓ Found restarted job: 12346",
        "[10:30:45] ⚠ No restart detected within 120s",
        "[10:30:45] ✗ scancel: FAILED",
    ]
    assert r.lines == out.getvalue().splitlines()


LOG = b"""\
 loading checkpoint from /ck at iteration 20
 successfully loaded checkpoint from /ck [ t 0/ 1, p 0/ 1 ] at iteration 20
 [2026-01-01 10:00:00] iteration       21/    5000 | consumed samples:         1344 | lm loss: 2.1E+00 |
 [2026-01-01 10:00:01] iteration       30/    5000 | consumed samples:         1920 | lm loss: 2.1E+00 |
saving checkpoint at iteration      30 to /ck
  successfully saved checkpoint from iteration      30 to /ck
saving checkpoint at iteration      40 to /ck
"""


def test_log_parsing():
    assert T.first_iteration(LOG) == 21
    assert T.loaded_iteration(LOG) == 20
    assert T.saved_iterations(LOG) == [30]  # 40 was started, never finished
    assert T.first_iteration(b"WARNING: could not find the metadata file\n") is None
    assert T.loaded_iteration(b"WARNING: could not find the metadata file\n") is None


def test_scenarios_and_reasons_are_the_users():
    assert list(T.WORKLOADS["sim"]["scenarios"]) == ["scancel", "hang", "nccl", "oom", "max_retries"]
    assert list(T.SCENARIOS)[:5] == ["scancel", "hang", "nccl", "oom", "max_retries"]
    # the torch workload runs the user's five too, then the real faults
    assert list(T.WORKLOADS["torch"]["scenarios"])[:5] == list(T.WORKLOADS["sim"]["scenarios"])
    assert T.REASON_HANG == "Transient failure detected (error_type=hang)"
    assert T.REASON_OOM == "Permanent failure detected (excluded error_type: oom)"
    assert T.REASON_BUDGET == "retry budget exhausted (attempt 4/3)"


def test_workload_torch_uses_its_config_and_oom_type():
    args = T.parse_args(["--scenario", "all", "--workload", "torch"])
    h = T.harness_from_args(args, T.Reporter(stream=io.StringIO()))
    assert h.config == T.TORCH_CONFIG and h.oom_error_type == "host_oom" and h.workload == "torch"
    assert "backend.args.activation_mb_per_sample=150" in h.sets


def test_cli_defaults():
    args = T.parse_args(["--scenario", "all"])
    assert args.restart_timeout_s == 120 and args.iterations == 2 and not args.keep
    h = T.harness_from_args(args, T.Reporter(stream=io.StringIO()))
    try:
        assert h.config == T.DEFAULT_CONFIG and set(T.LOCAL_SETS) <= set(h.sets)
    finally:
        h.run_root.rmdir()
    args = T.parse_args(["--scenario", "oom", "--config", "x.yaml", "--set", "a.b=1", "--set", "c=2"])
    h = T.harness_from_args(args, T.Reporter(stream=io.StringIO()))
    try:
        assert h.sets == ("a.b=1", "c=2")  # another cluster: only what the user sets
    finally:
        h.run_root.rmdir()


def test_oom_fault_follows_memory_enforcement():
    from sidecar.slurm.memory import Enforcement, MemoryEnforcement

    on = MemoryEnforcement(Enforcement.CGROUP, "TaskPlugin=task/cgroup, ...")
    off = MemoryEnforcement(Enforcement.NONE, "TaskPlugin=task/none: ...")
    assert T.oom_fault("torch", on) == ((), "Out of memory for real: the job's memory cgroup "
                                            "(Slurm enforces --mem; TaskPlugin=task/cgroup, ...)")
    sets, how = T.oom_fault("torch", off)
    assert sets == (T.ADDRESS_SPACE_SET,) and "address-space limit" in how and "task/none" in how
    assert T.oom_fault("sim", None) == ((), "")
    # the torch scenarios run without an address-space limit unless the oom scenario adds it
    assert not any("ulimit" in s for s in T.TORCH_SETS)
    assert {"host_oom", "rank_stopped_saving"} <= set(T.WORKLOADS["torch"]["scenarios"])
