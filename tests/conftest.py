"""Top-level test configuration: the real-Slurm tier (tier 3) and the tier summary.

Tests marked ``@pytest.mark.slurm`` get the session fixture ``slurm_cluster``, which makes sure
a real cluster answers: one already up (``scontrol ping``), or the project's own
``scripts/local-slurm up`` when we are root. When no cluster can be had, the test is
skipped locally, but FAILS under ``CI=true``: in CI the real tier must run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slurm_helpers  # noqa: E402

# tier -> outcome counts, filled as tests report; printed by pytest_terminal_summary
_TIERS: dict[str, dict[str, int]] = {}
_TIER_OF_NODEID: dict[str, str] = {}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    for item in items:
        _TIER_OF_NODEID[item.nodeid] = _tier_of(item)
        if item.get_closest_marker("slurm") is not None and "slurm_cluster" not in item.fixturenames:
            item.fixturenames.insert(0, "slurm_cluster")


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """A reachable real Slurm cluster. Returns how it was found ("running" or "started")."""
    if slurm_helpers.controller_up():
        return "running"
    reason = ""
    if os.geteuid() == 0 and slurm_helpers.LOCAL_SLURM.exists():
        res = slurm_helpers.local_slurm("up")
        if res.returncode == 0 and slurm_helpers.controller_up():
            return "started"
        what = (
            f"scripts/local-slurm up failed (exit {res.returncode})" if res.returncode
            else "scripts/local-slurm up exited 0 but `scontrol ping` does not say UP"
        )
        reason = f"{what}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    elif os.geteuid() != 0:
        reason = "no Slurm controller answers `scontrol ping` and not root (cannot run scripts/local-slurm up)"
    else:
        reason = "no Slurm controller answers `scontrol ping` and scripts/local-slurm is missing"
    if _in_ci():
        pytest.fail(f"real Slurm tier must run under CI=true, but: {reason}", pytrace=False)
    pytest.skip(f"no real Slurm cluster: {reason}")


@pytest.fixture(scope="session")
def slurm_lab() -> Path:
    """The lab dir of scripts/local-slurm (logs in <lab>/log, pid files in <lab>/run)."""
    return slurm_helpers.lab_dir()


@pytest.fixture(scope="session")
def real_pyslurm():
    """The real pyslurm module, usable against this cluster's Slurm. Skipped where there is
    none; FAILS under CI=true when a prebuilt wheel was given (AUTOEXP_PYSLURM_WHEEL, set by
    .ci/run when one matches the installed Slurm), so that tier cannot silently skip in CI."""
    from sidecar.slurm import pyslurm_status

    mod, why = pyslurm_status()
    if mod is not None:
        return mod
    # a prebuilt wheel must work; a source release (Debian 13's 24.11) is built best-effort
    if _in_ci() and os.environ.get("AUTOEXP_PYSLURM_WHEEL", "").endswith(".whl"):
        pytest.fail(f"real-pyslurm tier must run under CI=true with AUTOEXP_PYSLURM_WHEEL="
                    f"{os.environ['AUTOEXP_PYSLURM_WHEEL']}, but: {why}", pytrace=False)
    pytest.skip(f"no usable pyslurm: {why}; optional tier")


# ------------------------------------------------------------------ tier summary


def _tier_of(item) -> str:
    if item.get_closest_marker("pyslurm_real") is not None:
        return "pyslurm_real (real pyslurm)"
    if item.get_closest_marker("slurm") is not None:
        return "slurm (real Slurm cluster)"
    return "unit (pure logic + mocks)"


def pytest_runtest_logreport(report):
    # one outcome per test: the call phase, or setup when it did not get that far
    item_tier = _TIER_OF_NODEID.get(report.nodeid)
    if item_tier is None:
        return
    counts = _TIERS.setdefault(item_tier, {"passed": 0, "failed": 0, "skipped": 0, "errors": 0})
    if report.when == "call":
        counts["failed" if report.failed else "skipped" if report.skipped else "passed"] += 1
    elif report.when == "setup" and not report.passed:
        counts["skipped" if report.skipped else "errors"] += 1
    elif report.when == "teardown" and report.failed:
        counts["errors"] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _TIERS:
        return
    tr = terminalreporter
    tr.section("test tiers")
    for tier in sorted(_TIERS):
        c = _TIERS[tier]
        errors = f", {c['errors']} errors" if c["errors"] else ""
        tr.write_line(f"{tier}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped{errors}")
    real = _TIERS.get("slurm (real Slurm cluster)")
    ran = real["passed"] + real["failed"] if real else 0
    if ran:
        tr.write_line(f"real Slurm tier RAN: {ran} tests against a live cluster ({real['passed']} passed)")
    elif real:
        tr.write_line("real Slurm tier did NOT run: no slurm-marked test got past setup (see skips/errors)")
    else:
        tr.write_line("real Slurm tier: no slurm-marked test selected")
    pys = _TIERS.get("pyslurm_real (real pyslurm)")
    if pys:
        ran = pys["passed"] + pys["failed"]
        tr.write_line(f"real-pyslurm tier {'RAN' if ran else 'did NOT run'}: {ran} tests with "
                      f"slurm.client=pyslurm ({pys['passed']} passed, {pys['skipped']} skipped)")
