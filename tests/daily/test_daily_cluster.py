"""Daily use on the real cluster: a sweep of 4 runs with faults in two of them, `list` over
all four, a notification to a local receiver for each restart, stop and finish, and the
picture of the run that was restarted twice."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))

from notify_receiver import Receiver  # noqa: E402
from test_scenarios import T  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(600)]

OOM_LINE = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
            "GPU 0 has a total capacity of 79.15 GiB")


def _runs_by_iters(out: str) -> dict[int, T.Run]:
    runs = {}
    for line in out.strip().splitlines():
        d = json.loads(line)
        iters = int(d["run_dir"].rsplit("train_iters", 1)[1])
        runs[iters] = T.Run(Path(d["run_dir"]).name, Path(d["run_dir"]), 1, str(d["train_job"]))
    return runs


def test_sweep_list_notify_plot(tmp_path):
    h = T.Harness(reporter=T.Reporter(stream=sys.stdout), run_root=tmp_path / "runs",
                  start_timeout_s=120, restart_timeout_s=120)
    with Receiver() as rx:
        try:
            res = T.run_cmd([*h.cli, "submit", str(T.DEFAULT_CONFIG), f"run.root={h.run_root}",
                             "run.name=sweep", "backend.args.iter_time_s=0.2",
                             "backend.args.save_interval=10", f"notify.urls=[{rx.url}]",
                             "--sweep", "backend.args.train_iters=150,120,40,50", "--json"],
                            timeout_s=180)
            assert res.returncode == 0, res.stderr
            runs = _runs_by_iters(res.stdout)
            h.runs.extend(runs.values())
            assert sorted(runs) == [40, 50, 120, 150]
            twice, oom = runs[150], runs[120]

            # run 2 (first: it must not end before): CUDA OOM in the log -> stop, no restart
            h.wait_state(oom.job, "RUNNING")
            h.wait_checkpoint(oom, oom.job)
            h.wait_marker(oom, 1, "oom", h.inject(oom, oom.job, OOM_LINE))
            h.expect_no_restart(oom, 1, T.REASON_OOM)
            # run 1: NCCL error -> restart; in attempt 2 a hang -> restart; attempt 3 finishes
            job = twice.job
            for attempt, line, err in ((1, T.NCCL_LINE, "nccl"), (2, T.HANG_LINE, "hang")):
                h.wait_state(job, "RUNNING")
                h.wait_checkpoint(twice, job)
                h.wait_marker(twice, attempt, err, h.inject(twice, job, line))
                new = h.expect_restart(twice, attempt, job, reason_contains=f"error_type={err}")
                h.verify_resume(twice, job, new)
                job = new

            def listed():
                r = T.run_cmd([*h.cli, "list", str(h.run_root), "--json"], timeout_s=60)
                assert r.returncode == 0, r.stderr
                rows = {Path(x["run_dir"]).name: x for x in json.loads(r.stdout)}
                done = all(x["status"] in ("finished", "stopped") for x in rows.values())
                return rows if done and len(rows) == 4 else None

            rows = T.wait_for(listed, 240, 2)
            assert rows, "the runs did not all end within 240 s"
            r_twice, r_oom = rows[twice.name], rows[oom.name]
            assert (r_twice["status"], r_twice["attempt"], r_twice["budget_used"]) == ("finished", 3, 2)
            assert r_twice["last_iteration"] == 150 and r_twice["time_lost_s"] > 0
            assert "error_type=hang" in r_twice["last_failure"]
            assert (r_oom["status"], r_oom["attempt"], r_oom["last_failure"]) == ("stopped", 1, T.REASON_OOM)
            for iters in (40, 50):
                row = rows[runs[iters].name]
                assert (row["status"], row["attempt"], row["budget_used"], row["last_iteration"],
                        row["last_failure"]) == ("finished", 1, 0, iters, None)
            text = T.run_cmd([*h.cli, "list", str(h.run_root)], timeout_s=60).stdout
            assert len(text.splitlines()) == 5 and text.count("FINISHED") == 3 and "STOPPED" in text

            want = sorted([f"[autoexp] {twice.name}: restart (attempt 2)",
                           f"[autoexp] {twice.name}: restart (attempt 3)",
                           f"[autoexp] {twice.name}: finish (attempt 3)",
                           f"[autoexp] {oom.name}: stop (attempt 1)",
                           f"[autoexp] {runs[40].name}: finish (attempt 1)",
                           f"[autoexp] {runs[50].name}: finish (attempt 1)"])
            assert rx.wait_for(lambda m: len(m) >= len(want), 30), rx.titles()
            time.sleep(1)  # nothing more (e.g. a duplicate) arrives
            assert sorted(rx.titles()) == want
            stop = next(m for m in rx.messages if "stop" in m["title"])
            assert T.REASON_OOM in stop["message"] and f"autoexp-sidecar inspect {oom.dir}" in stop["message"]

            # the picture and the time lost of the run restarted twice
            png = tmp_path / "twice.png"
            ins = T.run_cmd([*h.cli, "inspect", str(twice.dir), "--json", "--plot", str(png)], timeout_s=60)
            assert ins.returncode == 0, ins.stderr
            tl = json.loads(ins.stdout)["time_lost"]
            assert [a["attempt"] for a in tl["attempts"]] == [1, 2]
            assert all(a["gap_s"] is not None and 0 < a["gap_s"] < 120 for a in tl["attempts"])
            assert all(a["redone_iterations"] is not None for a in tl["attempts"])
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            import matplotlib.image as mpimg

            img = mpimg.imread(str(png))
            rgb = (img[..., :3] * 255).round().astype(int).reshape(-1, 3)
            for colour in ((0x1f, 0x4e, 0x79), (0xc0, 0x39, 0x2b)):  # progress line, failure marks
                assert (abs(rgb - colour).sum(axis=1) < 12).sum() > 200, colour
        finally:
            h.close()
