"""Load and validate monitoring presets (``sidecar/presets/monitoring/<name>.yaml``).

Every pattern is compiled with RE2 here, at config load, so that a pattern RE2 cannot run
(backreferences, lookaround) is refused before any job is submitted, with the signal's key.
The override format is documented in the header of ``megatron_production.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from importlib import resources
from typing import Any, Mapping

import re2
import yaml

from sidecar.errors import ConfigError
from sidecar.classify.model import (
    FailureClass, FamilySettings, HangConfig, Layer, MonitoringConfig, ProgressFormat, ProgressKind, Role, Signal,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CLASSES = ", ".join(c.value for c in FailureClass)
_ROLES = ", ".join(r.value for r in Role)
_SIGNAL_LAYERS = (Layer.USER.value, Layer.CURATED.value)
_SIGNAL_KEYS = ("name", "pattern", "error_type", "class", "cascade", "role", "description", "tip", "layer", "disabled")
_TOP_KEYS = ("name", "signals", "ignore", "hang", "kill_grace_s", "families", "progress")
_OVERRIDE_KEYS = ("signals", "ignore", "hang", "kill_grace_s", "families", "progress")
_PROGRESS_KEYS = ("name", "pattern", "kind", "description", "disabled")
_KINDS = ", ".join(k.value for k in ProgressKind)
_FAMILY_KEYS = ("enabled", "disabled")
_HANG_KEYS = tuple(f.name for f in fields(HangConfig))
_PRESET_DIR = "presets/monitoring"


def re2_options() -> "re2.Options":
    """RE2 options used everywhere: quiet on errors, room for one big alternation."""
    opts = re2.Options()
    opts.log_errors = False  # we report bad patterns ourselves, as a ConfigError
    opts.max_mem = 64 << 20  # the combined first-pass pattern needs more than the 8 MB default
    return opts


def check_pattern(pattern: Any, where: str, signal: str | None = None) -> str:
    """Return ``pattern`` if RE2 can compile it, else raise a ConfigError naming ``where``."""
    if signal:
        where = f"{where} (signal {signal!r})"
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where}: must be a non-empty string (a RE2 regular expression), got {pattern!r}")
    try:
        compiled = re2.compile(pattern, re2_options())
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ConfigError(
            f"{where}: RE2 cannot compile {pattern!r}: {why}",
            "patterns use RE2 syntax, which runs in linear time: no backreferences (\\1), no "
            "lookahead/lookbehind ((?=, (?!, (?<=, (?<!); use (?i) for case-insensitive matching",
        ) from None
    if compiled.search("") is not None:
        raise ConfigError(
            f"{where}: {pattern!r} matches the empty string, so it would match every line",
            "make the pattern require some text, e.g. 'NCCL ERROR' rather than 'NCCL.*|x*'",
        )
    return pattern


def _number(value: Any, where: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where}: must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _check_keys(raw: Any, where: str, allowed: tuple[str, ...], needs: str) -> None:
    """``raw`` is a mapping whose keys are all ``allowed`` (``needs``: what it must hold)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with keys {needs}")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(allowed)}")


def _signal(raw: Any, where: str) -> Signal:
    _check_keys(raw, where, _SIGNAL_KEYS, "name, pattern, error_type, class")
    for key in ("name", "pattern", "error_type", "class"):
        if key not in raw:
            raise ConfigError(f"{where}.{key}: missing (a signal needs name, pattern, error_type, class)")
    name, error_type = raw["name"], raw["error_type"]
    for key, value in (("name", name), ("error_type", error_type)):
        if not isinstance(value, str) or not _NAME.match(value):
            raise ConfigError(f"{where}.{key}: must be lower_snake_case ([a-z][a-z0-9_]*), got {value!r}")
    try:
        klass = FailureClass(raw["class"])
    except ValueError:
        raise ConfigError(f"{where}.class: {raw['class']!r} is not a failure class; allowed: {_CLASSES}") from None
    cascade = raw.get("cascade", False)
    if not isinstance(cascade, bool):
        raise ConfigError(f"{where}.cascade: must be true or false, got {cascade!r}")
    for key in ("description", "tip"):
        if not isinstance(raw.get(key, ""), str):
            raise ConfigError(f"{where}.{key}: must be a string")
    try:
        role = Role(raw.get("role", Role.CASCADE.value if cascade else Role.CAUSE.value))
    except ValueError:
        raise ConfigError(f"{where}.role: {raw['role']!r} is not a role; allowed: {_ROLES}") from None
    if cascade and role is not Role.CASCADE:
        raise ConfigError(f"{where}: cascade: true contradicts role: {role.value}", "keep one of them")
    layer = raw.get("layer", Layer.CURATED.value)
    if layer not in _SIGNAL_LAYERS:
        raise ConfigError(f"{where}.layer: must be one of {', '.join(_SIGNAL_LAYERS)}, got {layer!r}")
    pattern = check_pattern(raw["pattern"], f"{where}.pattern", name)
    return Signal(name, pattern, error_type, klass, role is Role.CASCADE, raw.get("description", "").strip(),
                  role=role, layer=Layer(layer), tip=raw.get("tip", "").strip())


