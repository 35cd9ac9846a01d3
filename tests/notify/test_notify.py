"""Notifications: the messages (pure), and real delivery through apprise to a local HTTP
receiver, including a service that hangs or is down (the restart must go on)."""

from __future__ import annotations

import socket
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chain"))

from notify_receiver import Receiver  # noqa: E402
from test_watchdog_unit import FakeClient, marker  # noqa: E402

from sidecar.config import load_config  # noqa: E402
from sidecar.config.schema import NotifyConfig  # noqa: E402
from sidecar.errors import ConfigError  # noqa: E402
from sidecar.launch import submit_attempt  # noqa: E402
from sidecar.notify import NoticeKind, finish_notice, notices_for_decision, send, wanted  # noqa: E402
from sidecar.policy import Action, Decision  # noqa: E402
from sidecar.rundir import RunPaths  # noqa: E402
from sidecar.slurm.types import JobState  # noqa: E402
from sidecar.watchdog import handle_attempt  # noqa: E402


def _decision(action, reason, **kw):
    return Decision(action=action, reason=reason, **kw)


def test_restart_notice_carries_run_attempt_reason_and_inspect_command():
    d = _decision(Action.RESTART, "Transient failure detected (error_type=nccl)", error_type="nccl",
                  budget_used=1, budget_max=3, next_attempt=2)
    failure, restart = notices_for_decision("r1", "/runs/my run", 1, "41", d, next_job="43")
    assert failure.kind is NoticeKind.FAILURE and restart.kind is NoticeKind.RESTART
    assert restart.attempt == 2 and "r1" in restart.title and "restart" in restart.title
    assert "attempt 2 is training job 43" in restart.body and "budget 1/3" in restart.body
    assert "reason: Transient failure detected (error_type=nccl)" in restart.body
    assert "inspect: autoexp-sidecar inspect '/runs/my run'" in restart.body  # quoted for a shell


def test_stop_and_finish_notices_and_the_on_filter():
    d = _decision(Action.STOP, "retry budget exhausted (attempt 4/3)")
    notices = notices_for_decision("r1", "/runs/r1", 4, "50", d)
    assert [n.kind for n in notices] == [NoticeKind.FAILURE, NoticeKind.STOP]
    assert [n.kind for n in wanted(("restart", "stop", "finish"), notices)] == [NoticeKind.STOP]
    assert notices_for_decision("r1", "/r", 1, "1", _decision(Action.NOTHING, "active")) == []
    fin = finish_notice("r1", "/runs/r1", 3, "60")
    assert fin.kind is NoticeKind.FINISH and "training job 60 completed" in fin.body


def test_log_text_in_a_reason_is_data_and_long_bodies_are_cut():
    line = "$(rm -rf ~); `reboot` " + "x" * 5000
    n = notices_for_decision("r", "/r", 1, "1", _decision(Action.STOP, line))[1]
    assert n.body.startswith("run: r") and len(n.body) <= 1500 and "$(rm -rf ~)" in n.body


def test_apprise_delivers_to_a_local_receiver():
    with Receiver() as rx:
        cfg = NotifyConfig(urls=(rx.url,), on=("finish",))
        assert send(cfg, [finish_notice("r1", "/runs/r1", 2, "77")]) == 1
        assert rx.titles() == ["[autoexp] r1: finish (attempt 2)"]
        assert "training job 77 completed" in rx.messages[0]["message"]


def test_a_hanging_service_is_given_up_after_the_timeout():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)  # accepts connections, never answers
    try:
        cfg = NotifyConfig(urls=(f"json://127.0.0.1:{srv.getsockname()[1]}/x",), timeout_s=1)
        t0 = time.monotonic()
        assert send(cfg, [finish_notice("r1", "/r", 1, "1")]) == 0
        assert time.monotonic() - t0 < 5
    finally:
        srv.close()


def test_a_raising_deliverer_is_logged_not_raised():
    def boom(urls, notice):
        raise RuntimeError("service exploded")

    cfg = NotifyConfig(urls=("json://127.0.0.1:9/x",))
    assert send(cfg, [finish_notice("r1", "/r", 1, "1")], deliver=boom) == 0


@pytest.fixture
def run_with_notify(tmp_path):
    def make(url):
        cfg = load_config(None, ["slurm=local", f"run.root={tmp_path}", "run.name=r1",
                                 f"notify.urls=[{url}]", "notify.timeout_s=2"],
                          now=datetime(2026, 11, 29, 12, 0, 0))
        paths = RunPaths.of(tmp_path / "r1")
        paths.create("r1")
        client = FakeClient()
        paths.claim_attempt(1)
        sub = submit_attempt(client, paths, "r1", 1, "")
        return paths, cfg, client, sub
    return make


def test_watchdog_notifies_the_restart_after_submitting_it(run_with_notify):
    with Receiver() as rx:
        paths, cfg, client, sub = run_with_notify(rx.url)
        client.set(sub.train_job, JobState.CANCELLED)
        marker(paths, 1, "nccl")
        d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
        assert d.action is Action.RESTART
        assert rx.titles() == ["[autoexp] r1: restart (attempt 2)"]
        assert f"autoexp-sidecar inspect {paths.root}" in rx.messages[0]["message"]


def test_watchdog_restarts_when_the_notification_service_is_down(run_with_notify):
    paths, cfg, client, sub = run_with_notify("json://127.0.0.1:9/down")  # port 9: nothing listens
    client.set(sub.train_job, JobState.CANCELLED)
    marker(paths, 1, "nccl")
    d = handle_attempt(paths, cfg, client, 1, sub.train_job, wait_s=0)
    assert d.action is Action.RESTART and len(client.submitted) == 4


def test_notify_config_forms_and_errors(tmp_path):
    one = load_config(None, ["notify=ntfy://topic"], now=datetime(2026, 1, 1))
    assert one.notify.urls == ("ntfy://topic",) and one.notify.on == ("restart", "stop", "finish")
    with pytest.raises(ConfigError, match="notify.on: 'stopp' is not allowed"):
        load_config(None, ["notify.on=[stopp]"], now=datetime(2026, 1, 1))
