"""A Python exception by its type, its message's family, and its errno."""

from __future__ import annotations

import re

from sidecar.classify.families.prefix import strip_prefix
from sidecar.classify.families.rule import CASCADE, CAUSE, LOW, MEDIUM, SYMPTOM, TIP_CKPT, FamilyRule, P, T
from sidecar.classify.model import Confidence, FailureClass, Role

EXCEPTION_RULE = "python.exception"  # the rule name of ``exception_family``
IGNORED_RULE = "python.exception_ignored"  # Python's "Exception ignored in: ..." (tracker.py)
# The last line of a Python traceback: an exception type at the start of the line (after rank
# and launcher prefixes), then its message. Its type decides when its message names no family.
# A wrapper names the exception it carries in parentheses (Ray's "RayTaskError(ValueError): ...").
_EXC_HEAD = re.compile(r"^((?:[A-Za-z_][\w]*\.)*)(_*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Failed|Fault|Warning|NotFound|Invalid)|Exception|error|timeout)(?:\((?P<wrapped>\w+)\))?(?::(?P<msg>.*)|\s*)$")
# A library's own exception need not end in Error: in a module of errors, any class name is one.
_EXC_QUALIFIED = re.compile(r"^((?:[A-Za-z_]\w*\.)*(?:errors?|exceptions?|exc)\.|(?:[a-z_]\w*\.)+)([A-Z][A-Za-z]*)(?::(?P<msg>.*)|\s*)$")
# A logged error that names the exception's class ("... with error <class 'pyarrow.lib.ArrowInvalid'>: ...").
_EXC_LOGGED = re.compile(r"\b(?:error|exception|failed)\b.*<class '((?:\w+\.)*)(\w+)'>:?(?P<msg>.*)", re.IGNORECASE)
# A built-in whose name says neither (StopIteration, KeyboardInterrupt): only the known ones.
_EXC_BARE = re.compile(r"^()([A-Z][A-Za-z]+)(?::(?P<msg>.*)|\s*)$")

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
    # wrappers and headers of a failure reported elsewhere: a broken process pool lost a worker the kernel
    # or a signal ended; Ray Train/Tune and submitit sum up a run whose cause they printed before;
    # multiprocessing's RemoteTraceback heads the worker's own traceback
    ("ChildFailedError RendezvousClosedError ActorDiedError RayTaskError KeyboardInterrupt SystemExit BrokenProcessPool "
     "TrainingFailedError TuneError FailedJobError RemoteTraceback "
     "SignalException SIGTERMException WorkerError CalledProcessError ProcessRaisedException ProcessExitedException",
     ("abort", T, CASCADE)),
    ("OSError IOError BlockingIOError InterruptedError", ("filesystem", T, CAUSE)),
):
    for _n in _names.split():
        EXCEPTIONS[_n] = _value
