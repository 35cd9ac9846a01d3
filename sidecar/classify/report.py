"""``autoexp-sidecar classify``: the verdict for a finished log, and per-line output.

The verdict is built with the streaming scanner (``scan.py``): constant memory and RE2 speed
whatever the log size. Progress (last iteration, last checkpoint) is read from each chunk's
last progress line, found backwards with RE2 (``progress.ProgressReader.last``), so benign lines
never reach Python.
"""

from __future__ import annotations

import json
from typing import IO, Any, Iterator

from sidecar.classify.classifier import LineClassifier
from sidecar.classify.model import FailureClass, Layer, MonitoringConfig, ProgressKind, Role, SignalHit, Verdict
from sidecar.classify.progress import ProgressReader
from sidecar.classify.scan import scan_path
from sidecar.classify.tasks import labelled_node
from sidecar.classify.tracker import RootCauseTracker

# What a failure class means without a restart config (the policy module refines it).
CLASS_OUTCOME = {
    FailureClass.TRANSIENT: "restart",
    FailureClass.PERMANENT: "stop",
    FailureClass.TERMINAL: "continue",
}
_STEPS = frozenset({ProgressKind.STEP})
_CHECKPOINTS = frozenset({ProgressKind.SAVED, ProgressKind.LOADED})


class _Progress:
    """last_iteration / last_checkpoint of a whole log, chunk by chunk (later chunks win)."""

    def __init__(self, cfg: MonitoringConfig) -> None:
        self.reader = ProgressReader(cfg.progress)
        self.last_iteration: int | None = None
        self.last_checkpoint: int | None = None

    def __call__(self, buf: bytes, end: int) -> None:
        step, ckpt = self.reader.last(buf, end, _STEPS, _CHECKPOINTS)
        if step is not None:
            self.last_iteration = step.iteration
        if ckpt is not None:
            self.last_checkpoint = ckpt.iteration


def verdict_for_path(path: str, cfg: MonitoringConfig, task_nodes: tuple[str, ...] = ()) -> Verdict:
    """The verdict for a log file (or ``-`` for stdin), streamed. ``task_nodes``: the node of
    each ``srun --label`` task id (``tasks.task_nodes_of_job``)."""
    classifier = LineClassifier(cfg, task_nodes)
    tracker = RootCauseTracker()
    progress = _Progress(cfg)
    for hit in scan_path(path, classifier, on_region=progress):
        tracker.feed(hit)
    return tracker.verdict(progress)  # type: ignore[arg-type]  # duck-typed progress


def iter_line_hits(path: str, cfg: MonitoringConfig, task_nodes: tuple[str, ...] = ()) -> Iterator[SignalHit]:
    return scan_path(path, LineClassifier(cfg, task_nodes))


def write_line_hits(path: str, cfg: MonitoringConfig, out: IO[str], task_nodes: tuple[str, ...] = ()) -> int:
    """One JSON object per matching line; returns how many were written."""
    n = 0
    for hit in iter_line_hits(path, cfg, task_nodes):
        out.write(json.dumps(hit.to_json()) + "\n")
        n += 1
    return n


def restart_decision(verdict: Verdict, restart_cfg: Any = None) -> dict[str, Any]:
    """What the policy would do with this verdict alone (as a failed first attempt).

    Uses ``sidecar.policy.decision_for_verdict`` when it exists and a restart config is given;
    otherwise the outcome of the root cause's class, and "restart" for an unclassified failure
    (the policy's default for unknown failures within the budget).
    """
    if restart_cfg is not None:
        try:
            from sidecar.policy import decision_for_verdict
        except ImportError:
            decision_for_verdict = None  # type: ignore[assignment]
        if decision_for_verdict is not None:
            decision = decision_for_verdict(verdict, restart_cfg)
            as_dict = decision.to_dict() if hasattr(decision, "to_dict") else {}
            action = getattr(decision, "action", None)
            return {
                **as_dict,
                "action": getattr(action, "value", action),
                "reason": getattr(decision, "reason", ""),
                "source": "policy",
            }
    if verdict.root is None:
        return {"action": "restart", "reason": "no known failure in the log (unknown: restart within budget)", "source": "class"}
    klass = verdict.root.failure_class
    return {
        "action": CLASS_OUTCOME[klass],
        "reason": f"{klass.value} failure (error_type={verdict.root.error_type})",
        "source": "class",
    }


def root_line_node(verdict: Verdict, task_nodes: tuple[str, ...]) -> str | None:
    """The node the root line came from (its ``srun --label`` task), if known."""
    root = verdict.root
    return labelled_node(root.line.encode("utf-8", "replace"), task_nodes) if root else None


