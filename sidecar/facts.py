"""Gathering the facts about one ended attempt (I/O): the sidecar's marker, Slurm's record of
the job, the progress file, the STOP request, and the log tail classified when there is no
marker. The decision itself is ``sidecar.policy.decide`` (pure)."""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from loguru import logger

from sidecar.checkpoints import read_tracker
from sidecar.errors import SlurmError
from sidecar.policy import AttemptFacts, Cause
from sidecar.rundir import RunPaths, read_json
from sidecar.slurm.types import JobInfo, JobState, SlurmClient

# The watchdog starts ~30 ms (22.05) to ~0.5 s (24.11) after its training job ends; scontrol may
# still show COMPLETING while the epilog runs, so wait a little for a terminal state.
TERMINAL_WAIT_S = 30.0
LOG_TAIL_BYTES = 512 * 1024


def slurm_record(client: SlurmClient, job_id: str, *, wait_s: float = TERMINAL_WAIT_S,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> tuple[JobInfo, bool]:
    """Slurm's record of ``job_id`` once it is terminal (or the last seen record after wait_s),
    and whether Slurm could be read at all."""
    deadline = clock() + wait_s
    info = JobInfo(job_id=job_id, state=JobState.UNKNOWN)
    read = False
    while True:
        try:
            info = client.job_info(job_id)
            read = True
        except SlurmError as exc:
            logger.warning("could not read Slurm's record of job {}: {}", job_id, exc.message)
        if info.state.is_terminal or clock() >= deadline:
            return info, read
        sleep(0.5)


def read_log_tail(path: str | os.PathLike[str], max_bytes: int = LOG_TAIL_BYTES) -> list[bytes]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if len(data) == max_bytes and lines:
        lines = lines[1:]  # the first line is probably cut
    return lines


def classify_tail(paths: RunPaths, job_id: str, monitoring: Any,
                  task_nodes: tuple[str, ...] = ()) -> tuple[Cause | None, Any]:
    """The log tail's root cause. ``task_nodes``: the node of each ``srun --label`` task id
    (``classify.tasks.task_nodes_of_job``), the same mapping the sidecar uses in the job: a
    node-local failure names its node, and ``Cause.line_node`` says where the root line came from."""
    try:
        from sidecar.classify import classify_lines
        from sidecar.classify.report import root_line_node
    except ImportError:  # pragma: no cover - classifier always ships
        return None, None
    lines = read_log_tail(paths.train_log(job_id))
    if not lines:
        return None, None
    verdict = classify_lines(lines, monitoring, task_nodes)
    root = verdict.root
    if root is None:
        return None, verdict
    fc = getattr(root.failure_class, "value", root.failure_class)
    return Cause(root.error_type, str(fc), verdict.node or root.node, root.line[:500], "log",
                 role=getattr(root.role, "value", "cause"),
                 line_node=root_line_node(verdict, task_nodes)), verdict


def task_nodes(info: JobInfo, ntasks_per_node: int | None) -> tuple[str, ...]:
    """The node of each ``srun --label`` task id of the job Slurm recorded (the sidecar's
    mapping, ``classify.tasks``, from Slurm's node list instead of the job's environment)."""
    from sidecar.classify.tasks import task_nodes_of_job

    return task_nodes_of_job(info.node_list, ntasks_per_node)


def epilog_exit_code(ending: Any) -> int | None:
    """The exit code the optional epilog hook recorded (its ``exit_code2`` is "exit:signal")."""
    if not isinstance(ending, dict):
        return None
    text = str(ending.get("exit_code2") or "")
    head = text.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def gather(paths: RunPaths, attempt: int, train_job: str | None, client: SlurmClient,
           monitoring: Any, *, wait_s: float = TERMINAL_WAIT_S,
           checkpoint_dir: str | os.PathLike[str] | None = None,
           timeout_signal: str | None = None, known: JobInfo | None = None,
           ntasks_per_node: int | None = None) -> AttemptFacts:
    """What is known about ``attempt``. ``checkpoint_dir``: where training saves; its tracker
    file, not the last save line seen in the log, gives the last checkpoint. ``timeout_signal``:
    the signal sbatch sends before the time limit (None: none configured). ``known``: the job's
    end as the job itself knows it (the fast path, before Slurm has it); otherwise Slurm's
    record is asked for. ``ntasks_per_node``: what the job was submitted with, which maps the
    log's ``srun --label`` task ids to Slurm's node list."""
    if known is not None:
        info, read = known, True
    elif train_job:
        info, read = slurm_record(client, train_job, wait_s=wait_s)
    else:
        info, read = JobInfo(job_id="", state=JobState.UNKNOWN), True
    raw_marker = read_json(paths.marker(attempt))
    marker = Cause.from_marker(raw_marker) if isinstance(raw_marker, dict) else None
    progress = read_json(paths.progress(attempt)) or {}
    if not isinstance(progress, dict):
        progress = {}
    end = read_json(paths.end_record(attempt)) or {}
    if not isinstance(end, dict):
        end = {}
    log_cause, verdict = None, None
    if marker is None and train_job and info.state not in (JobState.CANCELLED, JobState.COMPLETED):
        log_cause, verdict = classify_tail(paths, train_job, monitoring, task_nodes(info, ntasks_per_node))
    elif marker is not None and marker.role in ("death", "symptom") and train_job:
        # The sidecar may have written a killed rank or a survivor's error before the line that
        # says why came (slurmstepd prints its oom-kill line when the step ends): the whole log,
        # read now, may name a memory kill (sidecar.policy lets it outrank the marker)
        log_cause, verdict = classify_tail(paths, train_job, monitoring, task_nodes(info, ntasks_per_node))
    last_it = _int(progress.get("last_iteration"))
    if last_it is None and isinstance(raw_marker, dict):
        last_it = _int(raw_marker.get("last_iteration"))
    if last_it is None and verdict is not None:
        last_it = _int(getattr(verdict, "last_iteration", None))
    failed_nodes: tuple[str, ...] = ()
    if info.state in (JobState.NODE_FAIL, JobState.BOOT_FAIL) and info.nodes:
        try:
            failed_nodes = client.failed_nodes(info.nodes)
        except SlurmError as exc:
            logger.warning("could not read the state of nodes {}: {}", ",".join(info.nodes),
                           exc.message)
    oom_steps: tuple[str, ...] = ()
    # a step OOM-killed under a job that ends FAILED (or CANCELLED by the sidecar) matters only
    # when nothing better than a death or a symptom is known (sidecar.policy._cause)
    said = marker or log_cause
    weak = said is None or said.role in ("death", "symptom")
    oom_in_log = log_cause is not None and log_cause.error_type == "host_oom"
    if train_job and info.state in (JobState.FAILED, JobState.CANCELLED) and weak and not oom_in_log:
        try:
            oom_steps = client.oom_steps(train_job)
        except SlurmError as exc:
            logger.warning("could not read the steps of job {}: {}", train_job, exc.message)
    exit_code = info.exit_code if info.exit_code is not None else _int(end.get("exit_code"))
    if exit_code is None and train_job:
        exit_code = epilog_exit_code(read_json(paths.ending(train_job)))
    return AttemptFacts(
        attempt=attempt, job_id=train_job, state=info.state, exit_code=exit_code,
        signal=info.signal, nodes=info.nodes, failed_nodes=failed_nodes, marker=marker, log_cause=log_cause,
        stop_requested=paths.stop_request.exists(), slurm_unreadable=not read,
        first_iteration=_int(progress.get("first_iteration")), last_iteration=last_it,
        last_checkpoint=_last_checkpoint(checkpoint_dir, progress),
        warned_before_timeout=timeout_signal is not None and end.get("signal") == timeout_signal,
        oom_steps=oom_steps,
    )


def _last_checkpoint(checkpoint_dir: str | os.PathLike[str] | None,
                     progress: dict[str, Any]) -> int | None:
    on_disk = read_tracker(checkpoint_dir)
    return on_disk if on_disk is not None else _int(progress.get("last_checkpoint"))
