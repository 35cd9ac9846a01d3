"""A Python exception by its type, its message's family, and its errno."""

from __future__ import annotations

import re

from sidecar.classify.families.prefix import strip_prefix
from sidecar.classify.families.rule import CASCADE, CAUSE, LOW, MEDIUM, SYMPTOM, TIP_CKPT, FamilyRule, P, T
from sidecar.classify.model import FailureClass, Role

EXCEPTION_RULE = "python.exception"  # the rule name of ``exception_family``
IGNORED_RULE = "python.exception_ignored"  # Python's "Exception ignored in: ..." (tracker.py)
# The last line of a Python traceback: an exception type at the start of the line (after rank
# and launcher prefixes), then its message. Its type decides when its message names no family.
_EXC_HEAD = re.compile(r"^((?:[A-Za-z_][\w]*\.)*)(_*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Failed|Fault|Warning|NotFound|Invalid)|Exception|error|timeout)(?:\(\w+\))?(?::(.*)|\s*)$")
# A library's own exception need not end in Error: in a module of errors, any class name is one.
_EXC_QUALIFIED = re.compile(r"^((?:[A-Za-z_]\w*\.)*(?:errors?|exceptions?|exc)\.|(?:[a-z_]\w*\.)+)([A-Z][A-Za-z]*)(?::(.*)|\s*)$")
# A logged error that names the exception's class ("... with error <class 'pyarrow.lib.ArrowInvalid'>: ...").
_EXC_LOGGED = re.compile(r"\b(?:error|exception|failed)\b.*<class '((?:\w+\.)*)(\w+)'>:?(.*)", re.IGNORECASE)
# A built-in whose name says neither (StopIteration, KeyboardInterrupt): only the known ones.
_EXC_BARE = re.compile(r"^()([A-Z][A-Za-z]+)(?::(.*)|\s*)$")

# exception type -> (error_type, class, role)
EXCEPTIONS: dict[str, tuple[str, FailureClass, Role]] = {}
for _names, _value in (
    ("SyntaxError IndentationError TabError NameError UnboundLocalError AttributeError TypeError KeyError "
     "IndexError ZeroDivisionError NotImplementedError AssertionError RecursionError StopIteration "
     "OverflowError LookupError ArithmeticError UnicodeEncodeError", ("code_error", P, CAUSE)),
    ("ModuleNotFoundError ImportError", ("env_error", P, CAUSE)),
    ("ValueError PermissionError IsADirectoryError NotADirectoryError ConfigError ConfigAttributeError "
     "ConfigKeyError MissingMandatoryValue ValidationError ArgumentError ArgumentTypeError HFValidationError "
     "InterpolationResolutionError", ("config_error", P, CAUSE)),
    ("FileNotFoundError", ("data_missing", P, CAUSE)),
    ("UnicodeDecodeError UnpicklingError EOFError JSONDecodeError BadZipFile SafetensorError CheckpointingException",
     ("checkpoint_error", P, CAUSE)),
    ("MemoryError", ("host_oom", P, CAUSE)),
    ("OutOfMemoryError", ("oom", P, CAUSE)),
    ("ConnectionError ConnectionResetError ConnectionRefusedError ConnectionAbortedError BrokenPipeError "
     "TimeoutError timeout gaierror herror RemoteDisconnected ProtocolError ReadTimeout ConnectTimeout "
     "ReadTimeoutError ConnectTimeoutError", ("network", T, SYMPTOM)),
    ("DistError DistNetworkError DistStoreError RendezvousConnectionError RendezvousTimeoutError RendezvousError "
     "RendezvousStateError", ("store", T, SYMPTOM)),
    ("DistBackendError NcclError", ("nccl", T, CAUSE)),
    ("AcceleratorError CUDAError CudaError", ("cuda_error", T, CAUSE)),
    ("ChildFailedError RendezvousClosedError ActorDiedError RayTaskError KeyboardInterrupt SystemExit "
     "SignalException SIGTERMException WorkerError CalledProcessError ProcessRaisedException ProcessExitedException",
     ("abort", T, CASCADE)),
    ("OSError IOError BlockingIOError InterruptedError", ("filesystem", T, CAUSE)),
):
    for _n in _names.split():
        EXCEPTIONS[_n] = _value
