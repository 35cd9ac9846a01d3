"""Load a run config: presets + the user's YAML file + ``key=value`` overrides -> ResolvedConfig.

The user's form::

    backend: megatron_torchrun          # a group key takes a preset name
    backend.megatron: llama1_8b_qkln    # dotted keys override keys of the chosen preset
    slurm: juwels
    slurm.account: myproject
    monitoring: megatron_production
    restart: megatron_transient
    restart.max_retries: 5

A nested form is the same thing (``slurm: {preset: juwels, account: myproject}``). Overrides
from the command line (``restart.max_retries=5``) apply last; their values are YAML scalars.
Groups without a choice use ``DEFAULT_PRESETS``.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from sidecar.config.presets import read_preset
from sidecar.config.restart import RestartPolicy
from sidecar.config.schema import (
    ARG_NAME, IDENTIFIER, SBATCH_OPTION, BackendConfig, NotifyConfig, ResolvedConfig, RunConfig,
    SlurmConfig,
)
from sidecar.config.validate import build, load_yaml, to_plain, unknown_key
from sidecar.errors import ConfigError

TOP_KEYS = ("run", "slurm", "backend", "monitoring", "restart", "notify")
# run.yaml of runs submitted before ``notify`` existed lacks it
OPTIONAL_FROZEN_KEYS = frozenset({"notify"})
# ``monitoring_overrides:`` is accepted as another spelling of ``monitoring.<key>`` overrides
ALIASES = ("monitoring_overrides",)
PRESET_GROUPS = ("slurm", "backend", "monitoring", "restart")
DEFAULT_PRESETS = {"slurm": "local", "backend": "command", "monitoring": "megatron_production",
                   "restart": "megatron_transient"}
PLACEHOLDER = "REPLACE_ME"
# sbatch options the templates and the submitter own; setting them in slurm.extra would break the chain
RESERVED_SBATCH = frozenset({"job-name", "output", "error", "chdir", "requeue", "no-requeue",
                             "dependency", "kill-on-invalid-dep", "signal", "comment", "export"})
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")


# ----------------------------------------------------------------------------- parsing
def parse_override(text: str) -> tuple[str, Any]:
    """``"slurm.partition=booster"`` -> ``("slurm.partition", "booster")``; the value is YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form key=value",
                          "write overrides like slurm.partition=booster restart.max_retries=5")
    if not _KEY.fullmatch(key):
        raise ConfigError(f"override {text!r}: {key!r} is not a config key (dotted words)",
                          "write overrides like backend.args.micro_batch_size=16")
    try:
        value = load_yaml(raw)
    except Exception as exc:  # yaml.YAMLError and friends: say which override
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({exc})",
                          "quote it: key='value'") from None
    return key, value


def read_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}",
                          "pass the path of a YAML config (see examples/local.yaml)") from None
    try:
        data = load_yaml(text)
    except Exception as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys, got {type(data).__name__}")
    return data


def _set(tree: dict[str, Any], parts: list[str], value: Any, key: str) -> None:
    """Put ``value`` at the dotted ``parts`` of ``tree``; a mapping value is spread into keys."""
    if parts[0] not in TOP_KEYS + ALIASES:
        raise unknown_key(key, TOP_KEYS, word=parts[0])
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _set(tree, parts + str(k).split("."), v, f"{key}.{k}")
        return
    node = tree
    for i, part in enumerate(parts[:-1]):
        cur = node.get(part)
        if cur is None or (i == 0 and part in PRESET_GROUPS and isinstance(cur, str)):
            cur = node[part] = {} if cur is None else {"preset": cur}
        elif not isinstance(cur, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"{key}: {where} is set to the value {cur!r}, so it has no sub-keys")
        node = cur
    last = parts[-1]
    if len(parts) == 1 and last in PRESET_GROUPS and not isinstance(value, Mapping):
        node.setdefault(last, {})
        if not isinstance(node[last], dict):
            node[last] = {}
        node[last]["preset"] = value  # `slurm: juwels` chooses the preset
    elif isinstance(value, Mapping):
        node.setdefault(last, {})  # an empty mapping adds nothing to the preset's
    else:
        node[last] = value


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _group(tree: dict[str, Any], group: str) -> tuple[str, dict[str, Any]]:
    node = dict(tree.get(group) or {})
    name = node.pop("preset", None) or DEFAULT_PRESETS[group]
    return name, node


