"""SlurmClient over pyslurm (the Slurm C API), used only when pyslurm matches the cluster.

pyslurm is imported lazily (``import pyslurm`` only in ``load_pyslurm``) so the package works
without it. The calls used keep their names in pyslurm 22.5.3, 24.11.0 and 25.11:
``JobSubmitDescription(...).submit()``, ``Job.load``, ``Jobs.load``, ``Job(id).cancel()``,
``Job(id).send_signal()``, ``Job(id).modify()``, ``db.Jobs.load(db.JobFilter(ids=...))``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from sidecar.errors import SlurmError
from sidecar.slurm.cli_client import PERMANENT_SBATCH_ERRORS
from sidecar.slurm.pyslurm_convert import (  # noqa: F401 - re-exported
    UnsupportedByPyslurm,
    is_job_variable,
    minutes,
    parse_sbatch_directives,
    submit_kwargs,
)
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
        # a CliSlurmClient for submissions pyslurm cannot express (see UnsupportedByPyslurm), and
        # for the accounting: pyslurm 22.5.3's db.Jobs.load kills the process when slurmdbd is
        # down (accounting_storage_slurmdbd.so: undefined symbol slurmdbd_msg_type_2_str), which
        # no except can catch; sacct fails with an error instead
        self.fallback = fallback
        self.submit_window_s = submit_window_s
        self._sleep = sleep
        self._clock = clock

    def _rpc(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self.pyslurm.RPCError as exc:
            raise SlurmError(f"pyslurm {what} failed: {exc}",
                             "check `scontrol ping`; retry, or use slurm.client: cli") from None

    def submit(self, req: SubmitRequest) -> str:
        """At most once, as the CLI client: after a transient RPC error (the controller may have
        created the job and lost the answer) look the job up by name+comment before retrying."""
        if not req.comment:
            req = dataclasses.replace(req, comment=f"autoexp-submit-{uuid.uuid4().hex[:16]}")
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
            return str(self.fallback.submit(req))
        deadline = self._clock() + self.submit_window_s
        look_first, delay_s = False, 1.0
        while True:
            try:
                if look_first:
                    found = [j for j in self.find_jobs(name=req.name, comment=req.comment)]
                    if found:
                        return found[-1].job_id
                    look_first = False
                with _without_job_environment():
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
        if self.fallback is not None:
            return self.fallback.job_info(job_id)  # type: ignore[no-any-return]
        try:
            db = self.pyslurm.db
            jobs = db.Jobs.load(db.JobFilter(ids=[int(job_id)]))
        except self.pyslurm.RPCError:
            return JobInfo(job_id=str(job_id), state=JobState.UNKNOWN, source="none")
        for job in _values(jobs):
            if str(getattr(job, "id", "")) == str(job_id):
                return job_info_from_pyslurm(job, source="pyslurm.db")
        return JobInfo(job_id=str(job_id), state=JobState.UNKNOWN, source="none")

    def jobs_info(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """slurmctld's job list once, then the accounting db once for the jobs it forgot."""
        ids = {str(j) for j in job_ids}
        if not ids:
            return {}
        found = {i.job_id: i for i in map(job_info_from_pyslurm,
                                          _values(self._rpc("list jobs", self.pyslurm.Jobs.load)))
                 if i.job_id in ids}
        missing = sorted(int(j) for j in ids - set(found) if j.isdigit())
        if missing and self.fallback is not None:
            for jid, info in self.fallback.jobs_info([str(j) for j in missing]).items():
                found.setdefault(jid, info)
        elif missing:
            try:
                db = self.pyslurm.db
                for job in _values(db.Jobs.load(db.JobFilter(ids=missing))):
                    info = job_info_from_pyslurm(job, source="pyslurm.db")
                    if info.job_id in ids:
                        found.setdefault(info.job_id, info)
            except self.pyslurm.RPCError:
                pass  # no accounting: those jobs stay unknown
        return found

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

    def failed_nodes(self, nodes: Sequence[str]) -> tuple[str, ...]:
        from sidecar.slurm.parse import node_state_is_bad

        out = []
        for n in nodes:
            node = self._rpc("node info", self.pyslurm.Node.load, n)
            state = str(getattr(node, "state", "") or "")
            flags = "+".join(str(f) for f in (getattr(node, "state_flags", None) or ()))
            if node_state_is_bad(f"{state}+{flags}" if flags else state):
                out.append(n)
        return tuple(out)

    def oom_steps(self, job_id: str) -> tuple[str, ...]:
        # accounting goes through sacct (see __init__: pyslurm.db can kill the process)
        if self.fallback is None:
            return ()
        return self.fallback.oom_steps(job_id)  # type: ignore[no-any-return]

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
    out: list[Any] = []
    for v in vals:
        if isinstance(v, Mapping):
            out.extend(v.values())
        else:
            out.append(v)
    return out


@contextlib.contextmanager
def _without_job_environment() -> Iterator[None]:
    """Hide the SLURM_* variables of the job we run in (a watchdog: SLURM_NTASKS=1) from
    pyslurm's submit, which reads them from this process even when given an explicit
    environment: the next training job got SLURM_NTASKS=1 and srun ran one rank on its 2 nodes
    ("can't run 1 processes on 2 nodes"). sbatch does not carry them over. SLURM_CONF stays."""
    saved = {k: v for k, v in os.environ.items() if is_job_variable(k)}
    for k in saved:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(saved)
