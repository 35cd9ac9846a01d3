"""The runner: retries on the controller's transient errors and timeouts, never on sbatch,
errors carrying argv/exit code/stdout/stderr. Faults are injected with a fake command script."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from sidecar.errors import SlurmError
from sidecar.slurm.runner import (
    TRANSIENT_PATTERNS,
    Completed,
    SlurmCommandError,
    is_transient,
    make_runner,
    run,
    run_once,
)

# What Slurm 22.05 printed here with slurmctld unreachable (measured: 9-18 s per command).
CONTROLLER_DOWN = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"


def fake_command(tmp_path: Path, name: str, fail_times: int, stderr: str, rc: int = 1,
                 stdout: str = "ok\n", sleep_s: float = 0.0) -> tuple[Path, Path]:
    """A script that fails ``fail_times`` times (writing ``stderr``), then succeeds.
    Returns (script, counter file)."""
    counter = tmp_path / f"{name}.count"
    script = tmp_path / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time, pathlib\n"
        f"c = pathlib.Path({str(counter)!r})\n"
        "n = int(c.read_text()) if c.exists() else 0\n"
        "c.write_text(str(n + 1))\n"
        f"if n < {fail_times}:\n"
        f"    time.sleep({sleep_s})\n"
        f"    sys.stderr.write({stderr!r}); sys.exit({rc})\n"
        f"sys.stdout.write({stdout!r})\n"
    )
    script.chmod(0o755)
    return script, counter


def calls(counter: Path) -> int:
    return int(counter.read_text()) if counter.exists() else 0


def no_sleep(_: float) -> None:
    pass


def test_success_returns_completed(tmp_path):
    script, counter = fake_command(tmp_path, "squeue", 0, "")
    done = run([str(script), "--x"], sleep=no_sleep)
    assert isinstance(done, Completed)
    assert done.returncode == 0 and done.stdout == "ok\n" and done.attempts == 1
    assert done.argv == (str(script), "--x")


@pytest.mark.parametrize("pattern", TRANSIENT_PATTERNS)
def test_transient_errors_are_retried(tmp_path, pattern):
    script, counter = fake_command(tmp_path, "scontrol", 2, f"error: {pattern}\n")
    done = run([str(script)], sleep=no_sleep)
    assert done.stdout == "ok\n"
    assert calls(counter) == 3 and done.attempts == 3


def test_controller_down_message_is_transient():
    assert is_transient(CONTROLLER_DOWN)
    assert not is_transient("slurm_load_jobs error: Invalid job id specified")


def test_permanent_error_not_retried_and_carries_everything(tmp_path):
    script, counter = fake_command(tmp_path, "scontrol", 5,
                                   "slurm_load_jobs error: Invalid job id specified\n", rc=1)
    with pytest.raises(SlurmCommandError) as ei:
        run([str(script), "show", "job", "42"], sleep=no_sleep)
    err = ei.value
    assert calls(counter) == 1
    assert err.argv == (str(script), "show", "job", "42")
    assert err.returncode == 1 and "Invalid job id" in err.stderr and err.stdout == ""
    assert not err.transient and err.tip
    assert isinstance(err, SlurmError)


def test_retries_bound(tmp_path):
    script, counter = fake_command(tmp_path, "squeue", 10, CONTROLLER_DOWN)
    with pytest.raises(SlurmCommandError) as ei:
        run([str(script)], retries=2, sleep=no_sleep)
    assert calls(counter) == 3 and ei.value.attempts == 3 and ei.value.transient


def test_retry_window_bound(tmp_path):
    script, counter = fake_command(tmp_path, "squeue", 1000, CONTROLLER_DOWN)
    t0 = time.monotonic()
    with pytest.raises(SlurmCommandError):
        run([str(script)], retry_window_s=1.0, sleep=lambda s: time.sleep(min(s, 0.1)))
    assert time.monotonic() - t0 < 10
    assert calls(counter) >= 2


def test_backoff_grows(tmp_path):
    script, _ = fake_command(tmp_path, "squeue", 5, CONTROLLER_DOWN)
    waits: list[float] = []
    run([str(script)], sleep=waits.append)
    assert len(waits) == 5
    assert waits[-1] > waits[0]
    assert max(waits) <= 8.5


def test_timeout_is_retried_then_raised(tmp_path):
    script, counter = fake_command(tmp_path, "sacct", 10, "", sleep_s=5)
    with pytest.raises(SlurmCommandError) as ei:
        run([str(script)], timeout_s=0.3, retries=1, sleep=no_sleep)
    assert ei.value.timed_out and ei.value.transient and ei.value.returncode is None
    assert calls(counter) == 2


def test_timeout_then_success(tmp_path):
    script, counter = fake_command(tmp_path, "sacct", 1, "", sleep_s=5)
    assert run([str(script)], timeout_s=0.5, sleep=no_sleep).stdout == "ok\n"
    assert calls(counter) == 2


def test_sbatch_is_never_retried(tmp_path):
    script, counter = fake_command(tmp_path, "sbatch", 3, "sbatch: error: Socket timed out on send/recv operation\n")
    with pytest.raises(SlurmCommandError) as ei:
        run([str(script), "--parsable", "x.sh"], retries=5, sleep=no_sleep)
    assert calls(counter) == 1 and ei.value.transient


def test_missing_command():
    with pytest.raises(SlurmCommandError) as ei:
        run(["/nonexistent/squeue"], sleep=no_sleep)
    assert ei.value.not_found and not ei.value.transient and "PATH" in ei.value.tip


def test_input_and_env_passed(tmp_path):
    script = tmp_path / "echoer"
    script.write_text(f"#!{sys.executable}\nimport os, sys\nsys.stdout.write(sys.stdin.read() + os.environ['ZZ_X'])\n")
    script.chmod(0o755)
    assert run_once([str(script)], input="in-", env={"ZZ_X": "a,b"}).stdout == "in-a,b"


def test_make_runner_defaults(tmp_path):
    script, counter = fake_command(tmp_path, "squeue", 3, CONTROLLER_DOWN)
    quick = make_runner(retries=0, sleep=no_sleep)
    with pytest.raises(SlurmCommandError):
        quick([str(script)], retries=None)  # "no preference" keeps the runner's retries=0
    assert calls(counter) == 1


def test_injected_runner_once_sees_every_attempt():
    seen = []

    def flaky(argv, **kw):
        seen.append(tuple(argv))
        if len(seen) < 3:
            raise SlurmCommandError("x", argv=argv, returncode=1, stderr="Zero Bytes were transmitted or received")
        return Completed(tuple(argv), 0, "fine", "")

    assert run(["scontrol", "ping"], runner_once=flaky, sleep=no_sleep).stdout == "fine"
    assert len(seen) == 3


def test_error_str_has_message_and_tip():
    e = SlurmCommandError("boom", argv=["sbatch"], returncode=1, stderr="Invalid partition name specified")
    assert "boom" in str(e) and "sinfo" in e.tip
