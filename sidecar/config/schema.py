"""The resolved run config: typed, frozen, every field with its help text.

``ResolvedConfig.to_dict()`` is what a run's frozen ``run.yaml`` holds; ``sidecar.config.load``
builds these from presets + the user's file + command-line overrides, and reloads run.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.config.restart import RestartPolicy
from sidecar.config.validate import field, to_plain

# Slurm's --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (and the words for no limit)
SLURM_TIME = r"\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2}|UNLIMITED|INFINITE|infinite|unlimited"
SLURM_MEM = r"\d+[KMGTkmgt]?"
RUN_NAME = r"[A-Za-z0-9][A-Za-z0-9._+-]*"
SBATCH_OPTION = r"[a-z][a-z0-9-]*"
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
ARG_NAME = r"[a-z][a-z0-9_]*"

BACKEND_KINDS = ("megatron_torchrun", "command")
CLIENT_KINDS = ("auto", "cli", "pyslurm")


@dataclass(frozen=True)
class RunConfig:
    name: str = field(help="run name: the run directory's name and the jobs' name "
                      "(default <config file stem>-<YYYYmmdd-HHMMSS>)",
                      pattern=RUN_NAME, pattern_help="a run name (letters, digits, . _ + -)")
    root: str = field(help="directory holding run directories "
                      "(default $AUTOEXP_RUN_ROOT or ~/autoexp-runs); must be on a shared filesystem")

    @property
    def dir(self) -> Path:
        """The run directory."""
        return Path(self.root) / self.name


@dataclass(frozen=True)
class WatchdogConfig:
    """The watchdog job: tiny and short; it only decides and resubmits."""

    partition: str | None = field(None, help="partition of the watchdog job (default: slurm.partition); "
                                  "a shared CPU partition is best where GPU partitions allocate whole nodes")
    account: str | None = field(None, help="account of the watchdog job (default: slurm.account)")
    qos: str | None = field(None, help="QOS of the watchdog job (default: slurm.qos)")
    time: str = field("00:10:00", pattern=SLURM_TIME, pattern_help="a Slurm time (e.g. 00:10:00)",
                      help="wall time of the watchdog job")
    cpus: int = field(1, min=1, help="CPUs of the watchdog job")
    mem: str | None = field("256M", pattern=SLURM_MEM, pattern_help="a Slurm memory size (e.g. 256M)",
                            help="memory of the watchdog job (null: the partition's default)")


@dataclass(frozen=True)
class SlurmConfig:
    """Where and how the training job runs (a site profile from sidecar/presets/slurm/)."""

    preset: str = field("custom", help="the site profile this was built from")
    partition: str | None = field(None, help="sbatch --partition")
    account: str | None = field(None, help="sbatch --account (your project / budget)")
    qos: str | None = field(None, help="sbatch --qos")
    nodes: int = field(1, min=1, help="sbatch --nodes")
    ntasks_per_node: int | None = field(None, min=1, help="sbatch --ntasks-per-node")
    gpus_per_node: int | None = field(None, min=0, help="sbatch --gpus-per-node; also torchrun's --nproc-per-node")
    cpus_per_task: int | None = field(None, min=1, help="sbatch --cpus-per-task")
    mem: str | None = field(None, pattern=SLURM_MEM, pattern_help="a Slurm memory size (e.g. 64G, 0 = all)",
                            help="sbatch --mem")
    time: str | None = field(None, pattern=SLURM_TIME, pattern_help="a Slurm time (e.g. 24:00:00, 2-00:00:00)",
                             help="sbatch --time (wall time of one attempt)")
    constraint: str | None = field(None, help="sbatch --constraint")
    extra: dict[str, Any] = field(default_factory=dict, help="more sbatch options, name without "
                                  "dashes -> value (true: a bare flag; false/null: omitted)")
    env_setup: tuple[str, ...] = field(default_factory=tuple, help="shell lines run before training "
                                       "(module loads, venv activation), as written")
    client: str = field("auto", choices=CLIENT_KINDS, help="how to talk to Slurm: the Slurm "
                        "commands (cli), pyslurm, or auto (pyslurm when it matches the cluster)")
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig, help="the watchdog job's resources")
    signal_before_timeout_s: int | None = field(
        None, min=1, help="send USR1 to the batch shell this many seconds before the time limit "
        "(sbatch --signal=B:USR1@N); it is forwarded to the training processes")


@dataclass(frozen=True)
class BackendConfig:
    """What runs inside the allocation (presets in sidecar/presets/backend/)."""

    preset: str = field("custom", help="the backend preset this was built from")
    kind: str = field("command", choices=BACKEND_KINDS, help="megatron_torchrun: srun + torchrun of "
                      "Megatron-LM's pretrain_gpt.py; command: any command")
    megatron: str | None = field(None, help="a Megatron model preset (sidecar/presets/megatron/) "
                                 "whose arguments are added to args")
    megatron_path: str | None = field(None, help="the Megatron-LM checkout holding pretrain_gpt.py")
    module: str | None = field(None, help="megatron_torchrun: run this Python module (torchrun -m) "
                               "instead of <megatron_path>/pretrain_gpt.py")
    torchrun: str = field("torchrun", help="megatron_torchrun: the torchrun command (shell text; "
                          "{python} stands for the submitting Python interpreter)")
    torchrun_args: tuple[str, ...] = field(("--tee", "3"), help="megatron_torchrun: more torchrun "
                                           "options (--tee 3: every line carries its rank)")
    nproc_per_node: int | None = field(None, min=1, help="megatron_torchrun: processes per node "
                                       "(default: slurm.gpus_per_node)")
    command: tuple[str, ...] | str | None = field(
        None, help="command backend: a list of argv words (each quoted), or a string of shell "
        "text used as written; {python} stands for the submitting Python interpreter")
    args: dict[str, Any] = field(default_factory=dict, help="arguments appended as --kebab-case "
                                 "value (true: bare flag; false/null: omitted; a list: several values)")
    checkpoint_dir: str | None = field(None, help="where training saves and loads checkpoints "
                                       "(--save and --load); default: the run directory's checkpoints/")
    workdir: str | None = field(None, help="directory the training command runs in (default: the run directory)")
    env: dict[str, str] = field(default_factory=dict, help="environment variables exported for training")
    master_port: int = field(29500, min=1, help="megatron_torchrun: the rendezvous port on "
                             "the first node is this + the job id modulo 1000 (two jobs on one node "
                             "must not share it)")


NOTIFY_EVENTS = ("restart", "stop", "finish", "failure")


@dataclass(frozen=True)
class NotifyConfig:
    """Notifications through apprise (the ``notify`` extra): e-mail, Slack, Matrix, Mattermost,
    ntfy, ... Sent by the watchdog job or the training job, never from a login node."""

    urls: tuple[str, ...] = field(default_factory=tuple, help="apprise URLs, e.g. "
                                  "mailtos://user:pass@host?to=me@site, slack://T/B/C, ntfy://topic; "
                                  "none: no notifications")
    on: tuple[str, ...] = field(("restart", "stop", "finish"), choices=NOTIFY_EVENTS,
                                help="when to notify: restart, stop, finish, and failure (every "
                                "failed attempt, also those a TIMEOUT continues)")
    timeout_s: float = field(20.0, min=1, help="longest a notification may take; a slower or "
                             "failing one is logged and dropped, the restart goes on")


@dataclass(frozen=True)
class ResolvedConfig:
    """A validated run config: what a run's run.yaml holds."""

    run: RunConfig
    slurm: SlurmConfig
    backend: BackendConfig
    monitoring: Any  # sidecar.classify.MonitoringConfig (or its raw mapping without sidecar.classify)
    restart: RestartPolicy
    notify: NotifyConfig = NotifyConfig()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML-safe); ``load_frozen`` reads it back to an equal ResolvedConfig."""
        return {
            "run": to_plain(self.run),
            "slurm": to_plain(self.slurm),
            "backend": to_plain(self.backend),
            "monitoring": monitoring_to_dict(self.monitoring),
            "restart": to_plain(self.restart),
            "notify": to_plain(self.notify),
        }


def monitoring_to_dict(monitoring: Any) -> dict[str, Any]:
    """A MonitoringConfig in the preset format that ``sidecar.classify.load_monitoring`` reads."""
    if isinstance(monitoring, dict):
        return dict(to_plain(monitoring))
    from sidecar.classify.config import dump_monitoring

    return dump_monitoring(monitoring)
