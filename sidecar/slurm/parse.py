"""Pure parsers for Slurm command output, each named after the query that produces its input.

``cli_client.query_<x>`` runs a command; ``parse_<x>`` here turns its text into typed values.
Nothing here does I/O and nothing raises on odd input: an unknown state is JobState.UNKNOWN,
an unreadable field is None. Tested on real output in tests/fixtures/slurm/.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Iterable, Sequence

from sidecar.slurm.types import JobInfo, JobState

# The sacct columns we ask for, in this order. Free-text columns go last so that a "|" inside
# a comment cannot shift the others (sacct does not escape its delimiter).
# No StdOut: sacct only has it from 23.02 on, and 22.05 rejects unknown columns.
SACCT_FIELDS: tuple[str, ...] = (
    "JobIDRaw", "State", "ExitCode", "Reason", "NodeList", "Submit", "Start", "End",
    "WorkDir", "JobName", "Comment",
)
# squeue --format; same rule: name and comment last (squeue does not escape "|" either).
SQUEUE_FIELDS: tuple[str, ...] = (
    "%i", "%T", "%r", "%N", "%V", "%S", "%e", "%Z", "%j", "%k",
)
SQUEUE_FORMAT = "|".join(SQUEUE_FIELDS)

# What Slurm prints for "no value" in the various commands.
_NULLS = frozenset({"", "(null)", "null", "None", "NONE", "N/A", "n/a", "Unknown", "UNKNOWN",
                    "None assigned", "(None)"})

_JOB_ID = re.compile(r"^\d+(?:_\d+|_\[[^\]]*\]|\+\d+)?$")


def _start(state: JobState, node_list: str | None, value: str | None) -> datetime | None:
    """A job's real start time, or None.

    Slurm reports guesses here: a pending job's StartTime is the scheduler's forecast, and a job
    cancelled while pending gets StartTime=EndTime=<cancel time> (job 15 and 17 in the fixtures)
    although it never ran. Only a job that got nodes has started.
    """
    if state is JobState.PENDING or (state.is_terminal and not node_list):
        return None
    return parse_time(value)


def _null(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value in _NULLS else value


def parse_time(value: str | None) -> datetime | None:
    """``2026-11-29T05:30:12`` -> datetime (naive, the cluster's local time); else None."""
    value = _null(value)
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    value = _null(value)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_exit_code(value: str | None, state: JobState = JobState.UNKNOWN) -> tuple[int | None, int | None]:
    """``3:0`` -> (3, 0); ``0:15`` -> (0, 15) i.e. killed by SIGTERM.

    NODE_FAIL carries a made-up code that no process returned: ``0:0`` on 22.05, ``0:1`` in
    scontrol and ``1:0`` in sacct on 24.11. Reading it as "exit 1" or "SIGHUP" would mislead the
    policy, so for NODE_FAIL both are None.
    """
    if state is JobState.NODE_FAIL:
        return None, None
    value = _null(value)
    if not value:
        return None, None
    code, _, sig = value.partition(":")
    return _int(code), _int(sig) if sig else None


# ------------------------------------------------------------------ node lists


def expand_nodelist(text: str | None) -> tuple[str, ...]:
    """``n[1-3,5]`` -> n1 n2 n3 n5; ``a-[01-02]`` keeps the zero padding; ``r[1-2]-n[1-2]``
    is a product. Empty / ``(null)`` / ``None assigned`` -> (). Malformed pieces come back as
    they are (never raises)."""
    text = _null(text)
    if not text:
        return ()
    out: list[str] = []
    for item in _split_top(text):
        out.extend(_expand_one(item))
    return tuple(dict.fromkeys(out))  # keep order, drop repeats


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _expand_one(item: str) -> list[str]:
    m = re.match(r"^([^\[]*)\[([^\]]*)\](.*)$", item)
    if not m:
        return [item]
    prefix, ranges, rest = m.groups()
    values: list[str] = []
    for r in ranges.split(","):
        r = r.strip()
        lo, dash, hi = r.partition("-")
        if dash and lo.isdigit() and hi.isdigit() and int(hi) >= int(lo) and int(hi) - int(lo) < 100000:
            width = len(lo)
            values.extend(str(i).zfill(width) for i in range(int(lo), int(hi) + 1))
        elif r.isdigit():
            values.append(r)
        else:
            return [item]  # malformed: give it back unchanged
    tails = _expand_one(rest) if rest else [""]
    return [f"{prefix}{v}{t}" for v in values for t in tails]


# ------------------------------------------------------------------ sbatch


def parse_sbatch_parsable(text: str) -> str | None:
    """``sbatch --parsable`` prints ``<id>`` or ``<id>;<cluster>``. Returns the id or None."""
    for line in reversed((text or "").strip().splitlines()):
        job_id = line.strip().split(";", 1)[0].strip()
        if job_id.isdigit():
            return job_id
    return None


def parse_version(text: str) -> str | None:
    """``slurm 22.05.8`` / ``slurm-wlm 24.11.5`` -> ``22.05.8``."""
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", text or "")
    return m.group(1) if m else None


# ------------------------------------------------------------------ scontrol show job -o

# Keys whose values may contain spaces (free text, paths). Inside them only a *known* key
# starts the next field, so "Comment=a b Foo=c" keeps "a b Foo=c" unless Foo is a real key.
_FREE_TEXT_KEYS = frozenset({
    "JobName", "Comment", "AdminComment", "SystemComment", "Reason", "Command", "WorkDir",
    "StdErr", "StdIn", "StdOut", "Dependency", "Features", "Licenses", "Network",
})
# Keys scontrol show job prints (22.05 and 24.11); a token "<Key>=..." with one of these
# names always starts a new field.
_KNOWN_KEYS = frozenset("""
JobId ArrayJobId ArrayTaskId ArrayTaskThrottle HetJobId HetJobOffset HetJobIdSet JobName UserId
GroupId MCS_label Priority Nice Account QOS WCKey JobState Reason Dependency Requeue Restarts
BatchFlag Reboot ExitCode DerivedExitCode RunTime TimeLimit TimeMin SubmitTime EligibleTime
AccrueTime StartTime EndTime Deadline SuspendTime SecsPreSuspend LastSchedEval Scheduler
Partition AllocNode:Sid ReqNodeList ExcNodeList NodeList BatchHost NumNodes NumCPUs NumTasks
CPUs/Task ReqB:S:C:T TRES ReqTRES AllocTRES Socks/Node NtasksPerN:B:S:C CoreSpec MinCPUsNode
MinMemoryNode MinMemoryCPU MinTmpDiskNode Features DelayBoot OverSubscribe Contiguous Licenses
Network Command WorkDir Comment AdminComment SystemComment StdErr StdIn StdOut Power
KillOInInvalidDependent Reservation Container ContainerID MailUser MailType Prefer
CpusPerTres TresPerNode TresPerJob TresPerTask MemPerTres Deadline ResizeTime PreemptEligibleTime
PreemptTime NodeFeatures BurstBuffer BurstBufferState CpuFreqMin CpuFreqMax CpuFreqGov Switches
Wait-for-Switch ClusterFeatures FedOrigin FedViableSiblings FedActiveSiblings Profile
TresPerSocket NtasksPerTRES OOMKillStep Segment SubmitLine Extra LastBusyTime
""".split())
_TOKEN_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9_:/\-]*)=(.*)$", re.S)


