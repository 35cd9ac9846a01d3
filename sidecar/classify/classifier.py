"""Line classification with RE2: linear time whatever the pattern or the line.

Why google-re2 and not ``re``: RE2 compiles patterns to automata and guarantees matching time
linear in the input, with no catastrophic backtracking. The sidecar runs user-supplied patterns
against untrusted, sometimes enormous log lines inside a training allocation; with ``re`` a
single pattern like ``(a+)+$`` on a long line could stall it for hours and miss the failure it
is there to catch. RE2 refuses the features that need backtracking (backreferences,
lookaround), and ``config.check_pattern`` turns that refusal into a ConfigError at load time.

All signal patterns go into one ``re2.Set``: one pass over a line says which signals match; the
first one in order wins (the user's own signals, then the preset's, specific before general).
A line no signal matches goes to the family layer (``families``) when its cheap prefilter
marks it as error-looking. Each hit says which layer decided, its role and how sure it is. Lines longer
than ``MAX_LINE_BYTES`` are classified on their head and tail only: failure messages put the
exception name and the rank/host prefix at the start and Slurm's ``***`` banners at the end,
while the middle of a multi-megabyte line is a dumped tensor or repr; this bounds the work per
line and the size of what we keep.
"""

from __future__ import annotations

import re2

from sidecar.classify.config import re2_options
from sidecar.classify.sets import search_set
from sidecar.classify.families import EXCEPTION_RULE, PREFILTER, FamilyLayer, FamilyRule, family_hit, line_body
from sidecar.classify.tasks import NODE_LOCAL_ERROR_TYPES, labelled_node
from sidecar.errors import ConfigError
from sidecar.classify.model import Confidence, Layer, MonitoringConfig, Role, SignalHit

MAX_LINE_BYTES = 64 * 1024
_HALF = MAX_LINE_BYTES // 2
MAX_KEPT_LINE = 4096  # characters of a hit line kept in a SignalHit (and in markers)
# The error types of the presets' signals that read only an exception's type ("ValueError: ...").
_BY_TYPE = frozenset({"code_error", "config_error"})

# Where a line names the node it points at, in the order we trust them. Each has one group.
NODE_PATTERNS: tuple[str, ...] = (
    r"\bON (\S+) CANCELLED AT\b",  # slurmstepd: *** STEP 1.0 ON node17 CANCELLED AT ...
    r"\bNode failure on ([A-Za-z0-9][\w.-]*)",  # srun: error: Node failure on node17
    r"srun: error: ([A-Za-z0-9][\w.-]*): tasks? [\d,-]+:",  # srun: error: node17: task 3: Exited ...
    r"^pdsh@[\w.-]+: ([a-z][\w.-]*): ",  # pdsh@login1: node17: ssh exited with exit code 255
    r"\bssh: connect to host ([A-Za-z][\w.-]*) port \d+",  # ssh: connect to host node17 port 22: No route to host
    # NCCL's "<host>:<pid>:<tid> [<dev>]" prefix, after an optional rank prefix
    r"^(?:\d+: ?)?(?:\[\w+\]: ?){0,2}\s*([A-Za-z][\w.-]*):\d+:\d+ \[\d+\]",
    # UCX's "[<epoch>.<us>] [<host>:<pid>:<thread>]  file.c:N  UCX  ERROR ..."
    r"\[\d+\.\d+\] \[([A-Za-z][\w.-]*):\d+:\d+\]",
    # syslog/dmesg-style Xid lines: "Mar  1 12:00:00 node17 kernel: NVRM: Xid ..."
    r"^\w{3}\s+\d+\s+[\d:]+\s+([\w.-]+)\s+kernel:",
    r"\b[Nn]ode:? ([A-Za-z][\w.-]*[\w])",  # RuntimeError: Rank 180, node nvl72005-T14, ...
    r"\bhost(?:name)?\s*:\s*([A-Za-z][\w.-]*[\w])",  # torch elastic failure summary
    r"\bfailed on node ([A-Za-z0-9][\w.-]*[\w])",  # srun: error: Task launch for 5.0 failed on node n3: ...
)
# Words that follow "node" in prose and are not host names.
_NOT_NODES = frozenset({
    "failure", "failures", "failed", "list", "rank", "ranks", "the", "is", "was", "has", "local",
    "and", "or", "to", "for", "of", "with", "in", "on", "logs", "log", "names", "name", "count",
    # Ray: "Task was killed due to the node running low on memory", "its node has died"
    "running", "died", "where", "that", "which",
})


