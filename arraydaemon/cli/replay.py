"""``arraydaemon replay`` and ``arraydaemon demo``: recordings through the live pipeline."""

from __future__ import annotations

import json
import sys

from arraydaemon.cli.common import add_pipeline_args, add_publish_args, open_publisher
from arraydaemon.cli.display import format_doa_line
from arraydaemon.core.angles import azimuth_difference
from arraydaemon.core.errors import UserError
from arraydaemon.core.paths import DATA_DIR


def register(sub) -> None:
    p = sub.add_parser("replay", help="run the live pipeline on a recording")
    p.add_argument("file", help="multichannel audio file (any libsndfile format)")
    p.add_argument("--profile", required=True, help="array profile name or YAML file")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    p.add_argument("--jsonl", metavar="OUT", help="write one JSON object per window to OUT ('-' for stdout)")
    add_publish_args(p)
    p.add_argument("--quiet", action="store_true", help="no per-window lines on the terminal")
    add_pipeline_args(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("demo", help="replay the bundled demo recording and report accuracy")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    add_publish_args(p)
    add_pipeline_args(p)
    p.set_defaults(func=cmd_demo)


def _replay(path, profile, options, publisher, realtime: bool, on_payload):
    """Replays ``path``, passing each window's ``doa`` payload to ``on_payload``."""
    from arraydaemon.service.replay import replay_file

    return replay_file(path, profile, options, publisher, realtime, lambda r: on_payload(r.payloads[0][1]),
                       notify=lambda msg: print(f"note: {msg}", file=sys.stderr))


def cmd_replay(args) -> int:
    from arraydaemon.core.profiles import load_profile
    from arraydaemon.service.settings import resolve_pipeline

    profile = load_profile(args.profile)
    options = resolve_pipeline(args)
    publisher = open_publisher(args)
    out = None
    if args.jsonl == "-":
        out = sys.stdout
    elif args.jsonl:
        try:
            out = open(args.jsonl, "w", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{args.jsonl}: cannot write ({exc.strerror})") from None
    human = out is not sys.stdout and not args.quiet

    def on_payload(payload):
        if out is not None:
            try:
                line = json.dumps(payload, separators=(",", ":"), allow_nan=False)
            except ValueError:  # a non-finite number: never written (the wire refuses it too)
                print(f"note: window {payload.get('seq')} not written: a non-finite value", file=sys.stderr)
                return
            out.write(line + "\n")
        if human:
            print(format_doa_line(payload), flush=True)

    try:
        done = _replay(args.file, profile, options, publisher, not args.fast, on_payload)
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
        if publisher is not None:
            publisher.close()
    pipeline, seconds = done.pipeline, done.source.duration_s
    bad = f", {pipeline.features.bad_blocks} NaN/Inf block(s) skipped" if pipeline.features.bad_blocks else ""
    print(f"replayed {seconds:.2f} s in {done.wall_s:.2f} s ({seconds / max(done.wall_s, 1e-9):.1f}× real time), "
          f"{pipeline.windows} windows, estimator {options.estimator}{bad}", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    import numpy as np

    from arraydaemon.core.profiles import load_profile
    from arraydaemon.service.settings import resolve_pipeline

    truth = json.loads((DATA_DIR / "demo.json").read_text())
    profile = load_profile(truth["profile"])
    options = resolve_pipeline(args)
    publisher = open_publisher(args, quiet_fallback=True)
    true_az = truth["sources"][0]["azimuth_deg"]
    errors, windows = [], 0
    where = publisher.bound_endpoint if publisher else "nowhere (--no-publish)"
    print(f"arraydaemon demo: a simulated talker at azimuth {true_az:+.0f}° in a room with RT60 "
          f"{truth['rt60']} s, {profile.num_mics}-mic array '{profile.name}', estimator {options.estimator}, "
          f"publishing on {where}")

    def on_payload(payload):
        nonlocal windows
        windows += 1
        print(format_doa_line(payload), flush=True)
        if payload["sources"]:
            errors.append(azimuth_difference(payload["sources"][0]["azimuth_deg"], true_az))

    try:
        _replay(DATA_DIR / "demo.flac", profile, options, publisher, not args.fast, on_payload)
    finally:
        if publisher is not None:
            publisher.close()
    if errors:
        e = np.array(errors)
        print(f"accuracy: true azimuth {true_az:+.1f}°, {len(e)}/{windows} windows active, azimuth error median "
              f"{np.median(e):.1f}°, mean {e.mean():.1f}°, within 10°: {np.mean(e <= 10) * 100:.0f}%")
    else:
        print(f"accuracy: true azimuth {true_az:+.1f}°, 0/{windows} windows active")
    return 0
