"""Shared helpers for the classifier tests: fixture readers."""

from __future__ import annotations

import csv
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EPISODES = sorted((FIXTURES / "episodes").glob("*.log"))


def read_tsv(name: str) -> list[dict[str, str]]:
    with open(FIXTURES / name, encoding="utf-8", newline="") as f:
        rows = (line for line in f if not line.startswith("#"))
        return list(csv.DictReader(rows, delimiter="\t", quoting=csv.QUOTE_NONE))


def episode_expect(path: Path) -> dict[str, str]:
    """The ``# expect: key=value ...`` header of an episode file."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect:"):
            return dict(item.split("=", 1) for item in line[len("# expect:"):].split())
    raise AssertionError(f"{path.name} has no '# expect:' header")
