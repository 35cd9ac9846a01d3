"""SlurmClient over pyslurm (the Slurm C API), used only when pyslurm matches the cluster.

pyslurm is imported lazily (``import pyslurm`` only in ``load_pyslurm``) so the package works
without it. The calls used keep their names in pyslurm 22.5.3, 24.11.0 and 25.11:
``JobSubmitDescription(...).submit()``, ``Job.load``, ``Jobs.load``, ``Job(id).cancel()``,
``Job(id).send_signal()``, ``Job(id).modify()``, ``db.Jobs.load(db.JobFilter(ids=...))``.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from sidecar.errors import SlurmError
from sidecar.slurm.cli_client import PERMANENT_SBATCH_ERRORS
from sidecar.slurm.parse import expand_nodelist, parse_exit_code
from sidecar.slurm.runner import is_transient, tip_for
from sidecar.slurm.types import JobInfo, JobState, SubmitRequest


def load_pyslurm() -> Any:
    """Import pyslurm or raise SlurmError saying why and what to do."""
    try:
        import pyslurm  # noqa: PLC0415 - optional, heavy, version-bound
    except Exception as exc:  # ImportError, or OSError from a missing libslurm
        raise SlurmError(
            f"pyslurm is not usable: {type(exc).__name__}: {exc}",
            "install a pyslurm whose version matches the cluster's Slurm (`scontrol --version`), "
            "see INSTALL.md, or use the Slurm commands (slurm.client: cli)",
        ) from None
    return pyslurm


def pyslurm_version(module: Any) -> str | None:
    return getattr(module, "__version__", None) or getattr(module, "VERSION", None)


def same_major_minor(pyslurm_ver: str | None, slurm_ver: str | None) -> bool:
    """pyslurm 22.5.3 serves Slurm 22.05.x; 24.11.0 serves 24.11.x (its major.minor is Slurm's)."""
    def mm(v: str | None) -> tuple[int, int] | None:
        m = re.match(r"^\s*(\d+)\.(\d+)", v or "")
        return (int(m.group(1)), int(m.group(2))) if m else None
    a, b = mm(pyslurm_ver), mm(slurm_ver)
    return a is not None and a == b


def minutes(value: Any) -> int | None:
    """sbatch --time forms -> whole minutes (pyslurm 22.5.3 raises TypeError on the string "5").

    ``5``, ``"5"``, ``"MM:SS"``, ``"HH:MM:SS"``, ``"D-HH"``, ``"D-HH:MM"``, ``"D-HH:MM:SS"``.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")]
        parts += [0] * (3 - len(parts))
        h, m, s = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts[-3:]
    return days * 1440 + h * 60 + m + (1 if s else 0)


# sbatch long option -> (JobSubmitDescription attribute, converter)
_OPTION_MAP: dict[str, tuple[str, Any]] = {
    "time": ("time_limit", minutes),
    "partition": ("partitions", str),
    "account": ("account", str),
    "qos": ("qos", str),
    "nodes": ("nodes", str),
    "ntasks": ("ntasks", int),
    "ntasks-per-node": ("ntasks_per_node", int),
    "cpus-per-task": ("cpus_per_task", int),
    "mem": ("memory_per_node", str),
    "output": ("standard_output", str),
    "error": ("standard_error", str),
    "exclude": ("excluded_nodes", str),
    "nodelist": ("required_nodes", str),
    "signal": ("signal", str),
    "begin": ("begin_time", str),
    "gres": ("gres_per_node", str),
    "constraint": ("constraints", str),
    "reservation": ("reservations", str),
    "open-mode": ("log_files_open_mode", str),
    "gpus": ("gpus", str),
    "gpus-per-node": ("gpus_per_node", str),
    "mem-per-cpu": ("memory_per_cpu", str),
    "mem-per-gpu": ("memory_per_gpu", str),
    "cpus-per-gpu": ("cpus_per_gpu", str),
    "threads-per-core": ("threads_per_core", int),
    "mail-type": ("mail_types", str),
    "mail-user": ("mail_user", str),
    "wckey": ("wckey", str),
    "nice": ("nice", int),
}
# flags: option -> (attribute, value when given)
_FLAG_MAP: dict[str, tuple[str, Any]] = {
    "no-requeue": ("is_requeueable", False),
    "requeue": ("is_requeueable", True),
    "hold": ("priority", 0),
    "kill-on-invalid-dep": ("kill_on_invalid_dependency", True),
    "exclusive": ("resource_sharing", "no"),
}


_SHORT_OPTIONS = {
    "p": "partition", "t": "time", "N": "nodes", "n": "ntasks", "c": "cpus-per-task",
    "o": "output", "e": "error", "J": "job-name", "x": "exclude", "w": "nodelist",
    "A": "account", "q": "qos", "C": "constraint", "d": "dependency", "D": "chdir",
    "H": "hold", "s": "oversubscribe", "k": "no-kill",
}
# handled from SubmitRequest fields, or harmless to drop here
_DIRECTIVE_FIELDS = {"job-name": "name", "comment": "comment", "dependency": "dependency",
                     "chdir": "workdir", "export": None, "parsable": None}


class UnsupportedByPyslurm(SlurmError):
    """An sbatch option this client cannot express with pyslurm (use the Slurm commands)."""


def parse_sbatch_directives(script_text: str) -> dict[str, str | bool]:
    """``#SBATCH`` lines of a batch script -> {long option: value or True}.

    Like sbatch, stop at the first line that is neither blank nor a comment. We parse them
    ourselves because pyslurm 22.5.3's load_sbatch_options() raises AttributeError on
    ``#SBATCH --partition`` (it sets ``desc.partition``; the attribute is ``partitions``).
    """
    out: dict[str, str | bool] = {}
    for i, raw in enumerate(script_text.splitlines()):
        line = raw.strip()
        if i == 0 and line.startswith("#!"):
            continue
        if not line:
            continue
        if not line.startswith("#"):
            break
        if not line.startswith("#SBATCH"):
            continue
        words = line[len("#SBATCH"):].split("#", 1)[0].split()
        j = 0
        while j < len(words):
            w = words[j]
            if w.startswith("--"):
                key, eq, val = w[2:].partition("=")
                if not eq and j + 1 < len(words) and not words[j + 1].startswith("-") and key not in _FLAG_MAP:
                    val, eq = words[j + 1], "="
                    j += 1
                out[key] = val if eq else True
            elif w.startswith("-") and len(w) >= 2:
                key = _SHORT_OPTIONS.get(w[1], w[1])
                val = w[2:]
                if not val and j + 1 < len(words) and not words[j + 1].startswith("-") and key not in _FLAG_MAP:
                    val = words[j + 1]
                    j += 1
                out[key] = val or True
            j += 1
    return out


def submit_kwargs(req: SubmitRequest, directives: Mapping[str, str | bool] | None = None) -> dict[str, Any]:
    """SubmitRequest (+ the script's #SBATCH directives, which its options override, as with
    sbatch) -> keyword arguments of pyslurm.JobSubmitDescription (pure)."""
    kw: dict[str, Any] = {"name": req.name, "script": str(req.script)}
    merged: dict[str, Any] = {}
    for key, value in (directives or {}).items():
        if key in _DIRECTIVE_FIELDS:
            field = _DIRECTIVE_FIELDS[key]
            if field == "name":
                continue  # the request's name wins
            if field and not getattr(req, field):
                kw_key = {"comment": "comment", "dependency": "dependencies", "workdir": "working_directory"}[field]
                kw[kw_key] = value
            continue
        merged[key] = value
    merged.update({k.lstrip("-"): v for k, v in req.options.items()})
    if req.comment:
        kw["comment"] = req.comment
    if req.dependency:
        kw["dependencies"] = req.dependency  # pyslurm passes a string through unchanged
    if req.workdir:
        kw["working_directory"] = req.workdir
    if req.env:
        # a dict is exported verbatim (no comma parsing); sbatch's default is ALL of our env
        kw["environment"] = {**os.environ, **{k: str(v) for k, v in req.env.items()}}
    for key, value in merged.items():
        if value is False or value is None:
            continue
        if key in _FLAG_MAP:
            attr, flag_value = _FLAG_MAP[key]
            if key == "kill-on-invalid-dep":
                flag_value = str(value).lower() in ("true", "yes", "1")
            kw[attr] = flag_value
        elif key in _OPTION_MAP:
            attr, conv = _OPTION_MAP[key]
            try:
                kw[attr] = conv(value)
            except ValueError:
                raise UnsupportedByPyslurm(f"sbatch option --{key}={value} is not understood here",
                                           "use slurm.client: cli") from None
        else:
            raise UnsupportedByPyslurm(f"sbatch option {key!r} is not supported with pyslurm",
                                       "put it into the batch script for sbatch, or use slurm.client: cli")
    return kw


def _dt(epoch: Any) -> datetime | None:
    if not epoch or not isinstance(epoch, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(epoch)
    except (OverflowError, OSError, ValueError):
        return None


def _int_or(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def job_info_from_pyslurm(job: Any, source: str = "pyslurm") -> JobInfo:
    """A pyslurm.Job or pyslurm.db.Job -> JobInfo (attributes missing on one of them -> None)."""
    state = JobState.parse(getattr(job, "state", None))
    code, sig = getattr(job, "exit_code", None), getattr(job, "exit_code_signal", None)
    if state is JobState.NODE_FAIL:
        code, sig = parse_exit_code("0:0", state)  # synthetic code, see parse.parse_exit_code
    # the live Job calls it allocated_nodes, the accounting db.Job nodelist
    node_list = getattr(job, "allocated_nodes", None) if source == "pyslurm" else getattr(job, "nodelist", None)
    node_list = node_list if node_list and node_list not in ("None assigned", "(null)") else None
    terminal, pending = state.is_terminal, state is JobState.PENDING
    return JobInfo(
        job_id=str(getattr(job, "id", "")),
        state=state,
        name=getattr(job, "name", None) or None,
        comment=getattr(job, "comment", None) or None,
        exit_code=code if isinstance(code, int) else None,
        signal=sig if isinstance(sig, int) else None,
        reason=getattr(job, "state_reason", None) or None,
        nodes=expand_nodelist(node_list),
        node_list=node_list,
        submit_time=_dt(getattr(job, "submit_time", None)),
        start_time=None if pending or (terminal and not node_list) else _dt(getattr(job, "start_time", None)),
        end_time=_dt(getattr(job, "end_time", None)) if terminal else None,
        restart_count=_int_or(getattr(job, "requeue_count", 0)) if source == "pyslurm" else 0,
        work_dir=getattr(job, "working_directory", None) or None,
        std_out=getattr(job, "standard_output", None) or None,
        source=source,
    )


class PyslurmClient:
    """SlurmClient over pyslurm. ``module`` is the pyslurm module (tests pass a mock)."""

    kind = "pyslurm"

    def __init__(self, module: Any = None, *, fallback: Any = None,
                 submit_window_s: float = 180.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pyslurm = module if module is not None else load_pyslurm()
        # a CliSlurmClient for submissions pyslurm cannot express (see UnsupportedByPyslurm)
        self.fallback = fallback
        self.submit_window_s = submit_window_s
        self._sleep = sleep
        self._clock = clock

    def _rpc(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self.pyslurm.RPCError as exc:
            raise SlurmError(f"pyslurm {what} failed: {exc}",
                             "check `scontrol ping`; retry, or use slurm.client: cli") from None

    def submit(self, req: SubmitRequest) -> str:
        """At most once, as the CLI client: after a transient RPC error (the controller may have
        created the job and lost the answer) look the job up by name+comment before retrying."""
        if not req.comment:
            req = SubmitRequest(**{**req.__dict__, "comment": f"autoexp-submit-{uuid.uuid4().hex[:16]}"})
        try:
            script_text = Path(req.script).read_text(errors="replace")
        except OSError as exc:
            raise SlurmError(f"cannot read batch script {req.script}: {exc.strerror or exc}",
                             "check the path (it must be readable from this host)") from None
        try:
            kwargs = submit_kwargs(req, parse_sbatch_directives(script_text))
        except UnsupportedByPyslurm:
            if self.fallback is None:
                raise
            return self.fallback.submit(req)
        deadline = self._clock() + self.submit_window_s
        look_first, delay_s = False, 1.0
        while True:
            try:
                if look_first:
                    found = [j for j in self.find_jobs(name=req.name, comment=req.comment)]
                    if found:
                        return found[-1].job_id
                    look_first = False
                return str(self.pyslurm.JobSubmitDescription(**kwargs).submit())
            except (self.pyslurm.RPCError, SlurmError) as exc:
                text = str(exc)
                if not is_transient(text) or any(p.lower() in text.lower() for p in PERMANENT_SBATCH_ERRORS):
                    raise SlurmError(f"pyslurm submit of {req.name!r} failed: {text}",
                                     tip_for(text) or "check the request; or use slurm.client: cli") from None
                look_first = True
                if self._clock() >= deadline:
                    raise SlurmError(f"could not submit {req.name!r} within {self.submit_window_s:g} s: {text}",
                                     "check `scontrol ping`; look for the job with squeue before submitting again") from None
            self._sleep(delay_s)
            delay_s = min(2 * delay_s, 10.0)

    def job_info(self, job_id: str) -> JobInfo:
        try:
            return job_info_from_pyslurm(self.pyslurm.Job.load(int(job_id)))
        except self.pyslurm.RPCError:
            pass  # not (or no longer, MinJobAge) known to slurmctld: ask the accounting db
        try:
            db = self.pyslurm.db
            jobs = db.Jobs.load(db.JobFilter(ids=[int(job_id)]))
        except self.pyslurm.RPCError:
            return JobInfo(job_id=str(job_id), state=JobState.UNKNOWN, source="none")
        for job in _values(jobs):
            if str(getattr(job, "id", "")) == str(job_id):
                return job_info_from_pyslurm(job, source="pyslurm.db")
        return JobInfo(job_id=str(job_id), state=JobState.UNKNOWN, source="none")

    def cancel(self, job_id: str, signal: str | None = None) -> None:
        job = self.pyslurm.Job(int(job_id))
        try:
            if signal:
                job.send_signal(signal)
            else:
                job.cancel()
        except self.pyslurm.RPCError as exc:
            if "already completing or completed" in str(exc):
                return
            raise SlurmError(f"pyslurm cancel of {job_id} failed: {exc}", "check the job id") from None

    def update(self, job_id: str, **fields: str) -> None:
        changes = {}
        for key, value in fields.items():
            attr = _UPDATE_MAP.get(key)
            if attr is None:
                raise SlurmError(f"update field {key!r} is not supported with pyslurm",
                                 f"supported: {', '.join(sorted(_UPDATE_MAP))}; or use slurm.client: cli")
            changes[attr] = minutes(value) if attr == "time_limit" else value
        desc = self.pyslurm.JobSubmitDescription(**changes)
        self._rpc("update", self.pyslurm.Job(int(job_id)).modify, desc)

    def find_jobs(self, name: str | None = None, comment: str | None = None,
                  active_only: bool = False) -> list[JobInfo]:
        jobs = self._rpc("list jobs", self.pyslurm.Jobs.load)
        out = []
        for job in _values(jobs):
            info = job_info_from_pyslurm(job)
            if name is not None and info.name != name:
                continue
            if comment is not None and info.comment != comment:
                continue
            if active_only and not info.state.is_active:
                continue
            out.append(info)
        return sorted(out, key=lambda j: int(j.job_id) if j.job_id.isdigit() else -1)

    def version(self) -> str:
        return str(pyslurm_version(self.pyslurm) or "")


# scontrol update field -> JobSubmitDescription attribute
_UPDATE_MAP: dict[str, str] = {
    "ExcNodeList": "excluded_nodes",
    "ReqNodeList": "required_nodes",
    "TimeLimit": "time_limit",
    "Comment": "comment",
    "Dependency": "dependencies",
    "Partition": "partitions",
    "Name": "name",
    "JobName": "name",
}


def _values(collection: Any) -> list[Any]:
    """pyslurm collections are dicts, sometimes keyed by cluster first (MultiClusterMap)."""
    if isinstance(collection, Mapping) or hasattr(collection, "values"):
        vals = list(collection.values())
    else:
        vals = list(collection or [])
    out = []
    for v in vals:
        if isinstance(v, Mapping):
            out.extend(v.values())
        else:
            out.append(v)
    return out
