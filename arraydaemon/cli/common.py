"""Argument types and argument groups several commands share; their defaults come from the
settings types (:mod:`arraydaemon.core.options`), never copied by hand."""

from __future__ import annotations

import argparse
import math
import sys

from arraydaemon.core.errors import UserError
from arraydaemon.core.options import (
    INTEGRATION_S,
    MAX_SOURCES,
    NOISE_GATES,
    FeatureConfig,
    LocalizerConfig,
    TrackerConfig,
)
from arraydaemon.io import wire
from arraydaemon.localizers.base import ESTIMATOR_NAMES

FEATURES, LOCALIZER, TRACKER = FeatureConfig(), LocalizerConfig(), TrackerConfig()


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions and flags' help as argparse does, but keeps an epilog that starts with
    ``examples:`` line by line, as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def examples(*lines: str) -> str:
    """An epilog of example command lines (``# ...`` after one explains it)."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def command(sub, name: str, summary: str, description: str = "", example_lines=()) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` reads as documentation: the one-line summary (also shown in the
    parent's list), a description, and examples."""
    text = summary[0].upper() + summary[1:] + "." + (" " + description if description else "")
    return sub.add_parser(name, help=summary, description=text,
                          epilog=examples(*example_lines) if example_lines else None, formatter_class=HelpFormatter)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    """The flags every command that runs the pipeline takes (resolved by ``service.settings``)."""
    g = p.add_argument_group("pipeline")
    g.add_argument("--estimator", choices=ESTIMATOR_NAMES, default=None,
                   help="localizer (default: neural when shipped weights are present, else srp-phat)")
    g.add_argument("--weights", default=None, metavar="FILE",
                   help="neural weights (safetensors from `arraydaemon train --out`) instead of the shipped model; "
                   "implies --estimator neural (default: the shipped arraydaemon/data/neural.safetensors)")
    g.add_argument("--hop", type=positive_float, default=None, metavar="SECONDS",
                   help=f"time between windows (default {FEATURES.hop_s:g}; windows are {FEATURES.window_s:g} s)")
    g.add_argument("--fmin", type=positive_float, default=None, metavar="HZ",
                   help=f"band low edge (default {FEATURES.fmin_hz:g})")
    g.add_argument("--fmax", type=positive_float, default=None, metavar="HZ",
                   help=f"band high edge (default {FEATURES.fmax_hz:g})")
    g.add_argument("--resolution", type=positive_float, default=None, metavar="DEG",
                   help="direction grid resolution in degrees (default 1 for planar/linear arrays; "
                   f"a {LOCALIZER.sphere_points}-point sphere, about 4.5 degrees, for 3-D arrays)")
    g.add_argument("--max-sources", type=int, default=None, metavar="N",
                   help=f"sources per window, 1..{MAX_SOURCES} (default {LOCALIZER.max_sources})")
    g.add_argument("--integration", type=float, default=None, metavar="SECONDS",
                   help=f"time constant of the integration over past windows (default {INTEGRATION_S:g}; 0: every "
                   "window on its own, faster to follow a moving source, less accurate in reverberant rooms)")
    g.add_argument("--noise-model", default=None, metavar="MODEL",
                   help="the robot's own noise, measured once (`arraydaemon noise learn`): whitened out of every bin, "
                   "never reported as a source (docs/robot-noise.md; default: none)")
    g.add_argument("--noise-gate", choices=NOISE_GATES, default=None,
                   help="whose noise direction is never a source: the noise model's (model, the default), also the "
                   "direction the online noise field learns (online: a robot without a noise model; a steady source "
                   "is then taken for its noise), or none (off)")
    g.add_argument("--noise-state", default=None, metavar="FILE",
                   help="keep what the online noise field learns in FILE across restarts (read at start if it exists, "
                   "written at exit; default: not kept)")
    g.add_argument("--track-silence", type=positive_float, default=None, metavar="SECONDS",
                   help=f"retire a tracked source not heard for this long (default {TRACKER.max_silence_s:g})")


def add_publish_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", help=f"ZeroMQ PUB endpoint to bind (default {wire.DEFAULT_ENDPOINT}; a host other "
                   "than loopback publishes to the network, with a warning)")
    p.add_argument("--no-publish", action="store_true", help="do not open a ZeroMQ socket")


def open_publisher(args, quiet_fallback: bool = False):
    """The PUB socket ``--endpoint`` asks for (None with ``--no-publish``); with ``quiet_fallback``, a
    busy endpoint falls back to a free loopback port, with a note."""
    from arraydaemon.io.publisher import ZmqPublisher

    if getattr(args, "no_publish", False):
        return None
    endpoint = args.endpoint or wire.DEFAULT_ENDPOINT
    try:
        return ZmqPublisher(endpoint)
    except UserError:
        if not quiet_fallback:
            raise
        pub = ZmqPublisher("tcp://127.0.0.1:*")
        print(f"note: {endpoint} is busy; publishing on {pub.bound_endpoint}", file=sys.stderr)
        return pub
