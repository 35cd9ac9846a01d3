"""Render the sbatch scripts: a pure function of the template text and the values.

Placeholders (see sbatch_templates/):

- ``{{ name }}``          a shell word: the value is quoted with shlex.quote
- ``{{ name | sbatch }}`` an ``#SBATCH`` option value: one line, no double quote or backslash
  (sbatch's own parser would read them as quoting); double-quoted when it has a space, ``'``
  or ``#`` (sbatch reads an unquoted ``#`` as the start of a comment)
- ``{{ name | raw }}``    shell text as given: only text this module built from quoted words,
  and the site profile's ``env_setup`` lines (the user's own shell setup). A line holding only
  an empty raw value is dropped.

A missing value is a ConfigError naming it; unused values are fine.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Iterable, Mapping

from sidecar.config.schema import ResolvedConfig
from sidecar.errors import ConfigError
from sidecar import rundir
from sidecar.rundir import RunPaths

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_]+)\s*)?\}\}")
_EMPTY_RAW_LINE = re.compile(r"^[ \t]*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\|\s*raw\s*\}\}[ \t]*\n", re.M)
FILTERS = ("sbatch", "raw")


def sbatch_value(value: str, name: str = "value") -> str:
    """``value`` as written after ``#SBATCH --option=``."""
    if any(c in value for c in '\n\r"\\'):
        raise ConfigError(
            f"{name}: {value!r} cannot go into an #SBATCH line (it has a newline, a double quote "
            "or a backslash)", "choose a value (e.g. a run name or directory) without them")
    if not value or any(c in value for c in " \t'#"):
        return f'"{value}"'
    return value


def render(template_text: str, values: Mapping[str, str | int]) -> str:
    """Fill the placeholders of ``template_text`` from ``values``."""
    used = {m.group(1) for m in _PLACEHOLDER.finditer(template_text)}
    missing = sorted(used - set(values))
    if missing:
        raise ConfigError(f"the template needs a value for {', '.join(missing)}",
                          "this is a bug in autoexp-sidecar or a hand-edited template")
    text = _EMPTY_RAW_LINE.sub(lambda m: "" if str(values[m.group(1)]) == "" else m.group(0), template_text)

    def fill(m: re.Match[str]) -> str:
        name, filt = m.group(1), m.group(2)
        value = str(values[name])
        if filt is None:
            return shlex.quote(value)
        if filt == "sbatch":
            return sbatch_value(value, name)
        if filt == "raw":
            return value
        raise ConfigError(f"template placeholder {m.group(0)!r}: unknown filter {filt!r}; "
                          f"allowed: {', '.join(FILTERS)}")

    out = _PLACEHOLDER.sub(fill, text)
    if "{{" in _PLACEHOLDER.sub("", text):
        raise ConfigError("the template has a malformed placeholder (a '{{' that is not "
                          "'{{ name }}' or '{{ name | filter }}')")
    return out


# ----------------------------------------------------------------------------- pieces
def sbatch_directives(options: Iterable[tuple[str, Any]]) -> str:
    """``#SBATCH`` lines for (option, value) pairs: True is a bare flag, False/None omitted."""
    lines = []
    for opt, value in options:
        if value is None or value is False:
            continue
        if value is True:
            lines.append(f"#SBATCH --{opt}")
        else:
            lines.append(f"#SBATCH --{opt}={sbatch_value(str(value), opt)}")
    return "\n".join(lines)


def render_args(args: Mapping[str, Any]) -> list[str]:
    """Megatron-style arguments: ``micro_batch_size: 8`` -> ``--micro-batch-size 8``;
    True -> a bare flag; False/None -> omitted; a list -> the flag followed by each item."""
    words: list[str] = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, *(str(v) for v in value)]
        else:
            words += [flag, str(value)]
    return words


# the signal sbatch sends the batch shell before the time limit (it forwards it to training)
TIMEOUT_SIGNAL = "USR1"

_SHELL_WORD = "\0checkpoint-dir\0"  # stands for the default checkpoint dir until quoting