# Unknown exception types by their name's words, in this order.
_BY_NAME: tuple[tuple[str, tuple[str, FailureClass, Role]], ...] = (
    ("credential", ("config_error", P, CAUSE)),
    ("authentication", ("config_error", P, CAUSE)),
    ("forbidden", ("config_error", P, CAUSE)),
    ("unauthori", ("config_error", P, CAUSE)),
    ("permissiondenied", ("config_error", P, CAUSE)),
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
_NETWORK_MODULE = re.compile(r"(?i)(?:^|\.)(?:aiohttp|requests|urllib3?|httpx|httpcore|http|ssl|botocore|s3transfer|grpc|websockets?"
                             r"|gcsfs|s3fs|adlfs|api_core|azure|minio)\.")
_REFUSED = re.compile(r"(?i)\bdenied\b|\bforbidden\b|\b40[0134] Client Error|^\s*40[0134] [A-Z]|\bNoSuch[A-Z]\w+")
# The message of a generic exception (RuntimeError, Exception, a library's own) by its words,
# when no family rule read the line: waiting that ran out, a peer that went away, a collective that
# failed (XLA's "NCCL operation ncclAllReduce(...) failed: unhandled system error").
_MESSAGE_WORDS = re.compile(r"(?i)(\btimed? ?out\b|\btimeout\b|store.based barrier)|(\bconnect(?:ion|ed)?\b|\bsocket\b|\bnetwork\b|\bpeer\b(?!\s+access|-to-peer)|\bunreachable\b|address already in use)"
                            r"|(\bNCCL\b.{0,80}\b(?:failed|error)\b|unhandled (?:cuda|system) error)")
# A library's own exception whose message blames the connection, whatever its name says.
_BLAMES_NETWORK = re.compile(r"(?i)check your (?:internet |network )?connection|internet connection is (?:on|off|down)|network is unreachable|connection (?:refused|reset|timed out|aborted)")
# An OSError's errno decides its class: a path that is missing or forbidden repeats on restart
# (EIO, ESTALE, timeouts and resets stay transient, the OSError default).
_ERRNO = re.compile(r"\s*\[Errno (\d+)\]")
_ERRNO_PERMANENT: dict[int, tuple[str, FailureClass, Role]] = {
    1: ("config_error", P, CAUSE), 13: ("config_error", P, CAUSE), 2: ("data_missing", P, CAUSE),
    17: ("code_error", P, CAUSE), 20: ("config_error", P, CAUSE), 21: ("config_error", P, CAUSE),
    36: ("config_error", P, CAUSE), 24: ("config_error", P, CAUSE), 18: ("code_error", P, CAUSE),
    39: ("code_error", P, CAUSE), 22: ("config_error", P, CAUSE),
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


# The status code that absl/gRPC put first in a message (XLA and JAX's XlaRuntimeError, tensorstore
# and orbax's ValueError, gRPC clients): "RESOURCE_EXHAUSTED: Out of memory ...". INTERNAL,
# UNKNOWN and ABORTED say nothing of their own: the message's words decide.
_STATUS = re.compile(r"^\s*([A-Z]+(?:_[A-Z]+)*):")
_STATUS_CODES: dict[str, tuple[str, FailureClass, Role]] = {
    "RESOURCE_EXHAUSTED": ("oom", P, CAUSE), "DEADLINE_EXCEEDED": ("timeout", T, CAUSE),
    "UNAVAILABLE": ("network", T, SYMPTOM), "CANCELLED": ("abort", T, CASCADE),
    "INVALID_ARGUMENT": ("config_error", P, CAUSE), "FAILED_PRECONDITION": ("config_error", P, CAUSE),
    "ALREADY_EXISTS": ("config_error", P, CAUSE), "PERMISSION_DENIED": ("config_error", P, CAUSE),
    "UNAUTHENTICATED": ("config_error", P, CAUSE), "NOT_FOUND": ("data_missing", P, CAUSE),
    "UNIMPLEMENTED": ("code_error", P, CAUSE), "OUT_OF_RANGE": ("code_error", P, CAUSE),
    "DATA_LOSS": ("data_corrupt", P, CAUSE),
}
# C++ and Rust code raising to Python end a system error with strerror and its errno in parentheses
# (torch's "...: Too many open files (24)", Rust's io::Error "No such file or directory (os error 2)").
# Only the C library's own texts (strerror), so that a count in parentheses is not taken for one.
_STRERROR = re.compile(r"\b(?:No such file or directory|Permission denied|Input/output error|Too many open files|Stale file handle"
                       r"|Connection (?:reset by peer|refused|timed out)|No space left on device|Disk quota exceeded|Read-only file system"
                       r"|Operation not permitted|Resource temporarily unavailable|Cannot allocate memory|Broken pipe|Remote I/O error"
                       r"|Transport endpoint is not connected|Is a directory|Not a directory|File exists|Device or resource busy"
                       r"|No route to host|Network is unreachable|Bad file descriptor|File name too long) \((?:os error )?(\d{1,3})\)\s*$")
# The exception a wrapper carries at the start of its message ("InternalTorchDynamoError:
# AttributeError: ...", "CheckpointException: OSError: ..."), read like a final line of its own.
_INNER = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*)([A-Z]\w*(?:Error|Exception))(?::(?P<msg>.*)|\s*)$")


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
    wrapped = m.groupdict().get("wrapped")
    if wrapped in EXCEPTIONS and EXCEPTIONS[wrapped][2] is not CASCADE:
        name = wrapped  # the wrapper carries its cause; its own message is the wrapper's header
    msg = m.group("msg") or ""
    inner = _INNER.match(msg)
    if (inner is not None and inner.group(2) in EXCEPTIONS and EXCEPTIONS[inner.group(2)][2] is not CASCADE
            and (name not in EXCEPTIONS or EXCEPTIONS[name][2] is CASCADE)):
        module, name, msg = inner.group(1), inner.group(2), inner.group("msg") or ""
    else:
        module = m.group(1)
    (error_type, klass, role), confidence = _read(module, name, msg)
    return FamilyRule(EXCEPTION_RULE, _EXC_HEAD.pattern, error_type, klass, role, confidence,
                      _TIPS.get(error_type, ""))


def _read(module: str, name: str, msg: str) -> tuple[tuple[str, FailureClass, Role], Confidence]:
    """(error_type, class, role) and confidence of exception ``name`` from ``module`` with message ``msg``."""
    value = EXCEPTIONS.get(name)
    confidence = MEDIUM
    status = _STATUS.match(msg)
    if status is not None and status.group(1) in _STATUS_CODES and (value is None or name == "ValueError"):
        return _STATUS_CODES[status.group(1)], MEDIUM
    if name in ("OSError", "IOError"):
        errno = _ERRNO.match(msg)
        if errno is not None and int(errno.group(1)) in _ERRNO_PERMANENT:
            value = _ERRNO_PERMANENT[int(errno.group(1))]
        elif errno is None and _NOT_FOUND.search(msg):
            value = ("config_error", P, CAUSE)  # a library's own OSError about a path or name
        elif errno is None and _CORRUPT.search(msg):
            value = ("data_corrupt", P, CAUSE)
    if value is None and _BLAMES_NETWORK.search(msg):
        value = ("network", T, SYMPTOM)  # huggingface_hub's LocalEntryNotFoundError: offline and not cached
    if value is None:
        value = next((v for word, v in _BY_NAME if word in name.lower()), None)
    if value is None and _NETWORK_MODULE.search(module):
        refused = _NOT_FOUND.search(msg) or _REFUSED.search(msg)
        value = ("config_error", P, CAUSE) if refused else ("network", T, SYMPTOM)
    if value is None:
        strerror = _STRERROR.search(msg)
        if strerror is not None:  # as an OSError's errno (EIO, ESTALE, timeouts: transient)
            return _ERRNO_PERMANENT.get(int(strerror.group(1)), ("filesystem", T, CAUSE)), LOW
        words = _MESSAGE_WORDS.search(msg)
        confidence = LOW
        if words is None:  # RuntimeError, Exception, a library's own error: a bug until shown otherwise
            value = ("code_error", P, CAUSE)
        elif words.group(1):
            value = ("timeout", T, CAUSE)
        elif words.group(3):
            value = ("nccl", T, CAUSE)
        else:
            value = ("network", T, SYMPTOM)
    return value, confidence


# A logged error that carries an errno ("ERROR - Data loading failed: [Errno 2] No such file ...").
_ERRNO_REPORT = re.compile(r"(?i)\b(?:error|failed|failure|cannot|can't|unable)\b.*\[Errno (\d+)\]")


def _errno_report(body: str) -> FamilyRule | None:
    m = _ERRNO_REPORT.search(body)
    if m is None:
        return None
    error_type, klass, role = _ERRNO_PERMANENT.get(int(m.group(1)), ("filesystem", T, CAUSE))
    return FamilyRule(EXCEPTION_RULE, _ERRNO_REPORT.pattern, error_type, klass, role, LOW, _TIPS.get(error_type, ""))

