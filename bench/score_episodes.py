#!/usr/bin/env python3
"""How many whole episodes the classifier reads right: the root line, its class and error type.

Reads the episodes of ``tests/classify/fixtures/episodes`` (or the files given) with their
``# expect:`` headers and classifies each as ``autoexp-sidecar classify`` does (the streamed
verdict). An episode is right when the root line, its class and its error type are the ones
labelled (for a finished run or a silent hang: no root at all); the node to exclude is counted
apart. Prints the misses and the figure.

    python bench/score_episodes.py                                   # every episode
    python bench/score_episodes.py tests/classify/fixtures/episodes/pub_hf_*.log
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "classify")]

from classify_helpers import EPISODES, episode_expect  # noqa: E402
from sidecar.classify import load_monitoring_preset  # noqa: E402
from sidecar.classify.report import verdict_for_path  # noqa: E402
from sidecar.classify.tasks import task_nodes_of_job  # noqa: E402


def score(path: Path, cfg) -> tuple[bool, bool, str]:
    """(root right, node right, what was found) for one episode."""
    exp = episode_expect(path)
    verdict = verdict_for_path(str(path), cfg, task_nodes_of_job(exp.get("nodelist"), 1))
    root = verdict.root
    node_ok = (verdict.node or "-") == exp["node"]
    if root is None:
        return exp["root_line"] == "-", node_ok, "no root"
    found = f"line {root.line_no} {root.signal} {root.error_type}/{root.failure_class.value}"
    ok = (str(root.line_no) == exp["root_line"] and root.error_type == exp.get("error_type")
          and root.failure_class.value == exp.get("class"))
    return ok, node_ok, found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help="episode files (default: all)")
    args = ap.parse_args(argv)
    cfg = load_monitoring_preset("megatron_production")
    paths = args.paths or EPISODES
    right = nodes = 0
    for path in paths:
        ok, node_ok, found = score(path, cfg)
        right += ok
        nodes += node_ok
        if not (ok and node_ok):
            exp = episode_expect(path)
            want = f"line {exp['root_line']} {exp.get('error_type', '-')}/{exp.get('class', '-')} node {exp['node']}"
            print(f"MISS {path.stem}: want {want}; found {found}{'' if node_ok else ' (node wrong)'}")
    print(f"episodes right (root line, class, error type): {right} of {len(paths)}; node right: {nodes} of {len(paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
