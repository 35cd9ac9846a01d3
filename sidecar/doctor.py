"""``autoexp-sidecar doctor``: does this cluster have what the restart chain needs?

Each check is a small function returning CheckResult; ``run_checks`` runs them in order and
``render_table`` prints them. Doctor must answer fast even when slurmctld is down: its runner
has a short timeout and no retries (a Slurm command waits ~9-18 s for a dead controller on
22.05, measured), and the checks that need the controller are skipped once ping failed.
"""

from __future__ import annotations

import enum
import os
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sidecar.slurm.runner import Runner, SlurmCommandError, make_runner

SLURM_COMMANDS = ("sbatch", "squeue", "scontrol", "sacct", "scancel")
# Filesystems every node of a cluster sees; anything else may be local to one node.
SHARED_FSTYPES = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "fuse.cephfs", "glusterfs",
    "fuse.glusterfs", "cifs", "smb3", "wekafs", "fuse.weka", "pvfs2", "orangefs", "panfs",
    "fuse.sshfs", "virtiofs", "9p", "afs", "fuse.juicefs", "vast", "dvs",
})
NODE_LOCAL_FSTYPES = frozenset({"tmpfs", "ramfs", "overlay", "devtmpfs"})


class Status(enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    required: bool = True

    @property
    def blocks(self) -> bool:
        """A required check that did not pass (SKIP of a required check counts: not verified)."""
        return self.required and self.status in (Status.FAIL, Status.SKIP)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d


def doctor_runner(timeout_s: float = 20.0) -> Runner:
    return make_runner(timeout_s=timeout_s, retries=0)


# ------------------------------------------------------------------ checks


def check_commands(which: Callable[[str], str | None] = shutil.which) -> CheckResult:
    missing = [c for c in SLURM_COMMANDS if which(c) is None]
    if missing:
        return CheckResult("slurm commands", Status.FAIL,
                           f"not on PATH: {', '.join(missing)} (install the Slurm client or load its module)")
    return CheckResult("slurm commands", Status.OK, ", ".join(SLURM_COMMANDS) + " found")


def check_controller(runner: Runner) -> CheckResult:
    try:
        out = runner(["scontrol", "ping"], timeout_s=10, retries=0).stdout
    except SlurmCommandError as exc:
        first = (exc.stdout.strip().splitlines() or exc.stderr.strip().splitlines() or [exc.message])[0]
        return CheckResult("controller reachable", Status.FAIL,
                           f"`scontrol ping`: {first.strip()} -- slurmctld is down or unreachable")
    if " is UP" not in out:
        return CheckResult("controller reachable", Status.FAIL, f"`scontrol ping`: {out.strip()}")
    return CheckResult("controller reachable", Status.OK, out.strip().splitlines()[0])


def check_version(runner: Runner) -> CheckResult:
    from sidecar.slurm.parse import parse_version

    try:
        v = parse_version(runner(["scontrol", "--version"], timeout_s=10, retries=0).stdout)
    except SlurmCommandError as exc:
        return CheckResult("slurm version", Status.FAIL, exc.message)
    if not v:
        return CheckResult("slurm version", Status.FAIL, "`scontrol --version` printed no version")
    major = int(v.split(".")[0])
    if major < 20:
        return CheckResult("slurm version", Status.WARN, f"Slurm {v}: untested (tested: 22.05, 24.11)", required=False)
    return CheckResult("slurm version", Status.OK, f"Slurm {v}")


def check_accounting(runner: Runner) -> CheckResult:
    # sacct is how a job's end is known after slurmctld forgot it (MinJobAge, default 300 s)
    try:
        runner(["sacct", "--noheader", "-X", "--parsable2", "--format=JobIDRaw,State",
                "--starttime=now-1hours"], timeout_s=20, retries=0)
    except SlurmCommandError as exc:
        return CheckResult("accounting (sacct)", Status.FAIL,
                           f"{exc.message} -- needs slurmdbd (AccountingStorageType=accounting_storage/slurmdbd)")
    return CheckResult("accounting (sacct)", Status.OK, "sacct answers")


def check_afternotok(runner: Runner, *, workdir: str | None = None) -> CheckResult:
    """Submit a held dummy, then a held job depending on it with afternotok and
    --kill-on-invalid-dep=yes; both are cancelled. Slurm >= 24.11 refuses a dependency on an
    unknown job id, so the dummy must be real."""
    name = f"autoexp-doctor-{uuid.uuid4().hex[:8]}"
    tmp = workdir or tempfile.gettempdir()
    base = ["sbatch", "--parsable", "--hold", f"--job-name={name}", f"--chdir={tmp}",
            "--output=/dev/null", "--time=1"]
    ids: list[str] = []
    try:
        from sidecar.slurm.parse import parse_sbatch_parsable

        first = parse_sbatch_parsable(runner(base + ["--wrap", "true"], timeout_s=20, retries=0).stdout)
        if not first:
            return CheckResult("afternotok + kill-on-invalid-dep", Status.FAIL, "sbatch printed no job id")
        ids.append(first)
        second = parse_sbatch_parsable(runner(
            base + [f"--dependency=afternotok:{first}", "--kill-on-invalid-dep=yes", "--wrap", "true"],
            timeout_s=20, retries=0).stdout)
        if not second:
            return CheckResult("afternotok + kill-on-invalid-dep", Status.FAIL, "sbatch printed no job id")
        ids.append(second)
    except SlurmCommandError as exc:
        return CheckResult("afternotok + kill-on-invalid-dep", Status.FAIL,
                           f"{exc.message} -- the watchdog job needs --dependency=afternotok and --kill-on-invalid-dep")
    finally:
        if ids:
            try:
                runner(["scancel", *ids], timeout_s=20, retries=0)
            except SlurmCommandError:
                pass
    return CheckResult("afternotok + kill-on-invalid-dep", Status.OK,
                       f"accepted (test jobs {', '.join(ids)} cancelled)")


def check_memory_enforced(runner: Runner) -> CheckResult:
    """Not required: the chain works without it, but a job over its --mem then runs on until the
    machine's OOM killer picks some process, and the job does not end OUT_OF_MEMORY."""
    from sidecar.slurm.memory import Enforcement, read_memory_enforcement

    m = read_memory_enforcement(runner)
    status = {Enforcement.CGROUP: Status.OK, Enforcement.POLLING: Status.WARN,
              Enforcement.NONE: Status.WARN, Enforcement.UNKNOWN: Status.SKIP}[m.state]
    return CheckResult("memory enforced", status, f"{m.state.value}: {m.reason}", required=False)


def check_pyslurm(runner: Runner) -> CheckResult:
    from sidecar.slurm import pyslurm_status

    mod, why = pyslurm_status(runner)
    if mod is None:
        return CheckResult("pyslurm", Status.SKIP, f"{why}; the Slurm commands are used instead", required=False)
    return CheckResult("pyslurm", Status.OK, why, required=False)


def check_run_root_writable(run_root: Path) -> CheckResult:
    name = "run root writable"
    probe_parent = run_root
    while not probe_parent.exists() and probe_parent != probe_parent.parent:
        probe_parent = probe_parent.parent
    target = run_root if run_root.exists() else probe_parent
    if not target.is_dir():
        return CheckResult(name, Status.FAIL, f"{target} is not a directory")
    try:
        fd, path = tempfile.mkstemp(prefix=".autoexp-doctor-", dir=target)
        os.close(fd)
        os.unlink(path)
    except OSError as exc:
        return CheckResult(name, Status.FAIL, f"cannot write in {target}: {exc.strerror or exc}")
    where = f"{run_root}" if run_root.exists() else f"{run_root} (will be created; {target} is writable)"
    return CheckResult(name, Status.OK, where)


def read_mounts(path: str = "/proc/mounts") -> list[tuple[str, str]]:
    """(mount point, fstype) pairs; octal escapes (\\040 for space) decoded."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3:
                    mnt = parts[1].encode().decode("unicode_escape")
                    out.append((mnt, parts[2]))
    except OSError:
        pass
    return out


def fstype_of(path: Path, mounts: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The (mount point, fstype) holding ``path``: the longest matching mount point."""
    p = str(path)
    best = None
    for mnt, fstype in mounts:
        if p == mnt or p.startswith(mnt.rstrip("/") + "/") or mnt == "/":
            if best is None or len(mnt) >= len(best[0]):
                best = (mnt, fstype)
    return best


def check_run_root_shared(run_root: Path, mounts: Iterable[tuple[str, str]] | None = None) -> CheckResult:
    name = "run root shared"
    # resolve symlinks of the part that exists; the rest (not created yet) is kept as is
    path = Path(os.path.abspath(run_root.expanduser()))
    existing, rest = path, list[str]()
    while not existing.exists() and existing != existing.parent:
        rest.insert(0, existing.name)
        existing = existing.parent
    resolved = existing.resolve().joinpath(*rest)
    found = fstype_of(resolved, list(mounts) if mounts is not None else read_mounts())
    if found is None:
        return CheckResult(name, Status.WARN, f"cannot tell the filesystem of {run_root}", required=False)
    mnt, fstype = found
    if fstype in SHARED_FSTYPES:
        return CheckResult(name, Status.OK, f"{fstype} at {mnt}", required=False)
    local = fstype in NODE_LOCAL_FSTYPES or str(resolved).startswith(("/tmp", "/var/tmp", "/dev/shm"))
    hint = ("node-local: the watchdog on another node will not see the run dir; "
            "use a shared filesystem (--run-root / AUTOEXP_RUN_ROOT) on a multi-node cluster")
    return CheckResult(name, Status.WARN,
                       f"{fstype} at {mnt}" + (f" is {hint}" if local else f" may be {hint}"),
                       required=False)


# ------------------------------------------------------------------ orchestration


def run_checks(run_root: Path, runner: Runner | None = None,
               which: Callable[[str], str | None] = shutil.which) -> list[CheckResult]:
    runner = runner or doctor_runner()
    results = [check_commands(which)]
    have_commands = results[0].status is Status.OK
    if have_commands:
        results.append(check_controller(runner))
        results.append(check_version(runner))
    else:
        results.append(CheckResult("controller reachable", Status.SKIP, "no Slurm commands"))
        results.append(CheckResult("slurm version", Status.SKIP, "no Slurm commands"))
    controller_ok = have_commands and results[1].status is Status.OK
    if controller_ok:
        results.append(check_accounting(runner))
        results.append(check_afternotok(runner))
        results.append(check_memory_enforced(runner))
    else:
        why = "controller not reachable" if have_commands else "no Slurm commands"
        results.append(CheckResult("accounting (sacct)", Status.SKIP, why))
        results.append(CheckResult("afternotok + kill-on-invalid-dep", Status.SKIP, why))
        results.append(CheckResult("memory enforced", Status.SKIP, why, required=False))
    results.append(check_pyslurm(runner) if have_commands else
                   CheckResult("pyslurm", Status.SKIP, "no Slurm commands", required=False))
    results.append(check_run_root_writable(run_root))
    results.append(check_run_root_shared(run_root))
    return results


def exit_code(results: Sequence[CheckResult]) -> int:
    return 1 if any(r.blocks for r in results) else 0


def render_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table: status, check, required?, detail; then a one-line verdict."""
    rows = [("STATUS", "CHECK", "REQUIRED", "DETAIL")]
    rows += [(r.status.value, r.name, "yes" if r.required else "no", r.detail) for r in results]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    lines = [f"{a:<{w0}}  {b:<{w1}}  {c:<{w2}}  {d}".rstrip() for a, b, c, d in rows]
    blocking = [r.name for r in results if r.blocks]
    if blocking:
        lines.append(f"\nFAILED: required check(s) not passing: {', '.join(blocking)}")
    else:
        lines.append("\nAll required checks passed.")
    return "\n".join(lines)
