"""Single lines: the dev corpus, more real lines, benign output, bytes and huge lines."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from classify_helpers import read_tsv
from sidecar.classify import FailureClass, LineClassifier, load_monitoring_preset

CFG = load_monitoring_preset("megatron_production")
CLS = LineClassifier(CFG)

# Ambiguous corpus lines, and what we chose (see the preset's descriptions):
AMBIGUOUS = {
    # illegal memory access: a kernel bug or a sick GPU; restart once, the policy's
    # "repeated failure without progress" rule stops a deterministic repeat.
    "CUDA error: an illegal memory access": ("cuda_error", FailureClass.TRANSIENT),
    # unspecified launch failure: usually the GPU/driver of the node.
    "CUDA error: unspecified launch failure": ("gpu_hw", FailureClass.TRANSIENT),
    # Inf in the grad norm: a numerics stop, which a restart from the same checkpoint repeats.
    "Unexpected result inf": ("nan_loss", FailureClass.PERMANENT),
}
LABEL_CLASS = {
    "transient": FailureClass.TRANSIENT,
    "permanent": FailureClass.PERMANENT,
    "terminal": FailureClass.TERMINAL,
}


@pytest.mark.parametrize("row", read_tsv("corpus.tsv"), ids=lambda r: f"{r['label']}-{r['category']}")
def test_dev_corpus(row):
    hit = CLS.classify(row["line"], 1)
    label = row["label"]
    if label == "noise":
        assert hit is None, hit
    elif label == "cascade":
        assert hit is None or hit.cascade, hit
    elif label == "ambiguous":
        (error_type, klass), = [v for k, v in AMBIGUOUS.items() if k in row["line"]]
        assert hit is not None and not hit.cascade
        assert (hit.error_type, hit.failure_class) == (error_type, klass)
    else:
        assert hit is not None, f"no signal for {row['line']!r} ({row['source']})"
        assert hit.failure_class is LABEL_CLASS[label] and not hit.cascade, hit


def _eval_corpus():
    """bench/eval_corpus.py: the one scoring rule for labelled corpora (also prints figures)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "eval_corpus.py"
    spec = importlib.util.spec_from_file_location("eval_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVAL = _eval_corpus()
TRAIN = [r for r in read_tsv("train_lines.tsv") if r["label"] != "ambiguous"]


@pytest.mark.parametrize("row", TRAIN, ids=lambda r: f"{r['label']}-{r['category']}")
def test_train_corpus(row):
    """416 labelled real lines from ~130 public sources: every transient/permanent line right,
    no noise line fired, no cascade line taken as a cause, no terminal line called a failure."""
    hit = CLS.classify(row["line"], 1)
    assert EVAL.is_right(row["label"], hit), f"{EVAL.describe(hit)} for {row['label']} line ({row['source']})"


@pytest.mark.parametrize("row", [r for r in read_tsv("family_probe.tsv") if r["label"] != "ambiguous"], ids=lambda r: f"{r['label']}:{r['line'][:40]}")
def test_family_probe(row):
    """Wordings of the software's own messages that the curated signals do not all know."""
    hit = CLS.classify(row["line"], 1)
    assert EVAL.is_right(row["label"], hit), f"{EVAL.describe(hit)} for {row['label']} line"


# What launchers and collectors put in front of a program's line: srun --label, torchrun, an
# ISO timestamp, Ray's actor prefix, mpirun --tag-output, pdsh (with and without its own name).
LAUNCHER_PREFIXES = ("12: ", "[rank3]: ", "3: [default3]:[rank3]: ", "2024-12-06T10:00:00.123Z ",
                     "(RayTrainWorker pid=4412, ip=10.0.0.21) ", "[1,3]<stderr>:", "gpu21: ",
                     "pdsh@login1: gpu21: ")


@pytest.mark.parametrize("prefix", LAUNCHER_PREFIXES)
def test_launcher_prefix_changes_no_verdict(prefix):
    """A failure stays a failure of the same class, and a benign line stays silent, whatever
    the launcher prepends (anchored signals, ignore patterns and family rules read the
    program's own text)."""
    rows = [r for name in ("corpus.tsv", "train_lines.tsv", "family_probe.tsv") for r in read_tsv(name)
            if r["label"] in ("transient", "permanent", "noise")]
    changed = [(r["label"], EVAL.describe(CLS.classify(prefix + r["line"], 1)), r["line"][:80]) for r in rows
               if EVAL.is_right(r["label"], CLS.classify(r["line"], 1))
               and not EVAL.is_right(r["label"], CLS.classify(prefix + r["line"], 1))]
    assert changed == []


@pytest.mark.parametrize("row", read_tsv("extra_lines.tsv"), ids=lambda r: f"{r['expect']}:{r['line'][:40]}")
def test_more_real_lines(row):
    hit = CLS.classify(row["line"], 7)
    expect = row["expect"]
    if expect == "none":
        assert hit is None, f"{hit} for benign line ({row['source']})"
        return
    if expect == "cascade":
        assert hit is None or hit.cascade, hit
        if hit is not None and row["node"] != "-":
            assert hit.node == row["node"]
        return
    assert hit is not None, f"no signal for {row['line']!r} ({row['source']})"
    assert hit.error_type == expect and not hit.cascade, hit
    assert hit.failure_class.value == row["class"]
    assert (hit.node or "-") == row["node"]
    assert hit.line_no == 7 and hit.line == row["line"]


def test_user_scenarios_exact():
    for line in ("CUDA device-side assert detected in kernel execution",
                 "RuntimeError: CUDA device-side assert detected in kernel execution"):
        hit = CLS.classify(line, 1)
        assert (hit.error_type, hit.failure_class) == ("hang", FailureClass.TRANSIENT)
    hit = CLS.classify("[default0]:NCCL ERROR timeout", 1)
    assert (hit.error_type, hit.failure_class) == ("nccl", FailureClass.TRANSIENT)


def test_bytes_invalid_utf8_and_crlf():
    hit = CLS.classify(b"\xff\xfe[rank0]: bad \xc3 bytes NCCL error in: x.cpp:1, unhandled system error\r\n", 3)
    assert hit is not None and hit.error_type == "nccl"
    assert "\ufffd" in hit.line and not hit.line.endswith("\n")
    assert CLS.classify(b"\xff\xfe\xfd plain bytes", 1) is None


def test_ten_megabyte_line_is_fast_and_uses_head_and_tail():
    body = "x" * (10 << 20)
    start = time.perf_counter()
    head = CLS.classify("torch.OutOfMemoryError: CUDA out of memory. " + body, 1)
    tail = CLS.classify(body + " srun: error: Node failure on node-9", 2)
    middle = CLS.classify(body[: 5 << 20] + " NCCL ERROR " + body[: 5 << 20], 3)
    benign = CLS.classify(body, 4)
    elapsed = time.perf_counter() - start
    assert head.error_type == "oom" and tail.error_type == "node_failure" and tail.node == "node-9"
    assert middle is None and benign is None  # the middle of a giant line is not looked at
    assert len(head.line) <= 4200  # what we keep of a hit line is bounded
    assert elapsed < 1.0, elapsed


def test_pathological_pattern_is_linear():
    # (a+)+$ backtracks exponentially in Python's re; RE2 runs it in linear time.
    from sidecar.classify import load_monitoring

    cfg = load_monitoring({"signals": [{"name": "evil", "pattern": "(a+)+$", "error_type": "x", "class": "transient"}]})
    start = time.perf_counter()
    assert LineClassifier(cfg).classify("a" * 60000 + "!", 1) is None
    assert time.perf_counter() - start < 0.5


def test_first_signal_in_order_wins():
    # an AssertionError carrying Megatron's NaN check is a numerics stop, not a code bug
    hit = CLS.classify("AssertionError: Rank 0: found NaN in local grad norm in backward pass. Device: 0, node: g1", 1)
    assert hit.signal == "nan_loss" and hit.node == "g1"


@pytest.mark.parametrize("preset", ["megatron_production", "generic"])
def test_benign_lines_never_fire_in_any_preset(preset):
    cls = LineClassifier(load_monitoring_preset(preset))
    benign = [r["line"] for r in read_tsv("extra_lines.tsv") if r["expect"] == "none"]
    benign += [r["line"] for r in read_tsv("corpus.tsv") if r["label"] == "noise"]
    assert len(benign) >= 25
    assert [l for l in benign if cls.classify(l, 1)] == []


def test_generic_preset_core_signals():
    cls = LineClassifier(load_monitoring_preset("generic"))
    for line, error_type in [
        ("[default0]:NCCL ERROR timeout", "nccl"),
        ("CUDA device-side assert detected in kernel execution", "hang"),
        ("torch.OutOfMemoryError: CUDA out of memory.", "oom"),
        ("slurmstepd: error: *** JOB 1 ON n1 CANCELLED AT 2024-01-01T00:00:00 DUE TO TIME LIMIT ***", "timeout"),
        ("[rank0]: KeyError: 'x'", "code_error"),
    ]:
        assert cls.classify(line, 1).error_type == error_type


def test_every_shipped_signal_has_a_real_example():
    from classify_helpers import EPISODES

    lines = [r["line"] for name in ("corpus.tsv", "extra_lines.tsv", "train_lines.tsv") for r in read_tsv(name)]
    for path in EPISODES:
        lines += path.read_text().splitlines()
    seen = {h.signal for line in lines if (h := CLS.classify(line, 1))}
    assert [s.name for s in CFG.signals if s.name not in seen] == []


def test_own_restart_banner_is_silent():
    """The batch script prints "autoexp-sidecar: attempt N ..., restarted after: <reason>" into
    the training log the next attempt's sidecar reads, and a reason names the failure it
    restarted from ("... CUDA out of memory before the first iteration ..."): never a failure."""
    from sidecar.config.restart import RestartPolicy
    from sidecar.policy import AttemptFacts, Cause, PastAttempt, decide
    from sidecar.slurm.types import JobState

    template = (Path(__file__).resolve().parents[2] / "sbatch_templates" / "train.sbatch.tmpl").read_text()
    assert 'echo "autoexp-sidecar: attempt $AUTOEXP_ATTEMPT' in template
    settings = RestartPolicy(exclude_error_types=("oom", "code_error"))
    gpu = PastAttempt(1, "gpu_hw", True, False, 120, node="n3", nodes=("n3", "n4"))
    cases = [
        (AttemptFacts(2, "11", JobState.FAILED, exit_code=1, nodes=("n3", "n4"),
                      marker=Cause("oom", "permanent", None, "line", "marker", "cause")), [gpu]),
        (AttemptFacts(1, "10", JobState.FAILED, exit_code=1,
                      marker=Cause("nccl", "transient", None, "line", "marker", "cause")), []),
        (AttemptFacts(1, "10", JobState.FAILED, exit_code=1,
                      marker=Cause("gpu_hw", "transient", "n3", "line", "marker", "cause")), []),
        (AttemptFacts(1, "10", JobState.NODE_FAIL), []),
        (AttemptFacts(1, "10", JobState.FAILED, exit_code=7), []),
    ]
    reasons = [decide(facts, history, settings, 0).reason for facts, history in cases]
    assert any("out of memory" in r for r in reasons)  # the case that once fired
    for reason in reasons:
        banner = f"autoexp-sidecar: attempt 2 of run /scratch/runs/r1, job 12 on n4, restarted after: {reason}"
        assert CLS.classify(banner, 1) is None, reason


def test_remote_shell_names_its_node():
    """DeepSpeed's and MPI's launchers start ranks over pdsh/ssh: a node ssh cannot reach is
    named by pdsh's prefix or ssh's own message, so the next attempt excludes it."""
    for line, node in (("pdsh@login1: gpu07: ssh exited with exit code 255", "gpu07"),
                       ("ssh: connect to host gpu08 port 22: No route to host", "gpu08")):
        hit = CLS.classify(line, 1)
        assert hit is not None and hit.error_type == "node_failure" and hit.node == node, hit
    hit = CLS.classify("pdsh@login1: gpu07: Permission denied (publickey,gssapi-with-mic).", 1)
    assert hit is not None and hit.failure_class.value == "permanent", hit