def _to_bytes(line: str | bytes) -> bytes:
    return line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class LineClassifier:
    """Classify single log lines against a monitoring config (thread-compatible, no state)."""

    def __init__(self, cfg: MonitoringConfig, task_nodes: tuple[str, ...] = ()) -> None:
        """``task_nodes``: the node of each ``srun --label`` task id (``tasks.task_nodes``)."""
        self.cfg = cfg
        self.task_nodes = task_nodes
        opts = re2_options()
        try:
            self._set = search_set((sig.pattern for sig in cfg.signals), opts)
        except re2.error:  # only when the patterns together exceed RE2's memory budget
            raise ConfigError(
                f"monitoring {cfg.name}: the {len(cfg.signals)} signal patterns together are too large for RE2",
                "remove or simplify signals (large counted repetitions such as x{1000} cost the most)",
            ) from None
        self._ignore = re2.compile("|".join(f"(?:{p})" for p in cfg.ignore), opts) if cfg.ignore else None
        self._nodes = [re2.compile(p, opts) for p in NODE_PATTERNS]
        self._node_set = search_set(NODE_PATTERNS, opts)  # which ones to search, in one pass
        fam = cfg.families
        self.families = FamilyLayer(fam.disabled, opts) if fam.enabled else None
        self._prefilter = re2.compile(PREFILTER, opts) if self.families else None
        # One alternation of every signal (and the family prefilter) for scanning big buffers
        # (``scan.py``); multi-line mode so that ^ and $ mean the start and end of each line,
        # as they do per line.
        patterns = [s.pattern for s in cfg.signals] + ([PREFILTER] if self.families else [])
        self.combined = re2.compile("(?m)" + "|".join(f"(?:{p})" for p in patterns), opts)

    def _pieces(self, data: bytes) -> tuple[tuple[bytes, bytes], ...]:
        """The parts of the line that are read, each with its body (``line_body``, once per line)."""
        if len(data) > MAX_LINE_BYTES:
            return tuple((piece, line_body(piece)) for piece in (data[:_HALF], data[-_HALF:]))
        return ((data, line_body(data)),)

    def _match(self, pieces: tuple[tuple[bytes, bytes], ...]) -> int | None:
        """Index of the first signal (in order) matching the line, or None."""
        best: int | None = None
        for piece, body in pieces:
            found = self._set.Match(piece) or []
            if body is not piece:  # a signal anchored at the program's own text
                found += self._set.Match(body) or []
            if found and not self._ignored(piece, body):
                first = min(found)
                best = first if best is None else min(best, first)
        return best

    def ignored(self, data: bytes) -> bool:
        """An ignore pattern matches the line, or the program's own text after a launcher's prefix."""
        return self._ignored(data, line_body(data)) if self._ignore is not None else False

    def _ignored(self, data: bytes, body: bytes) -> bool:
        if self._ignore is None:
            return False
        return self._ignore.search(data) is not None or (body is not data and self._ignore.search(body) is not None)

    def _family(self, pieces: tuple[tuple[bytes, bytes], ...]) -> FamilyRule | None:
        if self.families is None or self._prefilter is None:
            return None
        for piece, body in pieces:
            if self._prefilter.search(piece):
                found = self.families.match(piece, self._ignored(piece, body), body)
                if found is not None:
                    return found
        return None

    def why_silent(self, line: str | bytes) -> str:
        """Why a line that does not fire is silent (for ``classify --explain``)."""
        data = _to_bytes(line).rstrip(b"\r\n")
        if self._set.Match(data) and self.ignored(data):
            return "a signal matches, but an ignore pattern of the preset marks the line benign"
        if self.families is None or self._prefilter is None:
            return "no signal matches (the family layer is off)"
        if not self._prefilter.search(data):
            return "no signal matches and the line has no error-looking word (the family layer's prefilter)"
        if self.families.benign(data):
            return "no signal matches; the family layer reads it as benign (a log level below error, a retry, advice, a traceback frame or shutdown chatter)"
        return "no signal matches and no failure family recognises it"

    def node_of(self, data: bytes) -> str | None:
        for i in sorted(self._node_set.Match(data) or ()):
            m = self._nodes[i].search(data)
            # decoded first: the words of _NOT_NODES are str, the match is bytes
            if m and _decode(m.group(1)).lower() not in _NOT_NODES:
                return _decode(m.group(1))
        return None

    def _node(self, head: bytes, role: Role, error_type: str) -> str | None:
        """The node the line names; else, for a failure local to the printing node, the node
        of its ``srun --label`` task."""
        node = self.node_of(head)
        if (node is None and self.task_nodes and role in (Role.CAUSE, Role.DEATH)
                and error_type in NODE_LOCAL_ERROR_TYPES):
            node = labelled_node(head, self.task_nodes)
        return node

    def classify(self, line: str | bytes, line_no: int) -> SignalHit | None:
        """The hit for ``line`` (1-based ``line_no``), or None for a benign line."""
        data = _to_bytes(line).rstrip(b"\r\n")
        pieces = self._pieces(data)
        idx = self._match(pieces)
        fam = None
        if idx is None:
            fam = self._family(pieces)
        elif self.cfg.signals[idx].role is Role.CASCADE and self.cfg.signals[idx].layer is not Layer.USER:
            # A wrapper line that carries its cause ("watchdog thread terminated with exception:
            # CUDA error: ... hardware error"): the family layer's named cause beats the wrapper.
            found = self._family(pieces)
            if (found is not None and found.role in (Role.CAUSE, Role.DEATH)
                    and found.confidence is not Confidence.LOW and found.name != EXCEPTION_RULE):
                fam = found
        elif self.cfg.signals[idx].layer is Layer.CURATED and self.cfg.signals[idx].error_type in _BY_TYPE:
            # A verdict by the exception's type alone gives way to a family that reads its message
            # as the other class (tensorstore raises ValueError for an EIO, orbax for UNAVAILABLE).
            found = self._family(pieces)
            if self.families is not None and (found is None or found.confidence is Confidence.LOW):
                found = self.families.exception(data)
            if (found is not None and found.role in (Role.CAUSE, Role.SYMPTOM) and found.confidence is not Confidence.LOW
                    and found.failure_class is not self.cfg.signals[idx].failure_class):
                fam = found
        if idx is None and fam is None:
            return None
        head = data if len(data) <= MAX_LINE_BYTES else data[:_HALF] + b" ... " + data[-_HALF:]
        text = _decode(head)
        if len(text) > MAX_KEPT_LINE:
            text = text[: MAX_KEPT_LINE // 2] + " ... " + text[-MAX_KEPT_LINE // 2 :]
        if fam is not None:
            return family_hit(fam, line_no, text, self._node(head, fam.role, fam.error_type))
        assert idx is not None  # no family hit: a signal matched
        sig = self.cfg.signals[idx]
        return SignalHit(
            line_no=line_no,
            line=text,
            signal=sig.name,
            error_type=sig.error_type,
            failure_class=sig.failure_class,
            node=self._node(head, sig.role, sig.error_type),
            role=sig.role,
            layer=sig.layer,
            tip=sig.tip,
        )
