"""Presets, validation errors that name the key, and user overrides."""

from __future__ import annotations

import pytest

from sidecar.classify import FailureClass, LineClassifier, load_monitoring, load_monitoring_preset
from sidecar.classify.config import preset_names
from sidecar.errors import ConfigError


def sig(**kw):
    return {"name": "s1", "pattern": "boom", "error_type": "x", "class": "transient", **kw}


def test_presets_load_with_defaults():
    assert {"megatron_production", "generic"} <= set(preset_names())
    for name in ("megatron_production", "generic"):
        cfg = load_monitoring_preset(name)
        assert cfg.name == name and cfg.signals and cfg.ignore
        h = cfg.hang
        assert (h.pace_factor, h.floor_s, h.ceiling_s, h.startup_timeout_s, h.checkpoint_timeout_s) == (10, 5, 1800, 1800, 3600)
        assert cfg.kill_grace_s == 2
        assert all(s.description for s in cfg.signals)


def test_unknown_preset_lists_allowed():
    with pytest.raises(ConfigError, match="megatron_production"):
        load_monitoring_preset("nope")


@pytest.mark.parametrize("pattern, why", [(r"(a)\1", "backreferences"), (r"foo(?=bar)", "lookahead"), (r"(?<!x)y", "lookbehind"), ("(unclosed", "missing")])
def test_bad_regex_is_a_config_error_naming_the_key(pattern, why):
    data = {"signals": [sig(), sig(name="s2"), sig(name="s3"), sig(name="s4", pattern=pattern)]}
    with pytest.raises(ConfigError) as err:
        load_monitoring(data)
    assert err.value.message.startswith("monitoring.signals[3].pattern (signal 's4'): RE2 cannot compile")
    assert "lookahead" in err.value.tip and "backreferences" in err.value.tip


def test_bad_ignore_pattern_named():
    with pytest.raises(ConfigError, match=r"monitoring\.ignore\[1\]"):
        load_monitoring({"signals": [sig()], "ignore": ["ok", "(?=x)"]})


@pytest.mark.parametrize("data, key", [
    ({"signals": [sig(**{"class": "fatal"})]}, "monitoring.signals[0].class: 'fatal' is not a failure class; allowed: transient, permanent, terminal"),
    ({"signals": [sig(colour="red")]}, "monitoring.signals[0]: unknown key(s) colour"),
    ({"signals": [{"name": "a", "pattern": "b", "class": "transient"}]}, "monitoring.signals[0].error_type: missing"),
    ({"signals": [sig(), sig()]}, "monitoring.signals[1].name: duplicate"),
    ({"signals": [sig(name="Bad Name")]}, "monitoring.signals[0].name: must be lower_snake_case"),
    ({"signals": []}, "monitoring.signals: must be a non-empty list"),
    ({"signals": [sig()], "hang": {"pace_factor": "fast"}}, "monitoring.hang.pace_factor: must be a number"),
    ({"signals": [sig()], "hang": {"floor_s": 10, "ceiling_s": 5}}, "monitoring.hang: floor_s"),
    ({"signals": [sig()], "hang": {"speed": 1}}, "monitoring.hang: unknown key(s) speed"),
    ({"signals": [sig()], "extra": 1}, "monitoring: unknown key(s) extra"),
])
def test_validation_messages(data, key):
    with pytest.raises(ConfigError) as err:
        load_monitoring(data)
    assert key in err.value.message


def test_override_disable_change_and_add_by_name():
    cfg = load_monitoring_preset("megatron_production", {
        "signals": {
            "nccl_error": {"disabled": True},
            "cuda_oom": {"class": "transient"},
            "dataloader_killed": {"pattern": r"DataLoader worker \(pid \d+\) is killed", "error_type": "dataloader", "class": "transient"},
        },
        "ignore": ["IGNORE ME"],
        "hang": {"pace_factor": 20},
        "kill_grace_s": 10,
    })
    names = [s.name for s in cfg.signals]
    # the user's own signal comes first: it decides before the preset's
    assert "nccl_error" not in names and names[0] == "dataloader_killed"
    cls = LineClassifier(cfg)
    # a disabled signal removes a wording, not the family: the family layer still reads it
    assert cls.classify("[default0]:NCCL ERROR timeout", 1).signal == "nccl.result"
    assert cls.classify("RuntimeError: CUDA out of memory.", 1).failure_class is FailureClass.TRANSIENT
    assert cls.classify("RuntimeError: DataLoader worker (pid 123) is killed by signal: Killed.", 1).error_type == "dataloader"
    assert cls.classify("IGNORE ME: CUDA out of memory", 1) is None
    assert cfg.hang.pace_factor == 20 and cfg.hang.floor_s == 5 and cfg.kill_grace_s == 10


