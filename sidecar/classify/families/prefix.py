"""What launchers, collectors and shells put in front of a program's own line."""

from __future__ import annotations

import re

import re2

# What launchers, collectors and shells put in front of a program's own line: srun --label
# "12: ", torchrun "[default3]:" / "[rank3]:", timestamps, Ray's "(Worker pid=.., ip=..)",
# mpirun --tag-output "[1,3]<stderr>:", pdsh "pdsh@login1: gpu21: " (host names in lower case, so
# that a module with a digit, "pyo3_runtime.PanicException: ", stays the exception it is), NCCL's "host:pid:tid [dev]". Signals,
# ignore patterns and family rules also read the line without it (``line_body``), so that a
# pattern anchored at the start of the program's own text holds whatever was prepended. Log
# levels ("[INFO]", glog's "[W1206 ... file.cpp:12]") are the program's own and stay.
# Ray colours its prefixes (ESC[36m ... ESC[0m; pasted logs keep the "[36m" without the ESC).
# Ray names an actor by its class and what it maps, nested: "(MapWorker(MapBatches(tok)) pid=42, ip=..)".
_LAUNCHER = (r"\x1b?\[[0-9;]{1,12}m|\d+:|\[[^\]]{0,80}\]:|\([\w.()]{1,120} pid=\d+(?:, ip=[\w.:-]+)?\)|\([^)]{0,160}\)|\d{4}-\d\d-\d\d[T ][\d:.,]+Z?|[\w.-]+/\d+ \[\d+\]:"
             r"|[A-Za-z][\w.-]*:\d+:\d+ \[\d+\]|\[\d+,\d+\]<std(?:out|err)>:|<std(?:out|err)>:|pdsh@[\w.-]+:|[a-z][a-z0-9-]*\d[a-z0-9_.-]*: ")
LINE_PREFIX = rf"^(?:\s*(?:{_LAUNCHER}))+\s*"
_LINE_PREFIX = re2.compile(LINE_PREFIX)
# The exception reader also skips log headers before the exception ("[..] [ERROR]", "12:00:00", what():).
_PREFIX = re.compile(rf"^(?:\s*(?:{_LAUNCHER}|\[[^\]]{{0,80}}\]|\d\d:\d\d:\d\d(?:[.,]\d+)?|what\(\):))+\s*")


def line_body(data: bytes) -> bytes:
    """``data`` without the launcher's prefix (``data`` itself when it has none)."""
    m = _LINE_PREFIX.match(data)
    return data[m.end():] if m is not None and m.end() else data


def strip_prefix(text: str) -> str:
    """``text`` without launcher prefixes and log headers (for the exception reader)."""
    m = _PREFIX.match(text)
    return text[m.end():] if m else text
