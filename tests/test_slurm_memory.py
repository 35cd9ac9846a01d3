"""Memory enforcement read from `scontrol show config` (pure), on the real 22.05 output."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.doctor import Status, check_memory_enforced
from sidecar.slurm.memory import Enforcement, memory_enforcement, parse_show_config
from sidecar.slurm.runner import Completed, SlurmCommandError

CGROUP = (Path(__file__).parent / "fixtures" / "slurm" / "show_config_cgroup.txt").read_text()


def edited(text: str, **values: str) -> str:
    """The real output with some keys' values changed (a key set to "" drops its line)."""
    out = []
    for line in text.splitlines():
        key = line.partition("=")[0].strip()
        if key in values:
            if values[key]:
                out.append(f"{key:<23} = {values[key]}")
            continue
        out.append(line)
    return "\n".join(out)


def test_parse_reads_both_sections():
    conf = parse_show_config(CGROUP)
    assert conf["TaskPlugin"] == "task/cgroup"
    assert conf["ConstrainRAMSpace"] == "yes"
    assert conf["SelectTypeParameters"] == "CR_CORE_MEMORY"
    assert "Cgroup Support Configuration:" not in conf


def test_cgroup_with_allocated_memory_is_enforced():
    m = memory_enforcement(CGROUP)
    assert m.state is Enforcement.CGROUP and m.enforced
    assert "OUT_OF_MEMORY" in m.reason and "swap constrained" in m.reason


@pytest.mark.parametrize("change, why", [
    ({"TaskPlugin": "task/none", "ConstrainRAMSpace": ""}, "TaskPlugin=task/none"),
    ({"ConstrainRAMSpace": "no"}, "no ConstrainRAMSpace=yes"),
    # 22.05 with CR_Core: task/cgroup gets no per-job figure, every job may use the node's memory
    ({"SelectTypeParameters": "CR_CORE"}, "does not allocate memory"),
])
def test_not_enforced_says_which_setting(change, why):
    m = memory_enforcement(edited(CGROUP, **change))
    assert m.state is Enforcement.NONE and not m.enforced
    assert why in m.reason and "not stopped by Slurm" in m.reason


def test_over_memory_kill_is_polling():
    text = edited(CGROUP, TaskPlugin="task/affinity", JobAcctGatherParams="OverMemoryKill")
    assert memory_enforcement(text).state is Enforcement.POLLING


def test_swap_not_constrained_is_said():
    m = memory_enforcement(edited(CGROUP, ConstrainSwapSpace="no"))
    assert m.enforced and "swap NOT constrained" in m.reason


def test_doctor_row():
    ok = check_memory_enforced(lambda argv, **kw: Completed(tuple(argv), 0, CGROUP, ""))
    assert ok.status is Status.OK and not ok.required and ok.detail.startswith("cgroup: ")
    off = check_memory_enforced(lambda argv, **kw: Completed(tuple(argv), 0, edited(CGROUP, TaskPlugin="task/none"), ""))
    assert off.status is Status.WARN and not off.blocks

    def down(argv, **kw):
        raise SlurmCommandError("Unable to contact slurm controller", argv=argv, returncode=1)
    unknown = check_memory_enforced(down)
    assert unknown.status is Status.SKIP and not unknown.blocks and "Unable to contact" in unknown.detail
