"""A run directory with three attempts (two restarts), written the way the chain writes it:
events, job ids, progress and markers, and Megatron-style logs with timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta

from sidecar.rundir import RunPaths, atomic_write_json, atomic_write_text
from sidecar.slurm.types import JobInfo, JobState

T0 = datetime(2026, 12, 1, 3, 0, 0)


def _t(s: float) -> float:
    return (T0 + timedelta(seconds=s)).timestamp()


def make_run(tmp_path, cfg_text: str):
    """Attempt 1 (job 11) NCCL at t=60, attempt 2 (job 12) from t=90, hang at t=150,
    attempt 3 (job 13) from t=200 to 260, completed. Returns (paths, slurm infos)."""
    paths = RunPaths.of(tmp_path / "r2")
    paths.create("r2")
    atomic_write_text(paths.config, cfg_text)
    plan = [  # attempt, job, start, end, first it, last it, last ckpt, error, reason
        (1, "11", 0, 62, 1, 29, 20, "nccl", "Transient failure detected (error_type=nccl)"),
        (2, "12", 90, 152, 21, 49, 40, "hang", "Transient failure detected (error_type=hang)"),
        (3, "13", 200, 260, 41, 60, 60, None, None),
    ]
    infos = {}
    used = 0
    for n, job, start, end, first, last, ckpt, err, reason in plan:
        paths.claim_attempt(n)
        atomic_write_text(paths.train_job_file(n), job + "\n")
        atomic_write_text(paths.watchdog_job_file(n), str(int(job) + 100) + "\n")
        paths.append_event("submitted", now=_t(start - 5), attempt=n, train_job=job,
                           reason=plan[n - 2][8] if n > 1 else "")
        atomic_write_json(paths.progress(n), {"first_iteration": first, "last_iteration": last,
                                              "last_checkpoint": ckpt})
        lines = [f" successfully loaded checkpoint from ckpt [ t 0/ 1, p 0/ 1 ] at iteration {first - 1}"] if n > 1 else []
        span = (end - 2) - start
        for i, it in enumerate(range(first, last + 1)):
            ts = T0 + timedelta(seconds=start + span * i / max(1, last - first))
            lines.append(f" [{ts:%Y-%m-%d %H:%M:%S}] iteration {it:8d}/      60 | "
                         f"lm loss: {9.0 / (1 + it / 10):.3E} | loss scale: 1.0 |")
        (paths.logs / f"train-{job}.out").write_text("\n".join(lines) + "\n")
        state = JobState.COMPLETED if err is None else JobState.CANCELLED
        if err:
            paths.append_event("marker", now=_t(end - 2), attempt=n, error_type=err)
            paths.append_event("ended", now=_t(end), attempt=n, exit_code=143, signal="TERM")
            used += 1
            paths.append_event("decided", now=_t(end + 3), attempt=n, decision={
                "action": "restart", "reason": reason, "error_type": err,
                "counts_against_budget": True, "budget_used": used, "budget_max": 3})
        else:
            paths.append_event("ended", now=_t(end), attempt=n, exit_code=0, signal=None)
            paths.append_event("finished", now=_t(end), attempt=n, reason="Training job completed")
        infos[job] = JobInfo(job, state, start_time=T0 + timedelta(seconds=start),
                             end_time=T0 + timedelta(seconds=end))
        infos[str(int(job) + 100)] = JobInfo(str(int(job) + 100), JobState.CANCELLED)
    return paths, infos
