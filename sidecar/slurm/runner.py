"""The one function every Slurm command goes through.

``run(argv)`` runs an argv list (never a shell string) with a timeout and retries, with
exponential backoff, the failures that mean "the controller is busy or away" rather than "your
request is wrong". The retry window defaults to 120 s: a slurmctld restart (or a fail-over to the
backup, SlurmctldTimeout=120 s by default) takes tens of seconds, and a client that gives up after
one attempt turns every controller hiccup into a failed restart chain.

Non-idempotent commands (sbatch) are never retried here: a timed-out sbatch may have created the
job. ``CliSlurmClient.submit`` retries them itself, after looking the job up by name+comment.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from tenacity.stop import stop_base
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential,
    wait_random,
)

from sidecar.errors import SlurmError

DEFAULT_TIMEOUT_S = 30.0
# Long enough to ride out a slurmctld that is down for ~60 s (restart, reconfigure, fail-over).
DEFAULT_RETRY_WINDOW_S = 120.0

# stderr fragments of errors that go away by themselves (controller busy, restarting, failing over).
TRANSIENT_PATTERNS: tuple[str, ...] = (
    "Socket timed out on send/recv operation",
    "Unable to contact slurm controller",
    "Slurm backup controller in standby mode",
    "Transport endpoint is not connected",
    "Zero Bytes were transmitted or received",
    "Connection refused",
    "Connection reset by peer",
    "Slurm temporarily unable to accept job",
    "Resource temporarily unavailable",
    "Communication connection failure",
    "Unable to establish connection",
    "slurmdbd: Connection",  # sacct while slurmdbd restarts
    "Problem talking to the database",
)

# Commands that must not be re-run blindly: a retry after an ambiguous failure can double-submit.
NON_IDEMPOTENT: frozenset[str] = frozenset({"sbatch", "salloc", "srun"})


@dataclass(frozen=True)
class Completed:
    """A finished command: what ran, how it ended, what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float = 0.0
    attempts: int = 1


class SlurmCommandError(SlurmError):
    """A Slurm command failed (non-zero exit, timeout, or missing executable)."""

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int | None,
        stdout: str = "",
        stderr: str = "",
        tip: str = "",
        timed_out: bool = False,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, tip or tip_for(stderr, timed_out=timed_out, argv=argv))
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.attempts = attempts

    @property
    def transient(self) -> bool:
        """True when trying again later may succeed (controller away, timeout)."""
        return self.timed_out or is_transient(self.stderr)

    @property
    def not_found(self) -> bool:
        """The executable itself is missing."""
        return self.returncode is None and not self.timed_out


class Runner(Protocol):
    """What the clients call; tests inject fakes with this signature."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float = ...,
        retries: int | None = ...,
        input: str | None = ...,
        env: Mapping[str, str] | None = ...,
    ) -> Completed: ...


def is_transient(stderr: str) -> bool:
    return any(p in (stderr or "") for p in TRANSIENT_PATTERNS)


_TIPS: tuple[tuple[str, str], ...] = (
    ("Unable to contact slurm controller", "slurmctld is down or unreachable; check `scontrol ping` and try again"),
    ("Socket timed out", "the controller is overloaded or away; try again in a minute (`scontrol ping`)"),
    ("Connection refused", "a Slurm daemon is not listening; check `scontrol ping` (and slurmdbd for sacct)"),
    ("Invalid partition", "check the partition name with `sinfo -s` and the slurm.partition setting"),
    ("Job dependency problem", "the dependency names a job Slurm does not know (Slurm >= 24.11 refuses those); check the job id"),
    ("Invalid account", "check the account with `sacctmgr show assoc user=$USER`"),
    ("Invalid qos", "check the QOS with `sacctmgr show assoc user=$USER format=qos`"),
    ("Requested node configuration is not available", "the request exceeds what the partition's nodes have; check `sinfo -o '%P %c %m %G'`"),
    ("Invalid job id", "the job is unknown to the controller (finished longer ago than MinJobAge?); try `sacct -j <id>`"),
    ("unrecognized option", "this Slurm version does not know an option; compare `sbatch --help` with the options used"),
    ("Unable to open file", "the batch script path is wrong or unreadable from this host"),
    ("Access/permission denied", "you may not do this to that job or partition"),
)


def tip_for(stderr: str, *, timed_out: bool = False, argv: Sequence[str] = ()) -> str:
    if timed_out:
        return "the command did not answer in time: the controller may be overloaded; check `scontrol ping`"
    for fragment, tip in _TIPS:
        if fragment.lower() in (stderr or "").lower():
            return tip
    return f"run `{' '.join(argv)}` by hand to see the full error" if argv else ""


def run_once(
    argv: Sequence[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run argv once. Raise SlurmCommandError on non-zero exit, timeout or missing executable."""
    argv = tuple(str(a) for a in argv)
    if not argv:
        raise ValueError("empty argv")
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout_s,
            env=full_env, stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise SlurmCommandError(
            f"`{argv[0]}` timed out after {timeout_s:g} s",
            argv=argv, returncode=None, stdout=_text(exc.stdout), stderr=_text(exc.stderr),
            timed_out=True,
        ) from None
    except OSError as exc:  # FileNotFoundError, PermissionError
        raise SlurmCommandError(
            f"cannot run `{argv[0]}`: {exc.strerror or exc}",
            argv=argv, returncode=None,
            tip=f"install the Slurm client commands or put `{argv[0]}` on PATH",
        ) from None
    done = Completed(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise SlurmCommandError(
            f"`{' '.join(argv[:3])}` failed (exit {proc.returncode}): {first}",
            argv=argv, returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr,
        )
    return done


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def run(
    argv: Sequence[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int | None = None,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    retry_window_s: float = DEFAULT_RETRY_WINDOW_S,
    sleep: Callable[[float], None] = time.sleep,
    runner_once: Callable[..., Completed] = run_once,
) -> Completed:
    """Run a Slurm command; retry transient controller errors and timeouts.

    ``retries``: extra attempts allowed (None: as many as fit in ``retry_window_s``; 0: none).
    sbatch & co. are never retried here (see NON_IDEMPOTENT).
    Raises SlurmCommandError (the last one) when the command keeps failing.
    """
    if os.path.basename(str(argv[0])) in NON_IDEMPOTENT:
        retries = 0
    stops: list[stop_base] = [stop_after_delay(retry_window_s)]
    if retries is not None:
        stops.append(stop_after_attempt(retries + 1))
    attempts = 0

    def _count(_: RetryCallState) -> None:
        nonlocal attempts
        attempts += 1

    retrying = Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, SlurmCommandError) and e.transient),
        stop=stop_any(*stops),
        wait=wait_exponential(multiplier=0.5, max=8.0) + wait_random(0, 0.5),
        sleep=sleep,
        before=_count,
        reraise=True,
    )
    try:
        done = retrying(runner_once, argv, timeout_s=timeout_s, input=input, env=env)
    except SlurmCommandError as exc:
        exc.attempts = attempts
        raise
    return Completed(done.argv, done.returncode, done.stdout, done.stderr, done.duration_s, attempts)


def make_runner(**defaults: Any) -> Runner:
    """A runner with other defaults, e.g. ``make_runner(retries=0, timeout_s=5)`` for doctor."""

    def _runner(argv: Sequence[str], **kwargs: Any) -> Completed:
        merged = dict(defaults)
        for key, value in kwargs.items():
            if key == "retries" and value is None and "retries" in defaults:
                continue  # "no preference" from the caller: keep this runner's default
            merged[key] = value
        return run(argv, **merged)

    return _runner
