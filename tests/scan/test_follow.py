"""The log follower: late file, partial lines, long lines, invalid UTF-8, truncation, rotation."""

from __future__ import annotations

import os

from sidecar.follow import LogFollower, shorten, split_lines


def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


# -- split_lines (pure)
def test_split_lines_keeps_incomplete_rest():
    assert split_lines(b"", b"a\nb\nc") == ([b"a", b"b"], b"c")
    assert split_lines(b"c", b"d\n") == ([b"cd"], b"")
    assert split_lines(b"", b"") == ([], b"")


def test_split_lines_strips_crlf_but_keeps_bare_cr():
    assert split_lines(b"", b"a\r\nbar 1\rbar 2\n") == ([b"a", b"bar 1\rbar 2"], b"")


def test_shorten_keeps_head_and_tail():
    line = b"H" * 10 + b"M" * 100 + b"T" * 10
    out = shorten(line, 20)
    assert out.startswith(b"H" * 10) and out.endswith(b"T" * 10)
    assert b"[100 bytes dropped]" in out
    assert shorten(b"short", 20) == b"short"


# -- the follower
def test_late_file_gives_nothing_then_lines(tmp_path):
    log = tmp_path / "train.out"
    f = LogFollower(log)
    assert f.poll() == []
    assert f.poll() == []
    append(log, b"one\ntwo\n")
    assert f.poll() == [(1, b"one"), (2, b"two")]
    assert f.poll() == []


def test_partial_line_held_until_newline_and_flushed_at_close(tmp_path):
    log = tmp_path / "train.out"
    append(log, b"first\nsec")
    f = LogFollower(log)
    assert f.poll() == [(1, b"first")]
    append(log, b"ond")
    assert f.poll() == []
    append(log, b"\nthi")
    assert f.poll() == [(2, b"second")]
    assert f.close() == [(3, b"thi")]


def test_long_line_is_head_plus_tail_and_never_held_whole(tmp_path):
    log = tmp_path / "train.out"
    f = LogFollower(log, chunk_bytes=1000, max_line_bytes=4000)
    append(log, b"before\n" + b"A" * 3000)
    assert f.poll() == [(1, b"before")]
    for _ in range(50):  # 50 kB of one line, in pieces
        append(log, b"B" * 1000)
        assert f.poll() == []
        held = len(f._rest) + len(f._long_head or b"") + len(f._long_tail)
        assert held <= 4000
    append(log, b"Z" * 10 + b"\nafter\n")
    lines = f.poll()
    assert [n for n, _ in lines] == [2, 3]
    long = lines[0][1]
    assert long.startswith(b"A" * 2000) and long.endswith(b"B" * 1990 + b"Z" * 10)
    assert b"bytes dropped" in long and len(long) < 4100
    assert lines[1] == (3, b"after")


def test_long_complete_line_in_one_read_is_shortened(tmp_path):
    log = tmp_path / "train.out"
    append(log, b"x" * 10000 + b"\nok\n")
    f = LogFollower(log, chunk_bytes=65536, max_line_bytes=1000)
    lines = f.poll()
    assert len(lines[0][1]) < 1100 and lines[1] == (2, b"ok")


def test_invalid_utf8_is_passed_on_as_bytes(tmp_path):
    log = tmp_path / "train.out"
    append(log, b"bad \xff\xfe bytes\nNCCL WARN \xc3\n")
    assert LogFollower(log).poll() == [(1, b"bad \xff\xfe bytes"), (2, b"NCCL WARN \xc3")]


def test_truncation_restarts_from_zero_and_says_so(tmp_path):
    log = tmp_path / "train.out"
    notices: list[str] = []
    append(log, b"a\nb\nc\n")
    f = LogFollower(log, on_notice=notices.append)
    assert len(f.poll()) == 3
    with open(log, "wb") as fh:  # copytruncate-style
        fh.write(b"x\n")
    assert f.poll() == [(1, b"x")]
    assert f.resets == 1 and "truncated" in notices[0]


def test_rotation_reads_old_tail_then_new_file(tmp_path):
    log = tmp_path / "train.out"
    notices: list[str] = []
    append(log, b"a\n")
    f = LogFollower(log, on_notice=notices.append)
    assert f.poll() == [(1, b"a")]
    append(log, b"b\n")
    os.rename(log, tmp_path / "train.out.1")
    append(log, b"new\n")
    assert f.poll() == [(2, b"b"), (1, b"new")]
    assert "replaced" in notices[0]


def test_poll_is_bounded_and_reports_behind(tmp_path):
    log = tmp_path / "train.out"
    append(log, b"".join(b"line %d\n" % i for i in range(10000)))
    f = LogFollower(log, chunk_bytes=4096, max_poll_bytes=16384)
    first = f.poll()
    assert f.behind and 0 < len(first) < 10000
    got = len(first)
    while f.behind:
        got += len(f.poll())
    assert got == 10000


def test_start_offset(tmp_path):
    log = tmp_path / "train.out"
    append(log, b"old\nnew\n")
    assert LogFollower(log, start_offset=4).poll() == [(1, b"new")]


def test_pending_is_the_end_of_the_line_being_written(tmp_path):
    log = tmp_path / "bar.log"
    log.write_bytes(b"done\n\rEpoch 0:   0%| | 1/10 [")
    f = LogFollower(log)
    assert [line for _, line in f.poll()] == [b"done"]
    assert f.pending() == b"\rEpoch 0:   0%| | 1/10 ["
    with open(log, "ab") as fh:
        fh.write(b"00:01]\rEpoch 0:  10%| | 2/10 [00:02]")
    assert f.poll() == [] and f.pending().endswith(b"2/10 [00:02]")
    assert len(f.pending(limit=8)) == 8
    with open(log, "ab") as fh:
        fh.write(b"\n")
    assert len(f.poll()) == 1 and f.pending() == b""


def test_pending_of_an_over_long_line_is_its_tail(tmp_path):
    log = tmp_path / "bar.log"
    log.write_bytes(b"\r".join(b"step %d of a long bar" % i for i in range(5000)))
    f = LogFollower(log, max_line_bytes=4096)
    assert f.poll() == []
    assert f.pending().endswith(b"step 4999 of a long bar") and len(f.pending()) <= 2048
