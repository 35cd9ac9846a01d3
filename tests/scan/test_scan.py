"""The scan loop with a fake clock, fake classify components and a fake Slurm client."""

from __future__ import annotations

import json

import pytest

from sidecar.follow import LogFollower
from sidecar.rundir import RunPaths, atomic_write_json, read_json
from sidecar.scan import (
    Action, ScanContext, Scanner, build_marker, decide_cancel, line_text, run_loop,
)
from .fakes import FakeClassifier, FakeClient, FakeProgress, FakeRoots, FakeWorld

NCCL = b"jwb0042:1234:5678 [0] NCCL WARN NET/IB : Got completion from peer with error 12\n"


def iteration_lines(world: FakeWorld, start: float, n: int, every_s: float = 0.2, first: int = 1):
    for i in range(n):
        world.at(start + i * every_s, b" iteration %d/ 1000 | consumed samples: %d | lm loss: 7.1\n"
                 % (first + i, (first + i) * 8))
    return start + n * every_s


def setup(tmp_path, grace_s=2.0, client=None, progress=None, end_after_s=120.0, hang=True):
    paths = RunPaths.of(tmp_path / "run")
    paths.create("run-1")
    paths.claim_attempt(1)
    log = paths.train_log("4242")
    world = FakeWorld(log)
    world.end_at = world.t + end_after_s
    client = client if client is not None else FakeClient()
    client.clock = world.clock
    ctx = ScanContext(paths=paths, attempt=1, job_id="4242", kill_grace_s=grace_s, hang_enabled=hang,
                      client=client)
    scanner = Scanner(ctx, FakeClassifier(), FakeRoots(), progress or FakeProgress())
    return paths, world, scanner, client


def run(world, scanner, *, stop_after_cancel=True):
    client = scanner.ctx.client

    def should_stop():
        # scancel ends the job: the batch shell dies, so the sidecar's parent is gone.
        if stop_after_cancel and client is not None and client.succeeded:
            return True
        return world.stop()

    run_loop(scanner, LogFollower(world.log), clock=world.clock, sleep=world.sleep, poll_s=0.1,
             should_stop=should_stop)


def events(paths):
    return [e["event"] for e in paths.iter_events()]


def test_marker_on_first_root_cause_with_evidence_then_cancel_after_grace(tmp_path):
    paths, world, scanner, client = setup(tmp_path, grace_s=2.0)
    t = iteration_lines(world, 0.0, 10)
    world.at(t + 0.05, NCCL)
    world.at(t + 0.10, b"[rank3]: torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n")
    world.at(t + 0.20, b"Fatal Python error: Aborted (SIGABRT)\n")
    world.at(t + 0.30, b"some benign line\n")
    t0 = world.t
    run(world, scanner)
    m = read_json(paths.marker(1))
    assert m["error_type"] == "nccl" and m["class"] == "transient" and m["signal"] == "nccl_warn"
    assert m["line"] == NCCL.decode().rstrip("\n") and m["line_no"] == 11 and m["node"] == "jwb0042"
    assert m["source"] == "log" and m["job_id"] == "4242" and m["attempt"] == 1
    assert m["last_iteration"] == 10 and m["first_iteration"] == 1
    assert [e["signal"] for e in m["evidence"]] == ["elastic_child_failed", "sigabrt"]
    assert m["time_iso"].startswith("2023-")
    detected = m["time"]
    assert abs(detected - (t0 + t + 0.05)) < 0.15  # within one poll
    assert len(client.calls) == 1 and client.calls[0][0] == "4242"
    assert 2.0 <= client.calls[0][1] - detected < 2.2
    assert events(paths) == ["marker", "sidecar_cancel"]


def test_no_marker_for_benign_or_cascade_only(tmp_path):
    paths, world, scanner, client = setup(tmp_path, end_after_s=5.0, hang=False)
    world.at(0.1, b"NCCL INFO NCCL_IB_TIMEOUT set by environment to 18.\n")
    world.at(0.2, b"[rank0]: ChildFailedError: something\n")
    run(world, scanner)
    assert read_json(paths.marker(1)) is None and client.calls == [] and events(paths) == []


def test_terminal_is_recorded_but_never_cancelled(tmp_path):
    paths, world, scanner, client = setup(tmp_path, grace_s=0.0, end_after_s=30.0)
    world.at(0.5, b"slurmstepd: error: *** JOB 4242 ON jwb0001 CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***\n")
    run(world, scanner)
    m = read_json(paths.marker(1))
    assert m["class"] == "terminal" and m["error_type"] == "timeout"
    assert client.calls == []