# ----------------------------------------------------------------------------- building
def _run(tree: dict[str, Any], path: str | Path | None, now: datetime, env: Mapping[str, str]) -> RunConfig:
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "-", Path(path).stem).strip("-.") if path else ""
    data = {"name": f"{stem or 'run'}-{now:%Y%m%d-%H%M%S}",
            "root": env.get("AUTOEXP_RUN_ROOT") or "~/autoexp-runs", **(tree.get("run") or {})}
    run = build(RunConfig, data, "run")
    # absolute, so that jobs (which start elsewhere) find the same directory
    return replace(run, root=os.path.abspath(os.path.expanduser(run.root)))


def _slurm(tree: dict[str, Any]) -> SlurmConfig:
    name, user = _group(tree, "slurm")
    slurm = build(SlurmConfig, {**_merge(read_preset("slurm", name), user), "preset": name}, "slurm")
    wd = slurm.watchdog  # the watchdog inherits where the training runs unless told otherwise
    wd = replace(wd, partition=wd.partition or slurm.partition, account=wd.account or slurm.account,
                 qos=wd.qos or slurm.qos)
    for opt, value in slurm.extra.items():
        if not re.fullmatch(SBATCH_OPTION, opt):
            raise ConfigError(f"slurm.extra.{opt}: not an sbatch option name (lowercase, dashes, "
                              "no leading --)", "e.g. slurm.extra.exclusive=true")
        if opt in RESERVED_SBATCH:
            raise ConfigError(f"slurm.extra.{opt}: autoexp-sidecar sets --{opt} itself",
                              "remove it; see slurm.signal_before_timeout_s for --signal")
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise ConfigError(f"slurm.extra.{opt}: must be a single value or true, got {value!r}")
    return replace(slurm, watchdog=wd)


def _backend(tree: dict[str, Any]) -> BackendConfig:
    name, user = _group(tree, "backend")
    preset = read_preset("backend", name)
    user_args = user.pop("args", None) or {}
    if not isinstance(user_args, Mapping):
        raise ConfigError(f"backend.args: must be a mapping of argument -> value, got {user_args!r}")
    data = _merge({k: v for k, v in preset.items() if k != "args"}, user)
    model = data.get("megatron")
    model_args = read_preset("megatron", model) if model is not None else {}
    # precedence: backend preset < model preset < the user's args
    data["args"] = {**(preset.get("args") or {}), **model_args, **user_args}
    backend = build(BackendConfig, {**data, "preset": name}, "backend")
    for arg, value in backend.args.items():
        if not re.fullmatch(ARG_NAME, arg):
            raise ConfigError(f"backend.args.{arg}: argument names are lower_snake_case "
                              "(rendered as --kebab-case)", "e.g. backend.args.micro_batch_size=8")
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, (dict, list)) for v in items):
            raise ConfigError(f"backend.args.{arg}: must be a value or a list of values, got {value!r}")
    for var in backend.env:
        if not re.fullmatch(IDENTIFIER, var):
            raise ConfigError(f"backend.env.{var}: not an environment variable name")
    if backend.kind == "command" and not backend.command:
        raise ConfigError("backend.command: the command backend needs a command",
                          'e.g. backend.command=["{python}", "train.py"]')
    if backend.kind == "megatron_torchrun" and not (backend.megatron_path or backend.module):
        raise ConfigError("backend.megatron_path: megatron_torchrun needs the Megatron-LM checkout",
                          "set backend.megatron_path=/path/to/Megatron-LM (or backend.module=a.python.module)")
    return backend


def _restart(tree: dict[str, Any]) -> RestartPolicy:
    name, user = _group(tree, "restart")
    return build(RestartPolicy, {**_merge(read_preset("restart", name), user), "preset": name}, "restart")


def _monitoring(tree: dict[str, Any]) -> Any:
    name, overrides = _group(tree, "monitoring")
    extra = tree.get("monitoring_overrides") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError("monitoring_overrides: must be a mapping (signals, ignore, hang, kill_grace_s, families, progress)")
    overrides = _merge(overrides, extra)
    try:
        from sidecar.classify import load_monitoring_preset
    except ModuleNotFoundError as exc:  # the classifier not installed: keep the raw choice
        if not (exc.name or "").startswith("sidecar.classify"):
            raise
        return {"name": name, **overrides}
    return load_monitoring_preset(name, overrides)