def split_scontrol_fields(line: str) -> dict[str, str]:
    """One ``scontrol show ... -o`` line -> {Key: raw value}. Values may contain spaces."""
    fields: dict[str, str] = {}
    key: str | None = None
    for token in line.strip().split(" "):
        m = _TOKEN_KEY.match(token)
        starts_new = m is not None and (
            m.group(1) in _KNOWN_KEYS or key is None or key not in _FREE_TEXT_KEYS
        )
        if m and starts_new:
            key = m.group(1)
            fields[key] = m.group(2)
        elif key is not None:
            fields[key] += " " + token
    # scontrol pads some values (e.g. "Comment=x  StdErr=") with a trailing space
    return {k: v.strip() for k, v in fields.items()}


def parse_scontrol_show_job(text: str) -> list[JobInfo]:
    """``scontrol show job -o [<id>]``: one job per line."""
    jobs = []
    for line in (text or "").splitlines():
        if not line.strip().startswith("JobId="):
            continue
        f = split_scontrol_fields(line)
        state = JobState.parse(f.get("JobState"))
        exit_code, signal = parse_exit_code(f.get("ExitCode"), state)
        node_list = _null(f.get("NodeList"))
        jobs.append(JobInfo(
            job_id=f.get("JobId", ""),
            state=state,
            name=_null(f.get("JobName")),
            comment=_null(f.get("Comment")),
            exit_code=exit_code,
            signal=signal,
            reason=_null(f.get("Reason")),
            nodes=expand_nodelist(node_list),
            node_list=node_list,
            submit_time=parse_time(f.get("SubmitTime")),
            start_time=_start(state, node_list, f.get("StartTime")),
            # a running job's EndTime is its time limit, not an end
            end_time=parse_time(f.get("EndTime")) if state.is_terminal else None,
            restart_count=_int(f.get("Restarts")) or 0,
            work_dir=_null(f.get("WorkDir")),
            std_out=_null(f.get("StdOut")),
            source="scontrol",
        ))
    return jobs


# ------------------------------------------------------------------ sacct


