"""A split set finds exactly what each of its patterns finds on its own, however it is cut."""

from __future__ import annotations

import pytest
import re2

from classify_helpers import read_tsv
from sidecar.classify.config import re2_options
from sidecar.classify.families import RULES, line_body
from sidecar.classify.sets import SplitSet

PATTERNS = [r.pattern for r in RULES]


@pytest.fixture(scope="module")
def expected() -> list[tuple[bytes, list[int]]]:
    """Real lines (and their bodies) with the rules each one contains, every rule searched alone."""
    alone = [re2.compile(p, re2_options()) for p in PATTERNS]
    lines = [row["line"].encode() for row in read_tsv("train_lines.tsv")]
    lines += [line_body(line) for line in lines]
    return [(line, [i for i, p in enumerate(alone) if p.search(line) is not None]) for line in lines]


@pytest.mark.parametrize("part_chars", [1, 5000, 10**9])
def test_split_set_finds_what_each_pattern_finds(part_chars, expected):
    split = SplitSet(PATTERNS, re2_options(), part_chars)
    assert 1 <= len(split) <= len(PATTERNS)
    for line, rules in expected:
        assert sorted(split.found(line)) == rules, line
    assert sum(bool(rules) for _, rules in expected) > 100  # the lines exercise the rules


def test_parts_hold_consecutive_patterns_up_to_the_limit():
    assert len(SplitSet(PATTERNS, re2_options(), 1)) == len(PATTERNS)
    assert len(SplitSet(PATTERNS, re2_options(), 10**9)) == 1
    split = SplitSet(["aaaa", "bbbb", "cc", "dddddddd", "e"], re2_options(), part_chars=6)
    assert len(split) == 4  # [aaaa] [bbbb cc] [dddddddd] [e]: a pattern longer than the limit is a part of its own
    assert sorted(split.found(b"cc e dddddddd")) == [2, 3, 4]
    assert SplitSet([], re2_options()).found(b"anything") == []
