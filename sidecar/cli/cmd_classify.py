"""``autoexp-sidecar classify``: post-mortem of a finished log, or per-line classification."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

HELP = "classify a finished training log: root cause, class, node, and the restart decision"
DESCRIPTION = (
    "Reads LOG with a monitoring preset and prints the verdict: the root-cause line and its "
    "number, error_type, class (transient/permanent/terminal), the node it points at, how many "
    "evidence lines followed, the last iteration and checkpoint, and the restart decision the "
    "policy would take. With --lines, prints one JSON object per matching line instead "
    "(LOG may be - for stdin); streaming, constant memory. With --explain, also says which "
    "layer decided (your own signals, then the preset's curated signals, then the family layer "
    "that reads failures by structure and vocabulary), the rule, why that line was chosen over "
    "the others (a symptom printed before the cause, a process death explained by an OOM kill), "
    "which lines were taken as cascade, and how to override it in your config; "
    "--explain --line TEXT does the same for one line."
)

DEFAULT_MONITORING = "megatron_production"
DEFAULT_RESTART = "megatron_transient"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", nargs="?", help="the log file (- for stdin)")
    parser.add_argument("--monitoring", default=DEFAULT_MONITORING, metavar="PRESET",
                        help=f"monitoring preset (default: {DEFAULT_MONITORING})")
    parser.add_argument("--restart", default=DEFAULT_RESTART, metavar="PRESET",
                        help=f"restart preset for the decision (default: {DEFAULT_RESTART})")
    parser.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    parser.add_argument("--lines", action="store_true",
                        help='one JSON object per matching line: {"line_no","signal","error_type","class","node",'
                             '"role","layer","confidence"}')
    parser.add_argument("--explain", action="store_true",
                        help="say which layer and rule decided, why that line, which lines were cascade, and how to override it")
    parser.add_argument("--line", metavar="TEXT", help="with --explain: explain this one line instead of a log")


def _restart_settings(name: str) -> Any:
    """The restart settings for the decision (as ``submit`` builds them), or None when the
    config package is not available (then the class-based outcome is shown)."""
    try:
        from sidecar.config.presets import read_preset
        from sidecar.config.restart import RestartPolicy
        from sidecar.config.validate import build
    except ImportError:
        return None
    return build(RestartPolicy, {**read_preset("restart", name), "preset": name}, "restart")


def run(args: argparse.Namespace) -> int:
    from sidecar.classify import load_monitoring_preset
    from sidecar.classify import report
    from sidecar.errors import SidecarError

    if args.line is not None:
        if not args.explain or args.log is not None:
            raise SidecarError("--line TEXT goes with --explain and no LOG", "autoexp-sidecar classify --explain --line 'the line'")
        print(report.explain_line(args.line, load_monitoring_preset(args.monitoring)))
        return 0
    if args.log is None:
        raise SidecarError("no log given", "autoexp-sidecar classify LOG (or - for stdin, or --explain --line TEXT)")
    if args.log != "-" and not os.path.isfile(args.log):
        raise SidecarError(f"log file not found: {args.log}", "give the path of a training log, or - for stdin")
    cfg = load_monitoring_preset(args.monitoring)
    try:
        return _report(args, cfg, report)
    except BrokenPipeError:  # `classify --lines LOG | head`: the reader left, that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _report(args: argparse.Namespace, cfg: Any, report: Any) -> int:
    from sidecar.errors import SidecarError

    if args.lines:
        report.write_line_hits(args.log, cfg, sys.stdout)
        return 0
    verdict = report.verdict_for_path(args.log, cfg)
    try:
        settings = _restart_settings(args.restart)
    except SidecarError:
        if args.restart != DEFAULT_RESTART:
            raise
        settings = None  # the shipped default is missing: fall back to the class outcome
    decision = report.restart_decision(verdict, settings)
    if args.json:
        print(json.dumps(report.verdict_to_json(verdict, decision, args.log, cfg.name), indent=2))
    elif args.explain:
        print(report.explain_verdict(verdict, decision, args.log, cfg.name))
    else:
        print(report.verdict_to_text(verdict, decision, args.log, cfg.name))
    return 0
