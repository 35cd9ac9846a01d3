"""SlurmClient over pyslurm (the Slurm C API), used only when pyslurm matches the cluster.

pyslurm is imported lazily (``import pyslurm`` only in ``load_pyslurm``) so the package works
without it. The calls used keep their names in pyslurm 22.5.3, 24.11.0 and 25.11:
``JobSubmitDescription(...).submit()``, ``Job.load``, ``Jobs.load``, ``Job(id).cancel()``,
``Job(id).send_signal()``, ``Job(id).modify()``, ``db.Jobs.load(db.JobFilter(ids=...))``.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any, Mapping

from sidecar.errors import SlurmError
from sidecar.slurm.parse import expand_nodelist, parse_exit_code
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
}
# flags: option -> (attribute, value when given)
_FLAG_MAP: dict[str, tuple[str, Any]] = {
    "no-requeue": ("is_requeueable", False),
    "requeue": ("is_requeueable", True),
    "hold": ("priority", 0),
    "kill-on-invalid-dep": ("kill_on_invalid_dependency", True),
    "exclusive": ("resource_sharing", "no"),
}


def submit_kwargs(req: SubmitRequest) -> dict[str, Any]:
    """SubmitRequest -> keyword arguments of pyslurm.JobSubmitDescription (pure)."""
    kw: dict[str, Any] = {"name": req.name, "script": str(req.script)}
    if req.comment:
        kw["comment"] = req.comment
    if req.dependency:
        kw["dependencies"] = req.dependency  # pyslurm passes a string through unchanged
    if req.workdir:
        kw["working_directory"] = req.workdir
    if req.env:
        # a dict is exported verbatim (no comma parsing); "ALL" semantics like sbatch's default
        kw["environment"] = {**os.environ, **{k: str(v) for k, v in req.env.items()}}
    for key, value in req.options.items():
        key = key.lstrip("-")
        if value is False or value is None:
            continue
        if key in _FLAG_MAP:
            attr, flag_value = _FLAG_MAP[key]
            if key == "kill-on-invalid-dep":
                flag_value = str(value).lower() in ("true", "yes", "1")
            kw[attr] = flag_value
        elif key in _OPTION_MAP:
            attr, conv = _OPTION_MAP[key]
            kw[attr] = conv(value)
        else:
            raise SlurmError(f"sbatch option {key!r} is not supported with pyslurm",
                             "put it into the batch script as #SBATCH, or use slurm.client: cli")
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
    node_list = getattr(job, "nodes", None) if source == "pyslurm" else getattr(job, "nodelist", None)
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

    def __init__(self, module: Any = None) -> None:
        self.pyslurm = module if module is not None else load_pyslurm()

    def _rpc(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self.pyslurm.RPCError as exc:
            raise SlurmError(f"pyslurm {what} failed: {exc}",
                             "check `scontrol ping`; retry, or use slurm.client: cli") from None

    def submit(self, req: SubmitRequest) -> str:
        """One RPC. pyslurm does not retry, so a lost answer never leads to a second job; the
        caller sees the error (a watchdog re-run looks the job up by name+comment first)."""
        desc = self.pyslurm.JobSubmitDescription(**submit_kwargs(req))
        return str(self._rpc("submit", desc.submit))

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