# Unknown exception types by their name's words, in this order.
_BY_NAME: tuple[tuple[str, tuple[str, FailureClass, Role]], ...] = (
    ("credential", ("config_error", P, CAUSE)),
    ("timeout", ("timeout", T, CAUSE)),
    ("deadlineexceeded", ("timeout", T, CAUSE)),
    ("deadlock", ("hang", T, CAUSE)),
    ("unavailable", ("network", T, SYMPTOM)),
    ("resourceexhausted", ("oom", P, CAUSE)),
    ("connection", ("network", T, SYMPTOM)),
    ("disconnect", ("network", T, SYMPTOM)),
    ("network", ("network", T, SYMPTOM)),
    ("socket", ("network", T, SYMPTOM)),
    ("rpc", ("network", T, SYMPTOM)),
    ("memoryerror", ("host_oom", P, CAUSE)),
    ("checkpoint", ("checkpoint_error", P, CAUSE)),
    ("config", ("config_error", P, CAUSE)),
    ("validation", ("config_error", P, CAUSE)),
    ("argument", ("config_error", P, CAUSE)),
    ("notfound", ("config_error", P, CAUSE)),
    ("invalid", ("config_error", P, CAUSE)),
)
# A client library's own exceptions (an HTTP transfer or a remote store that broke off) are
# network failures unless their name said otherwise above, or their message says the remote side
# refused (a missing object, no permission: the config's name or credentials, repeated on restart).
_NETWORK_MODULE = re.compile(r"(?i)(?:^|\.)(?:aiohttp|requests|urllib3|httpx|httpcore|http|botocore|s3transfer|grpc|websockets?)\.")
_REFUSED = re.compile(r"(?i)\bdenied\b|\bforbidden\b|\b40[0134] Client Error|\bNoSuch[A-Z]\w+")
# The message of a generic exception (RuntimeError, Exception, a library's own) by its words,
# when no family rule read the line: waiting that ran out, or a peer that went away.
_MESSAGE_WORDS = re.compile(r"(?i)(\btimed? ?out\b|\btimeout\b|store.based barrier)|(\bconnect(?:ion|ed)?\b|\bsocket\b|\bnetwork\b|\bpeer\b|\bunreachable\b)")
# An OSError's errno decides its class: a path that is missing or forbidden repeats on restart
# (EIO, ESTALE, timeouts and resets stay transient, the OSError default).
_ERRNO = re.compile(r"\s*\[Errno (\d+)\]")
_ERRNO_PERMANENT: dict[int, tuple[str, FailureClass, Role]] = {
    1: ("config_error", P, CAUSE), 13: ("config_error", P, CAUSE), 2: ("data_missing", P, CAUSE),
    17: ("code_error", P, CAUSE), 20: ("config_error", P, CAUSE), 21: ("config_error", P, CAUSE),
    36: ("config_error", P, CAUSE), 24: ("config_error", P, CAUSE), 18: ("code_error", P, CAUSE),
    39: ("code_error", P, CAUSE),
}
# An OSError without an errno is a library's own (Hugging Face's "Can't load ...", "Incorrect
# path_or_model_id"): a name or path the config gave that does not resolve.
_NOT_FOUND = re.compile(r"(?i)\bincorrect\b|\bgated\b|have access|(?:un|not )authori[sz]ed|credentials|not found|does not exist|can'?t (?:find|load)|cannot (?:find|load)|no such|not a (?:valid|local)|\binvalid\b")
# An OSError of a file reader (h5py, numpy, PIL) whose file is there but broken repeats on restart.
_CORRUPT = re.compile(r"(?i)\btruncated\b|file signature|\bcorrupt|bad magic|unexpected end of (?:file|data)")
_TIPS = {
    "data_corrupt": "a data or checkpoint file is truncated or corrupt: regenerate it or point the config at a good copy",
    "code_error": "an error in the training code or its inputs; a restart repeats it: fix and resubmit",
    "config_error": "a bad value in the config or arguments; fix it and resubmit",
    "env_error": "a package or module is missing in the job's environment",
    "data_missing": "a file the job needs is missing: check the data and checkpoint paths",
    "checkpoint_error": TIP_CKPT,
    "host_oom": "host memory ran out: fewer loader workers, a smaller micro batch, or more memory per node",
    "oom": "the model does not fit: lower the micro batch, recompute activations, or add parallelism",
    "network": "a network connection failed; restart",
    "store": "the rendezvous/store master is unreachable: it ended (see other lines) or the network failed",
    "filesystem": "a file system error; restart",
}