def _families(raw: Any, where: str) -> FamilySettings:
    """``families: {enabled: true, disabled: [rule, ...]}`` (see ``families`` for the rules)."""
    from sidecar.classify.families import EXCEPTION_RULE, RULES

    if raw is None:
        return FamilySettings()
    if isinstance(raw, bool):
        return FamilySettings(enabled=raw)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be true/false or a mapping with keys {', '.join(_FAMILY_KEYS)}")
    unknown = sorted(set(raw) - set(_FAMILY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(_FAMILY_KEYS)}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.enabled: must be true or false, got {enabled!r}")
    disabled = raw.get("disabled") or []
    known = [r.name for r in RULES] + [EXCEPTION_RULE]
    if not isinstance(disabled, list) or any(d not in known for d in disabled):
        bad = disabled if not isinstance(disabled, list) else [d for d in disabled if d not in known]
        raise ConfigError(f"{where}.disabled: unknown family rule(s) {bad!r}",
                          "`autoexp-sidecar classify --explain LOG` names the rule that decided; allowed: "
                          + ", ".join(known))
    return FamilySettings(enabled=enabled, disabled=tuple(disabled))


def _progress_format(raw: Any, where: str) -> ProgressFormat:
    from sidecar.classify.progress import GROUPS

    _check_keys(raw, where, _PROGRESS_KEYS, "name, pattern (and kind, description)")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}.name: must be lower_snake_case ([a-z][a-z0-9_]*), got {name!r}")
    if "pattern" not in raw:
        raise ConfigError(f"{where}.pattern: missing (a progress format needs a name and a pattern)")
    pattern = check_pattern(raw["pattern"], f"{where}.pattern")
    try:
        kind = ProgressKind(raw.get("kind", ProgressKind.STEP.value))
    except ValueError:
        raise ConfigError(f"{where}.kind: {raw['kind']!r} is not a progress kind; allowed: {_KINDS}") from None
    groups = set(re2.compile(pattern, re2_options()).groupindex)
    if groups - set(GROUPS) or ({"epoch", "total"} & groups and "iteration" not in groups):
        raise ConfigError(
            f"{where}.pattern: named groups {', '.join(sorted(groups))}: only {', '.join(GROUPS)} are read, "
            "and epoch/total only with iteration",
            "name the step's number (?P<iteration>\\d+); use (?:...) for other groups")
    if not isinstance(raw.get("description", ""), str):
        raise ConfigError(f"{where}.description: must be a string")
    return ProgressFormat(name, pattern, kind, raw.get("description", "").strip())


def _progress(raw: Any, where: str) -> tuple[ProgressFormat, ...]:
    """``progress: [{name, pattern, kind}, ...]`` (absent: the built-in formats)."""
    if raw is None:
        from sidecar.classify.progress import BUILTIN_FORMATS

        return BUILTIN_FORMATS
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of progress formats (name, pattern, kind)")
    return tuple(_named_list(raw, where, _progress_format, "progress format"))


def _named_list(raw: list, where: str, parse: Any, what: str) -> list:
    """``parse`` of each entry not ``disabled: true``; a name twice is an error."""
    out, seen = [], set()
    for i, item in enumerate(raw):
        if isinstance(item, Mapping) and item.get("disabled") is True:
            continue
        entry = parse(item, f"{where}[{i}]")
        if entry.name in seen:
            raise ConfigError(f"{where}[{i}].name: duplicate {what} name {entry.name!r}")
        seen.add(entry.name)
        out.append(entry)
    return out


