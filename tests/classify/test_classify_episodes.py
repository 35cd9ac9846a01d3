"""Whole failure episodes: root cause over cascade, class, node, progress; the CLI verdict."""

from __future__ import annotations

import json

import pytest

from classify_helpers import EPISODES, episode_expect
from sidecar.classify import LineClassifier, classify_lines, load_monitoring_preset
from sidecar.classify.report import root_line_node, verdict_for_path
from sidecar.classify.tasks import task_nodes_of_job
from sidecar.cli.main import main

CFG = load_monitoring_preset("megatron_production")


def test_at_least_five_episodes():
    assert len(EPISODES) >= 5


@pytest.mark.parametrize("path", EPISODES, ids=lambda p: p.stem)
def test_episode_verdict(path):
    exp = episode_expect(path)
    # lines end at \n only, as the scanner and the sidecar read them: a progress bar's bare \r
    # (tqdm) stays inside its line, and line numbers are grep -n's
    lines = path.read_bytes().split(b"\n")
    # srun --label lines are placed on the job's nodes (nodelist=...) as the sidecar and the
    # watchdog place them; without a node list no label names a node
    nodes = task_nodes_of_job(exp.get("nodelist"), 1)
    for verdict in (classify_lines(lines, CFG, nodes), verdict_for_path(str(path), CFG, nodes)):
        if exp["root_line"] == "-":  # a finished run or a silent hang: no line names a failure
            assert verdict.root is None, f"line {verdict.root.line_no} fires: {verdict.root.line}"
            assert (verdict.node or "-") == exp["node"]
            continue
        assert verdict.root is not None
        assert verdict.root.line_no == int(exp["root_line"])
        assert verdict.root.signal == exp["signal"]
        assert verdict.root.error_type == exp["error_type"]
        assert verdict.root.failure_class.value == exp["class"]
        assert (verdict.node or "-") == exp["node"]
        assert (root_line_node(verdict, nodes) or "-") == exp.get("line_node", "-")
        if "last_iteration" in exp:
            assert verdict.last_iteration == int(exp["last_iteration"])
        if "last_checkpoint" in exp:
            assert verdict.last_checkpoint == int(exp["last_checkpoint"])
        # lines the root replaced (a symptom printed first, a death a memory verdict explains)
        assert ",".join(str(h.line_no) for h in verdict.superseded) == exp.get("superseded", "")
        assert all(h.line_no > 0 for h in verdict.evidence)


@pytest.mark.parametrize("path", EPISODES, ids=lambda p: p.stem)
def test_episode_header_is_silent(path):
    cls = LineClassifier(CFG)
    for no, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("#"):
            assert cls.classify(line, no) is None, f"header line {no} of {path.name} fires"


@pytest.mark.parametrize("path", EPISODES, ids=lambda p: p.stem)
def test_cli_json_verdict(path, capsys):
    exp = episode_expect(path)
    assert main(["classify", str(path), "--json", *(["--nodelist", exp["nodelist"]] if "nodelist" in exp else [])]) == 0
    out = json.loads(capsys.readouterr().out)
    if exp["root_line"] == "-":
        assert out["root_cause"] is None and out["error_type"] is None
        return
    assert out["root_cause"]["line_no"] == int(exp["root_line"])
    assert out["error_type"] == exp["error_type"]
    assert out["class"] == exp["class"]
    assert (out["node"] or "-") == exp["node"]
    assert (out["line_node"] or "-") == exp.get("line_node", "-")
    assert out["decision"]["action"] in ("restart", "stop", "continue")
    if exp["class"] == "permanent":
        assert out["decision"]["action"] == "stop"
    if exp["class"] == "transient":
        assert out["decision"]["action"] == "restart"


def test_evidence_is_bounded():
    lines = ["[default0]:NCCL ERROR timeout"] + ["srun: error: n1: task 0: Exited with exit code 1"] * 500
    v = classify_lines(lines, CFG)
    assert v.root.line_no == 1 and len(v.evidence) == 20 and v.evidence_total == 500
