"""The family layer's rules in their order, and the layer that applies them.

The order decides when two rules read one line: a C++ abort that names a memory exhaustion,
then consequences (a line that is both a follow-on and a cause's words is the follow-on), then
shared memory named as the reason, process deaths, the launchers' own reports (their "failed"
lines name no transport), transports before memory words, hardware, Slurm, storage I/O and
object stores, the launch environment, collectives, space, the training program's own
failures, and last a logged error by its level and its family's words.
"""

from __future__ import annotations

import re2

from sidecar.classify.families import cascade, collectives, environment, hardware, launchers, memory, severity, slurm, storage, training, transport
from sidecar.classify.families.benign import BENIGN
from sidecar.classify.families.exceptions import EXCEPTION_RULE, exception_family
from sidecar.classify.families.prefix import line_body
from sidecar.classify.families.rule import FamilyRule
from sidecar.classify.model import Layer, SignalHit
from sidecar.classify.sets import SplitSet

RULES: tuple[FamilyRule, ...] = (
    memory.THROWN + cascade.CASCADE_RULES + launchers.CASCADE_RULES + memory.SHM + cascade.DEATH_RULES + launchers.RULES
    + transport.RULES + memory.RULES + hardware.RULES + slurm.RULES + slurm.SHELL + storage.IO + storage.OBJECT + environment.RULES
    + collectives.RULES + storage.SPACE + training.RULES + severity.RULES
)


class FamilyLayer:
    """Classify a line by family (call only for lines no signal matched)."""

    def __init__(self, disabled: tuple[str, ...] = (), options: "re2.Options | None" = None) -> None:
        self.rules = tuple(r for r in RULES if r.name not in disabled)
        self._set = SplitSet([r.pattern for r in self.rules], options)
        # Rules that beat the ignore list and BENIGN (training health, read in progress lines)
        # get a set of their own: the full set, the costly one, then runs only on lines
        # neither ignored nor benign.
        self._beats_ignore = tuple(i for i, r in enumerate(self.rules) if r.beats_ignore)
        self._health = SplitSet([self.rules[i].pattern for i in self._beats_ignore], options)
        self._benign = re2.compile(BENIGN, options) if options is not None else re2.compile(BENIGN)
        self.exceptions_enabled = EXCEPTION_RULE not in disabled

    def benign(self, data: bytes, body: bytes | None = None) -> bool:
        """BENIGN matches the line or its ``body`` (``line_body(data)``, computed when not given)."""
        body = line_body(data) if body is None else body
        return self._benign.search(data) is not None or (body is not data and self._benign.search(body) is not None)

    def match(self, data: bytes, ignored: bool, body: bytes | None = None) -> FamilyRule | None:
        """The rule that reads ``data`` (``ignored``: an ignore pattern of the preset matched;
        ``body``: ``line_body(data)``, computed when not given)."""
        body = line_body(data) if body is None else body
        health = _found(self._health, data, body)
        if health:
            return self.rules[self._beats_ignore[min(health)]]
        if ignored or self.benign(data, body):
            return None
        found = _found(self._set, data, body)
        if found:
            return self.rules[min(found)]
        return self.exception(data)

    def exception(self, data: bytes) -> FamilyRule | None:
        """The exception reader's verdict on ``data`` (its type, its message's status code or errno)."""
        return exception_family(data.decode("utf-8", "replace")) if self.exceptions_enabled else None


def _found(patterns: SplitSet, data: bytes, body: bytes) -> list[int]:
    """Indices of the patterns found in the line or in its body (the line without its launcher prefix)."""
    found = patterns.found(data)
    if body is not data:
        found += patterns.found(body)
    return found


def family_hit(rule: FamilyRule, line_no: int, text: str, node: str | None) -> SignalHit:
    return SignalHit(line_no=line_no, line=text, signal=rule.name, error_type=rule.error_type,
                     failure_class=rule.failure_class, node=node, role=rule.role, layer=Layer.FAMILY,
                     confidence=rule.confidence, tip=rule.tip)
