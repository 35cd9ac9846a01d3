"""srun --label task ids mapped to nodes: the layout (pure) and the classifier's use of it."""

from __future__ import annotations

from classify_helpers import FIXTURES
from sidecar.classify import LineClassifier, classify_lines, load_monitoring_preset
from sidecar.classify.tasks import expand_tasks_per_node, labelled_node, task_nodes, task_nodes_from_env

CFG = load_monitoring_preset("megatron_production")
KILLED = FIXTURES / "episodes" / "ddp_killed_rank.log"
ALLOC = FIXTURES / "episodes" / "ddp_cpu_alloc.log"


def test_tasks_per_node_compressed_form():
    assert expand_tasks_per_node("2(x3),1") == (2, 2, 2, 1)
    assert expand_tasks_per_node("1(x3)") == (1, 1, 1)
    assert expand_tasks_per_node("4") == (4,)
    assert expand_tasks_per_node("x") == ()


def test_one_task_per_node_label_n_is_the_nth_node():
    nodes = task_nodes("n[1-3]", "1(x3)")
    assert nodes == ("n1", "n2", "n3")
    assert labelled_node(b"1: E1201 failed (exitcode: -9)", nodes) == "n2"
    assert labelled_node(b" 2: x", nodes) == "n3"  # srun pads labels to the widest id
    assert labelled_node(b"3: beyond the layout", nodes) is None
    assert labelled_node(b"[rank1]: a torch rank is not a node", nodes) is None


def test_block_and_cyclic_distribution():
    assert task_nodes("a[01-02]", "2(x2)") == ("a01", "a01", "a02", "a02")
    assert task_nodes("a[01-02]", "2(x2)", "cyclic") == ("a01", "a02", "a01", "a02")
    assert task_nodes("a[01-02]", "3,1", "block:cyclic") == ("a01", "a01", "a01", "a02")
    assert task_nodes("a[01-02]", "2(x2)", "plane=2") == ()  # the ids do not say the node
    assert task_nodes("a[01-03]", "2(x2)") == ()  # counts for another node list: unknown
    assert task_nodes(None, "1") == ()


def test_from_the_batch_environment():
    env = {"SLURM_JOB_NODELIST": "n[1-3]", "SLURM_TASKS_PER_NODE": "1(x3)"}
    assert task_nodes_from_env(env) == ("n1", "n2", "n3")
    assert task_nodes_from_env({}) == ()


def _real(path, prefix: str, needle: str) -> str:
    """A line of a real episode as ``srun --label`` prints it for task ``prefix``."""
    line = next(x for x in path.read_text(encoding="utf-8").splitlines() if needle in x and x[0] != "#")
    return f"{prefix}: {line}"


def test_a_rank_out_of_memory_names_its_node_the_survivor_does_not():
    # the real episode (torchrun, gloo, DefaultCPUAllocator refusing 8 GiB in rank 1) as one
    # torchrun per node under srun --label prints it: the failing rank on task 1, the survivor on 0
    lines = [_real(ALLOC, "1", "DefaultCPUAllocator"), _real(ALLOC, "0", "pair.cc:553] Connection closed by peer")]
    nodes = task_nodes("n[1-3]", "1(x3)")
    verdict = classify_lines(lines, CFG, nodes)
    assert verdict.root is not None and verdict.root.error_type == "host_oom"
    assert verdict.node == "n2"
    survivor = LineClassifier(CFG, nodes).classify(lines[1], 2)
    assert survivor is not None and survivor.node is None  # a symptom: node 1 is not to blame
    assert classify_lines(lines, CFG).node is None  # without the layout the label names nothing


def test_a_killed_rank_does_not_blame_its_node():
    # kill -9 of a rank (the real killed-rank episode): the node is not at fault, and a node the
    # marker names would be excluded from the next attempt
    lines = [_real(KILLED, "0", "Connection reset by peer"), _real(KILLED, "1", "failed (exitcode: -9)")]
    verdict = classify_lines(lines, CFG, task_nodes("n[1-3]", "1(x3)"))
    assert verdict.root is not None and verdict.root.error_type == "killed"
    assert verdict.node is None


def test_a_line_naming_its_node_wins_over_the_label():
    nodes = task_nodes("n[1-3]", "1(x3)")
    hit = LineClassifier(CFG, nodes).classify(
        "0: n3:2211:2301 [0] NCCL WARN Cuda failure 'unspecified launch failure'", 1)
    assert hit is not None and hit.node == "n3"


def test_task_nodes_of_job_after_the_end():
    from sidecar.classify.tasks import task_nodes_of_job

    # Slurm's record of the job (scontrol/sacct NodeList) and the --ntasks-per-node it was submitted with
    assert task_nodes_of_job("n[2-3]", 1) == ("n2", "n3")
    assert task_nodes_of_job("n[1-2]", 2) == ("n1", "n1", "n2", "n2")
    assert task_nodes_of_job("n[1-2]", None) == ("n1", "n2")  # sbatch --nodes alone: one task per node
    assert task_nodes_of_job(None, 1) == () and task_nodes_of_job("", 1) == ()
