"""Notifications on restart, stop, finish (and optionally every failure), through apprise.

What to say is pure (``notices_for_decision``, ``finish_notice``); sending is a thin layer that
never raises and never waits longer than ``notify.timeout_s``: a notification service that is
down must not block or fail a restart. Messages go to apprise as data (no shell is involved),
so log text in a reason is never interpreted. Sent only by the watchdog job and the training
job's exit path, i.e. inside Slurm jobs, never from a login node.
"""

from __future__ import annotations

import enum
import shlex
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from loguru import logger

from sidecar.config.schema import NotifyConfig
from sidecar.policy import Action, Decision

BODY_MAX = 1500  # chat services cut long messages anyway (Slack ~4000, ntfy 4096 bytes)


class NoticeKind(enum.Enum):
    RESTART = "restart"
    STOP = "stop"
    FINISH = "finish"
    FAILURE = "failure"


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    run_id: str
    attempt: int
    reason: str
    title: str
    body: str


def inspect_command(run_dir: str) -> str:
    return f"autoexp-sidecar inspect {shlex.quote(run_dir)}"


def make_notice(kind: NoticeKind, run_id: str, run_dir: str, attempt: int, reason: str,
                what: str) -> Notice:
    title = f"[autoexp] {run_id}: {kind.value} (attempt {attempt})"
    body = (f"run: {run_id}\nattempt: {attempt}\n{what}\nreason: {reason}\n"
            f"inspect: {inspect_command(run_dir)}")
    if len(body) > BODY_MAX:
        body = body[: BODY_MAX - 3] + "..."
    return Notice(kind, run_id, attempt, reason, title, body)


def notices_for_decision(run_id: str, run_dir: str, attempt: int, train_job: str | None,
                         decision: Decision, next_job: str | None = None) -> list[Notice]:
    """What the watchdog announces after deciding on a failed ``attempt`` (before filtering
    by ``notify.on``)."""
    job = f"training job {train_job or '?'}"
    out: list[Notice] = []
    if decision.action in (Action.RESTART, Action.STOP):
        et = f" ({decision.error_type})" if decision.error_type else ""
        out.append(make_notice(NoticeKind.FAILURE, run_id, run_dir, attempt, decision.reason,
                               f"failed: {job}{et}"))
    if decision.action is Action.RESTART:
        nxt = decision.next_attempt or attempt + 1
        out.append(make_notice(NoticeKind.RESTART, run_id, run_dir, nxt, decision.reason,
                               f"restarted after {job} failed: attempt {nxt} is training job "
                               f"{next_job or '(not submitted)'}"
                               f" (budget {decision.budget_used}/{decision.budget_max})"))
    elif decision.action is Action.STOP:
        out.append(make_notice(NoticeKind.STOP, run_id, run_dir, attempt, decision.reason,
                               f"stopped after {job}: no restart"))
    elif decision.action is Action.FINISHED:
        out.append(finish_notice(run_id, run_dir, attempt, train_job, decision.reason))
    return out


def finish_notice(run_id: str, run_dir: str, attempt: int, train_job: str | None,
                  reason: str = "Training job completed") -> Notice:
    return make_notice(NoticeKind.FINISH, run_id, run_dir, attempt, reason,
                       f"finished: training job {train_job or '?'} completed")


def wanted(on: Iterable[str], notices: Sequence[Notice]) -> list[Notice]:
    kinds = set(on)
    return [n for n in notices if n.kind.value in kinds]


# ----------------------------------------------------------------------------- sending (I/O)
Deliver = Callable[[Sequence[str], Notice], bool]


def _apprise_deliver(urls: Sequence[str], notice: Notice) -> bool:
    import apprise

    ap = apprise.Apprise()
    for url in urls:
        if not ap.add(url):
            logger.warning("notify: apprise does not understand a URL of notify.urls ({}...)",
                           url.split(":", 1)[0])
    return bool(ap.notify(title=notice.title, body=notice.body,
                          body_format=apprise.NotifyFormat.TEXT))


def send(notify_cfg: NotifyConfig, notices: Sequence[Notice], deliver: Deliver | None = None) -> int:
    """Send the notices ``notify_cfg.on`` asks for to ``notify_cfg.urls``. Returns how many
    were delivered. Never raises; gives up after ``timeout_s`` (the send goes on in a daemon
    thread that dies with the job)."""
    urls = tuple(notify_cfg.urls)
    todo = wanted(notify_cfg.on, notices)
    if not urls or not todo:
        return 0
    if deliver is None:
        try:
            import apprise  # noqa: F401
        except ImportError:
            logger.warning("notify: notify.urls is set but apprise is not installed; "
                           "pip install 'autoexp-sidecar[notify]' in the run's virtualenv")
            return 0
        deliver = _apprise_deliver
    sent = 0
    for notice in todo:
        result: list[bool] = []

        def work(n: Notice = notice) -> None:
            try:
                result.append(deliver(urls, n))
            except Exception as exc:  # noqa: BLE001 - a broken service must not break a restart
                logger.warning("notify: sending the {} notice failed: {!r}", n.kind.value, exc)
                result.append(False)

        t = threading.Thread(target=work, name=f"notify-{notice.kind.value}", daemon=True)
        t.start()
        t.join(notify_cfg.timeout_s)
        if t.is_alive():
            logger.warning("notify: the {} notice took over {} s; not waiting for it",
                           notice.kind.value, notify_cfg.timeout_s)
        elif result and result[0]:
            sent += 1
            logger.info("notify: sent the {} notice for attempt {}", notice.kind.value, notice.attempt)
        else:
            logger.warning("notify: the {} notice was not delivered (see apprise's log above)",
                           notice.kind.value)
    return sent


def unusable_urls(urls: Sequence[str]) -> list[str]:
    """The URLs apprise cannot parse (checked at submit, so a typo shows before the first
    failure does). Empty when apprise is not installed: nothing to check against."""
    try:
        import apprise
    except ImportError:
        return []
    return [u for u in urls if not apprise.Apprise().add(u)]
