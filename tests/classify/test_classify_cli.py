"""``autoexp-sidecar classify``: verdict text, --json, --lines on files and stdin; streaming scan."""

from __future__ import annotations

import io
import json
import sys

import pytest

from sidecar.classify import LineClassifier, load_monitoring_preset
from sidecar.classify.scan import scan_stream
from sidecar.cli.main import main

LOG = "\n".join([
    " [2024-05-01 12:00:00] iteration       10/     100 | lm loss: 3.2E+00 |",
    "node01:1:1 [0] NCCL INFO NCCL_IB_TIMEOUT set by environment to 18.",
    " saving checkpoint at iteration       10 to /ckpt",
    "  successfully saved checkpoint from iteration       10 to /ckpt [ t 1/ 1, p 1/ 1 ]",
    " [2024-05-01 12:00:02] iteration       20/     100 | lm loss: 3.1E+00 |",
    "node07:11:12 [3] NCCL WARN NET/IB : Got completion from peer 10.0.0.2<1> with error 12, opcode 0, len 0, vendor err 129",
    "srun: error: node07: task 3: Exited with exit code 1",
]) + "\n"


@pytest.fixture
def log(tmp_path):
    p = tmp_path / "train.log"
    p.write_text(LOG)
    return p


def test_text_verdict(log, capsys):
    assert main(["classify", str(log)]) == 0
    out = capsys.readouterr().out
    assert "root cause:      line 6:" in out and "error_type:      nccl" in out
    assert "class:           transient" in out and "node:            node07" in out
    assert "last iteration:  20" in out and "last checkpoint: 10" in out
    assert "evidence lines:  1" in out and "decision:        restart" in out


def test_json_verdict(log, capsys):
    assert main(["classify", str(log), "--json", "--monitoring", "generic"]) == 0
    out = json.loads(capsys.readouterr().out)
    # generic has no IB completion signal: the family layer reads it by its vocabulary
    assert out["monitoring"] == "generic"
    root = out["root_cause"]
    assert (root["line_no"], root["layer"], root["signal"], root["class"]) == (6, "family", "net.ib", "transient")
    assert root["node"] == "node07" and root["confidence"] == "medium"
    assert out["evidence_count"] == 1 and out["decision"]["action"] == "restart"


