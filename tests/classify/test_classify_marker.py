"""The sidecar's marker follows the root cause as a real log streams in: a symptom printed
first is replaced by the killed rank, and the marker says which layer decided and how sure."""

from __future__ import annotations

from classify_helpers import FIXTURES
from sidecar.classify import load_monitoring_preset
from sidecar.rundir import RunPaths, read_json
from sidecar.scan import ScanContext, Scanner

CFG = load_monitoring_preset("megatron_production")


def scan_episode(tmp_path, name):
    paths = RunPaths.of(tmp_path / "run")
    paths.create("run-1")
    paths.claim_attempt(1)
    scanner = Scanner.for_monitoring(ScanContext(paths=paths, attempt=1, job_id="77", client=None), CFG)
    scanner.begin(0.0)
    for no, raw in enumerate((FIXTURES / "episodes" / name).read_bytes().splitlines(), 1):
        scanner.feed(no, raw, 0.01 * no)
    return paths, read_json(paths.marker(1)), scanner


def test_marker_moves_from_the_survivors_symptom_to_the_killed_rank(tmp_path):
    paths, marker, scanner = scan_episode(tmp_path, "ddp_killed_rank.log")
    assert (marker["signal"], marker["error_type"], marker["class"], marker["line_no"]) == (
        "rank_killed", "killed", "transient", 33)
    assert (marker["role"], marker["layer"], marker["confidence"]) == ("death", "curated", "high")
    assert [s["signal"] for s in marker["superseded"]] == ["gloo_peer_closed"]
    assert marker["superseded"][0]["line_no"] == 31 and marker["superseded"][0]["role"] == "symptom"
    # the grace timer counts from the first detection: the replacement does not delay the cancel
    assert scanner.detected_at == 0.01 * 31 and marker["time"] == 0.01 * 33
    kinds = [(e["event"], e.get("signal")) for e in paths.iter_events() if e["event"] == "marker"]
    assert kinds == [("marker", "gloo_peer_closed"), ("marker", "rank_killed")]


def test_marker_from_the_family_layer_carries_its_rule_and_tip(tmp_path):
    _, marker, _ = scan_episode(tmp_path, "ddp_nan_loss.log")
    assert (marker["signal"], marker["layer"], marker["class"], marker["line_no"]) == (
        "health.nan_iteration", "family", "permanent", 16)
    assert "lower learning rate" in marker["tip"] and marker["superseded"] == []
