#!/usr/bin/env python3
"""Benchmark ``autoexp-sidecar list`` over many run directories on the real cluster.

Creates ``--runs`` run directories in a temporary directory, each with ``--attempts`` attempts
whose job ids are real jobs of this cluster (taken from sacct, reused round-robin), then times,
in the same run and with the same client:

- ``list``: one batched query for every job of every run (``SlurmClient.jobs_info``), and
- the baseline: one query per job (``job_info``, what inspecting each run in turn costs).

Prints runs, jobs, wall time of each, their ratio and the number of Slurm commands each ran.

    python bench/bench_list.py                       # 300 runs x 3 attempts, both clients
    python bench/bench_list.py --runs 100 --client cli
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from sidecar.config import load_config  # noqa: E402
from sidecar.run_report import job_ids, list_row, report_from  # noqa: E402
from sidecar.rundir import RunPaths, atomic_write_text, find_runs  # noqa: E402
from sidecar.slurm import get_client  # noqa: E402
from sidecar.slurm.runner import run as run_command  # noqa: E402
from sidecar.history import read_history  # noqa: E402
from sidecar.status import collect_attempts  # noqa: E402


def real_job_ids(n: int) -> list[str]:
    out = subprocess.run(["sacct", "-X", "--noheader", "--parsable2", "--format=JobID",
                          "--starttime=now-7days"], capture_output=True, text=True, check=True).stdout
    ids = [x for x in out.split() if x.isdigit()]
    if not ids:
        sys.exit("no jobs in sacct: run some jobs on the cluster first (e.g. ./scripts/demo)")
    return [ids[i % len(ids)] for i in range(n)]


def make_runs(root: Path, runs: int, attempts: int) -> None:
    cfg = yaml.safe_dump(load_config(None, [f"run.root={root}"]).to_dict())
    ids = iter(real_job_ids(runs * attempts * 2))
    for r in range(runs):
        paths = RunPaths.of(root / f"run{r:04d}")
        paths.create(paths.root.name)
        atomic_write_text(paths.config, cfg)
        for n in range(1, attempts + 1):
            paths.claim_attempt(n)
            atomic_write_text(paths.train_job_file(n), next(ids) + "\n")
            atomic_write_text(paths.watchdog_job_file(n), next(ids) + "\n")


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, argv, **kw):
        self.calls += 1
        return run_command(argv, **kw)


def loaded(root: Path):
    from sidecar.config import load_frozen

    out = []
    for p in find_runs(root):
        h = read_history(p)
        out.append((p, load_frozen(p.config, compile_monitoring=False), h, collect_attempts(p, h)))
    return out


def bench(kind: str, root: Path) -> None:
    counter = Counting()
    client = get_client(kind, runner=counter)
    runs = loaded(root)
    ids = [j for *_, v in runs for j in job_ids(v)]

    counter.calls = 0  # not the version check of get_client
    t0 = time.perf_counter()
    infos = client.jobs_info(ids)
    rows = [list_row(report_from(p, c, e, v, infos, time.time())) for p, c, e, v in loaded(root)]
    batched_s, batched_calls = time.perf_counter() - t0, counter.calls

    counter.calls = 0
    t0 = time.perf_counter()
    one_by_one = {j: client.job_info(j) for j in ids}
    rows2 = [list_row(report_from(p, c, e, v, one_by_one, time.time())) for p, c, e, v in loaded(root)]
    single_s, single_calls = time.perf_counter() - t0, counter.calls

    same = [r["status"] for r in rows] == [r["status"] for r in rows2]
    print(f"{kind:8s} {len(runs):5d} runs {len(ids):6d} jobs | batched {batched_s:7.2f} s "
          f"({batched_calls} commands) | one query per job {single_s:7.2f} s ({single_calls} commands"
          f"{'' if kind == 'cli' else ', pyslurm RPCs not counted'}) | {single_s / batched_s:6.1f}x faster"
          f" | same statuses: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--attempts", type=int, default=3)
    ap.add_argument("--client", choices=["cli", "pyslurm", "both"], default="both")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="autoexp-bench-list-"))
    try:
        make_runs(root, a.runs, a.attempts)
        kinds = ["cli", "pyslurm"] if a.client == "both" else [a.client]
        for kind in kinds:
            try:
                bench(kind, root)
            except Exception as exc:  # noqa: BLE001 - e.g. no pyslurm here
                print(f"{kind:8s} skipped: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
