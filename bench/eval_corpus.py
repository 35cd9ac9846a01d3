#!/usr/bin/env python3
"""How well the classifier reads labelled real log lines, per label and category, per layer.

Reads the labelled corpora in ``tests/classify/fixtures`` (``corpus.tsv``: the development
lines; ``train_lines.tsv``: 416 lines from ~130 public sources) and prints, for each file:
right/total per label, and the misses. A line is right when:
  transient/permanent  a root-capable hit (not cascade) of that class
  noise                no hit at all
  cascade              no hit, or a cascade/symptom hit (never a root over a cause)
  terminal             no hit, a cascade hit, or a terminal-class hit (never transient/permanent)
  ambiguous            not scored (listed with what was chosen under --verbose)

``--layers family`` measures the family layer alone (no curated signal, only the preset's
ignore list): the rules were written from how the systems fail, not from these lines, so this
is the held-out estimate of how the classifier does on wordings it has never seen.
``--probe`` also scores ``family_probe.tsv``: wordings written down from the software's own
messages (from round 29 on, in the form pasted logs show them: launcher, host and logger
prefixes), per round; each round was written before the rules were fixed for it.

    python bench/eval_corpus.py                       # every layer
    python bench/eval_corpus.py --layers family       # the family layer alone
    python bench/eval_corpus.py --probe --verbose     # the probe rows too, misses and ambiguous choices
"""

from __future__ import annotations

import argparse
import collections
import csv
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "classify" / "fixtures"
FILES = ("corpus.tsv", "train_lines.tsv")
SCORED = ("transient", "permanent", "noise", "cascade", "terminal")


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = (line for line in f if not line.startswith("#"))
        return list(csv.DictReader(rows, delimiter="\t", quoting=csv.QUOTE_NONE))


def is_right(label: str, hit) -> bool | None:
    """The scoring rule above; None for unscored labels."""
    from sidecar.classify.model import Role

    if label in ("transient", "permanent"):
        return hit is not None and hit.role is not Role.CASCADE and hit.failure_class.value == label
    if label == "noise":  # a context hit only changes how the tracker reads the next lines
        return hit is None or hit.role is Role.CONTEXT
    if label == "cascade":
        return hit is None or hit.role in (Role.CASCADE, Role.SYMPTOM, Role.CONTEXT)
    if label == "terminal":
        return hit is None or hit.cascade or hit.failure_class.value == "terminal"
    return None


def classifier(preset: str, layers: str):
    from sidecar.classify import LineClassifier, load_monitoring_preset
    from sidecar.classify.model import FamilySettings

    cfg = load_monitoring_preset(preset)
    if layers == "curated":
        cfg = replace(cfg, families=FamilySettings(enabled=False))
    elif layers == "family":
        # one signal that matches no log line: the curated layer is out, its ignore list stays
        never = replace(cfg.signals[0], name="never", pattern="\x00never\x00")
        cfg = replace(cfg, signals=(never,))
    return LineClassifier(cfg)


def evaluate(cls, rows: list[dict[str, str]]) -> tuple[dict, list]:
    """({label: [right, total]}, misses) over ``rows``; categories under "label/category"."""
    score: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    misses = []
    for row in rows:
        hit = cls.classify(row["line"], 1)
        ok = is_right(row["label"], hit)
        if ok is None:
            misses.append((row, hit, None))
            continue
        for key in (row["label"], f"{row['label']}/{row['category']}"):
            score[key][0] += ok
            score[key][1] += 1
        if not ok:
            misses.append((row, hit, False))
    return score, misses


def describe(hit) -> str:
    if hit is None:
        return "no hit"
    return f"{hit.signal} ({hit.layer.value}, {hit.role.value}, {hit.failure_class.value}, {hit.error_type})"


def report(name: str, score: dict, misses: list, verbose: bool, categories: bool) -> None:
    labels = "  ".join(f"{k} {score[k][0]}/{score[k][1]}" for k in SCORED if k in score)
    tp = [score[k] for k in ("transient", "permanent") if k in score]
    right, total = sum(s[0] for s in tp), sum(s[1] for s in tp)
    pct = f"{100 * right / total:.1f}%" if total else "-"
    print(f"{name}: {labels}  | transient+permanent {right}/{total} = {pct}")
    if categories:
        for key in sorted(k for k in score if "/" in k):
            r, t = score[key]
            print(f"    {key:32s} {r:3d}/{t:<3d}{'' if r == t else '  <'}")
    if verbose:
        for row, hit, ok in misses:
            tag = "ambiguous" if ok is None else "MISS"
            print(f"    {tag} {row['label']}/{row['category']}: {describe(hit)}: {row['line'][:140]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", choices=["all", "curated", "family"], default="all")
    ap.add_argument("--monitoring", default="megatron_production")
    ap.add_argument("--probe", action="store_true", help="also score family_probe.tsv, per round")
    ap.add_argument("--categories", action="store_true", help="right/total per label/category")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    cls = classifier(args.monitoring, args.layers)
    print(f"layers: {args.layers}, preset {args.monitoring}")
    for name in FILES:
        score, misses = evaluate(cls, read_tsv(FIXTURES / name))
        report(name, score, misses, args.verbose, args.categories)
    if args.probe:
        rows = read_tsv(FIXTURES / "family_probe.tsv")
        for rnd in sorted({r["round"] for r in rows}, key=int):
            part = [{**r, "category": "-", "source": "probe"} for r in rows if r["round"] == rnd]
            score, misses = evaluate(cls, part)
            report(f"family_probe.tsv round {rnd}", score, misses, args.verbose, False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
