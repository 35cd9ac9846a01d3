"""Root cause over cascade: which line of a failure episode names what went wrong.

One failure prints many lines (every rank reports it, torch elastic summarises it, srun reports
each task's exit), and not always cause first: when a rank is SIGKILLed, the survivors print
"Connection closed by peer" before the launcher reports the dead rank; when the agent hosting
the rendezvous store exits, the others print store errors. So each hit has a role
(``model.Role``) and the root is chosen by these rules, in log order:

1. The first CAUSE wins; nothing replaces it (later causes are its consequences).
2. A SYMPTOM is the root only until a CAUSE or a DEATH arrives, which replaces it.
3. A DEATH (a rank SIGKILLed) is replaced only by a later memory verdict (Slurm's or the
   kernel's oom_kill line, a host OOM): that says why the process died.
4. A CASCADE line is never the root.

Replaced roots are kept (``Verdict.superseded``) so that ``classify --explain`` can show them.
Later lines are kept as evidence, a bounded number, because a dying job of 1000 ranks can
print thousands of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from sidecar.classify.classifier import LineClassifier
from sidecar.classify.model import Role, SignalHit, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from sidecar.classify.progress import ProgressTracker
    from sidecar.classify.model import MonitoringConfig

MAX_EVIDENCE = 20
MAX_SUPERSEDED = 5
# Error types that say why a process died of memory (rule 3).
MEMORY_VERDICTS = frozenset({"host_oom"})


def replaces(root: SignalHit | None, hit: SignalHit) -> str | None:
    """Why ``hit`` becomes the root over ``root`` (the rules above), or None if it does not."""
    if hit.role is Role.CASCADE:
        return None
    if root is None:
        return f"first {hit.role.value} line"
    if root.role is Role.SYMPTOM and hit.role in (Role.CAUSE, Role.DEATH):
        return (f"a {hit.role.value} after the {root.error_type} symptom of line {root.line_no} "
                f"(survivors report a peer's failure before it)")
    if root.role is Role.DEATH and hit.error_type in MEMORY_VERDICTS:
        return f"{hit.error_type} says why the process killed at line {root.line_no} died"
    return None


class RootCauseTracker:
    """Feed hits in log order; ``verdict()`` names the root cause and keeps some evidence."""

    def __init__(self, max_evidence: int = MAX_EVIDENCE) -> None:
        self.root: SignalHit | None = None
        self.why = ""
        self._evidence: list[SignalHit] = []
        self._superseded: list[SignalHit] = []
        self._max = max_evidence
        self.evidence_total = 0

    def feed(self, hit: SignalHit) -> bool:
        """Record ``hit``; True when it became the root cause (first, or replacing one)."""
        why = replaces(self.root, hit)
        if why is not None:
            if self.root is not None and len(self._superseded) < MAX_SUPERSEDED:
                self._superseded.append(self.root)
            self.root, self.why = hit, why
            return True
        self.evidence_total += 1
        if len(self._evidence) < self._max:
            self._evidence.append(hit)
        return False

    def node(self) -> str | None:
        """The root's node; else the first node named by a non-cascade evidence line.

        Cascade lines (``srun: error: n1: task 0: Exited``) name where a task died, which is
        not evidence that the node is bad, so they never choose the node to exclude.
        """
        if self.root is not None and self.root.node:
            return self.root.node
        for hit in self._evidence:
            if hit.node and not hit.cascade:
                return hit.node
        return None

    def verdict(self, progress: "ProgressTracker | None" = None) -> Verdict:
        return Verdict(
            root=self.root,
            evidence=tuple(self._evidence),
            node=self.node(),
            last_iteration=progress.last_iteration if progress else None,
            last_checkpoint=progress.last_checkpoint if progress else None,
            evidence_total=self.evidence_total,
            superseded=tuple(self._superseded),
            why=self.why,
        )


def classify_lines(lines: Iterable[str | bytes], cfg: "MonitoringConfig",
                   task_nodes: tuple[str, ...] = ()) -> Verdict:
    """The verdict for a whole text (a log tail for the watchdog, a file for ``classify``);
    ``task_nodes``: the node of each ``srun --label`` task id (``tasks.task_nodes``)."""
    from sidecar.classify.progress import ProgressTracker

    classifier = LineClassifier(cfg, task_nodes)
    tracker = RootCauseTracker()
    progress = ProgressTracker(cfg.hang)
    for line_no, line in enumerate(lines, start=1):
        hit = classifier.classify(line, line_no)
        if hit is not None:
            tracker.feed(hit)
        progress.observe(line, 0.0)
    return tracker.verdict(progress)