def test_family_rules_can_be_disabled_by_name_or_all():
    line = "[default0]:NCCL ERROR timeout"
    cfg = load_monitoring_preset("megatron_production", {"signals": {"nccl_error": {"disabled": True}},
                                                         "families": {"disabled": ["nccl.result"]}})
    assert LineClassifier(cfg).classify(line, 1) is None
    off = load_monitoring_preset("generic", {"families": False})
    assert LineClassifier(off).classify("kernel: NVRM: Xid (PCI:0000:3b:00): 154, GPU recovery action changed", 1) is None
    on = LineClassifier(load_monitoring_preset("generic"))
    assert on.classify("kernel: NVRM: Xid (PCI:0000:3b:00): 154, GPU recovery action changed", 1).signal == "gpu.xid"
    with pytest.raises(ConfigError, match=r"monitoring\.families\.disabled: unknown family rule"):
        load_monitoring_preset("generic", {"families": {"disabled": ["no.such_rule"]}})


def test_override_list_replaces_or_appends():
    cfg = load_monitoring_preset("generic", {"signals": [
        {"name": "cuda_oom", "pattern": "my oom", "error_type": "oom", "class": "permanent"},
        {"name": "mine", "pattern": "custom failure", "error_type": "custom", "class": "permanent"},
    ]})
    cls = LineClassifier(cfg)
    # the replaced curated pattern no longer matches; the family layer still knows the family
    hit = cls.classify("CUDA out of memory", 1)
    assert (hit.layer.value, hit.signal, hit.error_type) == ("family", "memory.device", "oom")
    assert cls.classify("my oom", 1).signal == "cuda_oom"
    assert cls.classify("a custom failure", 1).error_type == "custom"


def test_override_errors_name_the_users_key():
    with pytest.raises(ConfigError, match=r"monitoring\.signals\.nccl_error\.pattern: RE2 cannot compile"):
        load_monitoring_preset("megatron_production", {"signals": {"nccl_error": {"pattern": r"(x)\1"}}})
    with pytest.raises(ConfigError, match=r"monitoring\.signals\.brand_new\.pattern: missing"):
        load_monitoring_preset("megatron_production", {"signals": {"brand_new": {"error_type": "x", "class": "transient"}}})
    with pytest.raises(ConfigError, match="unknown override key"):
        load_monitoring_preset("megatron_production", {"sigals": {}})


@pytest.mark.parametrize("pattern", ["x*", "(?:NCCL)?", "a|"])
def test_pattern_matching_empty_string_is_refused(pattern):
    with pytest.raises(ConfigError, match=r"monitoring\.signals\[0\]\.pattern \(signal 's1'\): .* matches the empty string"):
        load_monitoring({"signals": [sig(pattern=pattern)]})


def test_dump_and_load_round_trip_keeps_roles_layers_tips_and_families():
    # the frozen run.yaml stores the resolved monitoring config; the watchdog reads it back
    import yaml

    from sidecar.classify.config import dump_monitoring

    cfg = load_monitoring_preset("megatron_production", {
        "signals": {"mine": {"pattern": "MYFAIL", "error_type": "custom", "class": "permanent", "tip": "fix it"}},
        "families": {"disabled": ["storage.full"]},
    })
    again = load_monitoring(yaml.safe_load(yaml.safe_dump(dump_monitoring(cfg))))
    assert again.signals == cfg.signals and again.families == cfg.families
    assert again.signals[0].layer.value == "user" and again.signals[0].tip == "fix it"
    assert {s.role.value for s in again.signals} == {"cause", "death", "symptom", "cascade"}
