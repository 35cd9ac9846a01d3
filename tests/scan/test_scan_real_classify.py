"""The scan loop with the real classifier, trackers and megatron_production preset (fake clock,
fake Slurm client): the pace-based hang target and real failure lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sidecar.classify import load_monitoring_preset
from sidecar.follow import LogFollower
from sidecar.rundir import RunPaths, read_json
from sidecar.scan import ScanContext, Scanner, run_loop

from .fakes import FakeClient, FakeWorld

# Real wording (PyTorch ProcessGroupNCCL, NCCL 2.19) and the cascade printed after it.
NCCL_ERROR = (b"[rank3]: RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, "
              b"unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.19.3\n")
CASCADE = b"torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"


def make(tmp_path, end_after_s):
    paths = RunPaths.of(tmp_path / "run")
    paths.create("r")
    paths.claim_attempt(3)
    world = FakeWorld(paths.train_log("77"))
    world.end_at = world.t + end_after_s
    client = FakeClient()
    client.clock = world.clock
    mon = load_monitoring_preset("megatron_production")
    ctx = ScanContext(paths=paths, attempt=3, job_id="77", kill_grace_s=mon.kill_grace_s,
                      hang_enabled=mon.hang.enabled, client=client)
    return paths, world, client, Scanner.for_monitoring(ctx, mon)


def iterations(world, start, n, every_s=0.2, first=1):
    for i in range(n):
        it = first + i
        world.at(start + i * every_s,
                 b" [2026-01-01 00:00:00] iteration %8d/   10000 | consumed samples: %12d | "
                 b"elapsed time per iteration (ms): 200.0 | learning rate: 3.0E-04 | lm loss: 7.1E+00 |\n"
                 % (it, it * 8))
    return start + n * every_s


def go(world, scanner, client):
    run_loop(scanner, LogFollower(world.log), clock=world.clock, sleep=world.sleep, poll_s=0.1,
             should_stop=lambda: bool(client.succeeded) or world.stop())


def test_hang_with_02s_iterations_detected_within_10s(tmp_path):
    paths, world, client, scanner = make(tmp_path, 600.0)
    t = iterations(world, 0.0, 100)
    last_line_at = world.t + t - 0.2
    go(world, scanner, client)
    m = read_json(paths.marker(3))
    assert m["error_type"] == "hang" and m["source"] == "hang" and m["class"] == "transient"
    assert m["last_iteration"] == 100
    assert m["time"] - last_line_at < 10.0, m
    assert client.calls and client.calls[0][1] - m["time"] >= 2.0


def test_60s_checkpoint_save_is_not_a_hang(tmp_path):
    paths, world, client, scanner = make(tmp_path, 600.0)
    t = iterations(world, 0.0, 50)
    world.at(t, b"saving checkpoint at iteration      50 to /ckpt in torch_dist format\n")
    world.at(t + 60.0, b"  successfully saved checkpoint from iteration      50 to /ckpt [ t 1/1, p 1/1 ]\n")
    t2 = iterations(world, t + 60.2, 50, first=51)
    world.end_at = world.t + t2 + 0.5
    go(world, scanner, client)
    assert read_json(paths.marker(3)) is None and client.calls == []
    assert read_json(paths.progress(3))["last_checkpoint"] == 50


def test_real_nccl_error_marker_with_cascade_evidence(tmp_path):
    paths, world, client, scanner = make(tmp_path, 60.0)
    t = iterations(world, 0.0, 10)
    world.at(t, NCCL_ERROR)
    world.at(t + 0.1, CASCADE)
    go(world, scanner, client)
    m = read_json(paths.marker(3))
    assert m["error_type"] == "nccl" and m["class"] == "transient" and m["line_no"] == 11
    assert [e["signal"] for e in m["evidence"]] == ["elastic_child_failed"]
    assert len(client.calls) == 1


def test_user_hang_scenario_line_is_error_type_hang(tmp_path):
    paths, world, client, scanner = make(tmp_path, 60.0)
    t = iterations(world, 0.0, 10)
    world.at(t, b"CUDA device-side assert detected in kernel execution\n")
    go(world, scanner, client)
    assert read_json(paths.marker(3))["error_type"] == "hang" and client.calls


# A bare "Killed" from a shell (the family layer's death.sigkill, confidence low): what killed it
# is unknown, and a helper process killed by an admin leaves the training running.
KILLED = b"Killed\n"


def test_low_confidence_hit_does_not_end_a_job_that_trains_on(tmp_path):
    paths, world, client, scanner = make(tmp_path, 24.0)  # ends 2 s after its last iteration
    t = iterations(world, 0.0, 10)
    world.at(t, KILLED)
    iterations(world, t + 0.2, 100, first=11)
    go(world, scanner, client)
    m = read_json(paths.marker(3))
    assert m["signal"] == "death.sigkill" and m["confidence"] == "low" and m["layer"] == "family"
    assert client.calls == []  # recorded, never cancelled: training went on


def test_low_confidence_hit_confirmed_by_a_second_line_ends_the_job(tmp_path):
    paths, world, client, scanner = make(tmp_path, 60.0)
    t0 = world.t
    t = iterations(world, 0.0, 10)
    world.at(t, KILLED)
    world.at(t + 5.0, CASCADE)
    go(world, scanner, client)
    m = read_json(paths.marker(3))
    assert m["signal"] == "death.sigkill" and [e["signal"] for e in m["evidence"]] == ["elastic_child_failed"]
    assert client.calls and client.calls[0][1] >= t0 + t + 5.0


def test_low_confidence_hit_confirmed_by_a_stall_ends_the_job(tmp_path):
    paths, world, client, scanner = make(tmp_path, 600.0)
    t0 = world.t
    t = iterations(world, 0.0, 100)
    world.at(t, KILLED)  # then silence: the ranks stopped
    go(world, scanner, client)
    m = read_json(paths.marker(3))
    assert m["signal"] == "death.sigkill"
    assert client.calls and client.calls[0][1] - (t0 + t) < 15.0


EPISODES = sorted((Path(__file__).resolve().parents[1] / "classify" / "fixtures" / "episodes").glob("*.log"))


@pytest.mark.parametrize("path", EPISODES, ids=lambda p: p.stem)
def test_sidecar_marker_names_the_episode_s_root_cause(tmp_path, path):
    """The sidecar reads every episode (captured on the cluster or written from public logs'
    forms) line by line and its marker names what ``classify`` names (the context rules live in
    one tracker), except a cancelled step with no other cause: that is only the verdict's, and
    never ends a running job. A finished run or a silent hang writes no marker from its lines."""
    exp = dict(item.split("=", 1) for line in path.read_text().splitlines()
               if line.startswith("# expect:") for item in line[len("# expect:"):].split())
    paths, world, client, scanner = make(tmp_path, 60.0)
    # lines end at \n, as the follower cuts them: a progress bar's bare \r stays in its line
    for no, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        scanner.feed(no, raw, float(no))
    m = read_json(paths.marker(3))
    if exp["root_line"] == "-":  # a finished run or a silent hang (found by pace, not by a line)
        assert m is None, m
        return
    if exp["error_type"] == "scancel":
        # Slurm's cancel banner alone is the verdict's only (rule 4b); a banner that explains a
        # signalled process printed before it (rule 3c) replaces that process's marker
        assert m is None or (m["error_type"] == "scancel" and m["line_no"] == int(exp["root_line"])), m
        return
    assert m is not None and m["error_type"] == exp["error_type"] and m["line_no"] == int(exp["root_line"]), m
    assert m["class"] == exp["class"]
    assert [e["line_no"] for e in m["superseded"]] == [int(n) for n in exp.get("superseded", "").split(",") if n]


GLOO_CLOSED = (b"0: [default0]:[rank0]: RuntimeError: [/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] "
               b"Connection closed by peer [127.0.0.1]:35729. This is typically caused by a remote worker crashing.\n")
AGENT_TERM = b"1: torch.distributed.elastic.multiprocessing.api.SignalException: Process 31821 got signal: 15\n"


def test_a_signalled_agent_replaces_the_symptom_marker_before_the_sidecar_acts(tmp_path):
    paths, world, client, scanner = make(tmp_path, 60.0)
    scanner.feed(1, GLOO_CLOSED, 0.0)
    scanner.feed(2, AGENT_TERM, 0.1)
    assert read_json(paths.marker(3))["error_type"] == "terminated"


def test_the_signals_the_sidecar_sends_are_not_a_new_death(tmp_path):
    # the survivor's symptom is the marker; after its grace the sidecar ends the job, and the
    # agents then report the TERM it sent: that is not a new root cause
    paths, world, client, scanner = make(tmp_path, 60.0)
    scanner.feed(1, GLOO_CLOSED, 0.0)
    for t in range(1, 40):
        scanner.tick(float(t))
    assert client.calls, "the sidecar did not end the job"
    scanner.feed(2, AGENT_TERM, 41.0)
    assert read_json(paths.marker(3))["error_type"] == "peer_lost"


def test_an_exception_python_ignored_mid_training_ends_nothing(tmp_path):
    # PyTorch's DataLoader destructor at an epoch's end (Python prints it and goes on): the live
    # sidecar must not take its AssertionError for a code error and end a healthy job
    paths, world, client, scanner = make(tmp_path, 30.0)
    t = iterations(world, 0.0, 20)
    world.at(t, b"Exception ignored in: <function _MultiProcessingDataLoaderIter.__del__ at 0x7f8a1c2e5b40>\n"
                b"Traceback (most recent call last):\n"
                b"    assert self._parent_pid == os.getpid(), 'can only test a child process'\n"
                b"AssertionError: can only test a child process\n")
    t2 = iterations(world, t + 0.2, 20, first=21)
    world.end_at = world.t + t2 + 0.5
    go(world, scanner, client)
    assert read_json(paths.marker(3)) is None and client.calls == []


def lightning_bar(world, start, n, every_s=0.25):
    """A Lightning progress bar drawn step by step with carriage returns and no newline (a
    non-terminal stdout under Slurm): the line only ends when the epoch does."""
    for i in range(1, n + 1):
        world.at(start + i * every_s,
                 b"\rEpoch 0:  %2d%%|          | %d/1000 [00:%02d<01:15,  4.00it/s, v_num=0, train_loss=2.10]"
                 % (i // 10, i, i % 60))
    return start + n * every_s


def test_hang_detected_from_a_progress_bar_still_being_drawn(tmp_path):
    """No newline ever arrives: the pace comes from the bar's redraws in the line being written."""
    paths, world, client, scanner = make(tmp_path, 600.0)
    world.at(0.0, b"LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]\n")
    t = lightning_bar(world, 0.0, 60)
    last_step_at = world.t + t
    go(world, scanner, client)
    m = read_json(paths.marker(3))
    assert m["error_type"] == "hang" and m["last_iteration"] == 60, m
    assert re.search(r"after iteration 60 \(limit 5\.0 s: 10 x recent interval 0\.[23]\d* s", m["line"]), m["line"]
    assert m["time"] - last_step_at < 10.0, m


def test_a_bar_still_being_drawn_is_not_a_hang_while_it_moves(tmp_path):
    paths, world, client, scanner = make(tmp_path, 0.0)
    t = lightning_bar(world, 0.0, 400)  # 100 s of one unfinished line
    world.end_at = world.t + t + 1.0
    go(world, scanner, client)
    assert read_json(paths.marker(3)) is None and client.calls == []
    assert read_json(paths.progress(3))["last_iteration"] == 400
