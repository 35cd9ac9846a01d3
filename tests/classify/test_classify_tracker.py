"""RootCauseTracker: the first non-cascade hit wins; cascades never take over."""

from __future__ import annotations

from sidecar.classify import FailureClass, RootCauseTracker, SignalHit


def hit(no, cascade=False, node=None, error_type="nccl"):
    return SignalHit(no, f"line {no}", "s", error_type, FailureClass.TRANSIENT, node, cascade)


def test_cascade_before_root_does_not_become_root():
    t = RootCauseTracker()
    assert t.feed(hit(1, cascade=True, node="n-cascade")) is False
    assert t.feed(hit(2, node=None)) is True
    assert t.feed(hit(3, node="n3")) is False
    v = t.verdict()
    assert v.root.line_no == 2
    assert [h.line_no for h in v.evidence] == [1, 3]
    # the root names no node: the first non-cascade evidence line does, never a cascade line
    assert v.node == "n3"
    assert v.last_iteration is None and v.last_checkpoint is None


def test_only_cascades_means_no_root():
    t = RootCauseTracker()
    t.feed(hit(1, cascade=True, node="n1"))
    v = t.verdict()
    assert v.root is None and v.node is None and v.evidence_total == 1
