"""Follow a growing log file and hand out complete lines. I/O only: no classification here.

The training log is written by Slurm (stdout of the batch step) while the sidecar reads it, so
the follower must live with everything a real log does:

- it may not exist yet when the sidecar starts (Slurm creates it when the step first writes);
- the last line is usually incomplete (held until its newline arrives, flushed at ``close()``);
- a line may be huge (a tensor dump, a progress bar without newlines): above ``max_line_bytes``
  it is delivered as head + a note + tail, and the middle is never held in memory; the end of
  the line still being written is there to read (``pending``: a bar's latest redraws);
- bytes need not be UTF-8 (they are passed on as bytes; the classifier accepts bytes);
- the file may be truncated or replaced (size shrinks below our offset, or a new inode):
  reading restarts from 0 and ``on_notice`` says so. (A truncation followed, between two polls,
  by growth past our offset in the same inode cannot be seen from sizes; at a 0.1 s poll this
  needs a copytruncate and a burst within 0.1 s; the new bytes before our old offset are missed.)

Reads happen in bounded chunks and a poll reads at most ``max_poll_bytes``, so memory stays
flat whatever the log size and a burst of output never stalls the caller; ``behind`` tells the
caller there is more to read right away.
"""

from __future__ import annotations

import os
from typing import Callable

CHUNK_BYTES = 64 * 1024
# A line longer than this is passed on as its head and tail (the middle dropped), not buffered whole.
MAX_BUFFERED_LINE_BYTES = 1024 * 1024
MAX_POLL_BYTES = 8 * 1024 * 1024
# How much of the line being written ``pending()`` hands out: a progress bar's latest redraws.
PENDING_BYTES = 8 * 1024

Line = tuple[int, bytes]


