"""The fault matrix on the real cluster: each fault a long run meets, injected for real, and
what must hold after it (one new job, not two; a right decision or none; a repairable run).

Daemon outages hit the one shared local cluster, so each is short and always undone
(``scripts/local-slurm up`` in a finally). Faults Slurm cannot produce on demand are not here
(they are in tests/chain/test_watchdog_unit.py with an injected client).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import slurm_helpers
from run_helpers import (CLI, cli, decided_events, decision, inspect_json, job_of, job_state,
                         kill_daemon, restore_cluster, stop, submit, watchdog_of)
from sidecar.history import read_history
from sidecar.launch import job_comment
from sidecar.rundir import RunPaths
from sidecar.slurm.cli_client import CliSlurmClient
from slurm_helpers import wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(600)]

ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")


def running(job: str) -> bool:
    return job_state(job) == "RUNNING"


def attempt_trains(run: Path, n: int) -> list[str]:
    """Slurm's training jobs of attempt ``n`` of the run (by the comment every job carries; a
    run of the same name from another test session has it too, in another work dir)."""
    comment = job_comment(RunPaths(run).run_id, n, "train")
    return [j.job_id for j in CliSlurmClient().find_jobs(name=RunPaths(run).run_id, comment=comment)
            if j.work_dir in (None, str(RunPaths(run).root))]


def hold(job: str) -> None:
    subprocess.run(["scontrol", "hold", job], check=True, capture_output=True, timeout=30)


def release_or_cancel(job: str | None) -> None:
    if job:
        subprocess.run(["scancel", job], capture_output=True, timeout=30)


def hand_watchdog(run: Path, attempt: int, job: str) -> subprocess.Popen[str]:
    """The watchdog's own command, run here (its Slurm job is held) so a fault can be timed."""
    return subprocess.Popen(CLI + ["watchdog", "--run", str(run), "--attempt", str(attempt),
                                   "--train-job", job, "--wait-s", "30"],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def cancel_and_wait(job: str) -> None:
    subprocess.run(["scancel", job], check=True, capture_output=True, timeout=30)
    wait_until(lambda: job_state(job) not in ACTIVE, timeout_s=60, what=f"job {job} to end")


def test_slurmctld_restarted_while_a_watchdog_resubmits_gives_one_new_job(tmp_path):
    run, job = submit(tmp_path, "ctld")
    wd = None
    try:
        wait_until(lambda: running(job), timeout_s=90, what="RUNNING")
        wd = watchdog_of(run, 1)
        assert wd
        hold(wd)
        cancel_and_wait(job)
        slurm_helpers.stop_slurmctld()
        try:
            proc = hand_watchdog(run, 1, job)  # its Slurm calls now fail and are retried
            time.sleep(8)
        finally:
            slurm_helpers.start_slurmctld()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert decision(run, 1)["action"] == "restart"
        # the held Slurm watchdog runs too, late: it must find the attempt decided
        subprocess.run(["scontrol", "release", wd], capture_output=True, timeout=30)
        wait_until(lambda: job_state(wd) not in ACTIVE, timeout_s=120, what="the Slurm watchdog")
        assert len(decided_events(run, 1)) == 1
        assert len(attempt_trains(run, 2)) == 1, attempt_trains(run, 2)
        assert RunPaths(run).attempt_numbers() == [1, 2]
    finally:
        release_or_cancel(wd)
        stop(run)


def _sidecar_pid(run: Path) -> int | None:
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"scan" in argv and str(run).encode() in argv:
            return int(d.name)
    return None


def test_sidecar_killed_mid_run_the_failure_is_still_classified(tmp_path):
    # micro batch 16 does not fit the simulated 80 GiB: the workload OOMs after 15 s by itself
    run, job = submit(tmp_path, "nosidecar", "backend.args.micro_batch_size=16",
                      "backend.args.oom_after_s=15")
    try:
        wait_until(lambda: running(job), timeout_s=90, what="RUNNING")
        pid = wait_until(lambda: _sidecar_pid(run), timeout_s=30, what="the sidecar process")
        # the loop in train.sbatch that restarts a killed sidecar first, then the sidecar
        loop = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(loop, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        d = wait_until(lambda: decision(run, 1), timeout_s=120, what="the watchdog's decision")
        assert not RunPaths(run).marker(1).exists()  # no sidecar, no marker: the log tail decided
        assert d["state"] == "FAILED"
        assert d["action"] == "stop" and d["error_type"] == "oom", d
        assert d["reason"] == "Permanent failure detected (excluded error_type: oom)"
    finally:
        stop(run)


def test_a_killed_sidecar_is_started_again_and_still_catches_the_failure(tmp_path):
    run, job = submit(tmp_path, "respawn")
    try:
        wait_until(lambda: running(job), timeout_s=90, what="RUNNING")
        pid = wait_until(lambda: _sidecar_pid(run), timeout_s=30, what="the sidecar process")
        os.kill(pid, signal.SIGKILL)
        new = wait_until(lambda: (lambda p: p if p and p != pid else None)(_sidecar_pid(run)),
                         timeout_s=30, what="a new sidecar")
        assert new != pid
        time.sleep(2)  # let it read up to the end of the log
        with open(RunPaths(run).train_log(job), "a") as fh:
            fh.write("[default0]:NCCL ERROR timeout\n")
        d = wait_until(lambda: decision(run, 1), timeout_s=120, what="the watchdog's decision")
        assert d["action"] == "restart" and d["error_type"] == "nccl", d
    finally:
        stop(run)


def test_torn_history_and_corrupt_state_files_keep_decisions_right(tmp_path):
    run, job = submit(tmp_path, "torn")
    paths = RunPaths(run)
    try:
        wait_until(lambda: running(job), timeout_s=90, what="RUNNING")
        before = [e.kind for e in read_history(paths).events]
        with open(paths.events, "ab") as fh:
            fh.write(b'{"event": "decided", "attempt": 1, "decis')  # a writer killed mid-line
        paths.progress(1).write_text("{garbage")
        paths.attempt_dir(1).joinpath("watchdog_job").write_text("not-a-job-id\n")
        res = cli("inspect", str(run))
        assert res.returncode == 0 and "garbled" in res.stderr, res.stderr
        cancel_and_wait(job)
        # the Slurm watchdog still runs (afternotok), whatever the files say
        d = wait_until(lambda: decision(run, 1), timeout_s=120, what="the watchdog's decision")
        assert d["action"] == "restart" and d["error_type"] == "scancel", d
        h = read_history(paths)
        assert [e.kind for e in h.events][:len(before)] == before  # nothing lost
        assert len(h.warnings) == 1  # only the torn line, and the events after it parse
        assert len(decided_events(run, 1)) == 1
        wait_until(lambda: job_of(run, 2), timeout_s=60, what="attempt 2")
    finally:
        stop(run)


def test_cancelled_watchdog_is_reported_and_resume_repairs_it_once(tmp_path):
    run, job = submit(tmp_path, "wdcancel")
    try:
        wait_until(lambda: running(job), timeout_s=90, what="RUNNING")
        wd = watchdog_of(run, 1)
        cancel_and_wait(wd)
        st = inspect_json(run)
        assert st["state"] == "broken" and "watchdog" in st["detail"], st
        res = cli("resume", str(run))
        assert res.returncode == 0 and "armed a new watchdog" in res.stdout, res.stdout + res.stderr
        new_wd = watchdog_of(run, 1)
        assert new_wd and new_wd != wd
        again = cli("resume", str(run))
        assert "nothing to do" in again.stdout, again.stdout
        assert watchdog_of(run, 1) == new_wd
        assert inspect_json(run)["state"] == "running"
        # and the repaired chain works: a failure now is restarted
        cancel_and_wait(job)
        wait_until(lambda: job_of(run, 2), timeout_s=120, what="attempt 2 after the repair")
    finally:
        stop(run)


def test_requeue_by_slurm_makes_no_duplicate_attempt(tmp_path):
    run, job = submit(tmp_path, "requeue")
    try:
        wait_until(lambda: running(job), timeout_s=90, what="RUNNING")
        res = subprocess.run(["scontrol", "requeue", job], text=True, capture_output=True, timeout=30)
        # the job was submitted --no-requeue: Slurm refuses, so no second copy can start
        assert res.returncode != 0 and "disabled" in (res.stderr + res.stdout), res
        time.sleep(5)
        assert job_state(job) == "RUNNING"
        assert RunPaths(run).attempt_numbers() == [1]
        assert attempt_trains(run, 2) == []
        assert inspect_json(run)["state"] == "running"
    finally:
        stop(run)


def test_slurmdbd_down_during_a_decision_and_munge_restarted_the_chain_continues(tmp_path):
    run, job = submit(tmp_path, "dbd")
    lab = slurm_helpers.lab_dir()
    try:
        wait_until(lambda: running(job), timeout_s=90, what="RUNNING")
        try:
            kill_daemon(lab / "run" / "slurmdbd.pid")
            cancel_and_wait(job)  # scontrol still answers; sacct does not
            d = wait_until(lambda: decision(run, 1), timeout_s=120, what="the watchdog's decision")
            assert d["action"] == "restart" and d["error_type"] == "scancel" and d["state"] == "CANCELLED", d
            job2 = wait_until(lambda: job_of(run, 2), timeout_s=120, what="attempt 2")
        finally:
            restore_cluster()
        try:
            kill_daemon(Path("/run/munge/munged.pid"))
        finally:
            restore_cluster()
        wait_until(lambda: running(job2), timeout_s=120, what="attempt 2 RUNNING")
        cancel_and_wait(job2)
        d2 = wait_until(lambda: decision(run, 2), timeout_s=120, what="attempt 2's decision")
        assert d2["action"] == "restart", d2
        wait_until(lambda: job_of(run, 3), timeout_s=120, what="attempt 3")
        assert len(attempt_trains(run, 2)) == 1 and len(attempt_trains(run, 3)) == 1
    finally:
        stop(run)


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs: a run directory whose filesystem can be filled on purpose."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {res.stderr}")
        pytest.skip(f"cannot mount a tmpfs (not root?): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(fs: Path) -> Path:
    filler = fs / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_full_filesystem_a_clear_error_nothing_half_written_and_recoverable(small_fs):
    run, job = submit(small_fs, "full", "backend.args.save_interval=100000")
    paths = RunPaths(run)
    wd = None
    try:
        wait_until(lambda: running(job), timeout_s=90, what="RUNNING")
        wd = watchdog_of(run, 1)
        hold(wd)  # its output file is on the full disk too: run its command here to see it
        filler = fill(small_fs)
        cancel_and_wait(job)
        proc = hand_watchdog(run, 1, job)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 4, (out, err)
        assert "No space left on device" in err and "resume" in err, err
        # nothing half-written: no temp file left, every history line whole, no decision
        assert not [p for p in run.rglob("*.tmp")]
        assert read_history(paths).warnings == ()
        assert decision(run, 1) is None
        cancel_and_wait(wd)  # it stands for the watchdog that failed: the chain is broken now
        assert inspect_json(run)["state"] == "broken"
        filler.unlink()
        res = cli("resume", str(run))
        assert res.returncode == 0 and "decided attempt 1: restart" in res.stdout, res.stdout + res.stderr
        wait_until(lambda: job_of(run, 2), timeout_s=60, what="attempt 2")
        assert len(attempt_trains(run, 2)) == 1
    finally:
        release_or_cancel(wd)
        stop(run)
