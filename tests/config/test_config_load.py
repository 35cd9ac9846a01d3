"""Config: presets load, overrides compose, to_dict -> load_frozen round-trips."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from sidecar.config import (
    DEFAULT_PRESETS, RestartPolicy, load_config, load_frozen, parse_override, preset_names,
)
from sidecar.config.validate import load_yaml

NOW = datetime(2026, 3, 4, 5, 6, 7)
ENV = {"AUTOEXP_RUN_ROOT": "/scratch/runs"}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def cfg_of(overrides=(), path=None, env=ENV):
    return load_config(path, list(overrides), NOW, env=env)


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_are_the_local_test_setup():
    cfg = cfg_of()
    assert cfg.slurm.preset == DEFAULT_PRESETS["slurm"] == "local"
    assert cfg.slurm.partition == "debug" and cfg.slurm.account is None
    assert cfg.backend.kind == "command" and cfg.backend.preset == "command"
    assert cfg.backend.command == ("{python}", "-m", "sidecar.workload.megatron_sim")
    assert cfg.backend.args["micro_batch_size"] == 8
    assert cfg.backend.args["train_iters"] == 100
    assert cfg.backend.args["save_interval"] == 10
    assert cfg.restart.preset == "megatron_transient"
    assert cfg.run.name == "run-20260304-050607"
    assert cfg.run.root == "/scratch/runs"
    assert cfg.run.dir == Path("/scratch/runs/run-20260304-050607")


def test_run_name_from_the_config_file_stem_and_root_from_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    p = write(tmp_path, "slurm: local\n", "my exp.yaml")
    cfg = load_config(p, [], NOW, env={})
    assert cfg.run.name == "my-exp-20260304-050607"
    assert cfg.run.root == str(tmp_path / "autoexp-runs")


@pytest.mark.parametrize("name", preset_names("slurm"))
def test_every_site_profile_loads_once_placeholders_are_set(name):
    cfg = cfg_of([f"slurm={name}", "slurm.account=proj", "slurm.qos=normal"])
    assert cfg.slurm.preset == name
    assert cfg.slurm.watchdog.account == ("proj" if name != "local" else "proj")
    assert cfg.slurm.watchdog.time


def test_site_profiles_shipped():
    assert set(preset_names("slurm")) >= {"local", "juwels", "jupiter", "leonardo", "lumi", "marenostrum"}
    assert set(preset_names("restart")) >= {"megatron_transient", "conservative", "aggressive"}
    assert set(preset_names("backend")) >= {"megatron_torchrun", "command"}
    assert set(preset_names("megatron")) >= {"llama1_8b_qkln", "tiny"}


def test_restart_presets():
    t = cfg_of(["restart=megatron_transient"]).restart
    assert isinstance(t, RestartPolicy)
    assert t.max_retries == 3
    assert set(t.exclude_error_types) >= {"oom", "host_oom", "code_error", "config_error", "nan_loss"}
    assert (t.backoff_s, t.timeouts_use_budget, t.exclude_failed_nodes) == (0, False, True)
    assert t.restart_on_cancel and t.restart_on_unknown and t.stop_on_repeat_without_progress
    c = cfg_of(["restart=conservative"]).restart
    assert c.max_retries == 1 and set(c.exclude_error_types) > set(t.exclude_error_types)
    a = cfg_of(["restart=aggressive"]).restart
    assert a.max_retries == 10 and set(a.exclude_error_types) == {"oom", "code_error", "config_error"}


def test_the_users_form(tmp_path):
    p = write(tmp_path, (
        "backend: megatron_torchrun\n"
        "backend.megatron: llama1_8b_qkln\n"
        "slurm: juwels\n"
        "monitoring: megatron_production\n"
        "restart: megatron_transient\n"
        "slurm.partition: booster\n"
        "restart.max_retries: 5\n"
        "backend.args.micro_batch_size: 16\n"
        "backend.args.train_iters: 200\n"
    ))
    cfg = load_config(p, ["slurm.account=proj", "backend.megatron_path=/opt/Megatron-LM"], NOW, env=ENV)
    assert cfg.backend.kind == "megatron_torchrun" and cfg.backend.megatron == "llama1_8b_qkln"
    args = cfg.backend.args
    assert (args["num_layers"], args["hidden_size"], args["qk_layernorm"]) == (32, 4096, True)
    assert (args["micro_batch_size"], args["train_iters"]) == (16, 200)
    assert cfg.slurm.preset == "juwels" and cfg.slurm.gpus_per_node == 4
    assert cfg.restart.max_retries == 5
    assert cfg.monitoring.name == "megatron_production"
    assert cfg.run.name == "exp-20260304-050607"


def test_nested_form_equals_dotted_form(tmp_path):
    dotted = write(tmp_path, "slurm: juwels\nslurm.account: proj\nrestart.max_retries: 5\n"
                             "backend.args.train_iters: 7\nrun.name: r1\n", "a.yaml")
    nested = write(tmp_path, "slurm: {preset: juwels, account: proj}\nrestart:\n  max_retries: 5\n"
                             "backend:\n  args: {train_iters: 7}\nrun: {name: r1}\n", "b.yaml")
    assert load_config(dotted, [], NOW, env=ENV) == load_config(nested, [], NOW, env=ENV)


def test_command_line_overrides_win_and_parse_as_yaml(tmp_path):
    p = write(tmp_path, "restart.max_retries: 5\nslurm.time: '00:20:00'\n")
    cfg = load_config(p, ["restart.max_retries=7", "restart.restart_on_cancel=false",
                          "restart.exclude_error_types=[oom, nccl]", "slurm.time=1:00:00",
                          "backend.args.lr=3.0e-4", "slurm.extra.exclusive=true"], NOW, env=ENV)
    assert cfg.restart.max_retries == 7
    assert cfg.restart.restart_on_cancel is False
    assert cfg.restart.exclude_error_types == ("oom", "nccl")
    assert cfg.slurm.time == "1:00:00"  # not YAML 1.1's base-60 integer 3600
    assert cfg.backend.args["lr"] == 3.0e-4
    assert cfg.slurm.extra == {"exclusive": True}


def test_parse_override():
    assert parse_override("slurm.partition=booster") == ("slurm.partition", "booster")
    assert parse_override("restart.max_retries=5") == ("restart.max_retries", 5)
    assert parse_override("slurm.qos=") == ("slurm.qos", None)
    assert parse_override("run.name=a=b") == ("run.name", "a=b")


def test_user_args_override_model_args_and_null_removes_one():
    cfg = cfg_of(["backend.megatron=tiny", "backend.args.num_layers=4", "backend.args.swiglu=null"])
    assert cfg.backend.args["num_layers"] == 4
    assert cfg.backend.args["hidden_size"] == 128
    assert cfg.backend.args["swiglu"] is None  # rendered as omitted


def test_watchdog_inherits_partition_account_qos_unless_set():
    cfg = cfg_of(["slurm=juwels", "slurm.account=proj"])
    assert (cfg.slurm.watchdog.partition, cfg.slurm.watchdog.account) == ("booster", "proj")
    cfg = cfg_of(["slurm=juwels", "slurm.account=proj", "slurm.watchdog.partition=batch",
                  "slurm.watchdog.account=cpuproj"])
    assert (cfg.slurm.watchdog.partition, cfg.slurm.watchdog.account) == ("batch", "cpuproj")


def test_monitoring_overrides_reach_the_monitoring_preset():
    cfg = cfg_of(["monitoring.kill_grace_s=7", "monitoring.hang.pace_factor=20"])
    assert cfg.monitoring.kill_grace_s == 7.0
    assert cfg.monitoring.hang.pace_factor == 20.0


def _roundtrip(cfg, tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    return load_frozen(p)


@pytest.mark.parametrize("overrides", [
    [],
    ["slurm=juwels", "slurm.account=proj", "backend=megatron_torchrun", "backend.megatron=llama1_8b_qkln",
     "backend.megatron_path=/opt/M", "slurm.time=1:00:00", "slurm.extra.exclusive=true",
     "restart=aggressive", "monitoring.kill_grace_s=5"],
    ["backend.command=python train.py --x 1", "backend.env.FOO=bar baz", "run.name=x.y"],
])
def test_to_dict_load_frozen_round_trip(overrides, tmp_path):
    cfg = cfg_of(overrides)
    again = _roundtrip(cfg, tmp_path)
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()


def test_to_dict_is_plain_data():
    data = cfg_of().to_dict()
    assert set(data) == {"run", "slurm", "backend", "monitoring", "restart", "notify"}
    text = yaml.safe_dump(data)  # safe_dump refuses anything but plain data
    assert load_yaml(text) == data


def test_examples_load():
    local = load_config(EXAMPLES / "local.yaml", [], NOW, env=ENV)
    assert (local.slurm.preset, local.backend.kind, local.restart.preset) == ("local", "command", "megatron_transient")
    juwels = load_config(EXAMPLES / "juwels_llama.yaml",
                         ["slurm.account=proj", "backend.megatron_path=/opt/M"], NOW, env=ENV)
    assert juwels.backend.megatron == "llama1_8b_qkln" and juwels.slurm.preset == "juwels"


def test_monitoring_overrides_spelling_of_the_monitoring_preset_header(tmp_path):
    p = write(tmp_path, "monitoring: megatron_production\nmonitoring_overrides:\n  kill_grace_s: 9\n")
    assert load_config(p, [], NOW, env=ENV).monitoring.kill_grace_s == 9.0


def test_site_profiles_leave_the_pre_timeout_signal_off():
    # Python dies of an unhandled USR1: forwarding it would end training early, as FAILED
    for name in preset_names("slurm"):
        cfg = cfg_of([f"slurm={name}", "slurm.account=p", "slurm.qos=q"])
        assert cfg.slurm.signal_before_timeout_s is None


def test_progress_format_from_the_command_line_and_the_config_file(tmp_path):
    """A user's own progress format: dotted on the command line or in monitoring_overrides;
    it comes first and the frozen run.yaml keeps it."""
    p = write(tmp_path, "monitoring: generic\nmonitoring_overrides:\n  progress:\n    tqdm: {disabled: true}\n")
    cfg = load_config(p, [r"monitoring.progress.my_fmt.pattern=global batch (?P<iteration>\d+) done"], NOW, env=ENV)
    names = [f.name for f in cfg.monitoring.progress]
    assert names[0] == "my_fmt" and "tqdm" not in names and "torchtitan" in names
    again = _roundtrip(cfg, tmp_path)
    assert again.monitoring.progress == cfg.monitoring.progress
