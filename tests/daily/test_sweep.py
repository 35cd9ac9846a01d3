"""Sweeps: combinations, run names that say the values, and errors (pure)."""

from __future__ import annotations

import pytest

from sidecar.errors import ConfigError
from sidecar.sweep import combinations, parse_sweep, run_name


def test_every_combination_in_order():
    combos = combinations(["backend.args.micro_batch_size=4,8", "backend.args.lr=1e-3,3e-4"])
    assert [[v for _, v in c] for c in combos] == [["4", "1e-3"], ["4", "3e-4"], ["8", "1e-3"], ["8", "3e-4"]]
    assert run_name("base", combos[1]) == "base-micro_batch_size4-lr3e-4"


def test_names_keep_to_run_name_characters():
    assert run_name("b", [("backend.env.TAG", "a b/c")]) == "b-TAGa_b_c"


@pytest.mark.parametrize("bad, match", [
    ("backend.args.lr", "not of the form"),
    ("backend.args.lr=1,,2", "not of the form"),
    ("run.name=a,b", "named after its values"),
    ("backend.args.lr=1,1", "repeated"),
    ("no such key=1", "not a config key"),
])
def test_bad_sweeps_are_refused(bad, match):
    with pytest.raises(ConfigError, match=match):
        parse_sweep(bad)


def test_same_key_twice_is_refused():
    with pytest.raises(ConfigError, match="swept twice"):
        combinations(["backend.args.lr=1,2", "backend.args.lr=3"])