def parse_sacct(text: str, fields: Sequence[str] = SACCT_FIELDS) -> list[JobInfo]:
    """``sacct --parsable2 --noheader -X -j <ids> --format=<fields>``.

    sacct writes ``CANCELLED by <uid>``; a requeued job may show more than one line per id
    (the last one is the current record). Lines that do not split into ``fields`` are skipped.
    Quirks (22.05): sacct's Reason is the last *pending* reason (a COMPLETED job may say
    ReqNodeNotAvail); cancelled and timed-out jobs show ExitCode 0:0 where scontrol says 0:15;
    Comment is empty unless AccountingStoreFlags=job_comment.
    """
    by_id: dict[str, JobInfo] = {}
    n = len(fields)
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = line.split("|", n - 1)
        if len(parts) != n:
            continue
        f = dict(zip(fields, parts))
        job_id = (f.get("JobIDRaw") or f.get("JobID") or "").strip()
        if not _JOB_ID.match(job_id) or "." in job_id:
            continue
        state = JobState.parse(f.get("State"))
        exit_code, signal = parse_exit_code(f.get("ExitCode"), state)
        node_list = _null(f.get("NodeList"))
        by_id[job_id] = JobInfo(
            job_id=job_id,
            state=state,
            name=_null(f.get("JobName")),
            comment=_null(f.get("Comment")),
            exit_code=exit_code,
            signal=signal,
            reason=_null(f.get("Reason")),
            nodes=expand_nodelist(node_list),
            node_list=node_list,
            submit_time=parse_time(f.get("Submit")),
            start_time=_start(state, node_list, f.get("Start")),
            end_time=parse_time(f.get("End")) if state.is_terminal else None,
            work_dir=_null(f.get("WorkDir")),
            source="sacct",
        )
    return list(by_id.values())


# ------------------------------------------------------------------ squeue


def parse_squeue(text: str, fields: Sequence[str] = SQUEUE_FIELDS) -> list[JobInfo]:
    """``squeue --noheader --states=all --format=<SQUEUE_FORMAT>``.

    squeue writes reasons with spaces ("job requeued in held state") and ``NONE``/``N/A`` for
    times it does not know.
    """
    jobs = []
    n = len(fields)
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = line.split("|", n - 1)
        if len(parts) != n:
            continue
        f = dict(zip(fields, parts))
        job_id = f.get("%i", "").strip()
        if not _JOB_ID.match(job_id):
            continue
        state = JobState.parse(f.get("%T") or f.get("%t"))
        node_list = _null(f.get("%N"))
        jobs.append(JobInfo(
            job_id=job_id,
            state=state,
            name=_null(f.get("%j")),
            comment=_null(f.get("%k")),
            reason=_null(f.get("%r")),
            nodes=expand_nodelist(node_list),
            node_list=node_list,
            submit_time=parse_time(f.get("%V")),
            start_time=_start(state, node_list, f.get("%S")),
            end_time=parse_time(f.get("%e")) if state.is_terminal else None,
            work_dir=_null(f.get("%Z")),
            source="squeue",
        ))
    return jobs


def merge_job_info(primary: JobInfo, secondary: JobInfo | None) -> JobInfo:
    """Fill fields ``primary`` lacks from ``secondary`` (e.g. squeue's state, sacct's times)."""
    if secondary is None:
        return primary
    values: dict[str, Any] = {}
    for name in JobInfo.__dataclass_fields__:
        mine = getattr(primary, name)
        values[name] = getattr(secondary, name) if mine in (None, (), "") else mine
    values["state"] = primary.state if primary.state is not JobState.UNKNOWN else secondary.state
    return JobInfo(**values)


def only_jobs(jobs: Iterable[JobInfo], name: str | None = None, comment: str | None = None) -> list[JobInfo]:
    """Keep jobs whose name / comment equal the given ones (None: any)."""
    return [j for j in jobs
            if (name is None or j.name == name) and (comment is None or j.comment == comment)]


_NODE_NAME = re.compile(r"(?:^|\s)NodeName=(\S+)")
_NODE_STATE = re.compile(r"(?:^|\s)State=(\S+)")
# scontrol's node state words for a node that cannot run jobs now (22.05 and 24.11);
# a trailing "*" means the node does not respond.
_BAD_NODE_WORDS = frozenset({"DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING",
                             "NOT_RESPONDING", "NO_RESPOND", "POWERED_DOWN", "REBOOT_ISSUED"})


def parse_node_states(text: str) -> dict[str, str]:
    """``scontrol show node -o [<nodes>]``: {node name: state text, e.g. "DOWN*+DRAIN"}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, state = _NODE_NAME.search(line), _NODE_STATE.search(line)
        if name and state:
            out[name.group(1)] = state.group(1)
    return out


def node_state_is_bad(state: str) -> bool:
    """True for a node state that says the node is down, drained or not responding."""
    words = state.upper().split("+")
    return any(w.endswith("*") or w in _BAD_NODE_WORDS for w in words)


def parse_oom_steps(text: str, job_id: str) -> tuple[str, ...]:
    """``sacct --parsable2 --noheader -j <id> --format=JobIDRaw,State`` (steps included): the
    steps of ``job_id`` that ended OUT_OF_MEMORY (``266.0``). The job's own line says FAILED
    when its batch script carried on after srun; only the step's line says OUT_OF_MEMORY."""
    out = []
    for line in text.splitlines():
        step, _, state = line.partition("|")
        if step.startswith(f"{job_id}.") and state.split(" ")[0] == JobState.OUT_OF_MEMORY.value:
            out.append(step)
    return tuple(out)
