"""Time lost, the list row and the picture of a run with two restarts (no Slurm: Slurm's
answers are given as values, as the batched query returns them)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_fixture import T0, make_run  # noqa: E402

from sidecar import training_log  # noqa: E402
from sidecar.config import load_config, load_frozen  # noqa: E402
from sidecar.plot import build_model, read_logs, write_plot  # noqa: E402
from sidecar.run_report import job_ids, list_row, render_list, render_text, report_from  # noqa: E402
from sidecar.history import read_history  # noqa: E402
from sidecar.status import collect_attempts  # noqa: E402


@pytest.fixture
def report(tmp_path):
    cfg = load_config(None, ["slurm.nodes=2", "slurm.gpus_per_node=4"], now=datetime(2026, 12, 1))
    paths, infos = make_run(tmp_path, yaml.safe_dump(cfg.to_dict()))
    cfg = load_frozen(paths.config)
    history = read_history(paths)
    views = collect_attempts(paths, history)
    assert sorted(job_ids(views)) == sorted(["11", "111", "12", "112", "13", "113"])
    return paths, report_from(paths, cfg, history, views, infos, now=T0.timestamp() + 1000)


def test_time_lost_per_attempt_and_totals(report):
    _, rep = report
    tl = rep.time_lost
    # failure (marker) at 60 -> attempt 2 running at 90; marker at 150 -> attempt 3 at 200
    assert [(a.attempt, a.gap_s, a.redone_iterations) for a in tl.attempts] == [(1, 30.0, 9), (2, 50.0, 9)]
    assert tl.total_gap_s == 80.0 and tl.total_redone_iterations == 18
    assert tl.gpus == 8 and tl.gpu_hours == pytest.approx(80 / 3600 * 8)
    text = render_text(rep.status, tl)
    assert "attempt 1 -> 2: 30s from the failure to the next attempt running, 9 iterations redone" in text
    assert "total: 1m20s, 18 iterations redone, 0.18 GPU-hours (8 GPUs)" in text
    assert rep.to_dict()["time_lost"]["total_gap_s"] == 80.0


def test_list_row(report):
    _, rep = report
    row = list_row(rep)
    assert (row["status"], row["attempt"], row["budget_used"], row["last_iteration"]) == ("finished", 3, 2, 60)
    assert row["last_failure"] == "Transient failure detected (error_type=hang)"
    line = render_list([row]).splitlines()[1]
    assert line.startswith("r2") and "FINISHED" in line and "2/3" in line and "1m20s" in line


def test_training_log_points():
    log = training_log.parse([
        b" successfully loaded checkpoint from /c [ t 0/ 1, p 0/ 1 ] at iteration 40",
        b" [2026-12-01 03:00:05] iteration       41/     100 | consumed samples: 1 | lm loss: 3.500E+00 | x |",
        b"NCCL WARN something",
        b" [2026-12-01 03:00:06] iteration       42/     100 | consumed samples: 2 |",
    ])
    assert log.resumed_from == 40
    assert [(p.iteration, p.loss) for p in log.points] == [(41, 3.5), (42, None)]
    assert log.points[1].time - log.points[0].time == 1.0


def test_plot_model_bands_failures_gaps(report):
    paths, rep = report
    model = build_model(rep, read_logs(paths, rep), now=T0.timestamp() + 1000)
    assert [(b.attempt, b.job, b.outcome) for b in model.bands] == [
        (1, "11", "restarted"), (2, "12", "restarted"), (3, "13", "finished")]
    assert "job 12" in model.bands[1].label and "CANCELLED" in model.bands[1].label
    assert [f.text for f in model.failures] == ["Transient failure detected (error_type=nccl)",
                                                "Transient failure detected (error_type=hang)"]
    assert [(g.end - g.start) for g in model.gaps] == [30.0, 50.0]
    assert len(model.series[2]) == 29 and model.series[2][0].loss is not None


def _pixels_of(png: Path):
    import matplotlib.image as mpimg

    return mpimg.imread(str(png))


def test_plot_png_and_html_render(report, tmp_path):
    paths, rep = report
    png = write_plot(paths, rep, str(tmp_path / "run.png"), now=T0.timestamp() + 1000)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = _pixels_of(png)
    assert img.shape[0] > 400 and img.shape[1] > 1000
    rgb = (img[..., :3] * 255).round().astype(int).reshape(-1, 3)
    # the iteration line (#1f4e79) and the failure marks (#c0392b) are drawn
    for colour in ((0x1f, 0x4e, 0x79), (0xc0, 0x39, 0x2b)):
        assert ((abs(rgb - colour).sum(axis=1)) < 12).sum() > 200, colour
    page = write_plot(paths, rep, str(tmp_path / "run.html")).read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert "attempt 1 -&gt; 2: 30s" in page


def test_iterations_in_one_logged_second_are_spread_over_it():
    from sidecar.plot import spread_within_second

    pts = [training_log.Point(10.0, 1, None), training_log.Point(10.0, 2, None),
           training_log.Point(11.0, 3, None)]
    assert [p.time for p in spread_within_second(pts)] == [10.0, 10.5, 11.0]
