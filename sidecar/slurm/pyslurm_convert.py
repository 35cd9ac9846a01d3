"""Pure translation of sbatch options and #SBATCH lines into pyslurm.JobSubmitDescription
keyword arguments (no pyslurm import here, so all of it is testable without pyslurm)."""

from __future__ import annotations

import os
from typing import Any, Mapping

from sidecar.errors import SlurmError
from sidecar.slurm.types import SubmitRequest


def minutes(value: Any) -> int | None:
    """sbatch --time forms -> whole minutes (pyslurm 22.5.3 raises TypeError on the string "5").

    ``5``, ``"5"``, ``"MM:SS"``, ``"HH:MM:SS"``, ``"D-HH"``, ``"D-HH:MM"``, ``"D-HH:MM:SS"``.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")]
        parts += [0] * (3 - len(parts))
        h, m, s = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts[-3:]
    return days * 1440 + h * 60 + m + (1 if s else 0)


# sbatch long option -> (JobSubmitDescription attribute, converter)
_OPTION_MAP: dict[str, tuple[str, Any]] = {
    "time": ("time_limit", minutes),
    "partition": ("partitions", str),
    "account": ("account", str),
    "qos": ("qos", str),
    "nodes": ("nodes", str),
    "ntasks": ("ntasks", int),
    "ntasks-per-node": ("ntasks_per_node", int),
    "cpus-per-task": ("cpus_per_task", int),
    "mem": ("memory_per_node", str),
    "output": ("standard_output", str),
    "error": ("standard_error", str),
    "exclude": ("excluded_nodes", str),
    "nodelist": ("required_nodes", str),
    "begin": ("begin_time", str),
    "gres": ("gres_per_node", str),
    "constraint": ("constraints", str),
    "reservation": ("reservations", str),
    "open-mode": ("log_files_open_mode", str),
    "gpus": ("gpus", str),
    "gpus-per-node": ("gpus_per_node", str),
    "mem-per-cpu": ("memory_per_cpu", str),
    "mem-per-gpu": ("memory_per_gpu", str),
    "cpus-per-gpu": ("cpus_per_gpu", str),
    "threads-per-core": ("threads_per_core", int),
    "mail-type": ("mail_types", str),
    "mail-user": ("mail_user", str),
    "wckey": ("wckey", str),
    "nice": ("nice", int),
}
# flags: option -> (attribute, value when given)
_FLAG_MAP: dict[str, tuple[str, Any]] = {
    "no-requeue": ("is_requeueable", False),
    "requeue": ("is_requeueable", True),
    "hold": ("priority", 0),
    "kill-on-invalid-dep": ("kill_on_invalid_dependency", True),
    "exclusive": ("resource_sharing", "no"),
}


_SHORT_OPTIONS = {
    "p": "partition", "t": "time", "N": "nodes", "n": "ntasks", "c": "cpus-per-task",
    "o": "output", "e": "error", "J": "job-name", "x": "exclude", "w": "nodelist",
    "A": "account", "q": "qos", "C": "constraint", "d": "dependency", "D": "chdir",
    "H": "hold", "s": "oversubscribe", "k": "no-kill",
}
# handled from SubmitRequest fields, or harmless to drop here
_DIRECTIVE_FIELDS = {"job-name": "name", "comment": "comment", "dependency": "dependency",
                     "chdir": "workdir", "export": None, "parsable": None}


class UnsupportedByPyslurm(SlurmError):
    """An sbatch option this client cannot express with pyslurm (use the Slurm commands)."""


def parse_sbatch_directives(script_text: str) -> dict[str, str | bool]:
    """``#SBATCH`` lines of a batch script -> {long option: value or True}.

    Like sbatch, stop at the first line that is neither blank nor a comment. We parse them
    ourselves because pyslurm 22.5.3's load_sbatch_options() raises AttributeError on
    ``#SBATCH --partition`` (it sets ``desc.partition``; the attribute is ``partitions``).
    """
    out: dict[str, str | bool] = {}
    for i, raw in enumerate(script_text.splitlines()):
        line = raw.strip()
        if i == 0 and line.startswith("#!"):
            continue
        if not line:
            continue
        if not line.startswith("#"):
            break
        if not line.startswith("#SBATCH"):
            continue
        words = line[len("#SBATCH"):].split("#", 1)[0].split()
        j = 0
        while j < len(words):
            w = words[j]
            if w.startswith("--"):
                key, eq, val = w[2:].partition("=")
                if not eq and j + 1 < len(words) and not words[j + 1].startswith("-") and key not in _FLAG_MAP:
                    val, eq = words[j + 1], "="
                    j += 1
                out[key] = val if eq else True
            elif w.startswith("-") and len(w) >= 2:
                key = _SHORT_OPTIONS.get(w[1], w[1])
                val = w[2:]
                if not val and j + 1 < len(words) and not words[j + 1].startswith("-") and key not in _FLAG_MAP:
                    val = words[j + 1]
                    j += 1
                out[key] = val or True
            j += 1
    return out


# Not mapped, so that they go through sbatch (slurm.client auto) or are refused (pyslurm):
# --signal: pyslurm 22.5.3 accepts JobSubmitDescription(signal="B:USR1@100") but the job never
# gets the signal (a 2-minute job: sbatch's got USR1 26 s in, pyslurm's none in 45 s).
def submit_kwargs(req: SubmitRequest, directives: Mapping[str, str | bool] | None = None) -> dict[str, Any]:
    """SubmitRequest (+ the script's #SBATCH directives, which its options override, as with
    sbatch) -> keyword arguments of pyslurm.JobSubmitDescription (pure)."""
    kw: dict[str, Any] = {"name": req.name, "script": str(req.script)}
    merged: dict[str, Any] = {}
    for key, value in (directives or {}).items():
        if key in _DIRECTIVE_FIELDS:
            field = _DIRECTIVE_FIELDS[key]
            if field == "name":
                continue  # the request's name wins
            if field and not getattr(req, field):
                kw_key = {"comment": "comment", "dependency": "dependencies", "workdir": "working_directory"}[field]
                kw[kw_key] = value
            continue
        merged[key] = value
    merged.update({k.lstrip("-"): v for k, v in req.options.items()})
    if req.comment:
        kw["comment"] = req.comment
    if req.dependency:
        kw["dependencies"] = req.dependency  # pyslurm passes a string through unchanged
    if req.workdir:
        kw["working_directory"] = req.workdir
    if req.env:
        # a dict is exported verbatim (no comma parsing); sbatch's default is ALL of our env
        kw["environment"] = {**inherited_environment(os.environ),
                             **{k: str(v) for k, v in req.env.items()}}
    for key, value in merged.items():
        if value is False or value is None:
            continue
        if key in _FLAG_MAP:
            attr, flag_value = _FLAG_MAP[key]
            if key == "kill-on-invalid-dep":
                flag_value = str(value).lower() in ("true", "yes", "1")
            kw[attr] = flag_value
        elif key in _OPTION_MAP:
            attr, conv = _OPTION_MAP[key]
            try:
                kw[attr] = conv(value)
            except ValueError:
                raise UnsupportedByPyslurm(f"sbatch option --{key}={value} is not understood here",
                                           "use slurm.client: cli") from None
        else:
            raise UnsupportedByPyslurm(f"sbatch option {key!r} is not supported with pyslurm",
                                       "put it into the batch script for sbatch, or use slurm.client: cli")
    return kw


def inherited_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The submitter's environment minus the SLURM_* variables of the job it runs in (a
    watchdog): sbatch drops those, but pyslurm passes them verbatim, and a job that inherits the
    watchdog's SLURM_NTASKS=1 gets "srun: Warning: can't run 1 processes on 2 nodes" and one
    rank on a 2-node allocation (seen with the 2-node torch workload). SLURM_CONF stays: it
    tells the job's own Slurm commands where the cluster is."""
    return {k: v for k, v in env.items() if not is_job_variable(k)}


def is_job_variable(name: str) -> bool:
    """A variable Slurm sets for the job this process runs in (SLURM_CONF is configuration)."""
    return name.startswith("SLURM_") and name != "SLURM_CONF"