def test_lines_output(log, capsys):
    assert main(["classify", str(log), "--lines"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert rows == [
        {"line_no": 6, "signal": "nccl_net_error", "error_type": "nccl", "class": "transient", "node": "node07",
         "role": "cause", "layer": "curated", "confidence": "high"},
        {"line_no": 7, "signal": "srun_task_exit", "error_type": "slurm", "class": "transient", "node": "node07",
         "role": "cascade", "layer": "curated", "confidence": "high"},
    ]


def test_lines_from_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xff CUDA out of memory\nok\n")))
    assert main(["classify", "-", "--lines"]) == 0
    assert json.loads(capsys.readouterr().out) == {"line_no": 2, "signal": "cuda_oom", "error_type": "oom", "class": "permanent",
                                                   "node": None, "role": "cause", "layer": "curated", "confidence": "high"}


def test_missing_log_and_bad_preset(tmp_path, capsys):
    assert main(["classify", str(tmp_path / "nope.log")]) == 2
    assert "ERROR log file not found" in capsys.readouterr().err
    (tmp_path / "a.log").write_text("x\n")
    assert main(["classify", str(tmp_path / "a.log"), "--monitoring", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_decision_falls_back_to_class_outcome():
    from sidecar.classify import FailureClass, SignalHit, Verdict
    from sidecar.classify.report import restart_decision

    for klass, action in ((FailureClass.TRANSIENT, "restart"), (FailureClass.PERMANENT, "stop"), (FailureClass.TERMINAL, "continue")):
        v = Verdict(SignalHit(1, "l", "s", "e", klass, None, False), (), None, None, None)
        assert restart_decision(v, None)["action"] == action


@pytest.mark.parametrize("chunk", [5, 64, 1000, 1 << 16])
def test_scan_matches_line_by_line_at_any_chunk_size(chunk):
    cls = LineClassifier(load_monitoring_preset("megatron_production"))
    lines = LOG.encode().split(b"\n") * 3 + [b"y" * 200000 + b" NCCL ERROR", b"z" * 100, b"KeyError: 'x'"]
    text = b"\n".join(lines)  # last line without a newline
    expect = [(i, h.signal) for i, l in enumerate(lines, 1) if (h := cls.classify(l, i))]
    got = [(h.line_no, h.signal) for h in scan_stream(io.BytesIO(text), cls, chunk_bytes=chunk)]
    assert got == expect and got[-1] == (len(lines), "code_error")


def test_unknown_restart_preset_is_an_error(log, capsys):
    assert main(["classify", str(log), "--restart", "nope"]) == 2
    assert "restart: unknown preset 'nope'" in capsys.readouterr().err


def test_crlf_lines_scan_like_single_lines():
    cls = LineClassifier(load_monitoring_preset("megatron_production"))
    text = b"ok\r\n[rank0]: AssertionError\r\nprogress 10%\rprogress 20%\r\nKeyError\r\n"
    got = [(h.line_no, h.signal) for h in scan_stream(io.BytesIO(text), cls)]
    assert got == [(2, "code_error"), (4, "code_error")]


def test_explain_a_real_episode_names_layer_rule_replaced_and_cascade_lines(capsys):
    from classify_helpers import FIXTURES

    path = FIXTURES / "episodes" / "ddp_killed_rank.log"
    assert main(["classify", str(path), "--explain"]) == 0
    out = capsys.readouterr().out
    assert "root cause:      line 33:" in out
    assert "decided by:      curated layer, signal rank_killed (role death, confidence high)" in out
    assert "why this line:   a death after the peer_lost symptom of line 31" in out
    assert "  replaced line 31 (gloo_peer_closed: curated layer, symptom" in out
    assert "  cascade line 50 (elastic_child_failed" in out
    assert "to override:     monitoring.signals.rank_killed." in out


def test_explain_one_line_from_the_family_layer_and_a_silent_one(capsys):
    assert main(["classify", "--explain", "--line",
                 "srun: error: Unable to allocate resources: Invalid qos specification"]) == 0
    out = capsys.readouterr().out
    assert "decided by:      family layer, rule slurm.refused" in out and "config_error (permanent)" in out
    assert "families: {disabled: [slurm.refused]}" in out
    assert main(["classify", "--explain", "--line", "[W1201 10:00:00.000 socket.cpp:464] connect failed, retrying"]) == 0
    assert "the family layer reads it as benign (a log level below error, a retry" in capsys.readouterr().out
    assert main(["classify", "--line", "x"]) == 2
    assert "--line TEXT goes with --explain" in capsys.readouterr().err


USER_CONFIG = """\
slurm: local
backend: command
monitoring: megatron_production
restart: megatron_transient
monitoring_overrides:
  signals:
    - name: my_flaky_storage
      pattern: 'checkpoint writer gave up'
      error_type: filesystem
      class: transient
"""


def test_explain_with_the_users_config_and_run(tmp_path, capsys):
    """--config and --run read the user's own signals (which decide first), as the sidecar does."""
    import yaml

    from sidecar.config.load import load_config
    from sidecar.rundir import RunPaths

    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text(USER_CONFIG, encoding="utf-8")
    line = "[rank0]: RuntimeError: checkpoint writer gave up"
    assert main(["classify", "--explain", "--line", line]) == 0
    assert "my_flaky_storage" not in capsys.readouterr().out  # the preset alone: a generic exception
    assert main(["classify", "--explain", "--line", line, "--config", str(cfg_file)]) == 0
    out = capsys.readouterr().out
    assert "my_flaky_storage" in out and "transient" in out

    paths = RunPaths.of(tmp_path / "run")
    paths.create(run_id="run")
    paths.config.write_text(yaml.safe_dump(load_config(cfg_file).to_dict(), sort_keys=False), encoding="utf-8")
    log = tmp_path / "train.log"
    log.write_text(" iteration        5/     100 | lm loss: 1.0E+00 |\n" + line + "\n", encoding="utf-8")
    assert main(["classify", str(log), "--json", "--run", str(paths.root)]) == 0
    root = json.loads(capsys.readouterr().out)["root_cause"]
    assert (root["signal"], root["layer"], root["class"]) == ("my_flaky_storage", "user", "transient")
    assert main(["classify", str(log), "--run", str(paths.root), "--restart", "aggressive"]) == 2


def test_nodelist_places_labelled_lines(tmp_path, capsys):
    from sidecar.cli.main import main as cli

    log = tmp_path / "t.log"
    log.write_text("1: [default0]:[rank1]: RuntimeError: DefaultCPUAllocator: can't allocate memory: "
                   "you tried to allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)\n")
    assert cli(["classify", str(log), "--json", "--nodelist", "n[4-5]"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["node"] == "n5" and out["line_node"] == "n5"
    assert cli(["classify", str(log), "--lines", "--nodelist", "n[4-5]"]) == 0
    assert json.loads(capsys.readouterr().out)["node"] == "n5"
    assert cli(["classify", str(log), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["node"] is None and out["line_node"] is None
