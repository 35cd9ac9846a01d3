"""Detection latency: an error line appended to a live training log -> marker.json on disk.

For each repetition a fresh attempt is set up: a writer appends Megatron-style iteration lines
every 0.2 s, the real sidecar process (``python -m sidecar scan``) follows the log, and after
about a second of healthy output an NCCL error line is appended. The time from just before that
write to the moment marker.json exists is one sample. In the same run, the same measurement for
a baseline ``tail -F LOG | grep --line-buffered PATTERN > hits`` pipeline (time until ``hits``
is non-empty), so the figures are comparable on this machine.

No Slurm is needed: the sidecar runs with ``--no-cancel`` (the cancel after the grace period is
logged, not sent), which does not affect the time to the marker.

    python bench/bench_detection.py [--reps 10] [--hang-reps 3] [--poll-s 0.1]

A second measurement does the same for a silent hang: iteration lines every 0.2 s, then none;
the time from the last line to the ``hang`` marker (pace-based detection, issue 4).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sidecar.rundir import RunPaths

NCCL_ERROR = (b"[rank3]: RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, "
              b"unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.19.3\n")
ITER = (b" [2026-01-01 00:00:00] iteration %8d/   10000 | consumed samples: %12d | "
        b"elapsed time per iteration (ms): 200.0 | lm loss: 7.1E+00 |\n")
WARMUP_S = 1.0  # healthy output before the error (the sidecar is past startup by then)
# A random extra delay so the error lands at a random phase of the sidecar's poll cycle; with a
# fixed delay the write can lock to just before a poll and flatter the figure.
TIMEOUT_S = 10.0


class Writer(threading.Thread):
    """Appends an iteration line every ``every_s``; ``error()`` appends the NCCL line and
    returns the time just before its write."""

    def __init__(self, log: Path, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.every_s, self.lock, self.done = every_s, threading.Lock(), threading.Event()
        self.last_write_t = 0.0

    def run(self) -> None:
        i = 0
        while not self.done.wait(self.every_s):
            i += 1
            with self.lock:
                if self.done.is_set():
                    break
                os.write(self.fd, ITER % (i, i * 8))
                self.last_write_t = time.perf_counter()

    def error(self) -> float:
        with self.lock:
            t0 = time.perf_counter()
            os.write(self.fd, NCCL_ERROR)
        return t0

    def stop(self) -> None:
        self.done.set()
        self.join()
        os.close(self.fd)


def wait_until(cond, timeout_s: float = TIMEOUT_S) -> float | None:
    """perf_counter() when ``cond()`` first holds (checked every 0.5 ms), or None."""
    end = time.perf_counter() + timeout_s
    while time.perf_counter() < end:
        if cond():
            return time.perf_counter()
        time.sleep(0.0005)
    return None


def one_sidecar(root: Path, rep: int, poll_s: float) -> float | None:
    paths = RunPaths.of(root / f"sidecar-{rep}")
    paths.create(f"bench-{rep}")
    paths.claim_attempt(1)
    log, errlog = paths.train_log("1000"), paths.sidecar_log(1)
    with open(errlog, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "scan", "--run", str(paths.root), "--attempt", "1",
             "--job", "1000", "--log", str(log), "--poll-s", str(poll_s), "--parent-pid",
             str(os.getpid()), "--monitoring", "megatron_production", "--no-cancel"],
            stdout=out, stderr=subprocess.STDOUT)
    writer = Writer(log)
    try:
        if wait_until(lambda: b"watching job" in errlog.read_bytes(), 30.0) is None:
            raise SystemExit(f"sidecar did not start:\n{errlog.read_text()}")
        writer.start()
        time.sleep(WARMUP_S + random.uniform(0, poll_s))
        t0 = writer.error()
        t1 = wait_until(paths.marker(1).exists)
        return None if t1 is None else t1 - t0
    finally:
        writer.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def one_hang(root: Path, rep: int, poll_s: float) -> float | None:
    """Iteration lines every 0.2 s, then silence: time from the last line to the hang marker."""
    paths = RunPaths.of(root / f"hang-{rep}")
    paths.create(f"bench-hang-{rep}")
    paths.claim_attempt(1)
    log, errlog = paths.train_log("1000"), paths.sidecar_log(1)
    with open(errlog, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "scan", "--run", str(paths.root), "--attempt", "1",
             "--job", "1000", "--log", str(log), "--poll-s", str(poll_s), "--parent-pid",
             str(os.getpid()), "--monitoring", "megatron_production", "--no-cancel"],
            stdout=out, stderr=subprocess.STDOUT)
    writer = Writer(log)
    try:
        if wait_until(lambda: b"watching job" in errlog.read_bytes(), 30.0) is None:
            raise SystemExit(f"sidecar did not start:\n{errlog.read_text()}")
        writer.start()
        time.sleep(3.0 + random.uniform(0, 0.2))
        with writer.lock:  # the job hangs: no more output
            writer.done.set()
            t0 = writer.last_write_t
        t1 = wait_until(paths.marker(1).exists, 60.0)
        return None if t1 is None else t1 - t0
    finally:
        writer.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def one_grep(root: Path, rep: int) -> float | None:
    d = root / f"grep-{rep}"
    d.mkdir()
    log, hits = d / "train.out", d / "hits"
    log.touch()
    writer = Writer(log)
    # The baseline a user would write: follow the log, print matching lines as they come.
    pipe = subprocess.Popen(
        ["sh", "-c", 'exec tail -n +1 -F "$1" 2>/dev/null | grep --line-buffered -E "NCCL error" > "$2"',
         "sh", str(log), str(hits)], start_new_session=True)
    try:
        writer.start()
        time.sleep(WARMUP_S + random.uniform(0, 0.1))
        t0 = writer.error()
        t1 = wait_until(lambda: hits.stat().st_size > 0)
        return None if t1 is None else t1 - t0
    finally:
        writer.stop()
        os.killpg(pipe.pid, signal.SIGTERM)
        pipe.wait(timeout=10)


def summary(name: str, samples: list[float | None]) -> str:
    ok = sorted(s for s in samples if s is not None)
    missed = len(samples) - len(ok)
    if not ok:
        return f"{name:<34} no detection in {len(samples)} tries"
    p90 = ok[min(len(ok) - 1, int(round(0.9 * (len(ok) - 1))))]
    return (f"{name:<34} median {statistics.median(ok) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   "
            f"max {ok[-1] * 1000:7.1f} ms   (n={len(ok)}{f', missed {missed}' if missed else ''})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--hang-reps", type=int, default=3, help="repetitions of the hang measurement (about 9 s each)")
    ap.add_argument("--poll-s", type=float, default=0.1, help="the sidecar's --poll-s (default 0.1, as in the template)")
    args = ap.parse_args(argv)
    print(f"detection latency: NCCL error line appended -> detected; {args.reps} repetitions; "
          f"iteration lines every 0.2 s; sidecar --poll-s {args.poll_s}")
    print("cancel: FAKE (sidecar runs with --no-cancel; no Slurm needed; the cancel comes after "
          "the marker and does not change this figure)")
    side, grep = [], []
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        root = Path(tmp)
        for rep in range(args.reps):
            side.append(one_sidecar(root, rep, args.poll_s))
            grep.append(one_grep(root, rep))
            fmt = lambda v: "miss" if v is None else f"{v * 1000:.1f} ms"  # noqa: E731
            print(f"  rep {rep + 1:2d}: sidecar {fmt(side[-1]):>9}   tail|grep {fmt(grep[-1]):>9}", flush=True)
        hang = [one_hang(root, rep, args.poll_s) for rep in range(args.hang_reps)]
    print(summary("sidecar (line -> marker.json)", side))
    print(summary("baseline tail -F | grep (-> hit)", grep))
    ok = [s for s in side if s is not None]
    target = bool(ok) and len(ok) == len(side) and statistics.median(ok) < 0.5
    print(f"target median < 500 ms: {'met' if target else 'NOT met'}")
    if hang:
        print(f"hang: iterations every 0.2 s, then silence -> hang marker (preset megatron_production: "
              f"pace_factor 10, floor_s 5; a fixed 300 s timeout would take 300 s); {args.hang_reps} repetitions")
        print(summary("sidecar (last line -> hang marker)", hang))
        okh = [h for h in hang if h is not None]
        print(f"target hang detected in < 10 s: {'met' if len(okh) == len(hang) and max(okh) < 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