def progress_to_list(formats: tuple[ProgressFormat, ...] | None) -> list[dict[str, Any]]:
    """Formats in the preset format (None: the built-in ones)."""
    from sidecar.classify.progress import BUILTIN_FORMATS

    out = []
    for f in BUILTIN_FORMATS if formats is None else formats:
        item: dict[str, Any] = {"name": f.name, "pattern": f.pattern, "kind": f.kind.value}
        if f.description:
            item["description"] = f.description
        out.append(item)
    return out


def _merge_by_name(base: list[dict], raw: Any, where: str, what: str,
                   check_new: Any) -> tuple[list[dict], list[dict]]:
    """Overrides of a named list (signals, progress formats): a mapping by name or a list; an
    entry with a shipped name updates its fields, a new one is checked by ``check_new``.
    (shipped entries in their order, new entries)."""
    order = [dict(s) for s in base]
    by_name = {s.get("name"): s for s in order}
    if isinstance(raw, Mapping):  # {name: {field: value, ...} | {disabled: true}}
        items = [(f"{where}.{k}", {"name": k, **(v or {})}) for k, v in raw.items()]
    elif isinstance(raw, list):  # [{name, pattern, ...}, ...]: replace by name or append
        items = [(f"{where}[{i}]", v) for i, v in enumerate(raw)]
    elif raw is None:
        items = []
    else:
        raise ConfigError(f"{where}: overrides must be a mapping by {what} name or a list of {what}s")
    new: list[dict] = []
    for key, item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{key}: must be a mapping with a name")
        if "pattern" in item:  # report a bad pattern under the user's own key
            check_pattern(item["pattern"], f"{key}.pattern")
        if item["name"] in by_name:
            by_name[item["name"]].update(item)  # partial update of a shipped entry
        else:
            entry = check_new(dict(item), key)
            new.append(entry)
            by_name[entry["name"]] = entry
    return order, new


def _new_signal(item: dict, key: str) -> dict:
    item["layer"] = Layer.USER.value
    if not item.get("disabled"):
        _signal(item, key)  # a new signal must be complete; say which key is missing
    return item


def _new_progress_format(item: dict, key: str) -> dict:
    if not item.get("disabled"):
        _progress_format(item, key)
    return item


