"""The chaos soak, short (CI): 3 runs, 1 minute of seeded random faults, then every invariant
of scripts/chaos_soak.py must hold. The full soak is `scripts/chaos-soak --runs 8 --minutes 10`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(900)]

SOAK = Path(__file__).resolve().parents[2] / "scripts" / "chaos_soak.py"


def test_short_chaos_soak_holds_every_invariant(tmp_path):
    res = subprocess.run([sys.executable, str(SOAK), "--runs", "3", "--minutes", "1",
                          "--fault-interval-s", "6", "--settle-minutes", "6", "--seed", "11",
                          "--root", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=840)
    print(res.stdout[-6000:])
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    assert "ALL INVARIANTS HELD" in res.stdout
    assert "faults injected:" in res.stdout and "(total 0)" not in res.stdout
