"""Hang detection that learns the job's pace; time is passed in."""

from __future__ import annotations

from sidecar.classify import HangConfig, ProgressTracker, load_monitoring_preset

HANG = load_monitoring_preset("megatron_production").hang


def it(n, total=100000, ms=200.0):
    return f" [2024-05-01 12:00:00] iteration {n:>8}/{total:>8} | consumed samples: {n * 8} | elapsed time per iteration (ms): {ms} | lm loss: 3.2E+00 |"


def first_hang_time(p, start, step=0.1, limit=4000.0):
    t = start
    while t < start + limit:
        if p.hang_reason(t):
            return t
        t += step
    return None


def test_fast_iterations_hang_detected_under_10_s():
    p = ProgressTracker(HANG)
    t = 0.0
    for n in range(1, 51):
        p.observe(it(n), t)
        t += 0.2
    last = t - 0.2
    # keep printing non-progress output: a hung job may still log (e.g. NCCL INFO)
    p.observe("node1:1:2 [0] NCCL INFO something", last + 1.0)
    hung_at = first_hang_time(p, last)
    assert hung_at is not None and hung_at - last < 10.0
    assert hung_at - last >= HANG.floor_s  # never sooner than the floor
    reason = p.hang_reason(hung_at)
    assert "iteration 50" in reason and "no new iteration" in reason
    assert p.last_iteration == 50 and p.first_iteration == 1


def test_checkpoint_save_of_60_s_is_not_a_hang():
    p = ProgressTracker(HANG)
    t = 0.0
    for n in range(1, 21):
        p.observe(it(n), t)
        t += 0.2
    p.observe(" saving checkpoint at iteration       20 to /ckpt in torch_dist format", t)
    assert p.saving_checkpoint
    for dt in range(0, 61):
        assert p.hang_reason(t + dt) is None
    p.observe("  successfully saved checkpoint from iteration       20 to /ckpt [ t 1/ 1, p 1/ 1 ]", t + 60)
    assert not p.saving_checkpoint and p.last_checkpoint == 20
    # the pace clock restarts at the end of the save: not hung right after it
    assert p.hang_reason(t + 61) is None
    p.observe(it(21), t + 61.2)
    p.observe(it(22), t + 61.4)
    assert p.hang_reason(t + 64) is None
    assert p.hang_reason(t + 61.4 + 5.5) is not None  # pace kept: 0.2 s, not the 60 s save gap


def test_checkpoint_timeout_applies_during_a_save():
    p = ProgressTracker(HangConfig(checkpoint_timeout_s=100))
    p.observe(it(1), 0)
    p.observe(it(2), 1)
    p.observe(" saving checkpoint at iteration        2 to /ckpt", 2)
    assert p.hang_reason(101) is None
    assert "checkpoint save at iteration 2" in p.hang_reason(103)


def test_startup_timeout_before_first_iteration():
    p = ProgressTracker(HangConfig(startup_timeout_s=600))
    p.start(0)
    assert p.hang_reason(599) is None
    p.observe(" > building train, validation, and test datasets ...", 500)  # output resets it
    assert p.hang_reason(1000) is None
    assert "before the first iteration" in p.hang_reason(1101)


def test_slow_iterations_use_pace_and_ceiling():
    p = ProgressTracker(HANG)
    for n, t in enumerate((0, 100, 200, 300), 1):
        p.observe(it(n), t)
    assert p.iteration_timeout_s() == 1000  # 10 x 100 s
    assert p.hang_reason(300 + 999) is None and p.hang_reason(300 + 1001)
    q = ProgressTracker(HANG)
    for n, t in enumerate((0, 1000, 2000), 1):
        q.observe(it(n), t)
    assert q.iteration_timeout_s() == 1800  # the ceiling


def test_single_iteration_has_no_pace_yet_and_disabled_never_hangs():
    p = ProgressTracker(HANG)
    p.observe(it(1), 0)
    assert p.iteration_timeout_s() == HANG.ceiling_s
    off = ProgressTracker(HangConfig(enabled=False))
    off.observe(it(1), 0)
    assert off.hang_reason(1e9) is None


def test_checkpoint_load_and_repeated_lines():
    p = ProgressTracker(HANG)
    p.observe("  successfully loaded checkpoint from /ckpt [ t 0/ 1, p 0/ 1 ] at iteration 100", 0)
    assert p.last_checkpoint == 100 and p.last_iteration is None
    p.observe(b"[default0]: iteration      110/   1000 | lm loss: 3.0 |", 1)
    p.observe(b"[default1]: iteration      110/   1000 | lm loss: 3.0 |", 1.1)  # another rank echoing
    p.observe(b"[default0]: iteration      120/   1000 | lm loss: 3.0 |", 2)
    assert p.last_iteration == 120 and p.first_iteration == 110
    assert p.iteration_timeout_s() == HANG.floor_s * 2  # 10 x 1 s interval, not 0.1 s


def test_buffered_bursts_are_not_a_hang():
    # python without -u under srun: 27 iteration lines arrive at once every 27 s
    p = ProgressTracker(HANG)
    n = 0
    for burst in range(6):
        t = burst * 27.0
        for _ in range(27):
            n += 1
            p.observe(it(n), t)
        assert p.hang_reason(t + 26.9) is None
    assert p.iteration_timeout_s() == 270  # 10 x the 27 s between bursts
    assert p.hang_reason(5 * 27 + 269) is None and p.hang_reason(5 * 27 + 271)


def test_a_later_save_gets_a_window_learned_from_earlier_saves():
    """A rank stopped during a save: once a save has been seen (3 s here), the next one is hung
    after save_factor x 3 s (floor 10 s), not after checkpoint_timeout_s (an hour)."""
    p = ProgressTracker(HangConfig(checkpoint_timeout_s=3600, save_factor=5, save_floor_s=10))
    p.observe(it(1), 0)
    p.observe(it(2), 1)
    p.observe(" saving checkpoint at iteration        2 to /ckpt", 1)
    assert p.save_timeout_s() == 3600  # nothing learned yet
    p.observe("  successfully saved checkpoint from iteration       2 to /ckpt", 4)
    assert p.longest_save_s == 3
    p.observe(it(3), 5)
    p.observe(it(4), 6)
    p.observe(" saving checkpoint at iteration        4 to /ckpt", 6)
    assert p.save_timeout_s() == 15
    assert p.hang_reason(6 + 14) is None
    reason = p.hang_reason(6 + 16)
    assert "checkpoint save at iteration 4" in reason and "5 x longest earlier save 3.0 s" in reason


def test_the_save_window_has_a_floor_and_a_cap():
    p = ProgressTracker(HangConfig(checkpoint_timeout_s=100, save_factor=5, save_floor_s=60))
    p.observe(it(1), 0)
    p.observe(" saving checkpoint at iteration        1 to /ckpt", 0)
    p.observe("  successfully saved checkpoint from iteration       1 to /ckpt", 1)
    assert p.save_timeout_s() == 60  # 5 x 1 s, raised to the floor
    p.observe(it(2), 2)
    p.observe(" saving checkpoint at iteration        2 to /ckpt", 2)
    p.observe("  successfully saved checkpoint from iteration       2 to /ckpt", 52)
    assert p.save_timeout_s() == 100  # 5 x 50 s, capped by checkpoint_timeout_s
