"""Build typed config dataclasses from plain mappings, with errors that name the key.

Each config dataclass field carries its help text and constraints in ``metadata``
(``help``, ``choices``, ``min``, ``pattern`` + ``pattern_help``). ``build(cls, data, where)``
checks every key against the fields (unknown key -> ConfigError with a did-you-mean),
coerces values by the field's annotation and applies the constraints.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import types
import typing
from typing import Any, Mapping, TypeVar

_T = TypeVar("_T")

import yaml

from sidecar.errors import ConfigError


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml.SafeLoader (same safety: plain data only) without YAML 1.1's base-60 integers,
    which would silently turn ``time: 1:00:00`` into the integer 3600. libyaml's parser when
    PyYAML has it: a run.yaml parses in ~5 ms instead of ~65 ms (``list`` reads hundreds)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:int"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text into plain data (mappings, lists, scalars); never constructs objects."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def field(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
          **constraints: Any) -> Any:
    """A dataclass field with its help text and constraints (choices, min, pattern)."""
    meta = {"help": help, **constraints}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: str, allowed: typing.Iterable[str], word: str | None = None) -> ConfigError:
    """``word`` is the part of ``key`` that is unknown (default: its last part)."""
    allowed = sorted(allowed)
    word = key.rsplit(".", 1)[-1] if word is None else word
    return ConfigError(
        f"unknown config key {key!r}{did_you_mean(word, allowed)}; allowed keys here: {', '.join(allowed)}",
        "check the spelling; `autoexp-sidecar submit CONFIG --dry-run` shows the resolved config",
    )


def _is_optional(tp: Any) -> tuple[bool, Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != len(typing.get_args(tp)):
            return True, args[0] if len(args) == 1 else typing.Union[tuple(args)]
    return False, tp


def _scalar_text(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def coerce(value: Any, tp: Any, key: str, meta: Mapping[str, Any]) -> Any:
    """``value`` as type ``tp`` (an annotation), or a ConfigError naming ``key``."""
    optional, tp = _is_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: a value is required here (got null)", _help_tip(key, meta))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: must be a mapping, got {value!r}", _help_tip(key, meta))
        return build(tp, value, key)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # e.g. a list of words or a string
        options = typing.get_args(tp)
        pick = str if isinstance(value, str) and str in options else next(
            (o for o in options if typing.get_origin(o) is tuple), options[0])
        return coerce(value, pick, key, meta)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}", _help_tip(key, meta))
        out: Any = value
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}", _help_tip(key, meta))
        out = value
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, got {value!r}", _help_tip(key, meta))
        out = float(value)
    elif tp is str:
        # numbers are accepted where text is expected (``time: 30``, ``partition: 2``)
        if not _scalar_text(value):
            raise ConfigError(f"{key}: must be a string, got {value!r}", _help_tip(key, meta))
        out = str(value)
    elif origin is tuple:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single item where a list is expected
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: must be a list, got {value!r}", _help_tip(key, meta))
        item_tp = typing.get_args(tp)[0]
        out = tuple(coerce(v, item_tp, f"{key}[{i}]", {}) for i, v in enumerate(value))
    elif origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: must be a mapping, got {value!r}", _help_tip(key, meta))
        args = typing.get_args(tp)
        val_tp = args[1] if args else Any
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{key}: keys must be strings, got {k!r}")
            out[k] = v if val_tp is Any else coerce(v, val_tp, f"{key}.{k}", {})
    elif tp is Any:
        out = value
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported config type {tp!r} for {key}")
    _check(out, key, meta)
    return out


def _help_tip(key: str, meta: Mapping[str, Any]) -> str:
    parts = []
    if meta.get("help"):
        parts.append(f"{key}: {meta['help']}")
    if meta.get("choices"):
        parts.append("allowed: " + ", ".join(map(str, meta["choices"])))
    return "; ".join(parts)


def _check(value: Any, key: str, meta: Mapping[str, Any]) -> None:
    choices = meta.get("choices")
    items = value if isinstance(value, tuple) else (value,)
    if choices is not None:
        for v in items:
            if v not in choices:
                raise ConfigError(
                    f"{key}: {v!r} is not allowed{did_you_mean(str(v), map(str, choices))}; "
                    f"allowed values: {', '.join(map(str, choices))}",
                    _help_tip(key, {"help": meta.get("help")}),
                )
    minimum = meta.get("min")
    if minimum is not None and isinstance(value, (int, float)) and value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value!r}", _help_tip(key, meta))
    pattern = meta.get("pattern")
    if pattern is not None:
        for v in items:
            if isinstance(v, str) and not re.fullmatch(pattern, v):
                raise ConfigError(
                    f"{key}: {v!r} is not {meta.get('pattern_help', 'valid')}", _help_tip(key, meta))


def build(cls: type[_T], data: Mapping[str, Any], where: str) -> _T:
    """An instance of dataclass ``cls`` from ``data``; keys are reported as ``where.key``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls)) if f.init}
    values: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{where}.{name}"
        if name not in fields:
            raise unknown_key(key, fields)
        values[name] = coerce(value, hints[name], key, fields[name].metadata)
    for name, f in fields.items():
        if (name not in values and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING):
            raise ConfigError(f"{where}.{name}: missing", _help_tip(f"{where}.{name}", f.metadata))
    return cls(**values)


def to_plain(value: Any) -> Any:
    """Dataclasses, tuples and mappings as plain YAML-safe data (dicts, lists, scalars)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value
