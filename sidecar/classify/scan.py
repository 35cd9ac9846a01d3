"""Stream a log through the classifier in constant memory, fast.

A Python loop over lines tops out far below ``grep``. Instead we read big binary chunks, run
ONE RE2 search of the combined alternation of every signal over the chunk (RE2's DFA, in C++),
and only where it matches do we cut out the line and classify it properly (preset order, ignore
rules, node). Line numbers come from ``bytes.count(b"\\n")`` between hits, also in C. Lines that
match nothing are never touched by Python, so throughput is RE2's scanning speed.

Why this is exact: with ``(?m)`` the combined pattern's ``^``/``$`` mean line start/end, and
``.`` never crosses a newline, so any line that matches a signal on its own also contains a
match of the combined pattern in the chunk; the leftmost match is at or before it. A match that
spans lines (``\\s`` can match a newline) only costs a verification that finds nothing.

Memory: one reused buffer of ``CHUNK_BYTES``. A line longer than the buffer is
not buffered: we keep its head and tail (which is all the classifier looks at, see
``classifier.MAX_LINE_BYTES``) and drop the middle as it streams by.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterator

from sidecar.classify.classifier import _HALF, MAX_LINE_BYTES, LineClassifier
from sidecar.classify.model import SignalHit

CHUNK_BYTES = 8 << 20  # RE2 scans bigger buffers faster; 8 MiB keeps RSS well under 100 MB


class _LongLine:
    """A line too long to buffer: all of it while short, then only its head and tail."""

    def __init__(self, start: bytes) -> None:
        self.full: bytearray | None = bytearray()
        self.head = b""
        self.tail = b""
        self.add(start)

    def add(self, data: bytes) -> None:
        if self.full is not None:
            self.full += data
            if len(self.full) <= MAX_LINE_BYTES:
                return
            self.head, self.tail = bytes(self.full[:_HALF]), bytes(self.full[-_HALF:])
            self.full = None
            return
        self.tail = (self.tail + data)[-_HALF:] if len(data) < _HALF else data[-_HALF:]

    def line(self) -> bytes:
        if self.full is not None:
            return bytes(self.full)
        # head + separator + tail is longer than MAX_LINE_BYTES, so the classifier looks at
        # exactly the head and the tail, never at a junction made up here.
        return self.head + b"\n" + self.tail


def scan_stream(
    stream: BinaryIO,
    classifier: LineClassifier,
    chunk_bytes: int = CHUNK_BYTES,
    on_region: Callable[[bytearray, int], None] | None = None,
) -> Iterator[SignalHit]:
    """Yield the hits of a binary stream, line numbers 1-based.

    ``on_region(buf, end)`` is called with each run of complete lines ``buf[:end]`` (for
    progress parsing in ``report.py``) before its hits are yielded.
    """
    # One buffer for the whole stream, filled with readinto: allocating a fresh chunk (and
    # joining it to the previous line's tail) per read costs more than RE2's scan itself.
    buf = bytearray(chunk_bytes)
    view = memoryview(buf)
    have = 0  # bytes at the front of buf: the unfinished line of the previous read
    state = _State()
    long: _LongLine | None = None
    while True:
        n = _fill(stream, view, have)
        eof = n == 0
        total = have + n
        if long is not None:
            nl = buf.find(b"\n", 0, total)
            if nl < 0:
                long.add(bytes(view[:total]))
                have = 0
                if eof:
                    yield from _one(classifier, long.line(), state.lines_before + 1)
                    return
                continue
            long.add(bytes(view[:nl]))
            yield from _one(classifier, long.line(), state.lines_before + 1)
            state.lines_before += 1
            long = None
            have = total - nl - 1
            buf[:have] = view[nl + 1 : total]
            if not eof:
                continue
            total = have
        end = buf.rfind(b"\n", 0, total) + 1
        if eof:  # the last line may lack its newline
            yield from state.region(classifier, buf, end, on_region)
            if end < total:
                yield from _one(classifier, bytes(view[end:total]), state.lines_before + 1)
            return
        if end == 0:
            if total == len(buf):  # one line longer than the buffer: stream it
                long, have = _LongLine(bytes(view[:total])), 0
            else:
                have = total
            continue
        yield from state.region(classifier, buf, end, on_region)
        have = total - end
        buf[:have] = view[end:total]  # keep the unfinished line (a memmove)


def _fill(stream: BinaryIO, view: memoryview, have: int) -> int:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return readinto(view[have:]) or 0
    data = stream.read(len(view) - have)
    view[have : have + len(data)] = data
    return len(data)


class _State:
    """Line numbering across reads, and the scan of one run of complete lines."""

    def __init__(self) -> None:
        self.lines_before = 0  # newlines before the start of the current buffer

    def region(self, classifier: LineClassifier, buf: bytearray, end: int,
               on_region: Callable[[bytearray, int], None] | None) -> Iterator[SignalHit]:
        if end == 0:
            return
        if buf.find(b"\r", 0, end) >= 0:
            # CRLF lines: RE2's multi-line $ matches only before \n, while a single line is
            # classified without its line ending. Drop the \r so both agree (a copy, only here).
            buf = buf[:end].replace(b"\r\n", b"\n")
            end = len(buf)
        if on_region is not None:
            on_region(buf, end)
        combined = classifier.combined
        counted = 0  # newlines in buf[:counted] are already in lines_before
        pos = 0
        while pos < end:
            m = combined.search(buf, pos, end)
            if m is None:
                break
            start = buf.rfind(b"\n", 0, m.start()) + 1
            stop = buf.find(b"\n", m.start(), end)
            self.lines_before += buf.count(b"\n", counted, start)
            counted = start
            hit = classifier.classify(bytes(buf[start:stop]), self.lines_before + 1)
            if hit is not None:
                yield hit
            pos = stop + 1
        self.lines_before += buf.count(b"\n", counted, end)


def _one(classifier: LineClassifier, line: bytes, line_no: int) -> Iterator[SignalHit]:
    hit = classifier.classify(line, line_no)
    if hit is not None:
        yield hit


def scan_path(path: str, classifier: LineClassifier, **kw) -> Iterator[SignalHit]:
    """``scan_stream`` over a file, or stdin for ``-``."""
    import sys

    if path == "-":
        yield from scan_stream(sys.stdin.buffer, classifier, **kw)
        return
    with open(path, "rb") as f:
        yield from scan_stream(f, classifier, **kw)