def split_lines(buffer: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """Split ``buffer + chunk`` into complete lines (newline stripped) and the incomplete rest.

    Pure. ``\\r\\n`` endings lose their ``\\r`` too; a bare ``\\r`` (progress bars) is kept in the
    line, because treating it as a line end would split one logical line into many.
    """
    data = buffer + chunk if buffer else chunk
    parts = data.split(b"\n")
    rest = parts.pop()
    lines = [p[:-1] if p.endswith(b"\r") else p for p in parts]
    return lines, rest


def shorten(line: bytes, max_bytes: int, dropped_extra: int = 0) -> bytes:
    """``line`` cut to head + note + tail when it is longer than ``max_bytes``. Pure."""
    if len(line) <= max_bytes and not dropped_extra:
        return line
    half = max_bytes // 2
    head, tail = line[:half], line[-half:] if len(line) > half else b""
    dropped = len(line) - len(head) - len(tail) + dropped_extra
    return head + b" ...[%d bytes dropped]... " % dropped + tail


class LogFollower:
    """Yields the complete lines appended to ``path`` since the last ``poll()``.

    Line numbers count from 1 at ``start_offset`` (the start of the file by default) and start
    again at 1 after a truncation or rotation, so that they match the file being read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        start_offset: int = 0,
        chunk_bytes: int = CHUNK_BYTES,
        max_line_bytes: int = MAX_BUFFERED_LINE_BYTES,
        max_poll_bytes: int = MAX_POLL_BYTES,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.max_poll_bytes = max_poll_bytes
        self._notice = on_notice or (lambda _msg: None)
        self._start_offset = start_offset
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self.offset = 0  # bytes consumed from the current file
        self.line_no = 0  # number of the last line handed out
        self.resets = 0  # truncations / rotations seen
        self.behind = False  # the last poll stopped at max_poll_bytes; more is waiting
        # An over-long line in progress: its head is kept, its tail in a bounded window.
        self._rest = b""
        self._long_head: bytes | None = None
        self._long_tail = b""
        self._long_dropped = 0

    # -- public
    def poll(self) -> list[Line]:
        """Complete lines appended since the last poll (possibly none). Never raises for a
        missing file; other I/O errors are reported through ``on_notice`` and retried later."""
        out: list[Line] = []
        try:
            self._poll_into(out)
        except OSError as exc:
            self._notice(f"cannot read {self.path}: {exc}; will retry")
            self._close_fd()
        return out

    def close(self) -> list[Line]:
        """Read what is left, flush the incomplete last line, and close the file."""
        out = self.poll()
        while self.behind:
            out.extend(self.poll())
        self._flush_partial(out)
        self._close_fd()
        return out

    def pending(self, limit: int = PENDING_BYTES) -> bytes:
        """The end (at most ``limit`` bytes) of the line still being written: a progress bar
        redrawn with ``\\r`` has no newline until it closes, often at the end of an epoch."""
        if self._long_head is not None:
            return self._long_tail[-limit:]
        return self._rest[-limit:]

    # -- internals
    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        st = os.fstat(fd)
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        start = self._start_offset if self.resets == 0 else 0
        self.offset = min(start, st.st_size) if start else 0
        if self.offset:
            os.lseek(fd, self.offset, os.SEEK_SET)
        return True

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None

    def _poll_into(self, out: list[Line]) -> None:
        self.behind = False
        if self._fd is None and not self._open():
            return
        budget = self._read_available(out, self.max_poll_bytes)
        if budget <= 0:
            self.behind = True
            return
        # At EOF of the open file: was it truncated or replaced under us?
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return  # removed: keep what we have; a new file will show up as a new inode
        if (st.st_dev, st.st_ino) != self._ino:
            self._restart(out, f"log {self.path} was replaced (new inode); reading it from the start")
        elif st.st_size < self.offset:
            self._restart(out, f"log {self.path} was truncated ({self.offset} -> {st.st_size} bytes); reading it from the start")

    def _restart(self, out: list[Line], why: str) -> None:
        self._notice(why)
        self._flush_partial(out)  # bytes printed before the truncation are still real output
        self._close_fd()
        self.resets += 1
        self.line_no = 0
        if self._open():
            self._read_available(out, self.max_poll_bytes)

    def _read_available(self, out: list[Line], budget: int) -> int:
        """Read chunks until EOF or until ``budget`` bytes are spent; return what is left."""
        assert self._fd is not None
        while budget > 0:
            chunk = os.read(self._fd, min(self.chunk_bytes, budget))
            if not chunk:
                break
            self.offset += len(chunk)
            budget -= len(chunk)
            self._feed(chunk, out)
        return budget

    def _feed(self, chunk: bytes, out: list[Line]) -> None:
        if self._long_head is not None:
            tail = self._feed_long(chunk, out)
            if tail is None:
                return
            chunk = tail
        lines, rest = split_lines(self._rest, chunk)
        for line in lines:
            self._emit(shorten(line, self.max_line_bytes), out)
        if len(rest) > self.max_line_bytes:
            # Start of an over-long line: keep its head and a tail window, drop the middle.
            half = self.max_line_bytes // 2
            self._long_head = rest[:half]
            self._long_tail = rest[-half:]
            self._long_dropped = len(rest) - 2 * half
            rest = b""
        self._rest = rest

    def _feed_long(self, chunk: bytes, out: list[Line]) -> bytes | None:
        """Continue an over-long line. Returns the bytes after its end, or None if it goes on."""
        half = self.max_line_bytes // 2
        nl = chunk.find(b"\n")
        piece = chunk if nl < 0 else chunk[:nl]
        window = self._long_tail + piece
        self._long_dropped += max(0, len(window) - half)
        self._long_tail = window[-half:]
        if nl < 0:
            return None
        self._finish_long(out)
        return chunk[nl + 1 :]

    def _finish_long(self, out: list[Line]) -> None:
        assert self._long_head is not None
        tail = self._long_tail[:-1] if self._long_tail.endswith(b"\r") else self._long_tail
        note = b" ...[%d bytes dropped]... " % self._long_dropped
        self._emit(self._long_head + note + tail, out)
        self._long_head, self._long_tail, self._long_dropped = None, b"", 0

    def _flush_partial(self, out: list[Line]) -> None:
        if self._long_head is not None:
            self._finish_long(out)
        elif self._rest:
            self._emit(self._rest, out)
        self._rest = b""

    def _emit(self, line: bytes, out: list[Line]) -> None:
        self.line_no += 1
        out.append((self.line_no, line))