def _quote_words(words: Iterable[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def train_command(cfg: ResolvedConfig, paths: RunPaths, python: str) -> str:
    """The training command as shell text (run by ``bash -c`` inside the job)."""
    backend = cfg.backend
    args = dict(backend.args)
    # save and load point at one directory so that a restart resumes from the latest checkpoint;
    # the default one is written relative to $AUTOEXP_RUN_DIR (set by the script) for legibility
    default_ckpt = f'"$AUTOEXP_RUN_DIR/{paths.checkpoints.relative_to(paths.root).as_posix()}"'
    ckpt = backend.checkpoint_dir or _SHELL_WORD
    args.setdefault("save", ckpt)
    args.setdefault("load", ckpt)
    arg_text = " ".join(default_ckpt if w == _SHELL_WORD else shlex.quote(w) for w in render_args(args))
    if backend.kind == "megatron_torchrun":
        nproc = int(backend.nproc_per_node or cfg.slurm.gpus_per_node or 1)
        script = (["-m", backend.module] if backend.module
                  else [f"{str(backend.megatron_path).rstrip('/')}/pretrain_gpt.py"])
        # srun --label: every line starts with its task number, i.e. its node (one torchrun per
        # node): the rank torchrun prints is the rendezvous' join order, not the node
        launch = " ".join([
            "exec srun --kill-on-bad-exit=1 --label",
            backend.torchrun.replace("{python}", shlex.quote(python)),
            '--nnodes="$SLURM_NNODES"',
            f"--nproc-per-node={nproc}",
            "--rdzv-backend=c10d",
            '--rdzv-id="$SLURM_JOB_ID"',
            '--rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT"',
            _quote_words(backend.torchrun_args),
            _quote_words(script),
        ])
    elif isinstance(backend.command, str):  # shell text, as the user wrote it
        launch = backend.command.replace("{python}", shlex.quote(python))
    elif backend.command is not None:
        launch = "exec " + _quote_words(w.replace("{python}", python) for w in backend.command)
    else:  # validation requires a command for this backend; say so rather than render "exec"
        raise ConfigError("backend.command is not set", "set backend.command, or use "
                          "backend: megatron_torchrun")
    return f"{launch} {arg_text}".strip()


def launch_setup(cfg: ResolvedConfig) -> str:
    """Shell lines run before the training command (torchrun's rendezvous address)."""
    if cfg.backend.kind != "megatron_torchrun":
        return ""
    return "\n".join([
        "# torchrun rendezvous on the first node of the allocation, by its address: a node's name",
        "# need not resolve on the nodes (a cluster's internal names, the local cluster's n1..n3)",
        'MASTER_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        'MASTER_ADDR=$(scontrol show node "$MASTER_NODE" 2>/dev/null | sed -n \'s/.*NodeAddr=\\([^ ]*\\).*/\\1/p\' | head -n 1)',
        'MASTER_ADDR=${MASTER_ADDR:-$MASTER_NODE}',
        f"MASTER_PORT=$(({int(cfg.backend.master_port)} + SLURM_JOB_ID % 1000))",
        "export MASTER_ADDR MASTER_PORT",
    ])


def _in_run_dir(layout: str, **shell_vars: str) -> str:
    """A run-dir path of ``sidecar.rundir``'s layout as one double-quoted shell word, its
    {placeholders} filled with shell variables (``"$AUTOEXP_RUN_DIR/logs/train-$SLURM_JOB_ID.out"``)."""
    return f'"$AUTOEXP_RUN_DIR/{layout.format(**{k: "$" + v for k, v in shell_vars.items()})}"'


def _check_run_dir(paths: RunPaths) -> str:
    root = str(paths.root)
    if "%" in root:  # sbatch expands %j, %u, ... in --output: the log would land elsewhere
        raise ConfigError(f"run directory {root!r} contains '%', which sbatch expands in --output",
                          "choose a run root and name without '%'")
    return root


# ----------------------------------------------------------------------------- scripts
def render_train_script(cfg: ResolvedConfig, paths: RunPaths, python: str) -> str:
    """The training job's script for run config ``cfg`` in run directory ``paths``;
    ``python`` is the interpreter that has this package (sys.executable at submit)."""
    import sbatch_templates

    s = cfg.slurm
    signal = f"B:{TIMEOUT_SIGNAL}@{s.signal_before_timeout_s}" if s.signal_before_timeout_s else None
    options = [
        ("partition", s.partition), ("account", s.account), ("qos", s.qos), ("nodes", s.nodes),
        ("ntasks-per-node", s.ntasks_per_node), ("gpus-per-node", s.gpus_per_node or None),
        ("cpus-per-task", s.cpus_per_task), ("mem", s.mem), ("time", s.time),
        ("constraint", s.constraint), ("signal", signal), *s.extra.items(),
    ]
    env = cfg.backend.env
    exports = "\n".join(f"export {k}={shlex.quote(str(v))}" for k, v in env.items())
    setup = launch_setup(cfg)
    return render(sbatch_templates.read(sbatch_templates.TRAIN), {
        "job_name": cfg.run.name,
        "output": str(paths.train_log_pattern),
        "run_dir": _check_run_dir(paths),
        "sbatch_directives": sbatch_directives(options),
        "python": python,
        "env_setup": "\n".join(s.env_setup),
        "env_exports": "\n".join(x for x in (exports, setup) if x),
        "workdir": cfg.backend.workdir or str(paths.root),
        "train_command": train_command(cfg, paths, python),
        "attempt_dir": _in_run_dir(rundir.ATTEMPT_DIR, attempt="AUTOEXP_ATTEMPT"),
        "train_log": _in_run_dir(rundir.TRAIN_LOG, job="SLURM_JOB_ID"),
        "sidecar_log": _in_run_dir(rundir.SIDECAR_LOG, attempt="AUTOEXP_ATTEMPT"),
        "step_pgid": _in_run_dir(rundir.STEP_PGID, attempt="AUTOEXP_ATTEMPT"),
    })


def render_watchdog_script(cfg: ResolvedConfig, paths: RunPaths, python: str) -> str:
    """The watchdog job's script: small, short, on the watchdog's own partition/account/qos."""
    import sbatch_templates

    wd = cfg.slurm.watchdog
    options = [
        ("partition", wd.partition), ("account", wd.account), ("qos", wd.qos),
        ("cpus-per-task", wd.cpus), ("mem", wd.mem), ("time", wd.time),
    ]
    return render(sbatch_templates.read(sbatch_templates.WATCHDOG), {
        "job_name": f"{cfg.run.name}-watchdog",
        "output": str(paths.watchdog_log_pattern),
        "chdir": str(paths.logs),
        "run_dir": _check_run_dir(paths),
        "sbatch_directives": sbatch_directives(options),
        "python": python,
    })
