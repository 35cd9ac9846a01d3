"""Re-arming a run whose chain broke. The repair for each broken state is one small step."""

from __future__ import annotations

from typing import Any

from sidecar.launch import arm_watchdog, submit_attempt
from sidecar.run_report import build_status
from sidecar.slurm.types import JobState, SlurmClient
from sidecar.status import RunState, write_state
from sidecar.watchdog import handle_attempt


def resume(paths, cfg: Any, client: SlurmClient, *, force: bool = False) -> str:
    st = build_status(paths, client, cfg.restart.max_retries)
    name = cfg.run.name
    if st.state in (RunState.STOPPED, RunState.FINISHED) or (
            st.state is not RunState.BROKEN and force and paths.stop_request.exists()):
        if not force:
            return (f"run is {st.state.value} ({st.detail}); nothing to re-arm. "
                    "Use --force to start a new attempt anyway.")
        paths.stop_request.unlink(missing_ok=True)
        n = (paths.latest_attempt() or 0) + 1
        while not paths.claim_attempt(n):
            n += 1
        paths.append_event("resumed", attempt=n, reason="forced by user", previous=st.state.value)
        sub = submit_attempt(client, paths, name, n, "Resumed by user (autoexp-sidecar resume --force)")
        write_state(paths, cfg.restart.max_retries)
        return f"submitted attempt {n}: training job {sub.train_job}, watchdog {sub.watchdog_job}"
    if st.state is not RunState.BROKEN:
        return f"run is {st.state.value} ({st.detail}); the chain is intact, nothing to do"
    last = st.attempts[-1]
    n = last.attempt
    paths.append_event("resumed", attempt=n, reason=st.detail)
    if last.train_job is None:
        sub = submit_attempt(client, paths, name, n, "Resubmitted by autoexp-sidecar resume")
        msg = f"submitted attempt {n}: training job {sub.train_job}, watchdog {sub.watchdog_job}"
    elif JobState.parse(last.train_state).is_active:
        wd = arm_watchdog(client, paths, name, n, last.train_job)
        msg = f"armed a new watchdog {wd} for training job {last.train_job} (attempt {n})"
    elif last.decision == "restart":
        nxt = n + 1
        if paths.claim_attempt(nxt):
            sub = submit_attempt(client, paths, name, nxt, last.decision_reason or "resumed")
            msg = f"submitted attempt {nxt}: training job {sub.train_job}, watchdog {sub.watchdog_job}"
        else:
            msg = f"attempt {nxt} is already claimed; inspect the run"
    else:
        # Ended, nobody decided: a watchdog died or was cancelled. Decide now, here.
        paths.decide_claim(n).unlink(missing_ok=True)
        d = handle_attempt(paths, cfg, client, n, last.train_job, wait_s=5.0)
        msg = f"decided attempt {n}: {d.action.value} - {d.reason}" if d else "another watchdog decided"
    write_state(paths, cfg.restart.max_retries)
    return msg