def test_grace_zero_cancels_on_the_same_tick(tmp_path):
    paths, world, scanner, client = setup(tmp_path, grace_s=0.0)
    world.at(1.0, NCCL)
    run(world, scanner)
    assert client.calls and client.calls[0][1] - read_json(paths.marker(1))["time"] < 0.01


def test_cancel_failure_is_retried(tmp_path):
    paths, world, scanner, client = setup(tmp_path, grace_s=0.0, client=FakeClient(fail_times=2))
    world.at(1.0, NCCL)
    run(world, scanner)
    assert len(client.calls) == 3
    assert client.calls[2][1] - client.calls[0][1] >= 6.0


def test_no_cancel_client_records_only(tmp_path):
    paths, world, scanner, _ = setup(tmp_path, grace_s=0.0, end_after_s=5.0)
    scanner.ctx.client = None
    world.at(1.0, NCCL)
    run(world, scanner, stop_after_cancel=False)
    assert read_json(paths.marker(1))["error_type"] == "nccl" and not any(
        e == "sidecar_cancel" for e in events(paths))


def test_hang_by_pace_detected_within_10s(tmp_path):
    paths, world, scanner, client = setup(tmp_path, grace_s=2.0, end_after_s=300.0)
    t = iteration_lines(world, 0.0, 50, every_s=0.2)
    silence_start = world.t + t - 0.2  # the last iteration line
    run(world, scanner)
    m = read_json(paths.marker(1))
    assert m["error_type"] == "hang" and m["class"] == "transient" and m["source"] == "hang"
    assert m["signal"] == "hang" and "no iteration" in m["line"]
    assert m["last_iteration"] == 50
    assert m["time"] - silence_start < 10.0
    assert client.calls and client.calls[0][1] - m["time"] >= 2.0


def test_no_hang_during_60s_checkpoint_save(tmp_path):
    paths, world, scanner, client = setup(tmp_path, end_after_s=100.0)
    t = iteration_lines(world, 0.0, 20, every_s=0.2)
    world.at(t, b"saving checkpoint at iteration      20 to /ckpt\n")
    world.at(t + 60.0, b"  successfully saved checkpoint from iteration      20 to /ckpt\n")
    t2 = iteration_lines(world, t + 60.2, 20, every_s=0.2, first=21)
    world.end_at = world.t + t2 + 1.0  # stop while the job is still healthy
    run(world, scanner)
    assert read_json(paths.marker(1)) is None and client.calls == []
    prog = read_json(paths.progress(1))
    assert prog["last_checkpoint"] == 20 and prog["last_iteration"] == 40 and prog["first_iteration"] == 1
    assert prog["last_output_time"] is not None


def test_progress_written_every_2s_and_on_checkpoint(tmp_path):
    paths, world, scanner, _ = setup(tmp_path, end_after_s=10.0, hang=False)
    writes = []
    orig = scanner._maybe_write_progress

    def spy(now, force=False):
        before = scanner._progress_written_at
        orig(now, force)
        if scanner._progress_written_at != before and scanner._progress_last and scanner._progress_last["updated"] == now:
            writes.append(now)
    scanner._maybe_write_progress = spy
    iteration_lines(world, 0.0, 40, every_s=0.2)
    world.at(3.05, b"  successfully saved checkpoint from iteration      15 to /ckpt\n")
    run(world, scanner)
    gaps = [b - a for a, b in zip(writes, writes[1:])]
    assert writes and min(gaps) < 2.0  # the checkpoint write came early
    assert max(gaps) <= 2.2
    assert read_json(paths.progress(1))["last_checkpoint"] == 15


def test_final_drain_records_the_last_fatal_line_without_cancel(tmp_path):
    paths, world, scanner, client = setup(tmp_path, grace_s=0.0, end_after_s=2.0)
    iteration_lines(world, 0.0, 5)
    world.writes.append((world.end_at, b"RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"))
    # The stop comes right after the last write lands (no newline: flushed only by the drain).
    world.end_at += 0.05
    run(world, scanner)
    m = read_json(paths.marker(1))
    assert m["error_type"] == "oom" and m["class"] == "permanent" and m["line_no"] == 6
    assert client.calls == []


def test_garbled_lines_do_not_stop_the_scan(tmp_path):
    paths, world, scanner, client = setup(tmp_path, end_after_s=10.0)
    world.at(0.1, b"\xff\xfe\x00 RAISE-IN-CLASSIFIER \xc3\x28\n")
    world.at(0.2, b"\x00" * 5000 + b"\n")
    world.at(0.3, NCCL)
    run(world, scanner)
    assert read_json(paths.marker(1))["line_no"] == 3 and scanner.errors == 1


