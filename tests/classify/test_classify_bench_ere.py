"""The benchmark's RE2 -> ERE export finds the same lines with grep as RE2 does (a fair race)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from classify_helpers import EPISODES, read_tsv
from sidecar.classify import load_monitoring_preset

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_classify.py"


@pytest.mark.skipif(shutil.which("grep") is None, reason="grep not installed")
def test_ere_export_matches_the_same_lines(tmp_path):
    import re2

    spec = importlib.util.spec_from_file_location("bench_classify", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = load_monitoring_preset("megatron_production")
    lines = [r["line"] for name in ("corpus.tsv", "extra_lines.tsv", "train_lines.tsv") for r in read_tsv(name)]
    for path in EPISODES:
        lines += path.read_text().splitlines()
    (tmp_path / "log").write_text("\n".join(lines) + "\n")
    (tmp_path / "patterns.txt").write_text("".join(p + "\n" for p in bench.ere_patterns(cfg)))
    out = subprocess.run(["grep", "-n", "-E", "-f", str(tmp_path / "patterns.txt"), str(tmp_path / "log")],
                         capture_output=True, text=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    assert out.returncode in (0, 1), out.stderr
    assert out.stderr == ""  # no "stray \" warnings: every escape was converted
    by_grep = {int(line.split(":", 1)[0]) for line in out.stdout.splitlines()}
    from sidecar.classify.families import PREFILTER

    signals = [re2.compile(s.pattern) for s in cfg.signals] + [re2.compile(PREFILTER)]
    by_re2 = {i for i, line in enumerate(lines, 1) if any(p.search(line) for p in signals)}
    assert by_grep == by_re2
