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
    "--explain --line TEXT does the same for one line. With --run RUN or --config FILE the "
    "monitoring (your own signals included) and restart settings are that run's or that "
    "config's, as the sidecar and the watchdog use them. With --nodelist NODES (the job's "
    "nodes, Slurm's form) lines of `srun --label` are placed on their nodes, as the sidecar and "
    "the watchdog place them: a node-local failure names its node, and the verdict says which "
    "node the root line came from."
)

DEFAULT_MONITORING = "megatron_production"
DEFAULT_RESTART = "megatron_transient"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", nargs="?", help="the log file (- for stdin)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--monitoring", default=None, metavar="PRESET",
                        help=f"monitoring preset (default: {DEFAULT_MONITORING})")
    source.add_argument("--run", metavar="RUN",
                        help="use this run's frozen config (run.yaml): its signals, ignores, families and restart settings")
    source.add_argument("--config", metavar="FILE",
                        help="use this config file's monitoring and restart settings (as `submit FILE` would resolve them)")
    parser.add_argument("--restart", default=None, metavar="PRESET",
                        help=f"restart preset for the decision (default: {DEFAULT_RESTART}; "
                             "not with --run/--config, which carry their own)")
    parser.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    parser.add_argument("--lines", action="store_true",
                        help='one JSON object per matching line: {"line_no","signal","error_type","class","node",'
                             '"role","layer","confidence"}')
    parser.add_argument("--explain", action="store_true",
                        help="say which layer and rule decided, why that line, which lines were cascade, and how to override it")
    parser.add_argument("--line", metavar="TEXT", help="with --explain: explain this one line instead of a log")
    parser.add_argument("--nodelist", metavar="NODES",
                        help="the job's nodes in Slurm's form (n[1-2], as sacct -X -o NodeList shows them): "
                             "maps srun --label task ids to nodes")
    parser.add_argument("--ntasks-per-node", type=int, default=None, metavar="K",
                        help="srun tasks per node for --nodelist (default: the run's or config's, else 1)")


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


def _settings(args: argparse.Namespace) -> tuple[Any, Any]:
    """(monitoring config, restart settings or None) from --run, --config or the presets; sets
    ``args.ntasks_per_node`` from the run or config when not given."""
    from sidecar.classify import load_monitoring_preset
    from sidecar.errors import SidecarError

    if (args.run or args.config) and args.restart:
        raise SidecarError("--restart goes with the presets, not with --run/--config (they carry their own)",
                           "drop --restart, or use --monitoring PRESET --restart PRESET")
    if args.run:
        from sidecar.cli.common import load_run_config, resolve_run

        cfg = load_run_config(resolve_run(args.run))
        args.ntasks_per_node = args.ntasks_per_node or cfg.slurm.ntasks_per_node
        return cfg.monitoring, cfg.restart
    if args.config:
        from sidecar.config.load import load_config

        cfg = load_config(args.config)
        args.ntasks_per_node = args.ntasks_per_node or cfg.slurm.ntasks_per_node
        return cfg.monitoring, cfg.restart
    monitoring = load_monitoring_preset(args.monitoring or DEFAULT_MONITORING)
    if args.lines and not args.restart:  # hits only, no decision: the restart settings cost ~10 ms of the start
        return monitoring, None
    name = args.restart or DEFAULT_RESTART
    try:
        return monitoring, _restart_settings(name)
    except SidecarError:
        if args.restart:
            raise
        return monitoring, None  # the shipped default is missing: fall back to the class outcome


def run(args: argparse.Namespace) -> int:
    from sidecar.classify import report
    from sidecar.errors import SidecarError

    if args.line is not None:
        if not args.explain or args.log is not None:
            raise SidecarError("--line TEXT goes with --explain and no LOG", "autoexp-sidecar classify --explain --line 'the line'")
        print(report.explain_line(args.line, _settings(args)[0]))
        return 0
    if args.log is None:
        raise SidecarError("no log given", "autoexp-sidecar classify LOG (or - for stdin, or --explain --line TEXT)")
    if args.log != "-" and not os.path.isfile(args.log):
        raise SidecarError(f"log file not found: {args.log}", "give the path of a training log, or - for stdin")
    cfg, settings = _settings(args)
    try:
        return _report(args, cfg, settings, report)
    except BrokenPipeError:  # `classify --lines LOG | head`: the reader left, that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _report(args: argparse.Namespace, cfg: Any, settings: Any, report: Any) -> int:
    from sidecar.classify.tasks import task_nodes_of_job

    nodes = task_nodes_of_job(args.nodelist, args.ntasks_per_node) if args.nodelist else ()
    if args.lines:
        report.write_line_hits(args.log, cfg, sys.stdout, nodes)
        return 0
    verdict = report.verdict_for_path(args.log, cfg, nodes)
    decision = report.restart_decision(verdict, settings)
    if args.json:
        print(json.dumps(report.verdict_to_json(verdict, decision, args.log, cfg.name, nodes), indent=2))
    elif args.explain:
        print(report.explain_verdict(verdict, decision, args.log, cfg.name, nodes))
    else:
        print(report.verdict_to_text(verdict, decision, args.log, cfg.name, nodes))
    return 0