def test_marker_line_is_truncated_and_replaced():
    assert len(line_text(b"x" * 10000)) == 4096
    assert line_text(b"bad \xff") == "bad \ufffd"


def test_marker_json_round_trip(tmp_path):
    m = build_marker(error_type="nccl", failure_class="transient", signal="nccl_warn",
                     line=b"host:1:2 NCCL WARN \xff", line_no=7, node="host", now=1700000000.5,
                     job_id="12", attempt=2, source="log", first_iteration=1, last_iteration=9,
                     last_checkpoint=5, evidence=[{"line_no": 8, "line": "x", "signal": "s", "error_type": "e"}] * 30)
    atomic_write_json(tmp_path / "marker.json", m)
    back = read_json(tmp_path / "marker.json")
    assert back == json.loads(json.dumps(m)) and len(back["evidence"]) == 20
    assert set(back) >= {"error_type", "class", "signal", "line", "line_no", "node", "time", "time_iso",
                         "job_id", "attempt", "source", "evidence", "last_iteration", "last_checkpoint",
                         "first_iteration"}


@pytest.mark.parametrize("marker,now,cancelled,action", [
    (None, 10.0, False, Action.NONE),
    ({"class": "terminal", "error_type": "timeout"}, 100.0, False, Action.NONE),
    ({"class": "transient", "error_type": "nccl"}, 1.0, False, Action.WAIT),
    ({"class": "transient", "error_type": "nccl"}, 2.0, False, Action.CANCEL),
    ({"class": "permanent", "error_type": "oom"}, 5.0, False, Action.CANCEL),
    ({"class": "transient", "error_type": "nccl"}, 5.0, True, Action.NONE),
])
def test_decide_cancel(marker, now, cancelled, action):
    d = decide_cancel(marker, 0.0 if marker else None, now, 2.0, cancelled=cancelled)
    assert d.action is action and d.reason


def test_a_failing_tick_does_not_stop_the_scan(tmp_path):
    paths, world, scanner, client = setup(tmp_path, grace_s=0.0, end_after_s=10.0)

    class Broken(FakeProgress):
        calls = 0

        def hang_reason(self, now):
            Broken.calls += 1
            if Broken.calls < 5:
                raise ZeroDivisionError("bug")
            return None
    scanner.progress = Broken()
    world.at(2.0, NCCL)
    run(world, scanner)
    assert read_json(paths.marker(1))["error_type"] == "nccl" and client.calls


def test_a_symptom_waits_longer_for_its_cause():
    """A survivor's connection error (role symptom): the launcher's report of the dead rank
    follows seconds later, so the sidecar does not end the job after the short grace."""
    symptom = {"class": "transient", "error_type": "peer_lost", "role": "symptom"}
    assert decide_cancel(symptom, 0.0, 3.0, 2.0, cancelled=False).action is Action.WAIT
    assert decide_cancel(symptom, 0.0, 10.5, 2.0, cancelled=False).action is Action.CANCEL


def test_line_node_is_the_srun_task_s_node_not_the_rank():
    from sidecar.classify.tasks import task_nodes
    from sidecar.scan import line_node

    nodes = task_nodes("n[1-3]", "1(x3)")
    assert nodes == ("n1", "n2", "n3")
    # rank 2 ran on task 1 (the rendezvous numbers ranks in join order)
    assert line_node(b"1: [default0]:[rank2]: IndexError: index out of range in self", nodes) == "n2"
    assert line_node(b"srun: error: Node failure on n1", nodes) is None  # the batch shell's own line
    assert line_node(b"7: [default0]: x", nodes) is None
    assert task_nodes("n[1-2]", "2(x2)") == ("n1", "n1", "n2", "n2")
    assert task_nodes(None, None) == ()


def test_a_low_confidence_hit_waits_for_confirmation():
    low = {"class": "transient", "error_type": "killed", "role": "death", "confidence": "low"}
    assert decide_cancel(low, 0.0, 100.0, 2.0, cancelled=False).action is Action.WAIT
    assert decide_cancel(low, 0.0, 100.0, 2.0, cancelled=False, confirmations=1).action is Action.CANCEL
    medium = {**low, "confidence": "medium"}
    assert decide_cancel(medium, 0.0, 100.0, 2.0, cancelled=False).action is Action.CANCEL
