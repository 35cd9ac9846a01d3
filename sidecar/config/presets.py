"""The presets shipped with the package: ``sidecar/presets/<group>/<name>.yaml``.

Groups: slurm (site profiles), backend, megatron (model arguments), restart, monitoring
(the monitoring group is read and validated by sidecar.classify).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Traversable

from sidecar.config.validate import did_you_mean, load_yaml
from sidecar.errors import ConfigError

_NAME = re.compile(r"[a-z][a-z0-9_]*")

# what the user writes to choose a preset of each group
_KEY = {"megatron": "backend.megatron"}


def _dir(group: str) -> Traversable:
    # one joinpath argument each: Traversable.joinpath takes several only from Python 3.11
    return resources.files("sidecar").joinpath("presets").joinpath(group)


def preset_names(group: str) -> list[str]:
    """The preset names of ``group``, sorted."""
    base = _dir(group)
    if not base.is_dir():
        return []
    return sorted(p.name[:-5] for p in base.iterdir() if p.name.endswith(".yaml"))


def read_preset(group: str, name: Any) -> dict[str, Any]:
    """The raw mapping of preset ``name`` of ``group``; a ConfigError lists the presets."""
    names = preset_names(group)
    key = _KEY.get(group, group)
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name not in names:
        hint = did_you_mean(name, names) if isinstance(name, str) else ""
        raise ConfigError(
            f"{key}: unknown preset {name!r}{hint}; available {group} presets: {', '.join(names)}",
            f"set {key}=<one of: {', '.join(names)}>",
        )
    text = _dir(group).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = load_yaml(text)
    if data is None:
        return {}
    if not isinstance(data, dict):  # a packaging bug, said plainly
        raise ConfigError(f"preset {group}/{name}.yaml is not a mapping")
    return data