def _hang(raw: Any, where: str) -> HangConfig:
    if raw is None:
        return HangConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with keys {', '.join(_HANG_KEYS)}")
    unknown = sorted(set(raw) - set(_HANG_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(_HANG_KEYS)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "enabled":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.enabled: must be true or false, got {value!r}")
            values[key] = value
        else:
            values[key] = _number(value, f"{where}.{key}", 1.0 if key == "pace_factor" else 0.0)
    hang = HangConfig(**values)
    if hang.floor_s > hang.ceiling_s:
        raise ConfigError(f"{where}: floor_s ({hang.floor_s:g}) must not exceed ceiling_s ({hang.ceiling_s:g})")
    return hang


def load_monitoring(data: Mapping, where: str = "monitoring") -> MonitoringConfig:
    """Validate a monitoring mapping (the preset format, signals as a list) into typed values."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping with keys {', '.join(_TOP_KEYS)}")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(_TOP_KEYS)}")
    raw_signals = data.get("signals")
    if not isinstance(raw_signals, list) or not raw_signals:
        raise ConfigError(f"{where}.signals: must be a non-empty list of signals")
    signals: list[Signal] = _named_list(raw_signals, f"{where}.signals", _signal, "signal")
    raw_ignore = data.get("ignore") or []
    if not isinstance(raw_ignore, list):
        raise ConfigError(f"{where}.ignore: must be a list of RE2 patterns")
    ignore = tuple(check_pattern(p, f"{where}.ignore[{i}]") for i, p in enumerate(raw_ignore))
    name = data.get("name", where)
    if not isinstance(name, str):
        raise ConfigError(f"{where}.name: must be a string")
    return MonitoringConfig(
        name=name,
        signals=tuple(signals),
        ignore=ignore,
        hang=_hang(data.get("hang"), f"{where}.hang"),
        kill_grace_s=_number(data.get("kill_grace_s", 2.0), f"{where}.kill_grace_s"),
        families=_families(data.get("families"), f"{where}.families"),
        progress=_progress(data.get("progress"), f"{where}.progress"),
    )


def dump_monitoring(cfg: MonitoringConfig) -> dict[str, Any]:
    """``cfg`` in the preset format that ``load_monitoring`` reads back (the frozen run.yaml)."""
    signals = []
    for s in cfg.signals:
        sig: dict[str, Any] = {"name": s.name, "pattern": s.pattern, "error_type": s.error_type,
                               "class": s.failure_class.value, "role": s.role.value}
        if s.layer is not Layer.CURATED:
            sig["layer"] = s.layer.value
        for key in ("description", "tip"):
            if getattr(s, key):
                sig[key] = getattr(s, key)
        signals.append(sig)
    return {"name": cfg.name, "signals": signals, "ignore": list(cfg.ignore),
            "hang": {f.name: getattr(cfg.hang, f.name) for f in fields(HangConfig)},
            "kill_grace_s": cfg.kill_grace_s,
            "families": {"enabled": cfg.families.enabled, "disabled": list(cfg.families.disabled)},
            "progress": progress_to_list(cfg.progress)}


def preset_names() -> list[str]:
    base = resources.files("sidecar").joinpath(_PRESET_DIR)
    return sorted(p.name[:-5] for p in base.iterdir() if p.name.endswith(".yaml"))


def read_preset(name: str) -> dict:
    """The raw mapping of a shipped preset."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"monitoring: {name!r} is not a preset name; allowed: {', '.join(preset_names())}")
    path = resources.files("sidecar").joinpath(_PRESET_DIR, f"{name}.yaml")
    if not path.is_file():
        raise ConfigError(f"monitoring: unknown preset {name!r}; allowed: {', '.join(preset_names())}")
    # the C loader when built (3x faster to start); same safe subset as yaml.safe_load
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (a safe loader)
    data.setdefault("name", name)
    return data


def apply_overrides(base: Mapping, overrides: Mapping, where: str = "monitoring") -> dict:
    """Merge user overrides into a raw preset mapping (format: see the preset header)."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}: overrides must be a mapping")
    merged = dict(base)
    order, users = _merge_by_name(base.get("signals", []), overrides.get("signals"), f"{where}.signals",
                                  "signal", _new_signal)
    # The user's own signals come first: they decide before the preset's and the family layer.
    merged["signals"] = [s for s in users + order if s.get("disabled") is not True]
    if "ignore" in overrides:
        extra = overrides["ignore"]
        if not isinstance(extra, list):
            raise ConfigError(f"{where}.ignore: must be a list of RE2 patterns (added to the preset's)")
        merged["ignore"] = list(base.get("ignore") or []) + list(extra)
    if "hang" in overrides:
        if not isinstance(overrides["hang"], Mapping):
            raise ConfigError(f"{where}.hang: must be a mapping")
        merged["hang"] = {**(base.get("hang") or {}), **overrides["hang"]}
    if "kill_grace_s" in overrides:
        merged["kill_grace_s"] = overrides["kill_grace_s"]
    if "families" in overrides:
        fam = overrides["families"]
        base_fam = base.get("families")
        if isinstance(fam, Mapping) and isinstance(base_fam, Mapping):
            fam = {**base_fam, **fam}
        merged["families"] = fam
    if "progress" in overrides:
        # the user's own formats come first: a line both match is read by theirs
        shipped, own = _merge_by_name(progress_to_list(None) if base.get("progress") is None else base["progress"],
                                      overrides["progress"], f"{where}.progress", "progress format",
                                      _new_progress_format)
        merged["progress"] = [f for f in own + shipped if f.get("disabled") is not True]
    unknown = sorted(set(overrides) - set(_OVERRIDE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown override key(s) {', '.join(map(str, unknown))}; "
                          f"allowed: {', '.join(_OVERRIDE_KEYS)}")
    return merged


def load_monitoring_preset(name: str, overrides: Mapping | None = None) -> MonitoringConfig:
    """A shipped preset, with the user's overrides (add/override/disable signals by name)."""
    data = read_preset(name)
    if overrides:
        data = apply_overrides(data, overrides)
    cfg = load_monitoring(data, "monitoring")
    return replace(cfg, name=name)
