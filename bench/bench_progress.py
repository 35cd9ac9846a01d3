#!/usr/bin/env python3
"""Benchmark reading progress from a log: what the format table costs.

1. ``classify``'s verdict of a whole log (``report.verdict_for_path``) reads the last step and
   checkpoint of each chunk backwards with RE2. Baseline in the same run: the same streaming
   scan with no progress reader, and with the Megatron-only reader that came before the
   format table. Three logs of ``--size-mb``: Megatron's iteration lines,
   torchtitan's step lines, and no progress line at all (the worst case: every chunk is
   searched to its start).
2. The sidecar reads every line as it arrives (``ProgressTracker.observe``): microseconds per
   line for step lines, other lines, and a progress bar line of 200 carriage-return redraws.

    python bench/bench_progress.py                 # 200 MiB logs
    python bench/bench_progress.py --size-mb 50    # quicker

Target: the verdict's throughput with progress >= 0.8 x without; observe well under the time
between two log lines of a real job (tens of microseconds per line).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time

MB = 1 << 20


def megatron(n: int, rng: random.Random) -> str:
    return (f" [2024-05-01 12:00:00] iteration {n:>8}/  500000 | consumed samples: {n * 512:>12} | elapsed time "
            f"per iteration (ms): {rng.uniform(200, 260):.1f} | learning rate: 2.0E-04 | lm loss: "
            f"{rng.uniform(2, 4):.6f}E+00 | loss scale: 1.0 | grad norm: 0.5 |")


def titan(n: int, rng: random.Random) -> str:
    return (f"[titan] 2025-01-10 10:00:00,123 - root - INFO - \x1b[31mstep: {n:2}  \x1b[32mloss: "
            f"{rng.uniform(2, 8):7.4f}  \x1b[33mmemory: 20.12GiB(25.43%)  \x1b[34mtps: 1,234  "
            f"\x1b[36mtflops: 56.78  \x1b[35mmfu: 5.74%\x1b[39m")


def other(n: int, rng: random.Random) -> str:
    return (f"node{n % 64:03d}:{n}:{n + 1} [{n % 8}] NCCL INFO comm 0x55d0c0a0 rank {n % 8} nranks 512 cudaDev "
            f"{n % 8} busId 7000 commId 0x1234 - Init COMPLETE")


def write_log(path: str, size_mb: float, step) -> None:
    rng = random.Random(1)
    target = int(size_mb * MB)
    with open(path, "w", encoding="utf-8") as fh:
        n, written = 0, 0
        while written < target:
            n += 1
            lines = [other(n, rng), other(n + 1, rng), step(n, rng) if step else other(n + 2, rng)]
            if step is megatron and n % 500 == 0:
                lines.append(f"saving checkpoint at iteration {n:7d} to /ckpt in torch_dist format")
                lines.append(f"  successfully saved checkpoint from iteration {n:7d} to /ckpt [ t 1/1, p 1/1 ]")
            elif step is titan and n % 500 == 0:
                lines.append("[titan] 2025-01-10 10:05:00,000 - root - INFO - Saving the checkpoint (or staging if "
                             "async is enabled).")
                lines.append("[titan] 2025-01-10 10:05:03,210 - root - INFO - [GC] Finished saving the checkpoint "
                             "(or staging if async is enabled)in 3.21 seconds.")
            text = "\n".join(lines) + "\n"
            fh.write(text)
            written += len(text)


class MegatronOnly:
    """The reader before the format table (Megatron's wordings, found backwards with rfind), as
    the baseline of the same run."""

    import re as _re
    ITERATION = _re.compile(rb"\biteration\s+(\d+)\s*/\s*\d+\s*\|")
    SAVED = _re.compile(rb"\bsuccessfully saved checkpoint (?:from|at) iteration\s+(\d+)")
    LOADED = _re.compile(rb"\bload(?:ing|ed) checkpoint from .* at iteration\s+(\d+)")

    def __init__(self) -> None:
        self.last_iteration = self.last_checkpoint = None

    @staticmethod
    def _last(buf, end, needle, regexes):
        pos = end
        for _ in range(200):
            i = buf.rfind(needle, 0, pos)
            if i < 0:
                return None
            start = buf.rfind(b"\n", 0, i) + 1
            stop = buf.find(b"\n", i, end)
            line = buf[start: min(stop if stop >= 0 else end, start + 4096)]
            for rx in regexes:
                m = rx.search(line)
                if m:
                    return int(m.group(1))
            pos = start
        return None

    def __call__(self, buf, end) -> None:
        it = self._last(buf, end, b"iteration", (self.ITERATION,))
        self.last_iteration = it if it is not None else self.last_iteration
        ck = self._last(buf, end, b"checkpoint", (self.SAVED, self.LOADED))
        self.last_checkpoint = ck if ck is not None else self.last_checkpoint


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()

    from sidecar.classify import LineClassifier, ProgressTracker, load_monitoring_preset
    from sidecar.classify.report import verdict_for_path
    from sidecar.classify.scan import scan_path

    cfg = load_monitoring_preset("megatron_production")
    tmp = tempfile.mkdtemp(prefix="bench-progress-", dir=args.tmp)
    ok = True
    try:
        print(f"verdict of a {args.size_mb:.0f} MiB log, best of {args.repeat}: with progress vs the same scan without")
        for name, step in (("megatron", megatron), ("torchtitan", titan), ("no progress line", None)):
            path = os.path.join(tmp, f"{name.replace(' ', '_')}.log")
            write_log(path, args.size_mb, step)
            size = os.path.getsize(path) / MB
            clf = LineClassifier(cfg)
            base = best(lambda: sum(1 for _ in scan_path(path, clf)), args.repeat)
            before = best(lambda: sum(1 for _ in scan_path(path, clf, on_region=MegatronOnly())), args.repeat)
            v = None

            def verdict():
                nonlocal v
                v = verdict_for_path(path, cfg)

            with_progress = best(verdict, args.repeat)
            ratio = base / with_progress
            ok &= ratio >= 0.8
            print(f"  {name:17s} {size / with_progress:7.1f} MB/s with the format table, {size / before:7.1f} MB/s "
                  f"with the Megatron-only reader, {size / base:7.1f} MB/s without progress: ratio {ratio:.2f} "
                  f"(last iteration {v.last_iteration}, last checkpoint {v.last_checkpoint})")
            os.unlink(path)

        rng = random.Random(2)
        samples = {
            "step line (torchtitan)": [titan(n, rng).encode() for n in range(1, 20001)],
            "step line (Megatron)": [megatron(n, rng).encode() for n in range(1, 20001)],
            "other line": [other(n, rng).encode() for n in range(20000)],
            "bar line, 200 redraws": [b"\r".join(b"Epoch 0:  %2d%%|          | %d/100000 [00:10<01:15, 11.62it/s]"
                                                 % (i // 1000, i) for i in range(k, k + 200)) for k in range(0, 400000, 200)],
        }
        print("ProgressTracker.observe, per line:")
        for name, lines in samples.items():
            p = ProgressTracker(cfg.hang, cfg.progress)
            t0 = time.perf_counter()
            for i, line in enumerate(lines):
                p.observe(line, float(i))
            us = (time.perf_counter() - t0) / len(lines) * 1e6
            print(f"  {name:24s} {us:7.2f} us")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("target (verdict with progress >= 0.8 x without):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