def _check_placeholders(cfg: ResolvedConfig) -> None:
    """Presets mark what only the user knows (an account) with REPLACE_ME_...; refuse them."""
    def walk(value: Any, key: str) -> None:
        if isinstance(value, str) and PLACEHOLDER in value:
            example = {"slurm.account": "myproject", "slurm.partition": "booster"}.get(key, "...")
            raise ConfigError(
                f"{key} is still the preset's placeholder {value!r}",
                f"set it in your config or on the command line: {key}={example}")
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, f"{key}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")

    data = cfg.to_dict()
    for group in ("run", "slurm", "backend", "restart"):
        walk(data[group], group)


def load_config(path: str | Path | None, overrides: Sequence[str] = (), now: datetime | None = None,
                env: Mapping[str, str] | None = None) -> ResolvedConfig:
    """Resolve a run config. ``now`` names the run by default; ``env`` defaults to os.environ."""
    now = datetime.now() if now is None else now
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    if path is not None:
        for key, value in read_config_file(path).items():
            _set(tree, str(key).split("."), value, str(key))
    for text in overrides:
        key, value = parse_override(text)
        _set(tree, key.split("."), value, key)
    if isinstance(tree.get("notify"), (str, list)):  # `notify: <url>` / `notify: [urls]`
        urls = tree["notify"]
        tree["notify"] = {"urls": [urls] if isinstance(urls, str) else urls}
    for group in TOP_KEYS:
        if group in tree and not isinstance(tree[group], (dict, str)):
            raise ConfigError(f"{group}: must be a preset name or a mapping, got {tree[group]!r}")
    slurm = _slurm(tree)
    backend = _backend(tree)
    if backend.kind == "megatron_torchrun" and not (slurm.gpus_per_node or backend.nproc_per_node):
        raise ConfigError("slurm.gpus_per_node: megatron_torchrun starts one process per GPU and "
                          "needs it (torchrun --nproc-per-node)",
                          "e.g. slurm.gpus_per_node=4 (or, without GPUs, backend.nproc_per_node=1)")
    cfg = ResolvedConfig(run=_run(tree, path, now, env), slurm=slurm, backend=backend,
                         monitoring=_monitoring(tree), restart=_restart(tree),
                         notify=build(NotifyConfig, tree.get("notify") or {}, "notify"))
    _check_placeholders(cfg)
    return cfg


def load_frozen(path: str | Path, compile_monitoring: bool = True) -> ResolvedConfig:
    """Reload a run's run.yaml (``ResolvedConfig.to_dict()``) as written; no presets are read.
    ``compile_monitoring=False`` leaves ``monitoring`` as its plain mapping: compiling the
    signal patterns is most of the cost (~15 ms a run), and ``list`` reads hundreds of runs."""
    p = Path(path)
    try:
        data = load_yaml(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the run's config {p}: {exc.strerror or exc}") from None
    except Exception as exc:
        raise ConfigError(f"the run's config {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not set(TOP_KEYS) - OPTIONAL_FROZEN_KEYS <= set(data) <= set(TOP_KEYS):
        raise ConfigError(f"{p} is not a frozen run config (keys {', '.join(TOP_KEYS)})",
                          "run.yaml is written by `autoexp-sidecar submit`; do not edit it by hand")
    monitoring: Any = data["monitoring"]
    try:
        from sidecar.classify import load_monitoring
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("sidecar.classify"):
            raise
    else:
        if compile_monitoring:
            monitoring = load_monitoring(monitoring, "monitoring")
    return ResolvedConfig(
        run=build(RunConfig, data["run"], "run"),
        slurm=build(SlurmConfig, data["slurm"], "slurm"),
        backend=build(BackendConfig, data["backend"], "backend"),
        monitoring=monitoring if not isinstance(monitoring, dict) else to_plain(monitoring),
        restart=build(RestartPolicy, data["restart"], "restart"),
        notify=build(NotifyConfig, data.get("notify") or {}, "notify"),
    )