def verdict_to_json(verdict: Verdict, decision: dict[str, Any], path: str, monitoring: str,
                    task_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    root = verdict.root
    return {
        "log": path,
        "monitoring": monitoring,
        "root_cause": None if root is None else {
            **root.to_json(), "line": root.line, "cascade": root.cascade,
        },
        "error_type": root.error_type if root else None,
        "class": root.failure_class.value if root else None,
        "node": verdict.node,
        "line_node": root_line_node(verdict, task_nodes),
        "evidence_count": verdict.evidence_total,
        "evidence": [{**h.to_json(), "line": h.line, "cascade": h.cascade} for h in verdict.evidence],
        "why": verdict.why,
        "superseded": [{**h.to_json(), "line": h.line} for h in verdict.superseded],
        "tip": root.tip if root else "",
        "last_iteration": verdict.last_iteration,
        "last_checkpoint": verdict.last_checkpoint,
        "decision": decision,
    }


def verdict_to_text(verdict: Verdict, decision: dict[str, Any], path: str, monitoring: str,
                    task_nodes: tuple[str, ...] = ()) -> str:
    root = verdict.root
    out = [f"log:             {path}", f"monitoring:      {monitoring}"]
    if root is None:
        out.append("root cause:      none found (no signal matched outside cascades)")
    else:
        out += [
            f"root cause:      line {root.line_no}: {root.line[:300]}",
            f"signal:          {root.signal}",
            f"error_type:      {root.error_type}",
            f"class:           {root.failure_class.value}",
        ]
    out += [
        f"node:            {verdict.node or '-'}",
        *_line_from(verdict, task_nodes),
        f"evidence lines:  {verdict.evidence_total}",
        f"last iteration:  {verdict.last_iteration if verdict.last_iteration is not None else '-'}",
        f"last checkpoint: {verdict.last_checkpoint if verdict.last_checkpoint is not None else '-'}",
        f"decision:        {decision['action']}: {decision['reason']}",
    ]
    for hit in verdict.evidence[:5]:
        kind = "cascade" if hit.cascade else hit.failure_class.value
        out.append(f"  evidence line {hit.line_no} ({hit.signal}, {kind}): {hit.line[:160]}")
    return "\n".join(out)


def override_hint(hit: SignalHit) -> str:
    """How a user changes what ``hit`` decided, in their run config."""
    if hit.layer is Layer.FAMILY:
        return (f"monitoring_overrides: {{families: {{disabled: [{hit.signal}]}}}}   # switch the family rule off, "
                f"or add your own signal for this wording (yours come first): monitoring_overrides: "
                f"{{signals: {{my_rule: {{pattern: '...', error_type: {hit.error_type}, class: transient|permanent}}}}}}")
    if hit.layer is Layer.USER:
        return f"your own signal {hit.signal}: edit or remove it in the run config"
    return (f"monitoring.signals.{hit.signal}.class: transient|permanent   # or "
            f"monitoring.signals.{hit.signal}.disabled: true (the family layer may still read the line)")


def _hit_line(hit: SignalHit, width: int = 160) -> str:
    return (f"line {hit.line_no} ({hit.signal}: {hit.layer.value} layer, {hit.role.value}, "
            f"{hit.failure_class.value}, {hit.confidence.value}): {hit.line[:width]}")


def _line_from(verdict: Verdict, task_nodes: tuple[str, ...]) -> list[str]:
    node = root_line_node(verdict, task_nodes)
    return [f"line from node:  {node} (its srun --label task)"] if node else []


def explain_verdict(verdict: Verdict, decision: dict[str, Any], path: str, monitoring: str,
                    task_nodes: tuple[str, ...] = ()) -> str:
    """``classify --explain LOG``: which layer and rule decided, why that line, and which lines
    were taken as cascade or replaced."""
    out = [f"log:             {path}", f"monitoring:      {monitoring}"]
    root = verdict.root
    if root is None:
        out.append("root cause:      none: no line named a cause (cascade lines alone never do)")
    else:
        out += [
            f"root cause:      line {root.line_no}: {root.line[:300]}",
            f"decided by:      {root.layer.value} layer, {'rule' if root.layer is Layer.FAMILY else 'signal'} "
            f"{root.signal} (role {root.role.value}, confidence {root.confidence.value})",
            f"error_type:      {root.error_type} ({root.failure_class.value})",
            f"why this line:   {verdict.why}",
        ]
        for old in verdict.superseded:
            out.append(f"  replaced {_hit_line(old)}")
        if root.tip:
            out.append(f"tip:             {root.tip}")
        out.append(f"to override:     {override_hint(root)}")
    cascade = [h for h in verdict.evidence if h.role is Role.CASCADE]
    other = [h for h in verdict.evidence if h.role is not Role.CASCADE]
    out.append(f"node:            {verdict.node or '-'}")
    out += _line_from(verdict, task_nodes)
    out.append(f"decision:        {decision['action']}: {decision['reason']}")
    out.append(f"later lines:     {verdict.evidence_total} matched after the root (first {len(verdict.evidence)} shown); "
               f"{len(cascade)} of them cascade (never a root)")
    for hit in cascade:
        out.append(f"  cascade {_hit_line(hit)}")
    for hit in other:
        out.append(f"  after the root {_hit_line(hit)}")
    return "\n".join(out)


def explain_line(line: str, cfg: MonitoringConfig) -> str:
    """``classify --explain --line TEXT``: what one line means and which layer says so, or why
    it does not fire."""
    classifier = LineClassifier(cfg)
    hit = classifier.classify(line, 1)
    out = [f"line:            {line[:300]}", f"monitoring:      {cfg.name}"]
    if hit is not None:
        out += [
            f"decided by:      {hit.layer.value} layer, {'rule' if hit.layer is Layer.FAMILY else 'signal'} {hit.signal}",
            f"error_type:      {hit.error_type} ({hit.failure_class.value})",
            f"role:            {hit.role.value} (confidence {hit.confidence.value})",
            f"node:            {hit.node or '-'}",
        ]
        if hit.tip:
            out.append(f"tip:             {hit.tip}")
        out.append(f"to override:     {override_hint(hit)}")
        return "\n".join(out)
    out.append(f"no hit:          {classifier.why_silent(line)}")
    return "\n".join(out)
