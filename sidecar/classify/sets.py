"""Sets of RE2 patterns: which of them a line contains, in one pass per set."""

from __future__ import annotations

from typing import Iterable, Sequence

import re2

from sidecar.classify.config import re2_options


def search_set(patterns: Iterable[str], options: "re2.Options | None" = None) -> "re2.Set":
    """One unanchored ``re2.Set``: ``Match`` lists the index of each pattern found in a line.
    Raises ``re2.error`` when the patterns together exceed ``options.max_mem``."""
    found = re2.Set.SearchSet(options if options is not None else re2_options())
    for pattern in patterns:
        found.Add(pattern)
    found.Compile()
    return found


class SplitSet:
    """A search set cut into runs of consecutive patterns of at most ``part_chars`` characters.

    RE2 builds a set's automaton lazily, a state per new situation, within ``max_mem``; a state
    of one big set tracks every pattern's progress at once, so states multiply with the rules.
    The 110 family rules (41 k characters) on the labelled lines that reach them (CPU time): as
    one set the automaton outgrows its budget and is rebuilt over and over, ~370 us a line
    whether seen before or not; in nine sets of at most 5 k, ~45 us the first time and ~14 us
    after, with 49 MiB of automata. (70 rules, 19 k: one set 63 and 3 us, 44 MiB; five sets 33
    and 7 us, 24 MiB.) The parts keep the cost flat as rules are added.
    """

    def __init__(self, patterns: Sequence[str], options: "re2.Options | None" = None, part_chars: int = 5000) -> None:
        parts: list[list[str]] = [[]]
        size = 0
        for pattern in patterns:
            if parts[-1] and size + len(pattern) > part_chars:
                parts.append([])
                size = 0
            parts[-1].append(pattern)
            size += len(pattern)
        offsets, start = [], 0
        for part in parts:
            offsets.append(start)
            start += len(part)
        self._parts = tuple(zip(offsets, (search_set(part, options) for part in parts)))

    def __len__(self) -> int:
        return len(self._parts)

    def found(self, data: bytes) -> list[int]:
        """The indices (in ``patterns``) of every pattern found in ``data``, in no particular order."""
        out: list[int] = []
        for offset, part in self._parts:
            out += [offset + i for i in part.Match(data) or ()]
        return out
