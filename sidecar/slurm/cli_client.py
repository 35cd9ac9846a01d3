"""SlurmClient over the Slurm commands (sbatch, scontrol, sacct, squeue, scancel).

The default client: it works on every cluster with the commands on PATH. Each read is a
``query_*`` method (I/O, raw text) beside a ``parse_*`` function in ``parse.py`` (pure, typed).
Every command goes through one injectable runner (``runner.run`` by default).
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

from sidecar.errors import SlurmError
from sidecar.slurm import parse
from sidecar.slurm.runner import Runner, SlurmCommandError, run
from sidecar.slurm.types import JobInfo, JobState, SubmitRequest

# A submit is retried (after a lookup) for this long: long enough to ride out a slurmctld restart.
DEFAULT_SUBMIT_WINDOW_S = 180.0
# How far back sacct looks when searching by name (sacct without -S shows only today's jobs).
SACCT_LOOKBACK = timedelta(days=7)

# sbatch errors that no retry can fix: raise at once.
PERMANENT_SBATCH_ERRORS: tuple[str, ...] = (
    "Invalid partition", "Job dependency problem", "Invalid account", "Invalid qos",
    "Requested node configuration is not available", "unrecognized option", "invalid option",
    "Unable to open file", "Invalid job array", "Invalid generic resource", "Invalid feature",
    "Requested time limit is invalid", "Node count specification invalid",
    "Access/permission denied", "Invalid user id", "violates accounting/QOS policy",
    "Batch script is empty", "not a batch script", "Invalid dependency",
)

# Options build_sbatch_argv sets itself from SubmitRequest fields.
_RESERVED_OPTIONS = frozenset({"parsable", "job-name", "J", "comment", "dependency", "d",
                               "chdir", "D", "export", "wrap"})
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A --export value sbatch splits or unquotes wrongly: commas separate items, quotes are eaten.
_EXPORT_UNSAFE = re.compile(r"[,\"'\n\r]")


@dataclass(frozen=True)
class SlurmCommands:
    """Paths of the Slurm commands; tests point them at fakes."""

    sbatch: str = "sbatch"
    scontrol: str = "scontrol"
    sacct: str = "sacct"
    squeue: str = "squeue"
    scancel: str = "scancel"


def build_sbatch_argv(req: SubmitRequest, sbatch: str = "sbatch") -> tuple[list[str], dict[str, str]]:
    """SubmitRequest -> (argv, extra environment for the sbatch process).

    Env values that sbatch's ``--export`` cannot carry verbatim (commas, quotes, newlines) are
    put into sbatch's own environment and named in ``--export=ALL,NAME``, so sbatch copies
    them byte for byte instead of parsing them.
    """
    if not req.name:
        raise SlurmError("a job needs a name", "set SubmitRequest.name")
    argv = [sbatch, "--parsable", f"--job-name={req.name}"]
    if req.comment:
        argv.append(f"--comment={req.comment}")
    if req.dependency:
        argv.append(f"--dependency={req.dependency}")
    if req.workdir:
        argv.append(f"--chdir={req.workdir}")
    extra_env: dict[str, str] = {}
    export = ["ALL"]
    for key, value in req.env.items():
        if not _ENV_NAME.match(key):
            raise SlurmError(f"environment variable name {key!r} is not valid",
                             "use letters, digits and underscores, not starting with a digit")
        value = str(value)
        if _EXPORT_UNSAFE.search(value):
            extra_env[key] = value
            export.append(key)
        else:
            export.append(f"{key}={value}")
    argv.append("--export=" + ",".join(export))
    for key, opt in req.options.items():
        key = key.lstrip("-")
        if not _OPTION_NAME.match(key):
            raise SlurmError(f"sbatch option {key!r} is not a long option name",
                             "use long names without dashes, e.g. {'time': '01:00:00'}")
        if key in _RESERVED_OPTIONS:
            raise SlurmError(f"sbatch option {key!r} is set from SubmitRequest fields",
                             "use SubmitRequest.name/comment/dependency/workdir/env instead")
        if opt is True:
            argv.append(f"--{key}")
        elif opt is False or opt is None:
            continue
        else:
            argv.append(f"--{key}={opt}")
    argv.append(str(req.script))
    return argv, extra_env


def _is_permanent(stderr: str) -> bool:
    low = (stderr or "").lower()
    return any(p.lower() in low for p in PERMANENT_SBATCH_ERRORS)


class CliSlurmClient:
    """SlurmClient over the Slurm commands. ``runner`` runs every command (inject fakes in tests)."""

    kind = "cli"

    def __init__(
        self,
        runner: Runner = run,
        commands: SlurmCommands = SlurmCommands(),
        *,
        submit_window_s: float = DEFAULT_SUBMIT_WINDOW_S,
        sbatch_timeout_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.runner = runner
        self.commands = commands
        self.submit_window_s = submit_window_s
        self.sbatch_timeout_s = sbatch_timeout_s
        self._sleep = sleep
        self._clock = clock
        self._now = now

    # ------------------------------------------------------------------ submit

    def submit(self, req: SubmitRequest) -> str:
        """sbatch, at most once: after an ambiguous failure look the job up before retrying.

        Without a comment the job could not be told apart from an older one of the same name,
        so a unique ``autoexp-submit-<hex>`` comment is added.
        """
        if not req.comment:
            req = dataclasses.replace(req, comment=f"autoexp-submit-{uuid.uuid4().hex[:16]}")
        argv, extra_env = build_sbatch_argv(req, self.commands.sbatch)
        deadline = self._clock() + self.submit_window_s
        must_look_first = False
        last: SlurmCommandError | None = None
        delay_s = 1.0
        while True:
            if must_look_first:
                try:
                    found = self._find_submitted(req)
                except SlurmCommandError as exc:
                    if not exc.transient:
                        raise
                    found, last = None, exc  # controller still away: cannot know, do not sbatch
                else:
                    if found:
                        return found
                    must_look_first = False  # Slurm answered and has no such job: safe to sbatch
            if not must_look_first:
                try:
                    done = self.runner(argv, timeout_s=self.sbatch_timeout_s, retries=0, env=extra_env or None)
                except SlurmCommandError as exc:
                    last = exc
                    if _is_permanent(exc.stderr) or not exc.transient:
                        raise
                    must_look_first = True  # it may have been submitted after all
                else:
                    job_id = parse.parse_sbatch_parsable(done.stdout)
                    if job_id:
                        return job_id
                    raise SlurmCommandError(
                        "sbatch printed no job id", argv=argv, returncode=done.returncode,
                        stdout=done.stdout, stderr=done.stderr,
                        tip="run the sbatch command by hand to see what it prints")
            if self._clock() >= deadline:
                assert last is not None
                raise SlurmCommandError(
                    f"could not submit {req.name!r} within {self.submit_window_s:g} s: {last.message}",
                    argv=argv, returncode=last.returncode, stdout=last.stdout,
                    stderr=last.stderr, timed_out=last.timed_out,
                    tip="the Slurm controller stayed unreachable; check `scontrol ping`, then submit "
                        f"again (it is safe: look for a job named {req.name!r} first with squeue)")
            self._sleep(delay_s)
            delay_s = min(delay_s * 2, 10.0)

    def _find_submitted(self, req: SubmitRequest) -> str | None:
        """The id of a job with req's name and comment, if one exists (squeue, then sacct)."""
        jobs = parse.only_jobs(parse.parse_squeue(self.query_squeue(name=req.name)), req.name, req.comment)
        if not jobs:
            jobs = [j for j in parse.parse_sacct(self.query_sacct(name=req.name))
                    if j.name == req.name and j.comment == req.comment]
        return max((j.job_id for j in jobs), key=_id_key, default=None)

    # ------------------------------------------------------------------ queries (I/O)

    def query_scontrol_show_job(self, job_id: str) -> str:
        return self.runner([self.commands.scontrol, "show", "job", "-o", str(job_id)]).stdout

    def query_sacct(self, job_ids: Sequence[str] = (), name: str | None = None) -> str:
        argv = [self.commands.sacct, "--parsable2", "--noheader", "-X",
                "--format=" + ",".join(parse.SACCT_FIELDS)]
        if job_ids:
            argv.append("--jobs=" + ",".join(str(j) for j in job_ids))
        if name is not None:
            start = (self._now() - SACCT_LOOKBACK).strftime("%Y-%m-%dT%H:%M:%S")
            argv += [f"--name={name}", f"--starttime={start}"]
        return self.runner(argv).stdout

    def query_squeue(self, name: str | None = None, job_ids: Sequence[str] = (),
                     active_only: bool = False) -> str:
        argv = [self.commands.squeue, "--noheader", f"--format={parse.SQUEUE_FORMAT}"]
        if not active_only:
            argv.append("--states=all")  # also jobs that ended less than MinJobAge ago
        if name is not None:
            argv.append(f"--name={name}")
        if job_ids:
            argv.append("--jobs=" + ",".join(str(j) for j in job_ids))
        return self.runner(argv).stdout

    # ------------------------------------------------------------------ SlurmClient

    def job_info(self, job_id: str) -> JobInfo:
        """scontrol while the controller still knows the job (MinJobAge), then sacct.

        sacct can lag scontrol (seen: RUNNING in sacct while scontrol said FAILED), so scontrol
        wins; sacct fills only what scontrol lacks.
        """
        job_id = str(job_id)
        try:
            found = [j for j in parse.parse_scontrol_show_job(self.query_scontrol_show_job(job_id))
                     if j.job_id == job_id]
        except SlurmCommandError as exc:
            if "Invalid job id" not in exc.stderr:
                raise
            found = []
        if found:
            return found[0]
        acct = [j for j in parse.parse_sacct(self.query_sacct([job_id])) if j.job_id == job_id]
        if acct:
            return acct[-1]
        return JobInfo(job_id=job_id, state=JobState.UNKNOWN, source="none")

    def jobs_info(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """Two commands for any number of jobs: sacct (everything accounting has), then squeue
        (the controller's current view, which wins: sacct can lag it, see job_info)."""
        ids = sorted({str(j) for j in job_ids}, key=_id_key)
        if not ids:
            return {}
        try:
            found = {j.job_id: j for j in parse.parse_sacct(self.query_sacct(ids)) if j.job_id in ids}
        except SlurmCommandError:
            found = {}  # slurmdbd down: what the controller still knows is the answer
        try:
            current = parse.parse_squeue(self.query_squeue(job_ids=ids))
        except SlurmCommandError as exc:
            if "Invalid job id" not in exc.stderr:  # all of them purged from the controller
                raise
            current = []
        for j in current:
            if j.job_id in ids:
                found[j.job_id] = parse.merge_job_info(j, found.get(j.job_id))
        return found

    def cancel(self, job_id: str, signal: str | None = None) -> None:
        argv = [self.commands.scancel]
        if signal:
            argv.append(f"--signal={signal}")
        argv.append(str(job_id))
        try:
            self.runner(argv)
        except SlurmCommandError as exc:
            # cancelling a job that already ended is what the caller wanted anyway
            if "already completing or completed" in exc.stderr:
                return
            raise

    def update(self, job_id: str, **fields: str) -> None:
        if not fields:
            return
        argv = [self.commands.scontrol, "update", f"JobId={job_id}"]
        for key, value in fields.items():
            if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", key):
                raise SlurmError(f"scontrol update field {key!r} is not valid",
                                 "use scontrol's field names, e.g. ExcNodeList=n3")
            argv.append(f"{key}={value}")
        self.runner(argv)

    def find_jobs(self, name: str | None = None, comment: str | None = None,
                  active_only: bool = False) -> list[JobInfo]:
        """Jobs by exact name and/or comment: squeue first (current), then sacct for older ones."""
        jobs = {j.job_id: j for j in parse.only_jobs(
            parse.parse_squeue(self.query_squeue(name=name, active_only=active_only)), name, comment)}
        if not active_only and name is not None:
            for j in parse.parse_sacct(self.query_sacct(name=name)):
                # sacct keeps no comment unless AccountingStoreFlags=job_comment: skip such rows
                # when a comment was asked for rather than guess
                if j.job_id in jobs or j.name != name or (comment is not None and j.comment != comment):
                    continue
                jobs[j.job_id] = j
        return sorted(jobs.values(), key=lambda j: _id_key(j.job_id))

    def failed_nodes(self, nodes: Sequence[str]) -> tuple[str, ...]:
        if not nodes:
            return ()
        text = self.runner([self.commands.scontrol, "show", "node", "-o", ",".join(nodes)]).stdout
        states = parse.parse_node_states(text)
        return tuple(n for n in nodes if n in states and parse.node_state_is_bad(states[n]))

    def oom_steps(self, job_id: str) -> tuple[str, ...]:
        # one try: a decision must not wait out the retry window while slurmdbd is away (the
        # policy then goes by the job's state and the log, as without accounting)
        text = self.runner([self.commands.sacct, "--parsable2", "--noheader", f"--jobs={job_id}",
                            "--format=JobIDRaw,State"], retries=0, timeout_s=20).stdout
        return parse.parse_oom_steps(text, str(job_id))

    def version(self) -> str:
        for cmd in (self.commands.sbatch, self.commands.scontrol):
            try:
                v = parse.parse_version(self.runner([cmd, "--version"], retries=0).stdout)
            except SlurmCommandError:
                continue
            if v:
                return v
        raise SlurmError("cannot tell the Slurm version", "check that `sbatch --version` works")


def _id_key(job_id: str) -> tuple[int, str]:
    head = re.match(r"\d+", job_id)
    return (int(head.group(0)) if head else -1, job_id)