def exception_family(text: str) -> FamilyRule | None:
    """A traceback's final line decides by its exception type (its message named no family)."""
    body = strip_prefix(text).strip()  # indented: a child's traceback in torch elastic's summary
    m = _EXC_HEAD.match(body) or _EXC_QUALIFIED.match(body) or _EXC_LOGGED.search(body)
    if m is None:
        m = _EXC_BARE.match(body)
        if m is None or m.group(2) not in EXCEPTIONS:
            return _errno_report(body)
    name = m.group(2).lstrip("_")
    if name.endswith("Warning"):
        return None
    if name in ("error", "timeout") and not m.group(1):
        return None  # "error: ..." prose, not a traceback
    value = EXCEPTIONS.get(name)
    confidence = MEDIUM
    if name in ("OSError", "IOError"):
        errno = _ERRNO.match(m.group(3) or "")
        if errno is not None and int(errno.group(1)) in _ERRNO_PERMANENT:
            value = _ERRNO_PERMANENT[int(errno.group(1))]
        elif errno is None and _NOT_FOUND.search(m.group(3) or ""):
            value = ("config_error", P, CAUSE)  # a library's own OSError about a path or name
        elif errno is None and _CORRUPT.search(m.group(3) or ""):
            value = ("data_corrupt", P, CAUSE)
    if value is None:
        value = next((v for word, v in _BY_NAME if word in name.lower()), None)
    if value is None and _NETWORK_MODULE.search(m.group(1)):
        refused = _NOT_FOUND.search(m.group(3) or "") or _REFUSED.search(m.group(3) or "")
        value = ("config_error", P, CAUSE) if refused else ("network", T, SYMPTOM)
    if value is None:
        words = _MESSAGE_WORDS.search(m.group(3) or "")
        confidence = LOW
        if words is None:  # RuntimeError, Exception, a library's own error: a bug until shown otherwise
            value = ("code_error", P, CAUSE)
        elif words.group(1):
            value = ("timeout", T, CAUSE)
        else:
            value = ("network", T, SYMPTOM)
    error_type, klass, role = value
    return FamilyRule(EXCEPTION_RULE, _EXC_HEAD.pattern, error_type, klass, role, confidence,
                      _TIPS.get(error_type, ""))


# A logged error that carries an errno ("ERROR - Data loading failed: [Errno 2] No such file ...").
_ERRNO_REPORT = re.compile(r"(?i)\b(?:error|failed|failure|cannot|can't|unable)\b.*\[Errno (\d+)\]")


def _errno_report(body: str) -> FamilyRule | None:
    m = _ERRNO_REPORT.search(body)
    if m is None:
        return None
    error_type, klass, role = _ERRNO_PERMANENT.get(int(m.group(1)), ("filesystem", T, CAUSE))
    return FamilyRule(EXCEPTION_RULE, _ERRNO_REPORT.pattern, error_type, klass, role, LOW, _TIPS.get(error_type, ""))

