"""Which node a line came from when only ``srun --label`` says so (pure).

``srun --label`` starts every line of a task with its task id (``0: ...``, padded to the width
of the largest id: `` 7: ...``). The job knows where each task runs: ``SLURM_JOB_NODELIST``
(expanded in order) and ``SLURM_TASKS_PER_NODE`` (Slurm's compressed counts, ``2(x3),1``), and
srun's default block distribution puts tasks ``0..k-1`` on the first node, the next ``k`` on the
second, and so on (``--distribution=cyclic`` deals them round-robin; ``SLURM_DISTRIBUTION``
says which). With one torchrun per node (``--ntasks-per-node=1``), label N is the N-th node.

The rank torchrun prints (``[rank3]:``) is the rendezvous' join order, not a node: it is never
mapped. A label names the node that printed the line, which is the failing node only for a
failure about the printing process or its own hardware (``NODE_LOCAL_ERROR_TYPES``): a
survivor's "connection closed by peer" on node 0 says nothing bad about node 0.
"""

from __future__ import annotations

import re
from typing import Mapping

# Failures of the node printing them: a labelled line names that node. Not a killed or crashed
# process: a kill -9 (an admin, a user, a launcher) says nothing bad about its node, and a node
# the marker names is excluded from the next attempt.
NODE_LOCAL_ERROR_TYPES = frozenset({
    "gpu_hw", "cuda_error", "xid", "host_hw", "host_oom", "oom", "node_failure",
})

_LABEL = re.compile(rb"^\s*(\d{1,6}): ")
_COUNT = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


def expand_tasks_per_node(text: str | None) -> tuple[int, ...]:
    """``2(x3),1`` -> (2, 2, 2, 1); empty or malformed -> ()."""
    out: list[int] = []
    for part in (text or "").split(","):
        m = _COUNT.match(part.strip())
        if m is None:
            return ()
        out.extend([int(m.group(1))] * int(m.group(2) or 1))
    return tuple(out)


def task_nodes(nodelist: str | None, tasks_per_node: str | None, distribution: str | None = None) -> tuple[str, ...]:
    """The node of each task id (index = task id); () when the layout cannot be known."""
    # imported here: the sidecar.slurm package imports the Slurm clients (~16 ms of every
    # `classify` start), and classifying lines needs only labelled_node
    from sidecar.slurm.parse import expand_nodelist

    nodes = expand_nodelist(nodelist)
    counts = expand_tasks_per_node(tasks_per_node) if tasks_per_node else (1,) * len(nodes)
    if not nodes or len(counts) != len(nodes):
        return ()
    if (distribution or "").split(":")[0].startswith("cyclic"):
        out: list[str] = []
        left = list(counts)
        while any(left):
            for i, node in enumerate(nodes):
                if left[i]:
                    out.append(node)
                    left[i] -= 1
        return tuple(out)
    if (distribution or "block").split(":")[0] not in ("block", ""):
        return ()  # plane/arbitrary: the task ids do not say the node
    return tuple(node for node, k in zip(nodes, counts) for _ in range(k))


def task_nodes_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    """``task_nodes`` from the batch script's environment (inside the allocation)."""
    return task_nodes(env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST"),
                      env.get("SLURM_TASKS_PER_NODE"), env.get("SLURM_DISTRIBUTION"))


def task_nodes_of_job(node_list: str | None, ntasks_per_node: int | None) -> tuple[str, ...]:
    """``task_nodes`` after the job, from Slurm's record of its nodes (the watchdog's view) and
    the ``--ntasks-per-node`` it was submitted with (None: sbatch's default for ``--nodes``
    alone, one task per node). The step's srun inherits that layout with block distribution."""
    from sidecar.slurm.parse import expand_nodelist

    n = len(expand_nodelist(node_list))
    return task_nodes(node_list, f"{ntasks_per_node or 1}(x{n})" if n else None)


def labelled_node(data: bytes, nodes: tuple[str, ...]) -> str | None:
    """The node of the task whose ``srun --label`` prefix starts ``data``, if known."""
    m = _LABEL.match(data)
    if m is None or not nodes:
        return None
    task = int(m.group(1))
    return nodes[task] if task < len(nodes) else None
