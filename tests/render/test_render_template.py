"""The pure render step: quoting, #SBATCH values, missing values, argument rendering."""

from __future__ import annotations

import shlex

import pytest

from sidecar.errors import ConfigError
from sidecar.render import render, render_args, sbatch_directives, sbatch_value


def test_plain_placeholders_are_shell_quoted():
    out = render("a={{ a }} b={{b}} c={{ c }}", {"a": "x y", "b": "it's", "c": 5, "unused": 1})
    assert shlex.split(out) == ["a=x y", "b=it's", "c=5"]


def test_sbatch_filter():
    assert render("--x={{ v | sbatch }}", {"v": "booster"}) == "--x=booster"
    assert render("--x={{ v | sbatch }}", {"v": "/a b/c"}) == '--x="/a b/c"'
    assert sbatch_value("it's") == "\"it's\""
    assert sbatch_value("a#b") == '"a#b"'  # sbatch reads an unquoted # as a comment
    for bad in ("a\nb", 'a"b', "a\\b"):
        with pytest.raises(ConfigError) as info:
            render("--x={{ v | sbatch }}", {"v": bad})
        assert "v:" in info.value.message


def test_raw_filter_and_empty_raw_lines_dropped():
    text = "a\n{{ block | raw }}\nb {{ w | raw }}\n"
    assert render(text, {"block": "", "w": "$HOME"}) == "a\nb $HOME\n"
    assert render(text, {"block": "x\ny", "w": ""}) == "a\nx\ny\nb \n"


def test_missing_value_is_an_error_naming_it():
    with pytest.raises(ConfigError) as info:
        render("{{ a }} {{ b | sbatch }} {{ c }}", {"a": 1})
    assert "b, c" in info.value.message


def test_unknown_filter_and_malformed_placeholder():
    with pytest.raises(ConfigError, match="unknown filter"):
        render("{{ a | upper }}", {"a": "x"})
    with pytest.raises(ConfigError, match="malformed"):
        render("{{ a b }}", {"a": "x"})


def test_value_with_braces_is_not_rendered_again():
    assert shlex.split(render("{{ a }} {{ b }}", {"a": "{{ b }}", "b": "x"})) == ["{{ b }}", "x"]


def test_render_args():
    words = render_args({"micro_batch_size": 8, "qk_layernorm": True, "swiglu": False,
                         "data_path": ["1.0", "/d/a"], "load": None, "lr": 3.0e-4})
    assert words == ["--micro-batch-size", "8", "--qk-layernorm", "--data-path", "1.0", "/d/a",
                     "--lr", "0.0003"]


def test_sbatch_directives():
    out = sbatch_directives([("partition", "debug"), ("account", None), ("exclusive", True),
                             ("requeue", False), ("mem", "1G"), ("comment", "a b")])
    assert out.splitlines() == ["#SBATCH --partition=debug", "#SBATCH --exclusive",
                                "#SBATCH --mem=1G", '#SBATCH --comment="a b"']
