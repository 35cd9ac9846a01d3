"""Does this cluster kill a job that goes over its ``--mem``? Read from ``scontrol show config``.

Pure: ``memory_enforcement`` decides from the text; ``read_memory_enforcement`` is the thin call.
Doctor reports it, and the acceptance scenarios choose their out-of-memory fault by it (a memory
cgroup where the kernel enforces ``--mem``, an address-space limit where nothing does).

What makes Slurm enforce ``--mem`` with the kernel: ``TaskPlugin`` includes ``task/cgroup``,
cgroup.conf has ``ConstrainRAMSpace=yes``, and memory is allocated (``SelectTypeParameters`` with
``MEMORY``): without that, Slurm 22.05 hands task/cgroup no per-job figure and every job's limit
is the node's whole RealMemory (measured on the local cluster). ``JobAcctGatherParams=OverMemoryKill``
is the other way: slurmstepd polls usage and kills a step over its limit, late and in between polls.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sidecar.slurm.runner import Runner, SlurmCommandError


class Enforcement(enum.Enum):
    CGROUP = "cgroup"      # the kernel's memory cgroup: an OOM kill, the step ends OUT_OF_MEMORY
    POLLING = "polling"    # jobacct_gather's OverMemoryKill: a sampled check, between polls nothing
    NONE = "none"          # nothing: a job over its --mem runs on until the machine runs out
    UNKNOWN = "unknown"    # the configuration could not be read


@dataclass(frozen=True)
class MemoryEnforcement:
    state: Enforcement
    reason: str

    @property
    def enforced(self) -> bool:
        return self.state is Enforcement.CGROUP


def parse_show_config(text: str) -> dict[str, str]:
    """``Key = value`` lines of ``scontrol show config`` (cgroup.conf's section included)."""
    conf: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            conf.setdefault(key.strip(), value.strip())
    return conf


def memory_enforcement(show_config: str) -> MemoryEnforcement:
    conf = parse_show_config(show_config)
    task = conf.get("TaskPlugin", "")
    select = conf.get("SelectTypeParameters", "").upper()
    gather = conf.get("JobAcctGatherParams", "")
    if not task:
        return MemoryEnforcement(Enforcement.UNKNOWN, "`scontrol show config` printed no TaskPlugin")
    cgroup = "task/cgroup" in task
    ram = conf.get("ConstrainRAMSpace", "no").lower() == "yes"
    if cgroup and ram and "MEMORY" in select:
        swap = conf.get("ConstrainSwapSpace", "no").lower() == "yes"
        plugin = conf.get("CgroupPlugin", "cgroup")
        return MemoryEnforcement(Enforcement.CGROUP, (
            f"TaskPlugin={task}, ConstrainRAMSpace=yes ({plugin}"
            f"{', swap constrained' if swap else ', swap NOT constrained: a job may swap before it is killed'}), "
            f"SelectTypeParameters={conf['SelectTypeParameters']}: a job over its --mem is OOM-killed "
            "by the kernel (its step ends OUT_OF_MEMORY, slurmstepd logs the oom-kill)"))
    if "OverMemoryKill" in gather:
        return MemoryEnforcement(Enforcement.POLLING, (
            f"JobAcctGatherParams={gather}: a step over its --mem is killed when a poll sees it "
            "(every JobAcctGatherFrequency), not by the kernel"))
    if not cgroup:
        why = f"TaskPlugin={task}"
    elif not ram:
        why = "cgroup.conf has no ConstrainRAMSpace=yes"
    else:
        why = (f"SelectTypeParameters={conf.get('SelectTypeParameters', '(none)')} does not allocate "
               "memory, so every job's limit is the node's whole memory")
    return MemoryEnforcement(Enforcement.NONE, (
        f"{why}: a job over its --mem is not stopped by Slurm; the machine's OOM killer picks "
        "a process when memory runs out"))


def read_memory_enforcement(runner: Runner) -> MemoryEnforcement:
    try:
        out = runner(["scontrol", "show", "config"], timeout_s=20, retries=0).stdout
    except SlurmCommandError as exc:
        return MemoryEnforcement(Enforcement.UNKNOWN, f"`scontrol show config`: {exc.message}")
    return memory_enforcement(out)
