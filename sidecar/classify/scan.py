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

Memory: one chunk plus the unfinished line at its end. A line longer than ``CHUNK_BYTES`` is
not buffered: we keep its head and tail (which is all the classifier looks at, see
``classifier.MAX_LINE_BYTES``) and drop the middle as it streams by.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterator

from sidecar.classify.classifier import _HALF, MAX_LINE_BYTES, LineClassifier
from sidecar.classify.model import SignalHit

CHUNK_BYTES = 4 << 20  # big enough that per-chunk Python overhead is negligible


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
    on_region: Callable[[bytes, int], None] | None = None,
) -> Iterator[SignalHit]:
    """Yield the hits of a binary stream, line numbers 1-based.

    ``on_region(buf, end)`` is called with each run of complete lines ``buf[:end]`` (for
    progress parsing in ``report.py``) before its hits are yielded.
    """
    combined = classifier.combined
    lines_before = 0  # newlines before the start of ``buf``
    pending = b""
    long: _LongLine | None = None
    while True:
        data = stream.read(chunk_bytes)
        eof = not data
        if long is not None:
            if eof:
                yield from _one(classifier, long.line(), lines_before + 1)
                return
            nl = data.find(b"\n")
            if nl < 0:
                long.add(data)
                continue
            long.add(data[:nl])
            yield from _one(classifier, long.line(), lines_before + 1)
            lines_before += 1
            long = None
            data = data[nl + 1 :]
        buf = pending + data if pending else data
        if eof:  # end of stream: the last line may lack its newline
            if buf:
                yield from _one(classifier, buf, lines_before + 1)
            return
        end = buf.rfind(b"\n") + 1
        if end == 0:
            if len(buf) > chunk_bytes:  # one line longer than a chunk: stream it
                long, pending = _LongLine(buf), b""
            else:
                pending = buf
            continue
        pending = buf[end:]
        if on_region is not None:
            on_region(buf, end)
        counted = 0  # newlines in buf[:counted] are already in lines_before
        pos = 0
        while pos < end:
            m = combined.search(buf, pos, end)
            if m is None:
                break
            start = buf.rfind(b"\n", 0, m.start()) + 1
            stop = buf.find(b"\n", m.start(), end)
            lines_before += buf.count(b"\n", counted, start)
            counted = start
            hit = classifier.classify(buf[start:stop], lines_before + 1)
            if hit is not None:
                yield hit
            pos = stop + 1
        lines_before += buf.count(b"\n", counted, end)
        if len(pending) > chunk_bytes:
            long, pending = _LongLine(pending), b""


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
