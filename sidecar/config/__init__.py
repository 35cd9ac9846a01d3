"""Run configs: presets + the user's YAML + ``key=value`` overrides, validated into frozen values.

``load_config(path, overrides, now)`` resolves a config for submission; ``load_frozen(path)``
reloads a run's run.yaml. Presets ship in ``sidecar/presets/<group>/<name>.yaml``.
"""

from sidecar.config.load import DEFAULT_PRESETS, load_config, load_frozen, parse_override
from sidecar.config.presets import preset_names, read_preset
from sidecar.config.restart import RestartPolicy
from sidecar.config.schema import (
    BackendConfig,
    ResolvedConfig,
    RunConfig,
    SlurmConfig,
    WatchdogConfig,
)

__all__ = [
    "DEFAULT_PRESETS",
    "BackendConfig",
    "ResolvedConfig",
    "RestartPolicy",
    "RunConfig",
    "SlurmConfig",
    "WatchdogConfig",
    "load_config",
    "load_frozen",
    "parse_override",
    "preset_names",
    "read_preset",
]
