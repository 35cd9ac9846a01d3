"""Config: every refusal names the key, the problem and what is allowed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from sidecar.config import load_config, load_frozen
from sidecar.errors import ConfigError

NOW = datetime(2026, 3, 4, 5, 6, 7)
ENV = {"AUTOEXP_RUN_ROOT": "/scratch/runs"}


def refused(overrides, path=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, list(overrides), NOW, env=ENV)
    return info.value


def test_unknown_key_names_it_suggests_and_lists_allowed():
    err = refused(["slurm.partitoin=booster"])
    assert "'slurm.partitoin'" in err.message
    assert "did you mean 'partition'" in err.message
    assert "account" in err.message and "watchdog" in err.message  # the allowed keys


def test_unknown_top_level_key_suggests_the_group():
    err = refused(["slrum.partition=booster"])
    assert "'slrum.partition'" in err.message and "did you mean 'slurm'" in err.message


def test_unknown_nested_key_in_a_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("slurm:\n  preset: local\n  watchdog:\n    tmie: '00:05:00'\n", encoding="utf-8")
    err = refused([], p)
    assert "'slurm.watchdog.tmie'" in err.message and "did you mean 'time'" in err.message


def test_unknown_restart_key():
    err = refused(["restart.max_retry=4"])
    assert "'restart.max_retry'" in err.message and "did you mean 'max_retries'" in err.message


@pytest.mark.parametrize("override,group,names", [
    ("slurm=juwel", "slurm", ["juwels", "local", "lumi"]),
    ("restart=transient", "restart", ["megatron_transient", "aggressive"]),
    ("backend=megatron", "backend", ["megatron_torchrun", "command"]),
    ("backend.megatron=llama", "backend.megatron", ["llama1_8b_qkln", "tiny"]),
])
def test_bad_preset_names_the_group_and_lists_presets(override, group, names):
    err = refused([override])
    assert err.message.startswith(f"{group}: unknown preset")
    for n in names:
        assert n in err.message


def test_bad_monitoring_preset_is_refused():
    err = refused(["monitoring=megatron_prod"])
    assert "monitoring" in err.message and "megatron_production" in err.message


@pytest.mark.parametrize("override,key,words", [
    ("restart.max_retries=abc", "restart.max_retries", ["integer"]),
    ("restart.max_retries=-1", "restart.max_retries", [">= 0"]),
    ("restart.restart_on_cancel=maybe", "restart.restart_on_cancel", ["true or false"]),
    ("backend.kind=cmd", "backend.kind", ["megatron_torchrun", "command", "did you mean 'command'"]),
    ("slurm.client=slurmrestd", "slurm.client", ["auto", "cli", "pyslurm"]),
    ("slurm.time=tomorrow", "slurm.time", ["Slurm time"]),
    ("slurm.mem=lots", "slurm.mem", ["memory size"]),
    ("slurm.nodes=0", "slurm.nodes", [">= 1"]),
    ("slurm.extra=5", "slurm.extra", ["mapping"]),
    ("run.name=a/b", "run.name", ["run name"]),
    ("restart.exclude_error_types=[OOM!]", "restart.exclude_error_types", ["error type"]),
])
def test_wrong_type_or_range_names_key_and_problem(override, key, words):
    err = refused([override])
    assert err.message.startswith(key), err.message
    for w in words:
        assert w in err.message, err.message


def test_placeholder_account_is_refused_with_a_tip():
    err = refused(["slurm=juwels"])
    assert "slurm.account" in err.message and "REPLACE_ME_ACCOUNT" in err.message
    assert "slurm.account=" in err.tip


def test_placeholder_qos_is_refused():
    err = refused(["slurm=marenostrum", "slurm.account=bsc00"])
    assert "slurm.qos" in err.message and "slurm.qos=" in err.tip


def test_megatron_path_placeholder_is_refused():
    err = refused(["slurm=juwels", "slurm.account=p", "backend=megatron_torchrun"])
    assert "backend.megatron_path" in err.message


def test_megatron_torchrun_needs_gpus_per_node():
    err = refused(["backend=megatron_torchrun", "backend.megatron_path=/opt/M"])
    assert "slurm.gpus_per_node" in err.message


@pytest.mark.parametrize("bad", ["foo", "=5", "slurm..partition=x", "slurm partition=x"])
def test_malformed_override(bad):
    err = refused([bad])
    assert repr(bad) in err.message
    assert "=" in err.tip


def test_reserved_sbatch_option_in_extra():
    err = refused(["slurm.extra.dependency=afterok:1"])
    assert "slurm.extra.dependency" in err.message


def test_group_given_a_list_is_refused():
    err = refused(["slurm=[a, b]"])
    assert "slurm" in err.message


def test_value_and_subkeys_conflict(tmp_path):
    err = refused(["restart.max_retries=3", "restart.max_retries.x=1"])
    assert "restart.max_retries" in err.message


def test_missing_and_broken_files(tmp_path):
    assert "cannot read" in refused([], tmp_path / "nope.yaml").message
    p = tmp_path / "bad.yaml"
    p.write_text("slurm: [unclosed\n", encoding="utf-8")
    assert "not valid YAML" in refused([], p).message
    p.write_text("- a list\n", encoding="utf-8")
    assert "mapping" in refused([], p).message


def test_load_frozen_refuses_a_non_frozen_file(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("slurm: local\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_frozen(p)
    with pytest.raises(ConfigError):
        load_frozen(Path(tmp_path / "missing.yaml"))
