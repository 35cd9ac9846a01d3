"""Root cause over cascade: the first non-cascade hit of a failure is the one that counts.

One failure prints many lines (every rank reports it, torch elastic summarises it, srun reports
each task's exit). The marker must name the first root cause and the node it points at; later
lines are kept as evidence, a bounded number of them, because a dying job of 1000 ranks can
print thousands of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from sidecar.classify.classifier import LineClassifier
from sidecar.classify.model import MonitoringConfig, SignalHit, Verdict

if TYPE_CHECKING:  # pragma: no cover
    from sidecar.classify.progress import ProgressTracker

MAX_EVIDENCE = 20


class RootCauseTracker:
    """Feed hits in log order; ``verdict()`` names the root cause and keeps some evidence."""

    def __init__(self, max_evidence: int = MAX_EVIDENCE) -> None:
        self.root: SignalHit | None = None
        self._evidence: list[SignalHit] = []
        self._max = max_evidence
        self.evidence_total = 0

    def feed(self, hit: SignalHit) -> bool:
        """Record ``hit``; True when it became the root cause (the first non-cascade hit)."""
        if self.root is None and not hit.cascade:
            self.root = hit
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
        )


def classify_lines(lines: Iterable[str | bytes], cfg: MonitoringConfig) -> Verdict:
    """The verdict for a whole text (a log tail for the watchdog, a file for ``classify``)."""
    from sidecar.classify.progress import ProgressTracker

    classifier = LineClassifier(cfg)
    tracker = RootCauseTracker()
    progress = ProgressTracker(cfg.hang)
    for line_no, line in enumerate(lines, start=1):
        hit = classifier.classify(line, line_no)
        if hit is not None:
            tracker.feed(hit)
        progress.observe(line, 0.0)
    return tracker.verdict(progress)
