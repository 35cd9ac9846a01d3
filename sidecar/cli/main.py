"""The ``autoexp-sidecar`` command line.

Each subcommand lives in ``sidecar/cli/cmd_<name>.py`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import only the standard
library at top level and defer everything heavy to ``run`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from types import ModuleType
from typing import Sequence

from sidecar import __version__
from sidecar.errors import SidecarError

# Order is the order shown in --help.
COMMANDS: tuple[str, ...] = (
    "submit",
    "list",
    "inspect",
    "stop",
    "resume",
    "doctor",
    "classify",
    "scan",
    "watchdog",
    "record",
    "conclude",
    "arm",
)


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"sidecar.cli.cmd_{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoexp-sidecar",
        description=(
            "SLURM-native automatic restart of long training jobs. Each training job is "
            "submitted with a watchdog job (--dependency=afternotok); a sidecar inside the "
            "allocation classifies the log; the watchdog resubmits within the retry budget "
            "or stops with a recorded reason."
        ),
    )
    parser.add_argument("--version", action="version", version=f"autoexp-sidecar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = _load(name)
        except ModuleNotFoundError as exc:  # a command not built yet must not break the others
            if exc.name != f"sidecar.cli.cmd_{name}":
                raise
            continue
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may come after options (`submit cfg.yaml --dry-run a=b`): argparse leaves
    # positionals that follow an option unparsed, so take them here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if isinstance(getattr(args, "overrides", None), list) and all(
                "=" in e and not e.startswith("-") for e in extra):
            args.overrides.extend(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SidecarError as exc:
        print(f"ERROR {exc.message}", file=sys.stderr)
        if exc.tip:
            print(f"TIP {exc.tip}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"ERROR {exc.strerror or exc}{where}", file=sys.stderr)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            print("TIP free space (or quota) on that filesystem, then run `autoexp-sidecar "
                  "inspect RUN` and `autoexp-sidecar resume RUN`: nothing was half-written",
                  file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("ERROR interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
