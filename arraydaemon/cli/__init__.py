"""Command line: ``arraydaemon COMMAND``. Only argument parsing and printing live here, one module
per command group; the work is done by the package's stages, services and tools. User mistakes print
one line and exit 2, never a traceback.

This package must stay light to import (no numpy, numba or torch at module level): ``reason`` and
``listen`` run through it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from arraydaemon import __version__
from arraydaemon.cli import fusion, listen, noise, profile, reason, replay, research, service, web
from arraydaemon.cli.common import HelpFormatter, examples
from arraydaemon.core.errors import UserError
from arraydaemon.core.validation import shown

COMMAND_GROUPS = (replay, listen, profile, research, service, reason, web, noise, fusion)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arraydaemon", formatter_class=HelpFormatter,
        description="Real-time sound-source localization for microphone arrays: captures the array, "
        "localizes and tracks sound sources and publishes them over ZeroMQ. `arraydaemon COMMAND --help` "
        "documents each command.",
        epilog=examples("arraydaemon demo                                  # replay the bundled recording",
                        "arraydaemon profile check my_array.yaml           # geometry, aliasing, ambiguities",
                        "arraydaemon run --profile my_array                # the daemon",
                        "arraydaemon listen --topics tracks                # in another terminal"))
    parser.add_argument("--version", action="version", version=f"arraydaemon {__version__}")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
                        help="messages logged to stderr from this level up (default %(default)s)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name the file system holds but UTF-8 cannot
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"arraydaemon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed by a pipe reader (e.g. `| head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the machine's, not a bug: a full disk or standard output, say
        _quiet_stdout()
        where = f" ({shown(exc.filename)})" if exc.filename else ""
        print(f"arraydaemon: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


def _quiet_stdout() -> None:
    """Standard output may be what failed (a full disk): drop what is still buffered for it, so the
    interpreter's exit does not fail on it again."""
    try:
        sys.stdout.flush()
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
