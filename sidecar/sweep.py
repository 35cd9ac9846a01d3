"""Sweeps: ``--sweep KEY=V1,V2`` (repeatable) -> one run per combination. Pure.

Each combination becomes ``KEY=V`` overrides plus a run name that says the values
(``<base>-<last key word><value>-...``, e.g. ``local-20261201-040000-micro_batch_size8-lr0.001``).
"""

from __future__ import annotations

import itertools
import re
from typing import Sequence

from sidecar.config import parse_override
from sidecar.errors import ConfigError


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """``"backend.args.lr=1e-3,3e-4"`` -> ``("backend.args.lr", ["1e-3", "3e-4"])``."""
    key, sep, raw = text.partition("=")
    values = [v.strip() for v in raw.split(",")]
    if not sep or not key.strip() or not raw.strip() or any(v == "" for v in values):
        raise ConfigError(f"--sweep {text!r} is not of the form KEY=V1,V2,...",
                          "e.g. --sweep backend.args.micro_batch_size=4,8")
    key = key.strip()
    if key in ("run.name", "run.root"):
        raise ConfigError(f"--sweep {key}: each run of a sweep is named after its values",
                          "sweep training settings; set run.name for the common prefix")
    for v in values:
        parse_override(f"{key}={v}")  # the same key and value checks as any override
    if len(set(values)) != len(values):
        raise ConfigError(f"--sweep {text!r}: a value is repeated", "list each value once")
    return key, values


def combinations(sweeps: Sequence[str]) -> list[list[tuple[str, str]]]:
    """Every combination of the sweeps' values, in order (the last sweep varies fastest)."""
    parsed = [parse_sweep(s) for s in sweeps]
    keys = [k for k, _ in parsed]
    if len(set(keys)) != len(keys):
        raise ConfigError("the same key is swept twice", "give each key one --sweep with all its values")
    return [list(zip(keys, combo)) for combo in itertools.product(*(v for _, v in parsed))]


def run_name(base: str, combo: Sequence[tuple[str, str]]) -> str:
    """The run name of one combination: the base name and each key's last word with its value."""
    parts = [f"{k.rsplit('.', 1)[-1]}{v}" for k, v in combo]
    suffix = re.sub(r"[^A-Za-z0-9._+-]+", "_", "-".join(parts)).strip("_")
    return f"{base}-{suffix}" if suffix else base
